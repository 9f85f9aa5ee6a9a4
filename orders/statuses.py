"""TikTok's order statuses: their spellings, their order, and which of them have shipped.

Every reader of a status word (webhook payloads, TikTok's API, the dashboard's filters, the
JSON API) goes through ``status_normalize``, so CANCEL and CANCELLED mean the same everywhere.
"""

from .events import OrderError
from .models import OrderStatus

STATUS_RANK = {
    OrderStatus.UNPAID: 1,
    OrderStatus.ON_HOLD: 2,
    OrderStatus.AWAITING_SHIPMENT: 3,
    OrderStatus.PARTIALLY_SHIPPING: 4,
    OrderStatus.AWAITING_COLLECTION: 5,
    OrderStatus.IN_TRANSIT: 6,
    OrderStatus.DELIVERED: 7,
    OrderStatus.COMPLETED: 8,
}
FIRST_SHIPPED_RANK = STATUS_RANK[OrderStatus.PARTIALLY_SHIPPING]
STATUS_ALIASES = {"CANCEL": OrderStatus.CANCELLED}


def status_normalize(value: object) -> str:
    """Return the canonical status for a TikTok status word, or raise OrderError."""
    if not isinstance(value, str):
        raise OrderError(f"Order status must be a string, got {type(value).__name__}.")
    word = value.strip().upper()
    status = STATUS_ALIASES.get(word, word)
    if status not in OrderStatus.values:
        raise OrderError(f"Unknown order status {value!r}; expected one of {', '.join(OrderStatus.values)} or CANCEL.")
    return status


def status_filter_parse(value: str | None) -> str | None:
    """Return the canonical status of a filter value, None for "all"; raise OrderError if unknown."""
    if value is None or value.strip() == "":
        return None
    return status_normalize(value)


def status_is_shipped(status: str) -> bool:
    """Tell whether an order in ``status`` has left the warehouse (its stock is committed)."""
    return STATUS_RANK.get(status, 0) >= FIRST_SHIPPED_RANK
