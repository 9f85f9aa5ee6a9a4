"""Orders: apply TikTok order and stock events with their stock effects, and expire unpaid holds.

Order events are applied in batches (``orders_apply``). A batch reads and locks the orders it
names with one query, then every stock row of their products (primary-key order), decides each
event in memory in arrival order — every order all or nothing, by the rules below — and writes
orders, lines, reservations, ledger, sales buckets, rollups and alerts with one statement per
kind of row, however many orders it holds. ``order_apply_event`` is a batch of one.

Status only moves forward (by TikTok's update time, then by rank). Stock effects follow DESIGN.md:
reserve on first sight, keep the hold once paid, commit on the first shipped status, release on
cancellation before shipping.
"""

import enum
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from creatorflow.changes import ORDERS, changes_mark
from creatorflow.db import insert_missing, rows_update
from creatorflow.prepared import prepared
from inventory.models import Product, Reservation
from inventory.services.alerts import ShortOrders, alerts_raise_insufficient_stock
from inventory.services.catalogue import (
    product_skus_learn,
    product_upsert,
    products_by_external_id,
    warehouse_get_or_create,
)
from inventory.services.errors import InsufficientStock, Shortage
from inventory.services.stock import ReservationRequest, StockBook, stock_release, stock_set_on_hand

from . import locks
from .events import LINE_QUANTITY_MAX, TEXT_MAX, TOTAL_AMOUNT_MAX, UNIT_PRICE_MAX, InventoryUpdate, OrderError, OrderEvent
from .models import Order, OrderItem, OrderStatus, ProductShortage, ShopConnection
from .rollups import FiguresChange, OrderFigures, rollups_apply
from .statuses import STATUS_RANK, status_is_shipped, status_normalize

Flag = Order.Flag


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
    if not event.order_id or len(event.order_id) > TEXT_MAX:
        raise OrderError(f"order_id must be a non-empty string of at most {TEXT_MAX} characters.")
    if event.total_amount is not None and not (Decimal(0) <= event.total_amount < TOTAL_AMOUNT_MAX):
        raise OrderError(f"total_amount {event.total_amount} is out of range.")
    for line in event.lines or ():
        quantity = line.quantity
        if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= LINE_QUANTITY_MAX:
            raise OrderError(f"Line {line.product_id}: quantity must be 1 to {LINE_QUANTITY_MAX:,}, got {quantity!r}.")
        if not (Decimal(0) <= line.unit_price < UNIT_PRICE_MAX):
            raise OrderError(f"Line {line.product_id}: price {line.unit_price} is out of range.")
        if not line.product_id or len(line.product_id) > TEXT_MAX:
            raise OrderError(f"Every line needs a product_id of at most {TEXT_MAX} characters.")


def _flag(order: Order, flag: str, on: bool) -> None:
    flags = [existing for existing in order.flags if existing != flag]
    order.flags = sorted([*flags, flag]) if on else flags


@dataclass
class _Entry:
    """One order being decided in a batch: the row, its lines and holds, its figures before the batch."""

    order: Order
    created: bool
    items: list[OrderItem]
    holds: list[Reservation]  # active and committed
    before: OrderFigures | None
    fresh: bool = False  # inserted by this batch, no event applied yet
    written: bool = False  # anything to save
    lines_added: bool = False
    inserted: list | None = None  # the event fields as this batch inserted the row

    def unsaved(self) -> bool:
        """Whether the row's event fields differ from what the database holds."""
        return self.inserted is None or self.inserted != _event_values(self.order)

    def lines(self) -> list[tuple[int, int]]:
        return [(item.product_id, item.quantity) for item in self.items]

    def held(self, *statuses: str) -> list[Reservation]:
        return [reservation for reservation in self.holds if reservation.status in statuses]


