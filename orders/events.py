"""What an order or stock event says, whoever said it: TikTok's webhooks, its API, or CreatorFlow's own.

The payload readers (``orders.payloads``) produce these values; the order and stock services
apply them. The limits here are the only ones: a reader refuses what the services would refuse.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

LINE_QUANTITY_MAX = 10_000  # more units on one order line is a broken payload, not a sale
LINES_MAX = 100
TEXT_MAX = 64  # ids: order, product, warehouse, shop
UNIT_PRICE_MAX = Decimal("1e10")
TOTAL_AMOUNT_MAX = Decimal("1e12")


class OrderError(ValueError):
    """An order event that cannot be applied; nothing was written."""


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    quantity: int
    unit_price: Decimal = Decimal(0)
    name: str = ""
    sku: str = ""
    sku_ids: tuple[str, ...] = ()  # TikTok SKU ids of the units, when the order detail names them


@dataclass(frozen=True)
class OrderEvent:
    """What one TikTok event says about an order."""

    order_id: str
    status: str
    updated_at: datetime
    placed_at: datetime | None = None
    total_amount: Decimal | None = None
    currency: str = ""
    lines: Sequence[OrderLine] | None = None


@dataclass(frozen=True)
class InventoryUpdate:
    """What CreatorFlow's INVENTORY_UPDATE says: the absolute on-hand count of a product."""

    product_id: str
    quantity: int
    name: str | None = None
    sku: str | None = None
    warehouse_id: str | None = None
    reorder_point: int | None = None
    unit_cost: Decimal | None = None


@dataclass(frozen=True)
class OrderNotice:
    """TikTok's order status change: no lines, so the detail is fetched from the API."""

    order_id: str
    status: str
    updated_at: datetime
