"""What the stock rules refuse: a change that would break them, or an order stock cannot cover."""

from collections.abc import Sequence
from dataclasses import dataclass


class StockError(ValueError):
    """A stock change that the rules refuse; nothing was written."""


@dataclass(frozen=True)
class Shortage:
    product_id: int
    product_name: str
    requested: int
    available: int

    def __str__(self) -> str:
        return f"{self.product_name} needs {self.requested}, {self.available} available"


class InsufficientStock(StockError):
    """Not enough available stock for one or more lines; nothing was reserved."""

    def __init__(self, shortages: Sequence[Shortage]):
        self.shortages = list(shortages)
        super().__init__("Not enough stock: " + "; ".join(str(shortage) for shortage in self.shortages))
