"""Row locks of the orders app. An order is locked before the stock rows of its lines (see inventory.locks)."""

from collections.abc import Iterable

from creatorflow.prepared import prepared

from .models import Order, ShopConnection, SyncOperation


def order_lock(*, order_id: int) -> Order:
    return Order.objects.select_for_update().get(pk=order_id)


@prepared
def _orders_of(*, creator_ids: list[int], external_ids: list[str]):
    return Order.objects.select_for_update().filter(creator_id__in=creator_ids, external_id__in=external_ids).order_by("pk")


def orders_lock(*, keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Order]:
    """Lock the orders named by (creator id, TikTok id) pairs, in primary-key order; return them by pair.

    One read prepared per batch size: every named creator's orders among every named TikTok id.
    TikTok order ids are unique across shops, so in practice that is exactly the named orders; a
    pair not named would only be locked with them, in the same primary-key order, and left out.
    """
    keys = set(keys)
    if not keys:
        return {}
    orders = _orders_of.objects(creator_ids=sorted({c for c, _ in keys}), external_ids=sorted({e for _, e in keys}))
    return {key: order for order in orders if (key := (order.creator_id, order.external_id)) in keys}


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


@prepared
def _running_streams(*, shop_ids: list[int]):
    return SyncOperation.objects.select_for_update().filter(
        shop_id__in=shop_ids, type=SyncOperation.Type.WEBHOOK_STREAM, status=SyncOperation.Status.RUNNING
    ).order_by("pk")


def running_streams_lock(*, shop_ids: Iterable[int]) -> list[SyncOperation]:
    """Lock the running webhook streams of these shops, in primary-key order."""
    return _running_streams.objects(shop_ids=sorted(set(shop_ids)))
