"""Orders: apply TikTok order events with their stock effects, and expire unpaid holds.

Status only moves forward (by TikTok's update time, then by rank). Stock effects follow
DESIGN.md: reserve on first sight, keep the hold once paid, commit on the first shipped
status, release on cancellation before shipping.
"""

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from inventory.models import Product, Reservation
from inventory.services import (
    MAX_QUANTITY,
    InsufficientStock,
    ReservationRequest,
    alert_raise_insufficient_stock,
    product_upsert,
    reservations_set_expiry,
    stock_commit,
    stock_release,
    stock_reserve,
)
from realtime.rollups import OrderFigures
from realtime.services import order_stats_apply

from . import locks
from .models import Order, OrderItem, OrderStatus, ShopConnection

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
Flag = Order.Flag


class OrderError(ValueError):
    """An order event that cannot be applied; nothing was written."""


def status_normalize(value: object) -> str:
    """Return the canonical status for a TikTok status word, or raise OrderError."""
    if not isinstance(value, str):
        raise OrderError(f"Order status must be a string, got {type(value).__name__}.")
    status = STATUS_ALIASES.get(value.strip().upper(), value.strip().upper())
    if status not in OrderStatus.values:
        raise OrderError(f"Unknown order status {value!r}; expected one of {', '.join(OrderStatus.values)} or CANCEL.")
    return status


@dataclass(frozen=True)
class OrderLine:
    product_id: str
    quantity: int
    unit_price: Decimal = Decimal(0)
    name: str = ""
    sku: str = ""


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


