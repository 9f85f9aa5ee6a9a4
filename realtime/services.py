"""Dashboard metrics: recompute the stored figures, and rebuild them from source (``metrics_resync``).

Metrics are recomputed from rollups after commit (``realtime.publisher``), so their cost does not
grow with the creator's order history; ``metrics_resync`` rebuilds the rollups and the metrics from
the source rows and reports what had drifted.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from creatorflow.changes import TOPICS, changes_mark
from creatorflow.reads import shared_reads_fill
from inventory.models import Product
from inventory.services.alerts import alerts_evaluate
from orders.rollups import order_rollups_rebuild

from . import selectors
from .models import DashboardMetric


def _store(values: dict[int, dict[tuple[str, str], object]]) -> None:
    """Store creators' metric values (creator → (type, key) → value), one statement for all."""
    DashboardMetric.objects.bulk_create(
        [
            DashboardMetric(creator_id=creator_id, metric_type=metric_type, metric_key=key, value=value)
            for creator_id, figures in values.items()
            for (metric_type, key), value in figures.items()
        ],
        update_conflicts=True,
        unique_fields=["creator", "metric_type", "metric_key"],
        update_fields=["value", "updated_at"],
    )


def metrics_recompute(*, creator_id: int, metric_types: set[str] | None = None, now: datetime | None = None) -> dict:
    """Recompute and store the creator's metrics of the given types (all when None)."""
    return metrics_recompute_many(metric_types={creator_id: metric_types}, now=now)[creator_id]


def metrics_recompute_many(
    *, metric_types: Mapping[int, set[str] | None], now: datetime | None = None
) -> dict[int, dict[tuple[str, str], object]]:
    """Recompute and store several creators' metrics (creator → its metric types, None for all).

    The statements are the same for one creator as for every creator of a publishing cycle.
    """
    values = selectors.metrics_compute_many(metric_types=metric_types, now=now)
    stored = selectors.metrics_stored_many(creator_ids=values)
    changed = {
        creator_id: {key: value for key, value in figures.items() if key not in stored[creator_id] or stored[creator_id][key] != value}
        for creator_id, figures in values.items()
    }
    if any(changed.values()):
        _store(changed)  # only what moved: most of an order's publish leaves most metrics as they were
    # What is stored now, for the metric cards of the same publish.
    shared_reads_fill("metrics_stored", values, lambda creator_ids: {c: stored[c] | values[c] for c in creator_ids})
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
    product_ids = list(Product.objects.filter(creator_id=creator_id).values_list("pk", flat=True))
    order_rollups_rebuild(creator_id=creator_id, product_ids=product_ids)
    alerts_evaluate(product_ids=product_ids, now=now)
    actual = selectors.metrics_from_source(creator_id=creator_id, now=now)
    stored = selectors.metrics_stored(creator_id=creator_id)
    drifts = [
        Drift(metric=f"{metric_type}.{key}", stored=stored.get((metric_type, key)), actual=value)
        for (metric_type, key), value in actual.items()
        if stored.get((metric_type, key)) != value
    ]
    _store({creator_id: actual})
    changes_mark(creator_id, *TOPICS)
    return drifts
