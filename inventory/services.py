"""Stock rules: reserve, release, commit, restock, adjust, sync; and the alert engine.

Every change to ``on_hand`` or ``reserved`` writes a ledger row. Stock rows are locked through
``inventory.locks`` (primary-key order) before they are read for a decision.
"""

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import IntegrityError, transaction
from django.db.models import Q, Sum
from django.utils import timezone

from creatorflow.db import upsert_increment

from . import locks
from .models import InventoryAlert, Product, ProductSalesMinute, Reservation, Stock, StockMovement, Warehouse

Reason = StockMovement.Reason
MAX_QUANTITY = 1_000_000


class StockError(ValueError):
    """A stock change that the rules refuse; nothing was written."""


@dataclass(frozen=True)
class Shortage:
    product_id: int
    product_name: str
    requested: int
    available: int

    def __str__(self) -> str:
        return f"{self.product_name} needs {self.requested}, {self.available} available"


class InsufficientStock(StockError):
    """Not enough available stock for one or more lines; nothing was reserved."""

    def __init__(self, shortages: Sequence[Shortage]):
        self.shortages = list(shortages)
        super().__init__("Not enough stock: " + "; ".join(str(shortage) for shortage in self.shortages))


@dataclass(frozen=True)
class ReservationRequest:
    """One order line to reserve: ``order_item_id`` holds ``quantity`` units of ``product_id``."""

    order_item_id: int
    product_id: int
    quantity: int


# --- warehouses and stock rows -------------------------------------------------------------


def warehouse_get_default(*, creator_id: int) -> Warehouse:
    """Return the creator's default warehouse, creating it on first use."""
    warehouse = Warehouse.objects.filter(creator_id=creator_id, is_default=True).first()
    if warehouse is not None:
        return warehouse
    try:
        with transaction.atomic():
            return Warehouse.objects.create(creator_id=creator_id, name="Main warehouse", is_default=True)
    except IntegrityError:
        return Warehouse.objects.get(creator_id=creator_id, is_default=True)


def warehouse_get_or_create(*, creator_id: int, external_id: str) -> Warehouse:
    """Return the creator's warehouse with this TikTok id, creating it when first named."""
    warehouse = Warehouse.objects.filter(creator_id=creator_id, external_id=external_id).first()
    if warehouse is not None:
        return warehouse
    try:
        with transaction.atomic():
            return Warehouse.objects.create(
                creator_id=creator_id, external_id=external_id, name=f"Warehouse {external_id}"
            )
    except IntegrityError:
        return Warehouse.objects.get(creator_id=creator_id, external_id=external_id)


def _stock_lock_or_create(*, product: Product, warehouse: Warehouse) -> Stock:
    stock = locks.stock_lock(product_id=product.pk, warehouse_id=warehouse.pk)
    if stock is None:
        try:
            with transaction.atomic():
                Stock.objects.create(product=product, warehouse=warehouse)
        except IntegrityError:
            pass  # Created by a concurrent transaction; lock that one.
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


def _save(stocks: Iterable[Stock], movements: list[StockMovement]) -> None:
    for stock in stocks:
        stock.save(update_fields=["on_hand", "reserved", "updated_at"])
    StockMovement.objects.bulk_create(movements)


def _minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def _sales_add(*, product_units: dict[int, int], sold_at: datetime) -> None:
    for product_id, units in product_units.items():
        if units:
            upsert_increment(
                ProductSalesMinute,
                keys={"product": product_id, "minute": _minute(sold_at)},
                increments={"units": units},
            )


# --- reserve, release, commit --------------------------------------------------------------


@transaction.atomic
def stock_reserve(
    *, requests: Sequence[ReservationRequest], expires_at: datetime | None, sold_at: datetime, reference: str
) -> list[Reservation]:
    """Reserve every line or none: raise InsufficientStock naming the short lines."""
    needed: dict[int, int] = defaultdict(int)
    for request in requests:
        _check_quantity(request.quantity, allow_zero=False)
        needed[request.product_id] += request.quantity

    stocks_by_product: dict[int, list[Stock]] = defaultdict(list)
    for stock in locks.stocks_lock_for_products(needed):
        stocks_by_product[stock.product_id].append(stock)

    shortages = []
    for product_id, quantity in sorted(needed.items()):
        stocks = stocks_by_product.get(product_id, [])
        available = sum(stock.on_hand - stock.reserved for stock in stocks)
        if available < quantity:
            name = stocks[0].product.name if stocks else Product.objects.get(pk=product_id).name
            shortages.append(Shortage(product_id, name, quantity, available))
    if shortages:
        raise InsufficientStock(shortages)

    reservations, movements, touched = [], [], {}
    for request in requests:
        remaining = request.quantity
        for stock in stocks_by_product[request.product_id]:
            take = min(remaining, stock.on_hand - stock.reserved)
            if take <= 0:
                continue
            movements.append(_move(stock, reserved=take, reason=Reason.RESERVE, reference=reference))
            reservations.append(
                Reservation(order_item_id=request.order_item_id, stock=stock, quantity=take, expires_at=expires_at)
            )
            touched[stock.pk] = stock
            remaining -= take
            if remaining == 0:
                break
    _save(touched.values(), movements)
    Reservation.objects.bulk_create(reservations)
    _sales_add(product_units=needed, sold_at=sold_at)
    alerts_evaluate(product_ids=needed.keys())
    return reservations


