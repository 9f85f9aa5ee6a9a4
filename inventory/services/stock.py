"""Stock rules: reserve, release, commit, restock, adjust, sync, reconcile with TikTok.

Every change to ``on_hand`` or ``reserved`` writes a ledger row. Stock rows are locked through
``inventory.locks`` (primary-key order) before they are read for a decision.
"""

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from creatorflow.changes import INVENTORY, changes_mark
from creatorflow.db import rows_update, upsert_increments

from .. import locks
from ..models import Product, ProductSalesMinute, Reservation, Stock, StockMovement, Warehouse
from .alerts import alerts_evaluate
from .catalogue import warehouse_get_default
from .errors import InsufficientStock, Shortage, StockError

Reason = StockMovement.Reason
MAX_QUANTITY = 1_000_000  # units in one stock row, or moved by one change


@dataclass(frozen=True)
class ReservationRequest:
    """One order line to reserve: ``order_item_id`` holds ``quantity`` units of ``product_id``.

    ``order_item`` may stand in for the id: an order line not saved yet, whose reservations are
    written after it (``StockBook.flush``).
    """

    order_item_id: int | None
    product_id: int
    quantity: int
    order_item: object | None = None


@dataclass(frozen=True)
class SellableCount:
    """What TikTok reports of a product in one warehouse (None: the default warehouse).

    ``sellable`` is what TikTok can still sell (its SKU ``quantity``, Inventory Search's
    ``available_quantity``); ``committed`` the units it holds for open orders, when it says.
    """

    warehouse: Warehouse | None
    sellable: int
    committed: int | None = None


# --- stock rows -----------------------------------------------------------------------------


def _stock_create(*, product: Product, warehouse: Warehouse) -> None:
    _, created = Stock.objects.get_or_create(product=product, warehouse=warehouse)
    if created:
        changes_mark(product.creator_id, INVENTORY, ids=[product.pk])


def _stock_lock_or_create(*, product: Product, warehouse: Warehouse) -> Stock:
    stock = locks.stock_lock(product_id=product.pk, warehouse_id=warehouse.pk)
    if stock is None:
        _stock_create(product=product, warehouse=warehouse)
        stock = locks.stock_lock(product_id=product.pk, warehouse_id=warehouse.pk)
    return stock


def _check_quantity(quantity: int, *, allow_zero: bool = True) -> None:
    if isinstance(quantity, bool) or not isinstance(quantity, int):
        raise StockError(f"Quantity must be a whole number, got {quantity!r}.")
    if quantity < 0 or (quantity == 0 and not allow_zero) or quantity > MAX_QUANTITY:
        raise StockError(f"Quantity {quantity} is out of range (1 to {MAX_QUANTITY:,}).")


def _move(stock: Stock, *, on_hand: int = 0, reserved: int = 0, reason: str, reference: str) -> StockMovement:
    """Change a locked stock row in memory and return its (unsaved) ledger row."""
    new_on_hand, new_reserved = stock.on_hand + on_hand, stock.reserved + reserved
    if new_on_hand < 0 or new_reserved < 0 or new_reserved > new_on_hand:
        raise StockError(
            f"{stock.product.name}: {reason} would leave {new_on_hand} on hand and {new_reserved} reserved."
        )
    stock.on_hand, stock.reserved = new_on_hand, new_reserved
    return StockMovement(
        stock=stock, reason=reason, on_hand_delta=on_hand, reserved_delta=reserved, reference=reference[:255]
    )


