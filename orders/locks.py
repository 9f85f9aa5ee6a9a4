"""Row locks of the orders app. An order is locked before the stock rows of its lines (see inventory.locks)."""

from collections.abc import Iterable

from creatorflow.db import creator_keys_condition

from .models import Order, ShopConnection


def order_lock(*, order_id: int) -> Order:
    return Order.objects.select_for_update().get(pk=order_id)


def orders_lock(*, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Order]:
    """Lock the orders named by (creator id, TikTok id) pairs, in primary-key order; return them by pair."""
    condition = creator_keys_condition(keys)
    if condition is None:
        return {}
    orders = Order.objects.select_for_update().filter(condition).order_by("pk")
    return {(order.creator_id, order.external_id): order for order in orders}


def order_lock_or_create(*, creator_id: int, external_id: str, defaults: dict) -> tuple[Order, bool]:
    """Lock the creator's order with this TikTok id, creating it first when it is new.

    Two deliveries of a new order racing here: one inserts, the other waits on the unique
    index, gets IntegrityError, and then locks the row the first one created.
    """
    return Order.objects.select_for_update().get_or_create(
        creator_id=creator_id, external_id=external_id, defaults=defaults
    )


def shop_lock(*, shop_id: str) -> ShopConnection | None:
    """Lock and return the shop connection with this TikTok shop id, None when there is none."""
    return ShopConnection.objects.select_for_update().filter(shop_id=shop_id).first()
