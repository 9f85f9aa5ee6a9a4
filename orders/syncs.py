"""How long a running sync may stay silent, and marking the silent ones failed.

A resync saves its SyncOperation after every page and at least every ``HEARTBEAT_SECONDS``
while it works (``updated_at`` is the heartbeat). One not heard from for ``STALE_AFTER`` died
with its process (killed, crashed, machine restarted): it is marked failed, never left running.
Webhook streams are not judged by silence: a shop with no orders sends nothing, rightly.
"""

from datetime import datetime, timedelta

from django.db import transaction
from django.utils import timezone

from creatorflow.changes import SYNC, changes_mark

from .models import SyncOperation

HEARTBEAT_SECONDS = 30.0
STALE_AFTER = timedelta(minutes=10)
STALE_MESSAGE = "No heartbeat for 10 minutes: the resync stopped with its process and is marked failed."


def sync_operations_stale(*, now: datetime | None = None):
    """Return the resyncs still marked active whose last heartbeat is older than ``STALE_AFTER``."""
    now = now or timezone.now()
    return SyncOperation.objects.filter(
        type=SyncOperation.Type.RESYNC,
        status__in=SyncOperation.ACTIVE_STATUSES,
        updated_at__lt=now - STALE_AFTER,
    )


@transaction.atomic
def sync_operations_fail_stale(*, now: datetime | None = None) -> int:
    """Mark every stale resync failed, saying why; return how many were."""
    now = now or timezone.now()
    stale = sync_operations_stale(now=now)
    rows = list(stale.values_list("pk", "creator_id"))
    if not rows:
        return 0
    # The same condition again: a resync that beat in between stays running.
    stale.filter(pk__in=[pk for pk, _ in rows]).update(
        status=SyncOperation.Status.FAILED,
        last_error=STALE_MESSAGE,
        completed_at=now,
        estimated_completion=None,
        updated_at=now,
    )
    for creator_id in {creator_id for _, creator_id in rows}:
        changes_mark(creator_id, SYNC, ids=[pk for pk, owner in rows if owner == creator_id])
    return len(rows)