def _settle(
    reservations: Sequence[Reservation], *, status: str, reason: str, reference: str, sold_at: datetime | None
) -> int:
    """Release, expire or commit active reservations under their stock locks."""
    stocks = locks.stocks_lock(reservation.stock_id for reservation in reservations)
    movements, units_by_product, settled, touched = [], defaultdict(int), [], {}
    for reservation in Reservation.objects.filter(
        pk__in=[reservation.pk for reservation in reservations], status=Reservation.Status.ACTIVE
    ).order_by("pk"):
        stock = stocks[reservation.stock_id]
        if status == Reservation.Status.COMMITTED:
            movements.append(
                _move(stock, on_hand=-reservation.quantity, reserved=-reservation.quantity, reason=reason, reference=reference)
            )
        else:
            movements.append(_move(stock, reserved=-reservation.quantity, reason=reason, reference=reference))
            units_by_product[stock.product_id] -= reservation.quantity
        settled.append(reservation.pk)
        touched[stock.pk] = stock
    if not settled:
        return 0
    _save(touched.values(), movements)
    Reservation.objects.filter(pk__in=settled).update(status=status, updated_at=timezone.now())
    if sold_at is not None:
        _sales_add(product_units=units_by_product, sold_at=sold_at)
    alerts_evaluate(product_ids={stock.product_id for stock in stocks.values()})
    return len(settled)


@transaction.atomic
def stock_release(
    *, reservations: Sequence[Reservation], reference: str, sold_at: datetime | None, expired: bool = False
) -> int:
    """Give reserved units back to available; return how many reservations were released.

    ``sold_at`` is when the units were counted as sold, so the sales velocity forgets them.
    """
    status = Reservation.Status.EXPIRED if expired else Reservation.Status.RELEASED
    reason = Reason.EXPIRE if expired else Reason.RELEASE
    return _settle(reservations, status=status, reason=reason, reference=reference, sold_at=sold_at)


@transaction.atomic
def stock_commit(*, reservations: Sequence[Reservation], reference: str) -> int:
    """Ship reserved units: they leave both on hand and reserved."""
    return _settle(
        reservations, status=Reservation.Status.COMMITTED, reason=Reason.SHIP, reference=reference, sold_at=None
    )


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
    _save([stock], [_move(stock, on_hand=quantity, reason=Reason.RESTOCK, reference=reference)])
    alerts_evaluate(product_ids=[product.pk])
    return stock


@transaction.atomic
def stock_adjust(*, product: Product, delta: int, warehouse: Warehouse | None = None, reference: str = "") -> Stock:
    """Correct on hand by ``delta`` (a count, damage, loss); reserved units cannot be adjusted away."""
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 or abs(delta) > MAX_QUANTITY:
        raise StockError(f"Adjustment must be a non-zero whole number up to {MAX_QUANTITY:,}, got {delta!r}.")
    stock = _stock_lock_or_create(product=product, warehouse=_warehouse_or_default(product, warehouse))
    _save([stock], [_move(stock, on_hand=delta, reason=Reason.ADJUST, reference=reference)])
    alerts_evaluate(product_ids=[product.pk])
    return stock


