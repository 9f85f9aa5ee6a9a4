"""The alert engine: low stock, stockouts, selling-fast anomalies and short orders, per product.

Alerts follow a product's total available stock across warehouses (``inventory.levels``): at
most one open alert per product and type, escalated or eased in place, resolved by itself once
stock is back above the reorder point. Sales velocity is kept on the product as it is evaluated.
"""

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from creatorflow.changes import ALERTS, changes_mark
from creatorflow.db import create_or_fetch, rows_update
from creatorflow.prepared import prepared

from ..levels import Level, stock_level
from ..models import InventoryAlert, Product, ProductSalesMinute, Stock
from .errors import Shortage

Alert = InventoryAlert
VELOCITY_WINDOW = timedelta(hours=24)
ANOMALY_WINDOW = timedelta(hours=1)
ANOMALY_FACTOR = 3
ANOMALY_MIN_UNITS = 10


# The alert each stock level raises (type, severity); none above the reorder point.
LEVEL_ALERTS = {
    Level.OUT: (Alert.Type.STOCKOUT, Alert.Severity.EMERGENCY),
    Level.CRITICAL: (Alert.Type.LOW_STOCK, Alert.Severity.CRITICAL),
    Level.LOW: (Alert.Type.LOW_STOCK, Alert.Severity.WARNING),
}


def _level(available: int, reorder_point: int) -> tuple[str, str] | None:
    return LEVEL_ALERTS.get(stock_level(available=available, reorder_point=reorder_point))


def _alert_open(
    *, product: Product, type: str, severity: str, message: str, available: int, existing: InventoryAlert | None
) -> InventoryAlert:
    """Open an alert, or escalate / de-escalate the open one in place."""
    if existing is None:
        alert, created = create_or_fetch(
            Alert,
            values={
                "creator_id": product.creator_id,
                "product": product,
                "type": type,
                "severity": severity,
                "message": message,
                "available": available,
            },
            fetch={"product": product, "type": type, "status__in": Alert.OPEN_STATUSES},
        )
        changes_mark(product.creator_id, ALERTS, ids=[alert.pk])
        if created:
            return alert
        existing = alert
    fields = _alert_refreshed(existing, severity=severity, message=message, available=available)
    if fields:
        existing.save(update_fields=fields)
        changes_mark(existing.creator_id, ALERTS, ids=[existing.pk])
    return existing


def _alert_refreshed(alert: InventoryAlert, *, severity: str, message: str, available: int) -> list[str]:
    """Escalate, de-escalate or reword an open alert in memory; return the fields to write (none: unchanged)."""
    if (alert.severity, alert.message) == (severity, message):
        return []
    escalated = Alert.SEVERITY_RANK[severity] > Alert.SEVERITY_RANK[alert.severity]
    alert.severity, alert.message, alert.available = severity, message, available
    fields = ["severity", "message", "available", "updated_at"]
    if escalated and alert.status == Alert.Status.ACKNOWLEDGED:
        # A worse state needs the seller's eyes again.
        alert.status, alert.acknowledged_at, alert.acknowledged_by = Alert.Status.ACTIVE, None, None
        fields += ["status", "acknowledged_at", "acknowledged_by"]
    return fields


def _alert_resolve(alert: InventoryAlert, *, now: datetime) -> None:
    alert.status, alert.resolved_at = Alert.Status.RESOLVED, now
    alert.save(update_fields=["status", "resolved_at", "updated_at"])
    changes_mark(alert.creator_id, ALERTS, ids=[alert.pk])


def _stock_message(product: Product, type: str, severity: str) -> str:
    # No live figures in the message: it changes only when the level does, so a flash sale
    # does not rewrite the alert with every order (the inventory table shows the live count).
    if type == Alert.Type.STOCKOUT:
        return f"Out of stock: {product.name} has nothing available."
    if severity == Alert.Severity.CRITICAL:
        return f"Low stock: {product.name} is at or below half its reorder point ({product.reorder_point})."
    return f"Low stock: {product.name} is at or below its reorder point ({product.reorder_point})."


# The reads of an evaluation, prepared once (``creatorflow.prepared``): every batch of orders makes them.
@prepared
def _products_read(*, product_ids: list[int]):
    return Product.objects.filter(pk__in=product_ids)


@prepared
def _available_read(*, product_ids: list[int]):
    return Stock.objects.filter(product_id__in=product_ids).values("product_id").annotate(total=Sum("available"))


@prepared
def _sales_read(*, product_ids: list[int], day_since: datetime, hour_since: datetime):
    return (
        ProductSalesMinute.objects.filter(product_id__in=product_ids, minute__gt=day_since)
        .values("product_id")
        .annotate(day=Sum("units"), hour=Sum("units", filter=Q(minute__gt=hour_since)))
    )


@prepared
def _short_alerts_read(*, product_ids: list[int]):
    return Alert.objects.filter(product_id__in=product_ids, type=Alert.Type.INSUFFICIENT_STOCK, status__in=Alert.OPEN_STATUSES)


@prepared
def _stock_alerts_read(*, product_ids: list[int]):
    return Alert.objects.filter(
        product_id__in=product_ids,
        status__in=Alert.OPEN_STATUSES,
        type__in=[Alert.Type.LOW_STOCK, Alert.Type.STOCKOUT, Alert.Type.VELOCITY_ANOMALY],
    )


