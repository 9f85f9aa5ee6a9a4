"""Reads behind the dashboard metrics, from rollups (live) and from source rows (resync)."""

import zoneinfo
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Max, Q, Sum
from django.utils import timezone

from creatorflow.models import SystemHealth
from creatorflow.reads import shared_read
from inventory.levels import stock_is_low
from inventory.models import InventoryAlert, Product
from orders.models import Order, OrderItem, OrderStatsBucket, OrderStatus, OrderTotals, SyncOperation
from orders.rollups import bucket_start, processing_seconds

from .models import DashboardMetric
from .monitor import COMPONENT_PREFIX

HEALTH_WINDOW = timedelta(minutes=15)
PROCESSING_WINDOW = timedelta(days=7)


def creator_tz(creator_id: int) -> zoneinfo.ZoneInfo:
    return shared_read(
        ("creator_tz", creator_id),
        lambda: zoneinfo.ZoneInfo(get_user_model().objects.values_list("timezone", flat=True).get(pk=creator_id)),
    )


def today_bounds(*, tz: zoneinfo.ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    """Return [start, end) of the creator's local today, as aware datetimes."""
    local_day = now.astimezone(tz).date()
    start = datetime.combine(local_day, time.min, tzinfo=tz)
    end = datetime.combine(local_day + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def processing_window_start(now: datetime) -> datetime:
    """Orders shipped at or after this instant count in avg_processing_time ("last 7 days")."""
    return bucket_start(now) - PROCESSING_WINDOW


def _money(value) -> str:
    return str(Decimal(value or 0).quantize(Decimal("0.01")))


def _average_minutes(seconds: int, count: int) -> float | None:
    return round(seconds / count / 60, 1) if count else None


# --- orders ------------------------------------------------------------------------------


def _order_metrics_from_rollups(creator_id: int, now: datetime) -> dict:
    start, end = today_bounds(tz=creator_tz(creator_id), now=now)
    window = processing_window_start(now)
    totals = OrderTotals.objects.filter(creator_id=creator_id).first() or OrderTotals(creator_id=creator_id)
    today, shipped = Q(start__gte=start, start__lt=end), Q(start__gte=window)
    figures = OrderStatsBucket.objects.filter(creator_id=creator_id, start__gte=min(start, window)).aggregate(
        today_count=Sum("placed_count", filter=today),
        gmv=Sum("paid_amount", filter=today),
        shipped_count=Sum("shipped_count", filter=shipped),
        seconds=Sum("processing_seconds", filter=shipped),
    )
    return {
        "total_count": totals.orders_count,
        "today_count": figures["today_count"] or 0,
        "total_revenue": _money(totals.completed_revenue),
        "avg_processing_time": _average_minutes(figures["seconds"] or 0, figures["shipped_count"] or 0),
        "gmv_today": _money(figures["gmv"]),
        "short_count": totals.short_count,
        "short_units": totals.short_units,
    }


def _order_metrics_from_source(creator_id: int, now: datetime) -> dict:
    start, end = today_bounds(tz=creator_tz(creator_id), now=now)
    orders = Order.objects.filter(creator_id=creator_id)
    counts = orders.aggregate(
        total=Count("pk"),
        today=Count("pk", filter=Q(placed_at__gte=start, placed_at__lt=end)),
        revenue=Sum("total_amount", filter=Q(status=OrderStatus.COMPLETED)),
        gmv=Sum(
            "total_amount",
            filter=Q(placed_at__gte=start, placed_at__lt=end) & ~Q(status__in=[OrderStatus.UNPAID, OrderStatus.CANCELLED]),
        ),
    )
    seconds = count = 0
    for placed_at, shipped_at in orders.filter(shipped_at__gte=processing_window_start(now)).values_list(
        "placed_at", "shipped_at"
    ):
        seconds += processing_seconds(placed_at, shipped_at)
        count += 1
    # Flags are a JSON list, which SQLite cannot search: short orders are picked out here.
    short = [
        pk
        for pk, flags in orders.exclude(status=OrderStatus.CANCELLED).values_list("pk", "flags")
        if Order.Flag.INSUFFICIENT_STOCK in flags
    ]
    short_units = OrderItem.objects.filter(order_id__in=short).aggregate(units=Sum("quantity"))["units"] or 0
    return {
        "total_count": counts["total"],
        "today_count": counts["today"],
        "total_revenue": _money(counts["revenue"]),
        "avg_processing_time": _average_minutes(seconds, count),
        "gmv_today": _money(counts["gmv"]),
        "short_count": len(short),
        "short_units": short_units,
    }


def orders_per_hour(*, creator_id: int, now: datetime | None = None, hours: int = 24) -> list[tuple[datetime, int]]:
    """Orders placed per hour over the last ``hours`` hours, oldest first."""
    now = now or timezone.now()
    current = now.replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=hours - 1)
    counts: dict[datetime, int] = defaultdict(int)
    for start, placed in OrderStatsBucket.objects.filter(
        creator_id=creator_id, start__gte=first, placed_count__gt=0
    ).values_list("start", "placed_count"):
        counts[start.replace(minute=0)] += placed
    return [(first + timedelta(hours=i), counts[first + timedelta(hours=i)]) for i in range(hours)]


# --- inventory ---------------------------------------------------------------------------


def _inventory_metrics(creator_id: int) -> dict:
    products = Product.objects.filter(creator_id=creator_id).annotate(
        total_available=Sum("stocks__available"), value=Sum(F("stocks__on_hand") * F("unit_cost"))
    )
    total_products = low = 0
    total_value = Decimal(0)
    for available, reorder_point, value in products.values_list("total_available", "reorder_point", "value"):
        total_products += 1
        total_value += value or 0
        if stock_is_low(available=available or 0, reorder_point=reorder_point):
            low += 1
    critical = InventoryAlert.objects.filter(
        creator_id=creator_id,
        status=InventoryAlert.Status.ACTIVE,
        severity__in=[InventoryAlert.Severity.CRITICAL, InventoryAlert.Severity.EMERGENCY],
    ).count()
    return {
        "total_products": total_products,
        "low_stock_count": low,
        "total_value": _money(total_value),
        "critical_alerts": critical,
    }


# --- system ------------------------------------------------------------------------------


def health_latest(*, creator_id: int, now: datetime) -> dict[str, SystemHealth]:
    """Latest SystemHealth record per component in the last 15 minutes (global and the creator's)."""
    latest: dict[str, SystemHealth] = {}
    for record in SystemHealth.objects.filter(
        Q(creator_id=creator_id) | Q(creator__isnull=True), measured_at__gte=now - HEALTH_WINDOW
    ).order_by("component", "-measured_at", "-pk"):
        latest.setdefault(record.component, record)
    return latest


def _system_metrics(creator_id: int, now: datetime) -> dict:
    latest = health_latest(creator_id=creator_id, now=now)
    worst = max(
        (record.status for record in latest.values()),
        key=lambda status: SystemHealth.STATUS_RANK.get(status, 0),
        default=SystemHealth.Status.NOMINAL,
    )
    resync, stream = Q(type=SyncOperation.Type.RESYNC), Q(type=SyncOperation.Type.WEBHOOK_STREAM)
    finished = resync & Q(completed_at__isnull=False)
    operations = SyncOperation.objects.filter(creator_id=creator_id).aggregate(
        syncing=Count("pk", filter=resync & Q(status__in=SyncOperation.ACTIVE_STATUSES)),
        stream_failed=Count("pk", filter=stream & Q(status=SyncOperation.Status.FAILED)),
        last_finished=Max("completed_at", filter=finished),
        last_failed=Max("completed_at", filter=finished & Q(status=SyncOperation.Status.FAILED)),
        last_completed=Max("completed_at", filter=resync & Q(status=SyncOperation.Status.COMPLETED)),
        last_event=Max("last_event_at", filter=stream),
    )
    if operations["syncing"]:
        sync_status = "syncing"
    else:
        # The latest finished resync decides, with a failed stream: a later success clears a failure.
        resync_failed = operations["last_failed"] is not None and operations["last_failed"] == operations["last_finished"]
        sync_status = "error" if operations["stream_failed"] or resync_failed else "synced"
    moments = [moment for moment in (operations["last_event"], operations["last_completed"]) if moment is not None]
    return {
        "health_status": str(worst),
        "sync_status": sync_status,
        "last_sync": max(moments).isoformat() if moments else None,
    }


@dataclass(frozen=True)
class HealthHeadline:
    """What the System Health card says: never a green word over a failing part."""

    tone: str  # nominal, warning or critical
    headline: str


def health_headline(*, health_status: object, sync_status: object) -> HealthHeadline:
    """Combine the components' worst status with the sync status: a failed sync is at least a warning."""
    status = str(health_status or SystemHealth.Status.NOMINAL)
    if sync_status == "error" and SystemHealth.STATUS_RANK.get(status, 0) < SystemHealth.STATUS_RANK["warning"]:
        status = SystemHealth.Status.WARNING
    return HealthHeadline(tone=status, headline=status.capitalize())


# --- all metrics -------------------------------------------------------------------------


def metrics_compute(
    *, creator_id: int, metric_types: set[str] | None = None, now: datetime | None = None
) -> dict[tuple[str, str], object]:
    """Compute the creator's metrics from rollups (cost independent of order history)."""
    now = now or timezone.now()
    groups = {
        "orders": lambda: _order_metrics_from_rollups(creator_id, now),
        "inventory": lambda: _inventory_metrics(creator_id),
        "system": lambda: _system_metrics(creator_id, now),
    }
    values = {}
    for metric_type, compute in groups.items():
        if metric_types is None or metric_type in metric_types:
            values.update({(metric_type, key): value for key, value in compute().items()})
    return values


def metrics_from_source(*, creator_id: int, now: datetime | None = None) -> dict[tuple[str, str], object]:
    """Compute every metric straight from orders, stock and alerts, ignoring rollups."""
    now = now or timezone.now()
    values = metrics_compute(creator_id=creator_id, metric_types={"inventory", "system"}, now=now)
    values.update({("orders", key): value for key, value in _order_metrics_from_source(creator_id, now).items()})
    return values


def metrics_stored(*, creator_id: int) -> dict[tuple[str, str], object]:
    return {
        (metric.metric_type, metric.metric_key): metric.value
        for metric in DashboardMetric.objects.filter(creator_id=creator_id)
    }


METRIC_KEYS = {
    "orders": (
        "total_count", "today_count", "total_revenue", "avg_processing_time", "gmv_today", "short_count", "short_units",
    ),
    "inventory": ("total_products", "low_stock_count", "total_value", "critical_alerts"),
    "system": ("health_status", "sync_status", "last_sync"),
}


def metrics_grouped(*, creator_id: int, now: datetime | None = None) -> dict[str, dict[str, object]]:
    """Stored metrics as ``{"orders": {...}, "inventory": {...}, "system": {...}}`` (the JSON API shape).

    A group with a key never stored (a brand-new creator, say) is computed from rollups instead.
    """
    grouped: dict[str, dict[str, object]] = {metric_type: {} for metric_type in METRIC_KEYS}
    for (metric_type, key), value in metrics_stored(creator_id=creator_id).items():
        grouped.setdefault(metric_type, {})[key] = value
    missing = {
        metric_type for metric_type, keys in METRIC_KEYS.items() if any(key not in grouped[metric_type] for key in keys)
    }
    if missing:
        for (metric_type, key), value in metrics_compute(creator_id=creator_id, metric_types=missing, now=now).items():
            grouped[metric_type][key] = value
    return grouped


def realtime_processes(*, now: datetime | None = None) -> list[SystemHealth]:
    """Latest report of every server process seen in the last 15 minutes, busiest first."""
    now = now or timezone.now()
    latest: dict[str, SystemHealth] = {}
    for record in SystemHealth.objects.filter(
        component__startswith=COMPONENT_PREFIX, measured_at__gte=now - HEALTH_WINDOW
    ).order_by("component", "-measured_at", "-pk"):
        latest.setdefault(record.component, record)
    return sorted(latest.values(), key=lambda record: -record.metrics.get("connections", 0))


def realtime_processes_besides(
    *, component: str, now: datetime | None = None
) -> tuple[SystemHealth | None, list[SystemHealth]]:
    """Return the latest report of the process ``component`` (or None) and those of every other one."""
    processes = realtime_processes(now=now)
    own = next((record for record in processes if record.component == component), None)
    return own, [record for record in processes if record.component != component]
