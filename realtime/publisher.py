"""After commit, bring a creator's dashboards up to date: recompute the touched metrics, then push.

``creatorflow.changes`` hands every committed change (creator, topics, row ids) to
``changes_published``, which the realtime app registers at start-up. It publishes at once, or,
when ``PUBLISH_COALESCE_SECONDS`` is set, through this process's coalescer (``realtime.runtime``),
which merges a creator's changes while they wait.
"""

from django.conf import settings

from creatorflow.changes import ALERTS, INVENTORY, ORDERS, SYNC, SYSTEM, Change
from creatorflow.reads import reads_shared

from . import broadcast, runtime, services

METRIC_TYPES_BY_TOPIC = {ORDERS: "orders", INVENTORY: "inventory", ALERTS: "inventory", SYNC: "system", SYSTEM: "system"}


def changes_publish(creator_id: int, change: Change) -> None:
    """Recompute the metrics under the change's topics and push what changed to the creator.

    The creator's time zone, running LIVE and currency are read once for the whole publish.
    """
    metric_types = {METRIC_TYPES_BY_TOPIC[topic] for topic in change.topics if topic in METRIC_TYPES_BY_TOPIC}
    with reads_shared():
        if metric_types:  # a LIVE's start or end changes no metric
            services.metrics_recompute(creator_id=creator_id, metric_types=metric_types)
        broadcast.dashboard_push(creator_id=creator_id, change=change)


def changes_published(creator_id: int, change: Change) -> None:
    """Publish committed changes now, or coalesced when ``PUBLISH_COALESCE_SECONDS`` is set."""
    interval = settings.CREATORFLOW.get("PUBLISH_COALESCE_SECONDS") or 0
    if interval <= 0:
        changes_publish(creator_id, change)
        return
    runtime.coalescer(interval, changes_publish).add(creator_id, change)
