"""Start and end a seller's LIVE session; one runs at a time per seller."""

from datetime import datetime

from django.db import IntegrityError, transaction
from django.utils import timezone

from creatorflow.changes import INVENTORY, LIVE, changes_mark

from ..models import LiveSession
from .selectors import live_figures


class LiveError(Exception):
    """A LIVE action that cannot be done now; the message says why."""


class LiveAlreadyRunning(LiveError):
    pass


class LiveNotRunning(LiveError):
    pass


def _announce(creator_id: int) -> None:
    # The LIVE header and the inventory table's "sold this LIVE" column.
    changes_mark(creator_id, LIVE, INVENTORY)


@transaction.atomic
def live_start(*, creator_id: int, title: str = "", now: datetime | None = None) -> LiveSession:
    """Start a LIVE session for the creator; raise LiveAlreadyRunning while another one runs."""
    try:
        with transaction.atomic():
            session = LiveSession.objects.create(
                creator_id=creator_id, title=title.strip()[:120], started_at=now or timezone.now()
            )
    except IntegrityError:
        # The one-running-session constraint: another start won, or one was already running.
        raise LiveAlreadyRunning("A LIVE is already running: end it before starting another.") from None
    _announce(creator_id)
    return session


@transaction.atomic
def live_end(*, creator_id: int, now: datetime | None = None) -> LiveSession:
    """End the creator's running LIVE session and keep its summary; raise LiveNotRunning if none runs."""
    now = now or timezone.now()
    session = LiveSession.objects.filter(creator_id=creator_id, ended_at__isnull=True).first()
    if session is None:
        raise LiveNotRunning("No LIVE is running.")
    session.ended_at = max(now, session.started_at)
    figures = live_figures(session=session, now=session.ended_at)
    session.gmv, session.orders, session.units = figures.gmv, figures.orders, figures.units
    session.short_orders, session.short_units = figures.short_orders, figures.short_units
    # Conditional on still running: of two concurrent ends, one ends it and the other is told.
    ended = LiveSession.objects.filter(pk=session.pk, ended_at__isnull=True).update(
        ended_at=session.ended_at, gmv=session.gmv, orders=session.orders, units=session.units,
        short_orders=session.short_orders, short_units=session.short_units,
    )
    if not ended:
        raise LiveNotRunning("No LIVE is running.")
    _announce(creator_id)
    return session
