"""Dashboard metrics: order rollups, recomputation after commit, and from-scratch resync.

Writes that change what a dashboard shows call ``changes_mark`` (through the model signals in
``realtime.signals``). The marks of one transaction are gathered per creator and handled once,
after commit: the metrics of the touched groups are recomputed from rollups (cost independent
of the creator's order history) and the changed fragments are pushed to the creator's browsers.
"""

import logging
import threading
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from creatorflow.db import upsert_increment
from inventory.models import Product
from inventory.services import alerts_evaluate

from . import selectors
from .models import DashboardMetric, OrderStatsBucket, OrderTotals, SystemHealth
from .rollups import OrderFigures

logger = logging.getLogger("creatorflow.realtime")

# Topics a change can touch; each names the dashboard fragments and metric group it affects.
ORDERS, INVENTORY, ALERTS, SYNC, SYSTEM = "orders", "inventory", "alerts", "sync", "system"
TOPICS = (ORDERS, INVENTORY, ALERTS, SYNC, SYSTEM)
METRIC_TYPES_BY_TOPIC = {ORDERS: "orders", INVENTORY: "inventory", ALERTS: "inventory", SYNC: "system", SYSTEM: "system"}


# --- order rollups -------------------------------------------------------------------------


def order_stats_apply(*, creator_id: int, before: OrderFigures | None, after: OrderFigures) -> None:
    """Move an order's contribution to the rollups from ``before`` (None: new order) to ``after``."""
    if before == after:
        return
    deltas: dict[datetime, list[int]] = defaultdict(lambda: [0, 0, 0])
    for sign, figures in ((-1, before), (1, after)):
        if figures is None:
            continue
        for start, row in figures.bucket_rows().items():
            for index, value in enumerate(row):
                deltas[start][index] += sign * value
    for start, (placed, shipped, seconds) in sorted(deltas.items()):
        if placed or shipped or seconds:
            upsert_increment(
                OrderStatsBucket,
                keys={"creator": creator_id, "start": start},
                increments={"placed_count": placed, "shipped_count": shipped, "processing_seconds": seconds},
            )
    revenue = after.revenue - (before.revenue if before else Decimal(0))
    count = 0 if before else 1
    if count or revenue:
        upsert_increment(
            OrderTotals, keys={"creator": creator_id}, increments={"orders_count": count, "completed_revenue": revenue}
        )


# --- metrics -------------------------------------------------------------------------------


def _store(creator_id: int, values: dict[tuple[str, str], object]) -> None:
    DashboardMetric.objects.bulk_create(
        [
            DashboardMetric(creator_id=creator_id, metric_type=metric_type, metric_key=key, value=value)
            for (metric_type, key), value in values.items()
        ],
        update_conflicts=True,
        unique_fields=["creator", "metric_type", "metric_key"],
        update_fields=["value", "updated_at"],
    )


def metrics_recompute(*, creator_id: int, metric_types: set[str] | None = None, now: datetime | None = None) -> dict:
    """Recompute and store the creator's metrics of the given types (all when None)."""
    values = selectors.metrics_compute(creator_id=creator_id, metric_types=metric_types, now=now)
    _store(creator_id, values)
    return values


@dataclass
class Drift:
    metric: str
    stored: object
    actual: object


@transaction.atomic
def metrics_resync(*, creator_id: int, now: datetime | None = None) -> list[Drift]:
    """Rebuild rollups and metrics from source rows; return what had drifted."""
    now = now or timezone.now()
    buckets, totals = selectors.order_rollups_from_source(creator_id=creator_id)
    OrderStatsBucket.objects.filter(creator_id=creator_id).delete()
    OrderStatsBucket.objects.bulk_create(
        [
            OrderStatsBucket(
                creator_id=creator_id, start=start, placed_count=placed, shipped_count=shipped, processing_seconds=sec
            )
            for start, (placed, shipped, sec) in sorted(buckets.items())
        ]
    )
    OrderTotals.objects.update_or_create(
        creator_id=creator_id,
        defaults={"orders_count": totals[0], "completed_revenue": totals[1]},
    )
    alerts_evaluate(product_ids=Product.objects.filter(creator_id=creator_id).values_list("pk", flat=True), now=now)
    actual = selectors.metrics_from_source(creator_id=creator_id, now=now)
    stored = selectors.metrics_stored(creator_id=creator_id)
    drifts = [
        Drift(metric=f"{metric_type}.{key}", stored=stored.get((metric_type, key)), actual=value)
        for (metric_type, key), value in actual.items()
        if stored.get((metric_type, key)) != value
    ]
    _store(creator_id, actual)
    changes_mark(creator_id, *TOPICS)
    return drifts


