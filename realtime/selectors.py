"""Reads behind the dashboard metrics, from rollups (live) and from source rows (resync)."""

import operator
import zoneinfo
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from functools import reduce

from django.contrib.auth import get_user_model
from django.db.models import Count, F, Max, Q, Sum, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from creatorflow.models import SystemHealth
from creatorflow.prepared import prepared
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


@prepared
def _creator_timezones(*, creator_ids: list[int]):
    return get_user_model().objects.filter(pk__in=creator_ids).values("pk", "timezone")


def creator_tz_many(creator_ids: Iterable[int]) -> dict[int, zoneinfo.ZoneInfo]:
    """The time zones of several creators, in one statement."""
    return {row["pk"]: zoneinfo.ZoneInfo(row["timezone"]) for row in _creator_timezones.values(creator_ids=list(creator_ids))}


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


@prepared
def _order_totals(*, creator_ids: list[int]):
    return OrderTotals.objects.filter(creator_id__in=creator_ids)


@prepared
def _order_buckets(*, creator_ids: list[int], starts: list[datetime], ends: list[datetime], window: datetime, earliest: datetime):
    """Sum the buckets of each creator's local today (``starts``/``ends``, one per creator) and of the shipping window."""
    today = reduce(
        operator.or_, (Q(creator_id=creator_id, start__gte=start, start__lt=end) for creator_id, start, end in zip(creator_ids, starts, ends, strict=True))
    )
    shipped = Q(start__gte=window)
    return (
        OrderStatsBucket.objects.filter(creator_id__in=creator_ids, start__gte=earliest)
        .order_by()
        .values("creator_id")
        .annotate(
            today_count=Sum("placed_count", filter=today),
            gmv=Sum("paid_amount", filter=today),
            shipped_count=Sum("shipped_count", filter=shipped),
            seconds=Sum("processing_seconds", filter=shipped),
        )
    )


def _order_metrics_from_rollups(creator_ids: list[int], now: datetime) -> dict[int, dict]:
    """The order metrics of several creators from their rollups: two statements for all of them."""
    window = processing_window_start(now)
    bounds = {creator_id: today_bounds(tz=creator_tz(creator_id), now=now) for creator_id in creator_ids}
    totals = {row.creator_id: row for row in _order_totals.objects(creator_ids=creator_ids)}
    earliest = min([window, *(start for start, _ in bounds.values())])
    figures = {
        row["creator_id"]: row
        for row in _order_buckets.values(
            creator_ids=list(bounds),
            starts=[start for start, _ in bounds.values()],  # each creator's own local today
            ends=[end for _, end in bounds.values()],
            window=window,
            earliest=earliest,
        )
    }
    values = {}
    for creator_id in creator_ids:
        total = totals.get(creator_id) or OrderTotals(creator_id=creator_id)
        figure = figures.get(creator_id, {})
        values[creator_id] = {
            "total_count": total.orders_count,
            "today_count": figure.get("today_count") or 0,
            "total_revenue": _money(total.completed_revenue),
            "avg_processing_time": _average_minutes(figure.get("seconds") or 0, figure.get("shipped_count") or 0),
            "gmv_today": _money(figure.get("gmv")),
            "short_count": total.short_count,
            "short_units": total.short_units,
        }
    return values


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
    return shared_read(
        ("orders_per_hour", creator_id, hours),
        lambda: orders_per_hour_many(creator_ids=[creator_id], now=now, hours=hours)[creator_id],
    )


@prepared
def _buckets_placed(*, creator_ids: list[int], first: datetime):
    return OrderStatsBucket.objects.filter(creator_id__in=creator_ids, start__gte=first, placed_count__gt=0).values(
        "creator_id", "start", "placed_count"
    )


def orders_per_hour_many(
    *, creator_ids: Iterable[int], now: datetime | None = None, hours: int = 24
) -> dict[int, list[tuple[datetime, int]]]:
    """``orders_per_hour`` of several creators, in one statement."""
    now = now or timezone.now()
    current = now.replace(minute=0, second=0, microsecond=0)
    first = current - timedelta(hours=hours - 1)
    counts: dict[int, dict[datetime, int]] = {creator_id: defaultdict(int) for creator_id in creator_ids}
    for row in _buckets_placed.values(creator_ids=list(counts), first=first):
        counts[row["creator_id"]][row["start"].replace(minute=0)] += row["placed_count"]
    slots = [first + timedelta(hours=i) for i in range(hours)]
    return {creator_id: [(slot, per_hour[slot]) for slot in slots] for creator_id, per_hour in counts.items()}


