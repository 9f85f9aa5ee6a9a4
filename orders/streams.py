"""Each shop's webhook stream: a SyncOperation counting the events applied and the ones that failed."""

from collections.abc import Mapping
from datetime import datetime

from django.db.models import F

from creatorflow.changes import SYNC, changes_mark
from creatorflow.db import rows_update
from creatorflow.health import health_record
from creatorflow.models import SystemHealth
from creatorflow.prepared import prepared

from .locks import running_streams_lock
from .models import ShopConnection, SyncOperation

HEALTH_COMPONENT = "tiktok_webhook"


@prepared
def _running_stream_count(*, shop_id: int, processed: int, now: datetime):
    """Count applied events on the shop's stream if it is running: one statement per batch, composed once."""
    streams = SyncOperation.objects.filter(
        shop_id=shop_id, type=SyncOperation.Type.WEBHOOK_STREAM, status=SyncOperation.Status.RUNNING
    )
    return streams, {"processed_count": F("processed_count") + processed, "last_event_at": now, "updated_at": now}


def stream_record(*, shop: ShopConnection, now: datetime, processed: int = 1, error: str = "") -> None:
    """Count ``processed`` applied events (or one failed event, with ``error``) on the shop's stream.

    The stream is created on first use. A good event after a failure sets the stream running
    again and records the webhook component nominal, so the dashboard's health clears.
    """
    if not error and _running_stream_count.update(shop_id=shop.pk, processed=processed, now=now):
        changes_mark(shop.creator_id, SYNC)  # the usual case: a running stream counts on
        return
    stream = SyncOperation.objects.filter(shop=shop, type=SyncOperation.Type.WEBHOOK_STREAM)
    if error:
        changes = {"error_count": F("error_count") + 1, "last_error": error[:2000], "status": SyncOperation.Status.FAILED}
    else:
        changes = {"processed_count": F("processed_count") + processed, "status": SyncOperation.Status.RUNNING}
    changes.update(last_event_at=now, updated_at=now)
    updated = stream.update(**changes)
    recovered = bool(updated) and not error
    if not updated:
        _, created = SyncOperation.objects.get_or_create(
            shop=shop,
            type=SyncOperation.Type.WEBHOOK_STREAM,
            defaults={
                "creator_id": shop.creator_id,
                "source": "tiktok",
                "target": "webhooks",
                "status": SyncOperation.Status.FAILED if error else SyncOperation.Status.RUNNING,
                "processed_count": 0 if error else processed,
                "error_count": 1 if error else 0,
                "last_error": error[:2000],
                "last_event_at": now,
                "started_at": now,
            },
        )
        if not created:
            stream.update(**changes)  # Created by a concurrent first event.
    if recovered:
        # The stream had failed; a good event clears the critical health state on the dashboard.
        health_record(component=HEALTH_COMPONENT, status=SystemHealth.Status.NOMINAL, creator_id=shop.creator_id)
    changes_mark(shop.creator_id, SYNC)


def streams_record_processed(*, processed: Mapping[ShopConnection, int], now: datetime) -> None:
    """Count applied events on several shops' streams (shop → events), as ``stream_record`` does for each.

    A batch in a busy hour holds the orders of many shops. The streams that are running, nearly
    all of them, are locked in one read and written in one statement; a stream that is new, or
    failed and now recovers, is written on its own by ``stream_record``.
    """
    running: dict[int, SyncOperation] = {}
    if len(processed) > 1:  # one shop's running stream is one UPDATE (stream_record)
        running = {stream.shop_id: stream for stream in running_streams_lock(shop_ids=[shop.pk for shop in processed])}
    for shop, count in processed.items():
        stream = running.get(shop.pk)
        if stream is None:
            stream_record(shop=shop, now=now, processed=count)
            continue
        stream.processed_count += count
        stream.last_event_at = stream.updated_at = now
        changes_mark(shop.creator_id, SYNC)
    rows_update(list(running.values()), ["processed_count", "last_event_at", "updated_at"])


def stream_failure_record(*, shop: ShopConnection, event_id: int, event_type: str, error: str, now: datetime) -> None:
    """Record a failed event on the shop's stream and as a critical webhook health record."""
    health_record(
        component=HEALTH_COMPONENT,
        status=SystemHealth.Status.CRITICAL,
        error_message=f"Webhook event {event_id} ({event_type}) failed: {error}",
        metrics={"event_id": event_id, "event_type": event_type},
        creator_id=shop.creator_id,
    )
    stream_record(shop=shop, now=now, error=f"Event {event_id}: {error}")