class _Batch:
    """What one batch decides in memory before it writes anything."""

    def __init__(
        self,
        *,
        now: datetime,
        book: StockBook,
        products: dict[tuple[int, str], Product],
        entries: dict[tuple[int, str], _Entry],
    ) -> None:
        self.now = now
        self.book = book
        self.products = products
        self.entries = entries
        self.short: dict[int, tuple[Shortage, str]] = {}  # product → its latest shortfall and order

    # --- one event -------------------------------------------------------------------------

    def apply(self, shop: ShopConnection, event: OrderEvent, status: str) -> tuple[Order, Outcome]:
        entry = self.entries[(shop.creator_id, event.order_id)]
        if entry.fresh:
            # The event that creates the order (its row was inserted, with this event's fields).
            entry.fresh, entry.written = False, True
            if event.lines:
                self._lines_add(entry, event)
            self._stock_effects(entry, at=event.updated_at, new=True)
            return entry.order, Outcome.CREATED
        order = entry.order
        if event.updated_at < order.tiktok_updated_at:
            return order, Outcome.STALE
        current = order.status
        if current in (OrderStatus.CANCELLED, OrderStatus.COMPLETED) and status != current:
            return order, Outcome.REGRESSION
        if status != OrderStatus.CANCELLED and STATUS_RANK[status] < STATUS_RANK[current]:
            return order, Outcome.REGRESSION
        loaded = _event_values(order)
        lines_added = False
        if event.lines and not entry.items:
            self._lines_add(entry, event)
            lines_added = True
        order.status = status
        order.tiktok_updated_at = event.updated_at
        if event.total_amount is not None:
            order.total_amount = event.total_amount
        order.currency = event.currency or order.currency
        self._stock_effects(entry, at=event.updated_at, new=False)
        if not lines_added and loaded == _event_values(order):
            return order, Outcome.UNCHANGED
        entry.written = True
        return order, Outcome.UPDATED

    def _lines_add(self, entry: _Entry, event: OrderEvent) -> None:
        order = entry.order
        for line in event.lines:
            product = self.products.get((order.creator_id, line.product_id))
            if product is None:
                # Kept and flagged: the order is real even if the catalogue has not caught up yet.
                product, _ = product_upsert(
                    creator_id=order.creator_id, external_id=line.product_id, name=line.name or None, sku=line.sku or None
                )
                self.products[(order.creator_id, line.product_id)] = product
                _flag(order, Flag.UNKNOWN_PRODUCT, True)
            entry.items.append(OrderItem(order=order, product=product, quantity=line.quantity, unit_price=line.unit_price))
        entry.lines_added = True

    # --- stock effects of the order's new state ----------------------------------------------

    def _stock_effects(self, entry: _Entry, *, at: datetime, new: bool) -> None:
        order, book = entry.order, self.book
        reference = f"order {order.external_id}"
        stamped = _times_stamp(order, at=at)
        if order.status == OrderStatus.CANCELLED:
            if order.shipped_at is None and not new:
                book.settle(
                    entry.held(Reservation.Status.ACTIVE),
                    status=Reservation.Status.RELEASED,
                    reference=reference,
                    sold_at=order.placed_at,
                )
            return
        if "paid_at" in stamped and not new:
            book.expire_at(entry.held(Reservation.Status.ACTIVE), None)
        if status_is_shipped(order.status):
            # An order first seen already shipped holds nothing: TikTok's stock counts include it.
            if "shipped_at" in stamped and not new:
                book.settle(
                    entry.held(Reservation.Status.ACTIVE),
                    status=Reservation.Status.COMMITTED,
                    reference=reference,
                    sold_at=None,
                )
            return
        if not entry.items:
            return
        held = not new and entry.held(Reservation.Status.ACTIVE, Reservation.Status.COMMITTED)
        expired_unpaid = Flag.RESERVATION_EXPIRED in order.flags and order.paid_at is None
        if not held and not expired_unpaid:
            self._reserve(entry)

    def _reserve(self, entry: _Entry) -> None:
        order = entry.order
        ttl = timedelta(hours=settings.CREATORFLOW["RESERVATION_TTL_HOURS"])
        names = {item.product_id: item.product.name for item in entry.items}
        try:
            reservations = self.book.reserve(
                [ReservationRequest(None, item.product_id, item.quantity, order_item=item) for item in entry.items],
                expires_at=None if order.paid_at else self.now + ttl,
                sold_at=order.placed_at,
                reference=f"order {order.external_id}",
                product_names=names,
            )
        except InsufficientStock as shortage:
            _flag(order, Flag.INSUFFICIENT_STOCK, True)
            for short in shortage.shortages:
                self.short[short.product_id] = (short, order.external_id)
        else:
            entry.holds.extend(reservations)
            _flag(order, Flag.INSUFFICIENT_STOCK, False)
            _flag(order, Flag.RESERVATION_EXPIRED, False)

    # --- writing it all --------------------------------------------------------------------

    def write(self) -> None:
        entries = [entry for entry in self.entries.values() if entry.written]
        OrderItem.objects.bulk_create([item for entry in entries if entry.lines_added for item in entry.items if item.pk is None])
        # A new order was inserted as its event leaves it, unless a later event or its stock changed it.
        orders = sorted((entry.order for entry in entries if entry.unsaved()), key=lambda order: order.pk)
        for order in orders:
            order.updated_at = self.now
        rows_update(orders, [*_EVENT_FIELDS, "updated_at"])
        self.book.flush(now=self.now)
        rollups_apply(
            FiguresChange(creator_id=entry.order.creator_id, before=entry.before, after=OrderFigures.of(entry.order, entry.lines()))
            for entry in entries
        )
        self._short_alerts()
        marks: dict[int, set[int]] = defaultdict(set)
        for entry in entries:
            marks[entry.order.creator_id].add(entry.order.pk)
        for creator_id, order_ids in marks.items():
            changes_mark(creator_id, ORDERS, ids=order_ids)

    def _short_alerts(self) -> None:
        if not self.short:
            return
        counts = {row["product_id"]: row for row in _shortages_read.values(product_ids=sorted(self.short))}
        alerts_raise_insufficient_stock(
            short=[
                ShortOrders(
                    latest=shortage,
                    order_reference=reference,
                    orders=counts[product_id]["orders"] if product_id in counts else 0,
                    units=counts[product_id]["units"] if product_id in counts else 0,
                )
                for product_id, (shortage, reference) in self.short.items()
            ]
        )