class Outcome(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    STALE = "stale"
    REGRESSION = "regression"


# What an event can change on an existing order; when none of it moves, nothing is written.
_EVENT_FIELDS = (
    "status", "tiktok_updated_at", "total_amount", "currency", "flags", "paid_at", "shipped_at", "cancelled_at",
    "completed_at",
)


def _validate(event: OrderEvent) -> None:
    if not event.order_id or len(event.order_id) > 64:
        raise OrderError("order_id must be a non-empty string of at most 64 characters.")
    if event.total_amount is not None and not (Decimal(0) <= event.total_amount < Decimal("1e12")):
        raise OrderError(f"total_amount {event.total_amount} is out of range.")
    for line in event.lines or ():
        if isinstance(line.quantity, bool) or not isinstance(line.quantity, int) or not 0 < line.quantity <= MAX_QUANTITY:
            raise OrderError(f"Line {line.product_id}: quantity must be 1 to {MAX_QUANTITY:,}, got {line.quantity!r}.")
        if not (Decimal(0) <= line.unit_price < Decimal("1e10")):
            raise OrderError(f"Line {line.product_id}: price {line.unit_price} is out of range.")
        if not line.product_id or len(line.product_id) > 64:
            raise OrderError("Every line needs a product_id of at most 64 characters.")


def _shipped(status: str) -> bool:
    return STATUS_RANK.get(status, 0) >= FIRST_SHIPPED_RANK


def _flag(order: Order, flag: str, on: bool) -> None:
    flags = [existing for existing in order.flags if existing != flag]
    order.flags = sorted([*flags, flag]) if on else flags


def _items_create(order: Order, lines: Sequence[OrderLine]) -> list[OrderItem]:
    products = {
        product.external_id: product
        for product in Product.objects.filter(creator_id=order.creator_id, external_id__in={line.product_id for line in lines})
    }
    for line in lines:
        if line.product_id not in products:
            # Kept and flagged: the order is real even if the catalogue has not caught up yet.
            products[line.product_id], _ = product_upsert(
                creator_id=order.creator_id, external_id=line.product_id, name=line.name or None, sku=line.sku or None
            )
            _flag(order, Flag.UNKNOWN_PRODUCT, True)
    return OrderItem.objects.bulk_create(
        [
            OrderItem(order=order, product=products[line.product_id], quantity=line.quantity, unit_price=line.unit_price)
            for line in lines
        ]
    )


def _reservations(order: Order, *statuses: str) -> list[Reservation]:
    return list(Reservation.objects.filter(order_item__order=order, status__in=statuses).order_by("pk"))


def _reserve(order: Order, items: Sequence[OrderItem], *, now: datetime) -> None:
    ttl = timedelta(hours=settings.CREATORFLOW["RESERVATION_TTL_HOURS"])
    try:
        stock_reserve(
            requests=[ReservationRequest(item.pk, item.product_id, item.quantity) for item in items],
            expires_at=None if order.paid_at else now + ttl,
            sold_at=order.placed_at,
            reference=f"order {order.external_id}",
        )
    except InsufficientStock as shortage:
        _flag(order, Flag.INSUFFICIENT_STOCK, True)
        alert_raise_insufficient_stock(shortages=shortage.shortages, order_reference=order.external_id)
    else:
        _flag(order, Flag.INSUFFICIENT_STOCK, False)
        _flag(order, Flag.RESERVATION_EXPIRED, False)


def _stock_effects(order: Order, items: Sequence[OrderItem] | None, *, at: datetime, now: datetime, new: bool) -> None:
    reference = f"order {order.external_id}"
    if order.status == OrderStatus.CANCELLED:
        order.cancelled_at = order.cancelled_at or at
        if order.shipped_at is None and not new:
            active = _reservations(order, Reservation.Status.ACTIVE)
            if active:
                stock_release(reservations=active, reference=reference, sold_at=order.placed_at)
        return
    if order.status != OrderStatus.UNPAID and order.paid_at is None:
        order.paid_at = at
        if not new:
            reservations_set_expiry(reservations=_reservations(order, Reservation.Status.ACTIVE), expires_at=None)
    if _shipped(order.status):
        if order.status == OrderStatus.COMPLETED:
            order.completed_at = order.completed_at or at
        if order.shipped_at is None:
            order.shipped_at = at
            # An order first seen already shipped holds nothing: TikTok's stock counts include it.
            active = [] if new else _reservations(order, Reservation.Status.ACTIVE)
            if active:
                stock_commit(reservations=active, reference=reference)
        return
    if items is None:
        items = list(order.items.all())
    if not items:
        return
    held = not new and _reservations(order, Reservation.Status.ACTIVE, Reservation.Status.COMMITTED)
    expired_unpaid = Flag.RESERVATION_EXPIRED in order.flags and order.paid_at is None
    if not held and not expired_unpaid:
        _reserve(order, items, now=now)


@transaction.atomic
def order_apply_event(*, shop: ShopConnection, event: OrderEvent, now: datetime | None = None) -> tuple[Order, Outcome]:
    """Create or update an order from a TikTok event and apply its stock effects."""
    _validate(event)
    status = status_normalize(event.status)
    now = now or timezone.now()
    order, created = locks.order_lock_or_create(
        creator_id=shop.creator_id,
        external_id=event.order_id,
        defaults={
            "shop": shop,
            "status": status,
            "placed_at": event.placed_at or event.updated_at,
            "total_amount": event.total_amount or Decimal(0),
            "currency": event.currency,
            "tiktok_updated_at": event.updated_at,
        },
    )
    items = None
    if created:
        before = None
        if event.lines:
            items = _items_create(order, event.lines)
    else:
        if event.updated_at < order.tiktok_updated_at:
            return order, Outcome.STALE
        current = order.status
        if current in (OrderStatus.CANCELLED, OrderStatus.COMPLETED) and status != current:
            return order, Outcome.REGRESSION
        if status != OrderStatus.CANCELLED and STATUS_RANK[status] < STATUS_RANK[current]:
            return order, Outcome.REGRESSION
        before = OrderFigures.of(order)
        loaded = [getattr(order, field) for field in _EVENT_FIELDS]
        if event.lines and not order.items.exists():
            items = _items_create(order, event.lines)
        order.status = status
        order.tiktok_updated_at = event.updated_at
        if event.total_amount is not None:
            order.total_amount = event.total_amount
        order.currency = event.currency or order.currency
    _stock_effects(order, items, at=event.updated_at, now=now, new=created)
    if not created and items is None and loaded == [getattr(order, field) for field in _EVENT_FIELDS]:
        return order, Outcome.UNCHANGED
    order.save()
    order_stats_apply(creator_id=order.creator_id, before=before, after=OrderFigures.of(order))
    return order, Outcome.CREATED if created else Outcome.UPDATED


def reservations_expire(*, now: datetime | None = None) -> int:
    """Release unpaid reservations past their expiry and flag their orders; return how many.

    Idempotent and safe to run concurrently: each order is handled under its row lock, and
    only reservations still active then are released.
    """
    now = now or timezone.now()
    order_ids = sorted(
        set(
            Reservation.objects.filter(status=Reservation.Status.ACTIVE, expires_at__lte=now).values_list(
                "order_item__order_id", flat=True
            )
        )
    )
    released = 0
    for order_id in order_ids:
        with transaction.atomic():
            order = locks.order_lock(order_id=order_id)
            expired = list(
                Reservation.objects.filter(
                    order_item__order=order, status=Reservation.Status.ACTIVE, expires_at__lte=now
                ).order_by("pk")
            )
            if not expired:
                continue
            released += stock_release(
                reservations=expired, reference=f"order {order.external_id} expired", sold_at=order.placed_at, expired=True
            )
            _flag(order, Flag.RESERVATION_EXPIRED, True)
            order.save(update_fields=["flags", "updated_at"])
    return released


@transaction.atomic
def shop_connect(
    *,
    username: str,
    shop_id: str,
    app_key: str,
    app_secret: str,
    password: str | None = None,
    timezone_name: str | None = None,
    api_base_url: str | None = None,
    access_token: str | None = None,
) -> tuple[ShopConnection, bool]:
    """Create or update a creator and their shop connection; return (shop, created)."""
    from django.contrib.auth import get_user_model
    from django.core.exceptions import ValidationError

    from accounts.models import validate_timezone

    for name, value in {"username": username, "shop_id": shop_id, "app_key": app_key, "app_secret": app_secret}.items():
        if not value or not value.strip():
            raise OrderError(f"{name} must not be empty.")
    if timezone_name is not None:
        try:
            validate_timezone(timezone_name)
        except ValidationError as error:
            raise OrderError(error.messages[0]) from error
    creator, _ = get_user_model().objects.get_or_create(username=username)
    if password:
        creator.set_password(password)
    elif not creator.has_usable_password() and not creator.password:
        creator.set_unusable_password()
    if timezone_name is not None:
        creator.timezone = timezone_name
    creator.save()
    shop = ShopConnection.objects.select_for_update().filter(shop_id=shop_id).first()
    if shop is not None and shop.creator_id != creator.pk:
        raise OrderError(f"Shop {shop_id} is already connected to another creator.")
    fields = {"app_key": app_key, "app_secret": app_secret}
    if api_base_url:
        fields["api_base_url"] = api_base_url
    if access_token is not None:
        fields["access_token"] = access_token
    if shop is None:
        return ShopConnection.objects.create(creator=creator, shop_id=shop_id, **fields), True
    for field, value in fields.items():
        setattr(shop, field, value)
    shop.save()
    return shop, False
