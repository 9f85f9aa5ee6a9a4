"""Reads behind the dashboard's recent orders and sync operations panels and the JSON API.

Nothing here writes. Every function takes the creator's id and returns only that creator's rows.
"""

from django.db.models import Case, IntegerField, Prefetch, Value, When

from .models import Order, OrderItem, SyncOperation

RECENT_ORDERS_LIMIT = 15
SYNC_OPERATIONS_LIMIT = 6


def orders_recent(*, creator_id: int, status: str | None = None, limit: int = RECENT_ORDERS_LIMIT) -> list[Order]:
    """Return the creator's latest orders (by placement), optionally of one status, with their items."""
    orders = Order.objects.filter(creator_id=creator_id)
    if status is not None:
        orders = orders.filter(status=status)
    return list(
        orders.order_by("-placed_at", "-pk").prefetch_related(
            Prefetch("items", queryset=OrderItem.objects.select_related("product").order_by("pk"))
        )[:limit]
    )


def sync_operations_recent(*, creator_id: int, limit: int = SYNC_OPERATIONS_LIMIT) -> list[SyncOperation]:
    """Return the creator's sync operations: running ones first, then the latest."""
    return list(
        SyncOperation.objects.filter(creator_id=creator_id)
        .select_related("shop")
        .order_by(
            Case(When(status__in=SyncOperation.ACTIVE_STATUSES, then=Value(0)), default=Value(1), output_field=IntegerField()),
            "-updated_at",
            "-pk",
        )[:limit]
    )