@prepared
def _shortages_read(*, product_ids: list[int]):
    """Short orders and units per product: what a sold-out product's alert counts, read with every batch."""
    return ProductShortage.objects.filter(product_id__in=product_ids).values("product_id", "orders", "units")


def _entries_load(orders: dict[tuple[int, str], Order]) -> dict[tuple[int, str], _Entry]:
    """Return the batch's existing orders as entries, with their lines and holds (two queries)."""
    if not orders:
        return {}
    by_pk = {order.pk: order for order in orders.values()}
    items: dict[int, list[OrderItem]] = defaultdict(list)
    for item in OrderItem.objects.filter(order_id__in=list(by_pk)).select_related("product").order_by("pk"):
        items[item.order_id].append(item)
    holds: dict[int, list[Reservation]] = defaultdict(list)
    for reservation in Reservation.objects.filter(
        order_item__order_id__in=list(by_pk), status__in=[Reservation.Status.ACTIVE, Reservation.Status.COMMITTED]
    ).select_related("order_item").order_by("pk"):
        holds[reservation.order_item.order_id].append(reservation)
    return {
        key: _Entry(
            order=order,
            created=False,
            items=items[order.pk],
            holds=holds[order.pk],
            before=OrderFigures.of(order, [(item.product_id, item.quantity) for item in items[order.pk]]),
        )
        for key, order in orders.items()
    }


def _times_stamp(order: Order, *, at: datetime) -> set[str]:
    """Stamp the times the order's status reaches for the first time (paid, shipped, ...); return their names.

    A new order is stamped before it is inserted, so its INSERT holds them; applying its event
    then finds nothing more to stamp.
    """
    if order.status == OrderStatus.CANCELLED:
        reached = ["cancelled_at"]
    else:
        reached = ["paid_at"] if order.status != OrderStatus.UNPAID else []
        if status_is_shipped(order.status):
            reached.append("shipped_at")
            if order.status == OrderStatus.COMPLETED:
                reached.append("completed_at")
    stamped = {name for name in reached if getattr(order, name) is None}
    for name in stamped:
        setattr(order, name, at)
    return stamped


def _event_values(order: Order) -> list:
    """The order's fields that events write, to tell whether an event changed them."""
    return [getattr(order, field) for field in _EVENT_FIELDS]