class StockBook:
    """Locked stock rows of some products: decide in memory, then write everything at once.

    Reservations, releases and commits of many orders change the rows in memory, in the order
    they are asked for, each all-or-nothing; ``flush`` then writes the stock rows, the ledger, the
    reservations and the sales buckets with one statement each, and re-evaluates the alerts of every
    product touched. Built by ``StockBook.lock``, which takes every stock row of the products at once
    in primary-key order, so two books on the same products cannot deadlock.
    """

    def __init__(self, stocks: Iterable[Stock], *, complete: bool) -> None:
        self.by_product: dict[int, list[Stock]] = defaultdict(list)
        for stock in sorted(stocks, key=lambda stock: stock.pk):
            self.by_product[stock.product_id].append(stock)
        # True when every stock row of each product is here: totals are known without a query.
        self.complete = complete
        self._changed: dict[int, Stock]
        self._movements: list[StockMovement]
        self._created: list[Reservation]
        self._settled: dict[str, list[Reservation]]
        self._expiry: dict[datetime | None, list[Reservation]]
        self._sales: dict[tuple[int, datetime], int]
        self._touched: set[int]
        self._written()

    @classmethod
    def lock(cls, product_ids: Iterable[int]) -> "StockBook":
        """Lock every stock row of the products (primary-key order) and keep them in a book."""
        product_ids = set(product_ids)
        return cls(locks.stocks_lock_for_products(product_ids) if product_ids else [], complete=True)

    def available(self, product_id: int) -> int:
        return sum(stock.on_hand - stock.reserved for stock in self.by_product.get(product_id, ()))

    def totals(self) -> dict[int, int]:
        """Available units per product of the book (every warehouse)."""
        return {product_id: self.available(product_id) for product_id in self.by_product}

    def touch(self, product_id: int) -> None:
        """Have ``flush`` re-evaluate the product's alerts even if its stock did not move."""
        self._touched.add(product_id)

    def _record(self, stock: Stock, movement: StockMovement) -> None:
        self._movements.append(movement)
        self._changed[stock.pk] = stock
        self._touched.add(stock.product_id)

    def move(self, stock: Stock, *, on_hand: int = 0, reserved: int = 0, reason: str, reference: str) -> None:
        """Change one row of the book (restock, adjust, sync) and write a ledger row for it."""
        self._record(stock, _move(stock, on_hand=on_hand, reserved=reserved, reason=reason, reference=reference))

    def reserve(
        self,
        requests: Sequence["ReservationRequest"],
        *,
        expires_at: datetime | None,
        sold_at: datetime,
        reference: str,
        product_names: dict[int, str] | None = None,
    ) -> list[Reservation]:
        """Reserve every line or none: raise InsufficientStock naming the short lines (nothing changed)."""
        needed: dict[int, int] = defaultdict(int)
        for request in requests:
            _check_quantity(request.quantity, allow_zero=False)
            needed[request.product_id] += request.quantity
        shortages = []
        for product_id, quantity in sorted(needed.items()):
            available = self.available(product_id)
            if available < quantity:
                stocks = self.by_product.get(product_id)
                if stocks:
                    name = stocks[0].product.name
                elif product_names and product_id in product_names:
                    name = product_names[product_id]
                else:
                    name = Product.objects.filter(pk=product_id).values_list("name", flat=True).first() or ""
                shortages.append(Shortage(product_id, name, quantity, available))
        if shortages:
            self._touched.update(needed)
            raise InsufficientStock(shortages)
        reservations = []
        for request in requests:
            remaining = request.quantity
            for stock in self.by_product[request.product_id]:
                take = min(remaining, stock.on_hand - stock.reserved)
                if take <= 0:
                    continue
                self._record(stock, _move(stock, reserved=take, reason=Reason.RESERVE, reference=reference))
                reservations.append(
                    Reservation(order_item=request.order_item, stock=stock, quantity=take, expires_at=expires_at)
                    if request.order_item is not None
                    else Reservation(order_item_id=request.order_item_id, stock=stock, quantity=take, expires_at=expires_at)
                )
                remaining -= take
                if remaining == 0:
                    break
        self._created.extend(reservations)
        minute = _minute(sold_at)
        for product_id, quantity in needed.items():
            self._sales[(product_id, minute)] += quantity
        return reservations

    def settle(
        self, reservations: Sequence[Reservation], *, status: str, reference: str, sold_at: datetime | None
    ) -> int:
        """Release, expire or commit active reservations (rows of this book); return how many."""
        stocks = {stock.pk: stock for rows in self.by_product.values() for stock in rows}
        reason = {
            Reservation.Status.COMMITTED: Reason.SHIP,
            Reservation.Status.EXPIRED: Reason.EXPIRE,
            Reservation.Status.RELEASED: Reason.RELEASE,
        }[status]
        settled = 0
        for reservation in reservations:
            if reservation.status != Reservation.Status.ACTIVE:
                continue
            stock = stocks[reservation.stock_id]
            quantity = reservation.quantity
            if status == Reservation.Status.COMMITTED:
                self._record(stock, _move(stock, on_hand=-quantity, reserved=-quantity, reason=reason, reference=reference))
            else:
                self._record(stock, _move(stock, reserved=-quantity, reason=reason, reference=reference))
                if sold_at is not None:
                    self._sales[(stock.product_id, _minute(sold_at))] -= quantity
            reservation.status = status
            self._settled[status].append(reservation)
            settled += 1
        return settled

    def expire_at(self, reservations: Sequence[Reservation], expires_at: datetime | None) -> None:
        """Change when active reservations expire (None once the order is paid)."""
        for reservation in reservations:
            if reservation.status == Reservation.Status.ACTIVE and reservation.expires_at != expires_at:
                reservation.expires_at = expires_at
                self._expiry[expires_at].append(reservation)

    def flush(self, *, now: datetime | None = None) -> None:
        """Write what the book decided, one statement per kind of row, and re-evaluate alerts."""
        now = now or timezone.now()
        if self._changed:
            changed = sorted(self._changed.values(), key=lambda stock: stock.pk)
            for stock in changed:
                stock.updated_at = now
            rows_update(changed, ["on_hand", "reserved", "updated_at"])
            marks: dict[int, set[int]] = defaultdict(set)
            for stock in changed:
                marks[stock.product.creator_id].add(stock.product_id)
            for creator_id, product_ids in marks.items():
                changes_mark(creator_id, INVENTORY, ids=product_ids)
        if self._movements:
            StockMovement.objects.bulk_create(self._movements)
        if self._created:
            Reservation.objects.bulk_create(self._created)
        for status, reservations in self._settled.items():
            Reservation.objects.filter(pk__in=[reservation.pk for reservation in reservations]).update(
                status=status, updated_at=now
            )
        for expires_at, reservations in self._expiry.items():
            Reservation.objects.filter(pk__in=[reservation.pk for reservation in reservations]).update(
                expires_at=expires_at, updated_at=now
            )
        sales = [((product_id, minute), (units,)) for (product_id, minute), units in sorted(self._sales.items()) if units]
        upsert_increments(ProductSalesMinute, key_fields=("product", "minute"), increment_fields=("units",), rows=sales)
        if self._touched:
            known = self.totals() if self.complete else None
            alerts_evaluate(product_ids=self._touched, now=now, available=known, products=self._products())
        self._written()

    def _products(self) -> dict[int, Product]:
        """The book's products, as read with their locked stock rows (the alerts need not read them again)."""
        return {
            product_id: stocks[0].product
            for product_id, stocks in self.by_product.items()
            if stocks and Stock.product.is_cached(stocks[0])
        }

    def _written(self) -> None:
        self._changed, self._movements, self._created = {}, [], []
        self._settled, self._expiry, self._sales = defaultdict(list), defaultdict(list), defaultdict(int)
        self._touched = set()


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