@transaction.atomic
def stock_set_on_hand(
    *, product: Product, quantity: int, warehouse: Warehouse | None = None, reference: str = ""
) -> Stock:
    """Set on hand to the count TikTok reports (ledger reason ``sync``).

    Units held for orders stay held: a count below what is reserved sets on hand to the
    reserved amount (nothing available) and says so in the ledger reference.
    """
    _check_quantity(quantity)
    stock = _stock_lock_or_create(product=product, warehouse=_warehouse_or_default(product, warehouse))
    target = max(quantity, stock.reserved)
    if target != quantity:
        reference = f"{reference} (reported {quantity}, {stock.reserved} reserved)".strip()
    if target != stock.on_hand:
        _save([stock], [_move(stock, on_hand=target - stock.on_hand, reason=Reason.SYNC, reference=reference)])
    # Evaluated even when unchanged: a first count of zero is a stockout worth knowing about.
    alerts_evaluate(product_ids=[product.pk])
    return stock


# --- alerts --------------------------------------------------------------------------------

Alert = InventoryAlert
VELOCITY_WINDOW = timedelta(hours=24)
ANOMALY_WINDOW = timedelta(hours=1)
ANOMALY_FACTOR = 3
ANOMALY_MIN_UNITS = 10


def stockout_eta_hours(*, available: int, velocity_per_hour: Decimal) -> int | None:
    """Hours until available stock runs out at the current velocity; None when nothing sells."""
    if velocity_per_hour <= 0:
        return None
    return math.ceil(Decimal(max(available, 0)) / velocity_per_hour)


def _level(available: int, reorder_point: int) -> tuple[str, str] | None:
    if available <= 0:
        return Alert.Type.STOCKOUT, Alert.Severity.EMERGENCY
    if available * 2 <= reorder_point:
        return Alert.Type.LOW_STOCK, Alert.Severity.CRITICAL
    if available <= reorder_point:
        return Alert.Type.LOW_STOCK, Alert.Severity.WARNING
    return None


def _alert_open(
    *, product: Product, type: str, severity: str, message: str, available: int, existing: InventoryAlert | None
) -> InventoryAlert:
    """Open an alert, or escalate / de-escalate the open one in place."""
    if existing is None:
        try:
            with transaction.atomic():
                return Alert.objects.create(
                    creator_id=product.creator_id,
                    product=product,
                    type=type,
                    severity=severity,
                    message=message,
                    available=available,
                )
        except IntegrityError:
            existing = Alert.objects.get(product=product, type=type, status__in=Alert.OPEN_STATUSES)
    escalated = Alert.SEVERITY_RANK[severity] > Alert.SEVERITY_RANK[existing.severity]
    if not escalated and (existing.severity, existing.message, existing.available) == (severity, message, available):
        return existing
    existing.severity, existing.message, existing.available = severity, message, available
    fields = ["severity", "message", "available", "updated_at"]
    if escalated and existing.status == Alert.Status.ACKNOWLEDGED:
        # A worse state needs the seller's eyes again.
        existing.status, existing.acknowledged_at, existing.acknowledged_by = Alert.Status.ACTIVE, None, None
        fields += ["status", "acknowledged_at", "acknowledged_by"]
    existing.save(update_fields=fields)
    return existing


def _alert_resolve(alert: InventoryAlert, *, now: datetime) -> None:
    alert.status, alert.resolved_at = Alert.Status.RESOLVED, now
    alert.save(update_fields=["status", "resolved_at", "updated_at"])


