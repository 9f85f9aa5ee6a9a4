"""Stock levels: the thresholds the alert engine, the inventory table and the metrics share.

One pure function decides how a product's total available stock stands against its reorder
point; every reader of "low" or "out" asks it, so the badge, the alert and the count agree.
"""

import enum
import math
from decimal import Decimal


class Level(enum.StrEnum):
    OUT = "out"  # nothing available: a stockout
    CRITICAL = "critical"  # at most half the reorder point
    LOW = "low"  # at most the reorder point
    IN_STOCK = "in_stock"


def stock_level(*, available: int, reorder_point: int) -> Level:
    """Classify a product's total available units against its reorder point."""
    if available <= 0:
        return Level.OUT
    if available * 2 <= reorder_point:
        return Level.CRITICAL
    if available <= reorder_point:
        return Level.LOW
    return Level.IN_STOCK


def stock_is_low(*, available: int, reorder_point: int) -> bool:
    """Tell whether a product counts as low stock (out, critical or low)."""
    return stock_level(available=available, reorder_point=reorder_point) != Level.IN_STOCK


def stockout_eta_hours(*, available: int, velocity_per_hour: Decimal) -> int | None:
    """Hours until available stock runs out at the current velocity; None when nothing sells."""
    if velocity_per_hour <= 0:
        return None
    return math.ceil(Decimal(max(available, 0)) / velocity_per_hour)
