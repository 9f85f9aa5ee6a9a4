"""After commit, bring creators' dashboards up to date: recompute the touched metrics, then push.

``creatorflow.changes`` hands every committed change (creator, topics, row ids) to
``changes_published``, which the realtime app registers at start-up. It publishes at once, or,
when ``PUBLISH_COALESCE_SECONDS`` is set, through this process's coalescer (``realtime.runtime``),
which merges a creator's changes while they wait and hands every creator due in one cycle to
``changes_publish_many`` together: each kind of read and write is one statement for all of them.
"""

import logging
import time
from collections.abc import Mapping

from django.conf import settings

from creatorflow.changes import ALERTS, INVENTORY, ORDERS, SYNC, SYSTEM, Change
from creatorflow.reads import reads_shared, shared_reads_fill

from . import broadcast, runtime, selectors, services
from .live import selectors as live_selectors

logger = logging.getLogger("creatorflow.realtime")

METRIC_TYPES_BY_TOPIC = {ORDERS: "orders", INVENTORY: "inventory", ALERTS: "inventory", SYNC: "system", SYSTEM: "system"}


def changes_publish_many(changes: Mapping[int, Change]) -> None:
    """Recompute the metrics under each creator's change and push what changed, for all of them at once.

    The creators' time zones and running LIVEs are read once for all; the metrics are recomputed
    and stored with one statement per group of metrics, and every push is rendered from reads
    made once for all. When any of it fails, each creator is published on its own, so one
    creator's failure never holds back the others.
    """
    # The pushes' stamp: when the cycle began, before any of its reads. Cycles of a creator
    # begin an interval apart, so their stamps are too, and each tab sends every state at once
    # (``realtime.frames``) instead of holding the ones that took longer to come.
    stamp = time.time()
    metric_types = {
        creator_id: types
        for creator_id, change in changes.items()
        if (types := {METRIC_TYPES_BY_TOPIC[topic] for topic in change.topics if topic in METRIC_TYPES_BY_TOPIC})
    }  # a LIVE's start or end changes no metric
    try:
        with reads_shared():
            shared_reads_fill("creator_tz", changes, selectors.creator_tz_many)
            shared_reads_fill("live_running", changes, lambda ids: live_selectors.live_running_many(creator_ids=ids))
            if metric_types:
                services.metrics_recompute_many(metric_types=metric_types)
            broadcast.dashboards_push(changes, stamp=stamp)
    except Exception:
        if len(changes) == 1:
            raise
        logger.warning("publishing %s creators together failed; publishing each on its own", len(changes))
        for creator_id, change in changes.items():  # each in a scope of its own: nothing read for the failed cycle
            try:
                changes_publish_many({creator_id: change})
            except Exception as error:  # noqa: BLE001 - the changes are committed; the next publish corrects
                logger.error("publish for creator %s failed (%s)", creator_id, type(error).__name__)


def changes_publish(creator_id: int, change: Change) -> None:
    """Recompute the metrics under the change's topics and push what changed to the creator."""
    changes_publish_many({creator_id: change})


def changes_published(creator_id: int, change: Change) -> None:
    """Publish committed changes now, or coalesced when ``PUBLISH_COALESCE_SECONDS`` is set."""
    interval = settings.CREATORFLOW.get("PUBLISH_COALESCE_SECONDS") or 0
    if interval <= 0:
        changes_publish(creator_id, change)
        return
    runtime.coalescer(interval, changes_publish_many).add(creator_id, change)