# --- inventory ---------------------------------------------------------------------------


@prepared
def _products_stocked(*, creator_ids: list[int]):
    return (
        Product.objects.filter(creator_id__in=creator_ids)
        .values("pk", "creator_id", "reorder_point")
        .annotate(total_available=Sum("stocks__available"), value=Sum(F("stocks__on_hand") * F("unit_cost")))
    )


@prepared
def _alerts_critical(*, creator_ids: list[int]):
    return (
        InventoryAlert.objects.filter(
            creator_id__in=creator_ids,
            status=InventoryAlert.Status.ACTIVE,
            severity__in=[InventoryAlert.Severity.CRITICAL, InventoryAlert.Severity.EMERGENCY],
        )
        .order_by()
        .values("creator_id")
        .annotate(count=Count("pk"))
    )


def _inventory_metrics(creator_ids: list[int]) -> dict[int, dict]:
    """The inventory metrics of several creators: two statements for all of them."""
    figures = {creator_id: {"total_products": 0, "low": 0, "value": Decimal(0)} for creator_id in creator_ids}
    for row in _products_stocked.values(creator_ids=creator_ids):
        figure = figures[row["creator_id"]]
        figure["total_products"] += 1
        figure["value"] += row["value"] or 0
        if stock_is_low(available=row["total_available"] or 0, reorder_point=row["reorder_point"]):
            figure["low"] += 1
    critical = {row["creator_id"]: row["count"] for row in _alerts_critical.values(creator_ids=creator_ids)}
    return {
        creator_id: {
            "total_products": figure["total_products"],
            "low_stock_count": figure["low"],
            "total_value": _money(figure["value"]),
            "critical_alerts": critical.get(creator_id, 0),
        }
        for creator_id, figure in figures.items()
    }


# --- system ------------------------------------------------------------------------------


def health_latest(*, creator_id: int, now: datetime) -> dict[str, SystemHealth]:
    """Latest SystemHealth record per component in the last 15 minutes (global and the creator's)."""
    return health_latest_many(creator_ids=[creator_id], now=now)[creator_id]


@prepared
def _health_latest_read(*, creator_ids: list[int], since: datetime):
    latest_first = (F("measured_at").desc(), F("pk").desc())
    return (
        SystemHealth.objects.filter(Q(creator_id__in=creator_ids) | Q(creator__isnull=True), measured_at__gte=since)
        .annotate(rank=Window(RowNumber(), partition_by=(F("component"), F("creator_id")), order_by=latest_first))
        .filter(rank=1)  # a server process reports every few seconds: read only each one's latest
    )


def health_latest_many(*, creator_ids: list[int], now: datetime) -> dict[int, dict[str, SystemHealth]]:
    """``health_latest`` of several creators, in one statement."""
    shared: dict[str, SystemHealth] = {}
    own: dict[int, dict[str, SystemHealth]] = defaultdict(dict)
    for record in _health_latest_read.objects(creator_ids=list(creator_ids), since=now - HEALTH_WINDOW):
        (shared if record.creator_id is None else own[record.creator_id]).setdefault(record.component, record)
    latest = {}
    for creator_id in creator_ids:
        records = dict(shared)
        for component, record in own[creator_id].items():
            other = records.get(component)
            if other is None or (record.measured_at, record.pk) > (other.measured_at, other.pk):
                records[component] = record
        latest[creator_id] = records
    return latest