# --- reserve, release, commit --------------------------------------------------------------


@transaction.atomic
def stock_reserve(
    *, requests: Sequence[ReservationRequest], expires_at: datetime | None, sold_at: datetime, reference: str
) -> list[Reservation]:
    """Reserve every line or none: raise InsufficientStock naming the short lines."""
    book = StockBook.lock(request.product_id for request in requests)
    reservations = book.reserve(requests, expires_at=expires_at, sold_at=sold_at, reference=reference)
    book.flush()
    return reservations


def _settle(
    reservations: Sequence[Reservation], *, status: str, reference: str, sold_at: datetime | None
) -> int:
    """Release, expire or commit active reservations under their stock locks."""
    rows = list(locks.stocks_lock(reservation.stock_id for reservation in reservations).values())
    book = StockBook(rows, complete=False)
    current = list(
        Reservation.objects.filter(
            pk__in=[reservation.pk for reservation in reservations], status=Reservation.Status.ACTIVE
        ).order_by("pk")
    )
    settled = book.settle(current, status=status, reference=reference, sold_at=sold_at)
    if settled:
        book.flush()
    return settled


@transaction.atomic
def stock_release(
    *, reservations: Sequence[Reservation], reference: str, sold_at: datetime | None, expired: bool = False
) -> int:
    """Give reserved units back to available; return how many reservations were released.

    ``sold_at`` is when the units were counted as sold, so the sales velocity forgets them.
    """
    status = Reservation.Status.EXPIRED if expired else Reservation.Status.RELEASED
    return _settle(reservations, status=status, reference=reference, sold_at=sold_at)


@transaction.atomic
def stock_commit(*, reservations: Sequence[Reservation], reference: str) -> int:
    """Ship reserved units: they leave both on hand and reserved."""
    return _settle(reservations, status=Reservation.Status.COMMITTED, reference=reference, sold_at=None)


def reservations_set_expiry(*, reservations: Sequence[Reservation], expires_at: datetime | None) -> None:
    """Change when active reservations expire (None once the order is paid)."""
    Reservation.objects.filter(
        pk__in=[reservation.pk for reservation in reservations], status=Reservation.Status.ACTIVE
    ).update(expires_at=expires_at, updated_at=timezone.now())


# --- restock, adjust, sync -----------------------------------------------------------------


def _warehouse_or_default(product: Product, warehouse: Warehouse | None) -> Warehouse:
    if warehouse is None:
        return warehouse_get_default(creator_id=product.creator_id)
    if warehouse.creator_id != product.creator_id:
        raise StockError(f"Warehouse {warehouse} does not belong to the creator of {product.name}.")
    return warehouse