# --- after-commit handling of changes --------------------------------------------------------


class _Pending:
    """Topics touched per creator in the current transaction of one database connection."""

    def __init__(self) -> None:
        self.topics: dict[int, set[str]] = defaultdict(set)

    def flush(self) -> None:
        topics, self.topics = self.topics, defaultdict(set)
        for creator_id, creator_topics in topics.items():
            _publish(creator_id=creator_id, topics=creator_topics)


class _Coalescer:
    """Publish each creator's changes at most once per ``interval``, from one background thread.

    A flash sale commits hundreds of orders a second for one creator; recomputing metrics and
    rendering fragments for each would cost more than the orders themselves. Topics gathered
    during the interval are merged and published once, from the state current by then (latest
    state wins); the first change after a quiet spell is published at once.
    """

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.condition = threading.Condition()
        self.pending: dict[int, set[str]] = defaultdict(set)
        self.last: dict[int, float] = {}
        self.thread: threading.Thread | None = None
        self.publishes = 0  # how many publishes ran (for tests and diagnostics)

    def add(self, creator_id: int, topics: set[str]) -> None:
        with self.condition:
            self.pending[creator_id].update(topics)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="creatorflow-publish", daemon=True)
                self.thread.start()
            self.condition.notify()

    def _due(self) -> dict[int, set[str]]:
        with self.condition:
            while True:
                now = time.monotonic()
                due = [c for c in self.pending if now - self.last.get(c, float("-inf")) >= self.interval]
                if due:
                    for creator_id in due:
                        self.last[creator_id] = now
                    return {creator_id: self.pending.pop(creator_id) for creator_id in due}
                waits = [self.last[c] + self.interval - now for c in self.pending]
                self.condition.wait(timeout=min(waits) if waits else None)

    def _run(self) -> None:
        while True:
            for creator_id, topics in self._due().items():
                try:
                    changes_publish(creator_id=creator_id, topics=topics)
                    self.publishes += 1
                except Exception as error:  # noqa: BLE001 - the changes are committed; the next publish corrects
                    logger.error("coalesced publish for creator %s failed (%s)", creator_id, type(error).__name__)
                finally:
                    connection.close()  # back to the pool between bursts


_coalescer: _Coalescer | None = None


def _publish(*, creator_id: int, topics: set[str]) -> None:
    """Publish now, or through the coalescer when ``PUBLISH_COALESCE_SECONDS`` is set."""
    global _coalescer  # noqa: PLW0603 - one coalescer per process
    interval = settings.CREATORFLOW.get("PUBLISH_COALESCE_SECONDS") or 0
    if interval <= 0:
        changes_publish(creator_id=creator_id, topics=topics)
        return
    if _coalescer is None or _coalescer.interval != interval:
        _coalescer = _Coalescer(interval)
    _coalescer.add(creator_id, set(topics))


def _pending() -> _Pending:
    pending = getattr(connection, "_creatorflow_pending", None)
    if pending is None:
        pending = connection._creatorflow_pending = _Pending()
    return pending


def changes_mark(creator_id: int, *topics: str) -> None:
    """Note that the creator's ``topics`` changed; handled once per transaction, after commit."""
    if not connection.in_atomic_block:
        _publish(creator_id=creator_id, topics=set(topics))
        return
    pending = _pending()
    if not any(callback == pending.flush for _, callback, _ in connection.run_on_commit):
        # Whatever is pending belongs to a transaction that rolled back.
        pending.topics.clear()
    # Registered on every mark, so a savepoint rolled back later cannot take the only flush
    # with it; the first flush to run handles everything pending, the others find nothing.
    transaction.on_commit(pending.flush, robust=True)
    pending.topics[creator_id].update(topics)


def changes_publish(*, creator_id: int, topics: set[str]) -> None:
    """Recompute the metrics under ``topics`` and push the changed fragments to the creator."""
    metric_types = {METRIC_TYPES_BY_TOPIC[topic] for topic in topics}
    metrics_recompute(creator_id=creator_id, metric_types=metric_types)
    from . import broadcast  # noqa: PLC0415 - broadcast renders templates that use selectors

    broadcast.dashboard_push(creator_id=creator_id, topics=topics)


def health_record(*, component: str, status: str, error_message: str = "", metrics: dict | None = None, creator_id=None):
    """Write a SystemHealth measurement."""
    return SystemHealth.objects.create(
        component=component,
        status=status,
        error_message=error_message[:2000],
        metrics=metrics or {},
        creator_id=creator_id,
    )