def alerts_evaluate(
    *,
    product_ids: Iterable[int],
    now: datetime | None = None,
    available: Mapping[int, int] | None = None,
    products: Mapping[int, Product] | None = None,
) -> None:
    """Bring low-stock, stockout and velocity alerts and velocity in line with current stock.

    ``available`` gives the products' total available units when the caller knows them (it holds
    every stock row of them locked); otherwise they are read. ``products`` are ones the caller
    read with their locked stock rows (the others are read). An alert is written only when its
    level changes, and velocities with one statement for all products.
    """
    product_ids = sorted(set(product_ids))
    if not product_ids:
        return
    now = now or timezone.now()
    held = products or {}
    products = {product_id: held[product_id] for product_id in product_ids if product_id in held}
    if missing := [product_id for product_id in product_ids if product_id not in products]:
        products.update((product.pk, product) for product in _products_read.objects(product_ids=missing))
    if available is None or not set(product_ids) <= set(available):
        available = {row["product_id"]: row["total"] for row in _available_read.values(product_ids=product_ids)}
    sales = {
        row["product_id"]: row
        for row in _sales_read.values(product_ids=product_ids, day_since=now - VELOCITY_WINDOW, hour_since=now - ANOMALY_WINDOW)
    }
    open_alerts = {(alert.product_id, alert.type): alert for alert in _stock_alerts_read.objects(product_ids=product_ids)}
    faster = []
    for product_id, product in sorted(products.items()):
        units = available.get(product_id) or 0
        level = _level(units, product.reorder_point)
        for type in (Alert.Type.STOCKOUT, Alert.Type.LOW_STOCK):
            existing = open_alerts.get((product_id, type))
            if level and level[0] == type:
                message = _stock_message(product, type, level[1])
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
            faster.append(product)
        existing = open_alerts.get((product_id, Alert.Type.VELOCITY_ANOMALY))
        if hour_units >= ANOMALY_MIN_UNITS and hour_units * 24 > ANOMALY_FACTOR * day_units:
            _alert_open(
                product=product,
                type=Alert.Type.VELOCITY_ANOMALY,
                severity=Alert.Severity.WARNING,
                message=f"Selling fast: {product.name} sold more than {ANOMALY_FACTOR}× its 24 h hourly average in the last hour.",
                available=units,
                existing=existing,
            )
        elif existing is not None:
            _alert_resolve(existing, now=now)
    if faster:
        rows_update(sorted(faster, key=lambda product: product.pk), ["velocity_per_hour"])


@dataclass(frozen=True)
class ShortOrders:
    """What a product's insufficient_stock alert says: its short orders, and the latest shortfall."""

    latest: Shortage  # the latest short order's shortfall of this product
    order_reference: str
    orders: int  # short orders (not cancelled) with a line of this product
    units: int  # their units of this product


def alerts_raise_insufficient_stock(*, short: Sequence[ShortOrders]) -> list[InventoryAlert]:
    """Raise (or refresh in place) a critical insufficient_stock alert for each short product.

    A sold-out product meets this with every batch of a flash sale: its open alert is read and
    its counts rewritten together with the other short products', one statement each.
    """
    if not short:
        return []
    product_ids = sorted({entry.latest.product_id for entry in short})
    products = {product.pk: product for product in _products_read.objects(product_ids=product_ids)}
    open_alerts = {alert.product_id: alert for alert in _short_alerts_read.objects(product_ids=product_ids)}
    alerts, refreshed = [], defaultdict(list)
    now = timezone.now()
    for entry in sorted(short, key=lambda entry: entry.latest.product_id):
        product, shortage = products[entry.latest.product_id], entry.latest
        counted = f"{entry.orders} short order{'' if entry.orders == 1 else 's'} ({entry.units} units)"
        message = (
            f"Not enough stock for order {entry.order_reference}: {product.name} needs {shortage.requested}, "
            f"{shortage.available} available. {counted} of it in all."
        )
        existing = open_alerts.get(product.pk)
        if existing is None:
            alerts.append(
                _alert_open(
                    product=product,
                    type=Alert.Type.INSUFFICIENT_STOCK,
                    severity=Alert.Severity.CRITICAL,
                    message=message,
                    available=shortage.available,
                    existing=None,
                )
            )
            continue
        fields = _alert_refreshed(existing, severity=Alert.Severity.CRITICAL, message=message, available=shortage.available)
        if fields:
            existing.updated_at = now
            refreshed[tuple(fields)].append(existing)
        alerts.append(existing)
    for fields, changed in refreshed.items():
        rows_update(changed, list(fields))
        for alert in changed:
            changes_mark(alert.creator_id, ALERTS, ids=[alert.pk])
    return alerts


@transaction.atomic
def alert_acknowledge(*, alert: InventoryAlert, by) -> InventoryAlert:
    """Mark an open alert as seen; it stays visible until resolved."""
    if alert.status == Alert.Status.ACTIVE:
        alert.status, alert.acknowledged_at, alert.acknowledged_by = Alert.Status.ACKNOWLEDGED, timezone.now(), by
        alert.save(update_fields=["status", "acknowledged_at", "acknowledged_by", "updated_at"])
        changes_mark(alert.creator_id, ALERTS, ids=[alert.pk])
    return alert


@transaction.atomic
def alert_resolve(*, alert: InventoryAlert) -> InventoryAlert:
    """Close an alert by hand."""
    if alert.status != Alert.Status.RESOLVED:
        _alert_resolve(alert, now=timezone.now())
    return alert