def _entries_new(
    valid: Sequence[tuple[int, ShopConnection, OrderEvent, str]], existing: dict[tuple[int, str], _Entry], *, now: datetime
) -> dict[tuple[int, str], _Entry]:
    """Insert the batch's new orders (one statement, key order) and return them as fresh entries.

    An order another transaction inserted meanwhile is read and locked instead, as existing.
    """
    first: dict[tuple[int, str], Order] = {}
    for _, shop, event, status in valid:
        key = (shop.creator_id, event.order_id)
        if key not in existing and key not in first:
            first[key] = Order(
                creator_id=shop.creator_id,
                shop=shop,
                external_id=event.order_id,
                status=status,
                placed_at=event.placed_at or event.updated_at,
                total_amount=event.total_amount or Decimal(0),
                currency=event.currency,
                tiktok_updated_at=event.updated_at,
                flags=[],
            )
            _times_stamp(first[key], at=event.updated_at)
    if not first:
        return {}
    inserted = insert_missing(Order, [first[key] for key in sorted(first)], unique_fields=("creator", "external_id"))
    entries = {
        (order.creator_id, order.external_id): _Entry(
            order=order, created=True, items=[], holds=[], before=None, fresh=True,
            inserted=_event_values(order),
        )
        for order in inserted
    }
    taken = set(first) - set(entries)
    if taken:
        entries.update(_entries_load(locks.orders_lock(keys=taken)))
    return entries


Result = tuple[Order, Outcome] | OrderError


def orders_apply(*, events: Sequence[tuple[ShopConnection, OrderEvent]], now: datetime | None = None) -> list[Result]:
    """Apply order events in arrival order, with one statement per kind of row written.

    Returns, per event, (order, outcome) or the OrderError that refused it (nothing of a refused
    event is written; the others are applied). Must run inside a transaction.
    """
    now = now or timezone.now()
    results: list[Result | None] = [None] * len(events)
    valid: list[tuple[int, ShopConnection, OrderEvent, str]] = []
    for index, (shop, event) in enumerate(events):
        try:
            _validate(event)
            valid.append((index, shop, event, status_normalize(event.status)))
        except OrderError as error:
            results[index] = error
    if not valid:
        return results
    entries = _entries_load(locks.orders_lock(keys={(shop.creator_id, event.order_id) for _, shop, event, _ in valid}))
    entries.update(_entries_new(valid, entries, now=now))
    products = products_by_external_id(
        keys={(shop.creator_id, line.product_id) for _, shop, event, _ in valid for line in event.lines or ()}
    )
    product_ids = {product.pk for product in products.values()}
    product_ids |= {item.product_id for entry in entries.values() for item in entry.items}
    batch = _Batch(now=now, book=StockBook.lock(product_ids), products=products, entries=entries)
    for index, shop, event, status in valid:
        results[index] = batch.apply(shop, event, status)
    batch.write()
    _skus_learn(valid, products)
    return results


def _skus_learn(valid: Sequence[tuple[int, ShopConnection, OrderEvent, str]], products: dict[tuple[int, str], Product]) -> None:
    """Remember the TikTok SKU ids order lines name (TikTok's order detail does; one statement, if any)."""
    product_skus_learn(
        skus=[
            (product.pk, sku_id)
            for _, shop, event, _ in valid
            for line in event.lines or ()
            if line.sku_ids and (product := products.get((shop.creator_id, line.product_id))) is not None
            for sku_id in line.sku_ids
        ]
    )


@transaction.atomic
def order_apply_event(*, shop: ShopConnection, event: OrderEvent, now: datetime | None = None) -> tuple[Order, Outcome]:
    """Create or update an order from a TikTok event and apply its stock effects."""
    (result,) = orders_apply(events=[(shop, event)], now=now)
    if isinstance(result, OrderError):
        raise result
    return result


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
            changes_mark(order.creator_id, ORDERS, ids=[order.pk])
    return released


@transaction.atomic
def stock_update_apply(*, shop: ShopConnection, update: InventoryUpdate, reference: str) -> None:
    """Apply an INVENTORY_UPDATE: the product (created when new) gets the reported on-hand count."""
    product, _ = product_upsert(
        creator_id=shop.creator_id,
        external_id=update.product_id,
        name=update.name,
        sku=update.sku,
        reorder_point=update.reorder_point,
        unit_cost=update.unit_cost,
    )
    warehouse = (
        warehouse_get_or_create(creator_id=shop.creator_id, external_id=update.warehouse_id)
        if update.warehouse_id
        else None
    )
    stock_set_on_hand(product=product, quantity=update.quantity, warehouse=warehouse, reference=reference)