@prepared
def _sync_figures(*, creator_ids: list[int]):
    resync, stream = Q(type=SyncOperation.Type.RESYNC), Q(type=SyncOperation.Type.WEBHOOK_STREAM)
    finished = resync & Q(completed_at__isnull=False)
    return (
        SyncOperation.objects.filter(creator_id__in=creator_ids)
        .order_by()
        .values("creator_id")
        .annotate(
            syncing=Count("pk", filter=resync & Q(status__in=SyncOperation.ACTIVE_STATUSES)),
            stream_failed=Count("pk", filter=stream & Q(status=SyncOperation.Status.FAILED)),
            last_finished=Max("completed_at", filter=finished),
            last_failed=Max("completed_at", filter=finished & Q(status=SyncOperation.Status.FAILED)),
            last_completed=Max("completed_at", filter=resync & Q(status=SyncOperation.Status.COMPLETED)),
            last_event=Max("last_event_at", filter=stream),
        )
    )


def _system_metrics(creator_ids: list[int], now: datetime) -> dict[int, dict]:
    """The system metrics of several creators: two statements for all of them."""
    latest = health_latest_many(creator_ids=creator_ids, now=now)
    operations = {row["creator_id"]: row for row in _sync_figures.values(creator_ids=creator_ids)}
    return {
        creator_id: _system_figures(latest[creator_id], operations.get(creator_id, {})) for creator_id in creator_ids
    }


def _system_figures(latest: dict[str, SystemHealth], operations: dict) -> dict:
    worst = max(
        (record.status for record in latest.values()),
        key=lambda status: SystemHealth.STATUS_RANK.get(status, 0),
        default=SystemHealth.Status.NOMINAL,
    )
    if operations.get("syncing"):
        sync_status = "syncing"
    else:
        # The latest finished resync decides, with a failed stream: a later success clears a failure.
        last_failed = operations.get("last_failed")
        resync_failed = last_failed is not None and last_failed == operations.get("last_finished")
        sync_status = "error" if operations.get("stream_failed") or resync_failed else "synced"
    moments = [moment for moment in (operations.get("last_event"), operations.get("last_completed")) if moment is not None]
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
    return metrics_compute_many(metric_types={creator_id: metric_types}, now=now)[creator_id]


_METRIC_GROUPS = {
    "orders": _order_metrics_from_rollups,
    "inventory": lambda creator_ids, now: _inventory_metrics(creator_ids),
    "system": _system_metrics,
}


def metrics_compute_many(
    *, metric_types: Mapping[int, set[str] | None], now: datetime | None = None
) -> dict[int, dict[tuple[str, str], object]]:
    """Compute several creators' metrics (creator → its metric types, None for all) from rollups.

    Each group of metrics costs the same few statements for one creator or for a hundred.
    """
    now = now or timezone.now()
    values: dict[int, dict[tuple[str, str], object]] = {creator_id: {} for creator_id in metric_types}
    for metric_type, compute in _METRIC_GROUPS.items():
        creator_ids = [creator_id for creator_id, types in metric_types.items() if types is None or metric_type in types]
        if not creator_ids:
            continue
        for creator_id, figures in compute(creator_ids, now).items():
            values[creator_id].update({(metric_type, key): value for key, value in figures.items()})
    return values


def metrics_from_source(*, creator_id: int, now: datetime | None = None) -> dict[tuple[str, str], object]:
    """Compute every metric straight from orders, stock and alerts, ignoring rollups."""
    now = now or timezone.now()
    values = metrics_compute(creator_id=creator_id, metric_types={"inventory", "system"}, now=now)
    values.update({("orders", key): value for key, value in _order_metrics_from_source(creator_id, now).items()})
    return values


def metrics_stored(*, creator_id: int) -> dict[tuple[str, str], object]:
    return shared_read(("metrics_stored", creator_id), lambda: metrics_stored_many(creator_ids=[creator_id])[creator_id])


@prepared
def _metrics_stored(*, creator_ids: list[int]):
    return DashboardMetric.objects.filter(creator_id__in=creator_ids).values("creator_id", "metric_type", "metric_key", "value")


def metrics_stored_many(*, creator_ids: Iterable[int]) -> dict[int, dict[tuple[str, str], object]]:
    """The stored metrics of several creators, in one statement."""
    stored: dict[int, dict[tuple[str, str], object]] = {creator_id: {} for creator_id in creator_ids}
    for row in _metrics_stored.values(creator_ids=list(stored)):
        stored[row["creator_id"]][(row["metric_type"], row["metric_key"])] = row["value"]
    return stored


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