@transaction.atomic
def stock_restock(*, product: Product, quantity: int, warehouse: Warehouse | None = None, reference: str = "") -> Stock:
    """Add received units to on hand."""
    _check_quantity(quantity, allow_zero=False)
    stock = _stock_lock_or_create(product=product, warehouse=_warehouse_or_default(product, warehouse))
    book = StockBook([stock], complete=False)
    book.move(stock, on_hand=quantity, reason=Reason.RESTOCK, reference=reference)
    book.flush()
    return stock


@transaction.atomic
def stock_adjust(*, product: Product, delta: int, warehouse: Warehouse | None = None, reference: str = "") -> Stock:
    """Correct on hand by ``delta`` (a count, damage, loss); reserved units cannot be adjusted away."""
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 or abs(delta) > MAX_QUANTITY:
        raise StockError(f"Adjustment must be a non-zero whole number up to {MAX_QUANTITY:,}, got {delta!r}.")
    stock = _stock_lock_or_create(product=product, warehouse=_warehouse_or_default(product, warehouse))
    book = StockBook([stock], complete=False)
    book.move(stock, on_hand=delta, reason=Reason.ADJUST, reference=reference)
    book.flush()
    return stock


@transaction.atomic
def stock_set_on_hand(
    *, product: Product, quantity: int, warehouse: Warehouse | None = None, reference: str = ""
) -> Stock:
    """Set on hand to a physical count, e.g. the seller's warehouse system (ledger reason ``sync``).

    Units held for orders stay held: a count below what is reserved sets on hand to the
    reserved amount (nothing available) and says so in the ledger reference.
    """
    _check_quantity(quantity)
    stock = _stock_lock_or_create(product=product, warehouse=_warehouse_or_default(product, warehouse))
    target = max(quantity, stock.reserved)
    if target != quantity:
        reference = f"{reference} (reported {quantity}, {stock.reserved} reserved)".strip()
    book = StockBook([stock], complete=False)
    if target != stock.on_hand:
        book.move(stock, on_hand=target - stock.on_hand, reason=Reason.SYNC, reference=reference)
    # Evaluated even when unchanged: a first count of zero is a stockout worth knowing about.
    book.touch(product.pk)
    book.flush()
    return stock


@transaction.atomic
def stock_reconcile(
    *, product: Product, counts: Sequence[SellableCount], reference: str = "", new_rows_only: bool = False
) -> None:
    """Set on hand from what TikTok can still sell (ledger reason ``sync``).

    TikTok's sellable count has the units of open orders taken out already, so it matches
    CreatorFlow's *available*: on hand becomes ``sellable + committed`` when TikTok reports its
    committed units, else ``sellable`` plus the units CreatorFlow holds in that row. Either way a
    reconciliation in the middle of a sale leaves available as it was. Held units stay held: a
    count that would put on hand below them sets it to the reserved amount, and the ledger says so.

    ``new_rows_only`` reconciles only the warehouses the product had no stock row in yet.
    """
    if new_rows_only:
        known = set(Stock.objects.filter(product=product).values_list("warehouse_id", flat=True))
        counts = [count for count in counts if _warehouse_or_default(product, count.warehouse).pk not in known]
        if not counts:
            return
    wanted: dict[int, SellableCount] = {}
    for count in counts:
        _check_quantity(count.sellable)
        if count.committed is not None:
            _check_quantity(count.committed)
        warehouse = _warehouse_or_default(product, count.warehouse)
        if warehouse.pk in wanted:
            raise StockError(f"{product.name}: warehouse {warehouse} is counted twice.")
        wanted[warehouse.pk] = count
        _stock_create(product=product, warehouse=warehouse)
    book = StockBook.lock([product.pk])
    for stock in book.by_product[product.pk]:
        count = wanted.get(stock.warehouse_id)
        if count is None:
            continue  # a warehouse TikTok did not report keeps its count
        held = count.committed if count.committed is not None else stock.reserved
        target, note = count.sellable + held, reference
        if target < stock.reserved:
            target, note = stock.reserved, f"{reference} (reported {count.sellable} + {held}, {stock.reserved} reserved)".strip()
        if target > MAX_QUANTITY:
            raise StockError(f"{product.name}: {target:,} units is out of range (up to {MAX_QUANTITY:,}).")
        if target != stock.on_hand:
            book.move(stock, on_hand=target - stock.on_hand, reason=Reason.SYNC, reference=note)
    # Evaluated even when unchanged: a first count of zero is a stockout worth knowing about.
    book.touch(product.pk)
    book.flush()
