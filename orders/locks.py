"""Order row locks. An order is locked before the stock rows of its lines (see inventory.locks)."""

from django.db import IntegrityError, transaction

from .models import Order


def order_lock(*, order_id: int) -> Order:
    return Order.objects.select_for_update().get(pk=order_id)


def order_lock_or_create(*, creator_id: int, external_id: str, defaults: dict) -> tuple[Order, bool]:
    """Lock the creator's order with this TikTok id, creating it first when it is new.

    Two deliveries of a new order racing here: one inserts, the other waits on the unique
    index, gets IntegrityError, and then locks the row the first one created.
    """
    order = Order.objects.select_for_update().filter(creator_id=creator_id, external_id=external_id).first()
    if order is not None:
        return order, False
    try:
        with transaction.atomic():
            return Order.objects.create(creator_id=creator_id, external_id=external_id, **defaults), True
    except IntegrityError:
        return Order.objects.select_for_update().get(creator_id=creator_id, external_id=external_id), False