def alerts_evaluate(*, product_ids: Iterable[int], now: datetime | None = None) -> None:
    """Bring low-stock, stockout and velocity alerts and velocity in line with current stock."""
    product_ids = set(product_ids)
    if not product_ids:
        return
    now = now or timezone.now()
    products = {product.pk: product for product in Product.objects.filter(pk__in=product_ids)}
    available = dict(
        Stock.objects.filter(product_id__in=product_ids)
        .values_list("product_id")
        .annotate(total=Sum("available"))
        .values_list("product_id", "total")
    )
    sales = {
        row["product_id"]: row
        for row in ProductSalesMinute.objects.filter(product_id__in=product_ids, minute__gt=now - VELOCITY_WINDOW)
        .values("product_id")
        .annotate(day=Sum("units"), hour=Sum("units", filter=Q(minute__gt=now - ANOMALY_WINDOW)))
    }
    open_alerts = {
        (alert.product_id, alert.type): alert
        for alert in Alert.objects.filter(
            product_id__in=product_ids,
            status__in=Alert.OPEN_STATUSES,
            type__in=[Alert.Type.LOW_STOCK, Alert.Type.STOCKOUT, Alert.Type.VELOCITY_ANOMALY],
        )
    }
    for product_id, product in products.items():
        units = available.get(product_id) or 0
        level = _level(units, product.reorder_point)
        for type in (Alert.Type.STOCKOUT, Alert.Type.LOW_STOCK):
            existing = open_alerts.get((product_id, type))
            if level and level[0] == type:
                if type == Alert.Type.STOCKOUT:
                    message = f"Out of stock: {product.name} has nothing available."
                else:
                    message = (
                        f"Low stock: {product.name} has {units} available (reorder point {product.reorder_point})."
                    )
                _alert_open(
                    product=product, type=type, severity=level[1], message=message, available=units, existing=existing
                )
            elif existing is not None:
                # Above the reorder point, or moved to the other rung (stockout ↔ low stock).
                _alert_resolve(existing, now=now)

        day_units = (sales.get(product_id) or {}).get("day") or 0
        hour_units = (sales.get(product_id) or {}).get("hour") or 0
        velocity = (Decimal(day_units) / 24).quantize(Decimal("0.001"), rounding=ROUND_HALF_UP)
        if velocity != product.velocity_per_hour:
            product.velocity_per_hour = velocity
            Product.objects.filter(pk=product_id).update(velocity_per_hour=velocity)
        existing = open_alerts.get((product_id, Alert.Type.VELOCITY_ANOMALY))
        if hour_units >= ANOMALY_MIN_UNITS and hour_units * 24 > ANOMALY_FACTOR * day_units:
            _alert_open(
                product=product,
                type=Alert.Type.VELOCITY_ANOMALY,
                severity=Alert.Severity.WARNING,
                message=(
                    f"Selling fast: {product.name} sold {hour_units} units in the last hour "
                    f"(24 h average {Decimal(day_units) / 24:.1f} an hour)."
                ),
                available=units,
                existing=existing,
            )
        elif existing is not None:
            _alert_resolve(existing, now=now)


@transaction.atomic
def alert_raise_insufficient_stock(*, shortages: Sequence[Shortage], order_reference: str) -> list[InventoryAlert]:
    """Raise (or refresh) a critical insufficient_stock alert for each short product."""
    alerts = []
    for shortage in shortages:
        product = Product.objects.get(pk=shortage.product_id)
        existing = Alert.objects.filter(
            product=product, type=Alert.Type.INSUFFICIENT_STOCK, status__in=Alert.OPEN_STATUSES
        ).first()
        alert = _alert_open(
            product=product,
            type=Alert.Type.INSUFFICIENT_STOCK,
            severity=Alert.Severity.CRITICAL,
            message=(
                f"Not enough stock for order {order_reference}: {product.name} needs {shortage.requested}, "
                f"{shortage.available} available."
            ),
            available=shortage.available,
            existing=existing,
        )
        alerts.append(alert)
    return alerts


@transaction.atomic
def alert_acknowledge(*, alert: InventoryAlert, by) -> InventoryAlert:
    """Mark an open alert as seen; it stays visible until resolved."""
    if alert.status == Alert.Status.ACTIVE:
        alert.status, alert.acknowledged_at, alert.acknowledged_by = Alert.Status.ACKNOWLEDGED, timezone.now(), by
        alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "updated_at"])
    return alert


@transaction.atomic
def alert_resolve(*, alert: InventoryAlert) -> InventoryAlert:
    """Close an alert by hand."""
    if alert.status != Alert.Status.RESOLVED:
        _alert_resolve(alert, now=timezone.now())
    return alert


# --- products ------------------------------------------------------------------------------


@transaction.atomic
def product_upsert(
    *,
    creator_id: int,
    external_id: str,
    name: str | None = None,
    sku: str | None = None,
    reorder_point: int | None = None,
    unit_cost: Decimal | None = None,
) -> tuple[Product, bool]:
    """Create or update the creator's product with this TikTok id; return (product, created)."""
    changes = {
        field: value
        for field, value in {"name": name, "sku": sku, "reorder_point": reorder_point, "unit_cost": unit_cost}.items()
        if value is not None
    }
    product = Product.objects.filter(creator_id=creator_id, external_id=external_id).first()
    created = False
    if product is None:
        try:
            with transaction.atomic():
                product = Product.objects.create(
                    creator_id=creator_id,
                    external_id=external_id,
                    **{"name": f"TikTok product {external_id}", **changes},
                )
                created = True
        except IntegrityError:
            product = Product.objects.get(creator_id=creator_id, external_id=external_id)
    if not created and any(getattr(product, field) != value for field, value in changes.items()):
        for field, value in changes.items():
            setattr(product, field, value)
        product.save(update_fields=[*changes, "updated_at"])
        if "reorder_point" in changes:
            alerts_evaluate(product_ids=[product.pk])
    return product, created
