"""Process-wide machinery of the orders app: the inbox applier and the reservation expiry timer.

Everything here is per server process and started on first use (or from ``creatorflow.asgi``),
never at import, so a server that forks workers starts it in each worker.
"""

import logging
import queue
import threading
import time
from concurrent.futures import Future, InvalidStateError
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import close_old_connections, connection, connections
from django.utils import timezone

from . import inbox
from .inbox import Pending
from .models import WebhookEvent
from .services import reservations_expire

logger = logging.getLogger("creatorflow.webhooks")
expiry_logger = logging.getLogger("creatorflow.expiry")


# --- the applier: group commit of the webhook inbox -----------------------------------------


@dataclass
class Job:
    """A delivery or a stored event handed to the applier, and the futures its request waits on.

    ``stored`` (deliveries only) resolves once the delivery is committed to the inbox, to its
    ``inbox.Receipt`` or to the exception that refused it or kept it from being stored (an
    outage raises instead); ``applied`` resolves to ``inbox.Applied`` once the batch holding its
    event is committed (or raises the database error).
    """

    applied: Future
    pending: Pending | None = None
    delivery: tuple[bytes, str | None] | None = None
    stored: Future | None = None


class Applier(threading.Thread):
    """Apply this process's waiting inbox events in batches, one transaction per batch.

    A request hands its delivery here (``receive``) and waits. The applier takes every job
    waiting (up to ``batch_max``), stores their deliveries in one committed INSERT
    (``inbox.webhooks_receive``), which is when each request may answer if it must, then applies
    their events together (``inbox.webhooks_apply``) in arrival order and resolves their futures.
    An event that needs TikTok's order detail first is left to its request, which fetches it and
    hands the stored event back (``submit``). At low load a batch is one event; under a
    flash sale it holds tens, and the hot stock rows are locked once per batch instead of once per
    order. When idle it also applies events left ``received`` for ``orphan_seconds`` by a process
    that died between storing and applying them, on any server of the shared database.
    """

    def __init__(self, *, batch_max: int, sweep_seconds: float = 2.0) -> None:
        super().__init__(name="creatorflow-applier", daemon=True)
        self.batch_max, self.sweep_seconds = batch_max, sweep_seconds
        self.jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self.batches = 0  # batches applied (diagnostics, tests)
        self.largest_batch = 0
        self._swept = time.monotonic()
        self.stopped = threading.Event()
        # Stored events whose batch met a database outage: their senders were told "queued",
        # so the applier tries them again with its next batch.
        self._owed: dict[int, Pending] = {}

    def receive(self, body: bytes, signature: str | None) -> Job:
        """Queue a delivery to store and apply with the next batch."""
        job = Job(applied=Future(), delivery=(body, signature), stored=Future())
        self.jobs.put(job)
        return job

    def submit(self, pending: Pending) -> Future:
        """Queue a stored event; the future resolves to ``inbox.Applied`` (or the database error)."""
        job = Job(applied=Future(), pending=pending)
        self.jobs.put(job)
        return job.applied

    def stop(self) -> None:
        """Stop after the batch in hand (tests; a server's applier runs as long as its process)."""
        self.stopped.set()

    def run(self) -> None:
        while not self.stopped.is_set():
            jobs = self._take()
            try:
                if jobs or self._owed:
                    self._apply(jobs)
                if not jobs or time.monotonic() - self._swept >= self.sweep_seconds:
                    self._sweep()
            except Exception:  # noqa: BLE001 - the applier must outlive any one batch
                logger.exception("inbox applier batch failed")
            finally:
                if self.jobs.empty():
                    connection.close()  # back to the pool while idle

    def _take(self) -> list[Job]:
        try:
            # With events owed from an outage, look again soon rather than at the next sweep.
            jobs = [self.jobs.get(timeout=1.0 if self._owed else self.sweep_seconds)]
        except queue.Empty:
            return []
        while len(jobs) < self.batch_max:
            try:
                jobs.append(self.jobs.get_nowait())
            except queue.Empty:
                break
        return jobs

    def _apply(self, jobs: list[Job]) -> None:
        connection.close_if_unusable_or_obsolete()
        self._store([job for job in jobs if job.delivery is not None])
        jobs = [job for job in jobs if job.pending is not None]
        owed, self._owed = self._owed, {}
        pending = [*owed.values(), *(job.pending for job in jobs if job.pending.event.pk not in owed)]
        if not pending:
            return
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(pending))
        try:
            results = inbox.webhooks_apply(pending)
        except Exception:  # noqa: BLE001 - a database outage (logged by run)
            # The events are stored, and whether the batch's COMMIT landed before the outage cut its
            # answer cannot be known now: the applier owes them all and applies them (at most once,
            # as claimed) when the database answers. Their senders hear "queued"; a 503 would tell
            # TikTok that an order the batch may have committed was not taken.
            self._owed.update(owed)
            for job in jobs:
                self._owed[job.pending.event.pk] = job.pending
                _resolve(job.applied, result=None)
            raise
        for job in jobs:
            _resolve(job.applied, result=results.get(job.pending.event.pk))

    def _store(self, jobs: list[Job]) -> None:
        """Commit the jobs' deliveries to the inbox; the ones to apply now join the batch."""
        if not jobs:
            return
        try:
            receipts = inbox.webhooks_receive([job.delivery for job in jobs])
        except Exception as error:  # noqa: BLE001 - a database outage: nothing stored, every sender hears (503)
            for job in jobs:
                job.stored.set_exception(error)
            return
        for job, receipt in zip(jobs, receipts, strict=True):
            if isinstance(receipt, inbox.Receipt):
                pending = inbox.receipt_pending(receipt)
                if pending is not None and not inbox.pending_fetches(pending):
                    job.pending = pending
            job.stored.set_result(receipt)  # or what refused it, or kept it from being stored

    def _sweep(self) -> None:
        """Apply events left ``received`` too long: their process died between storing and applying."""
        self._swept = time.monotonic()
        orphan_seconds = settings.CREATORFLOW["INBOX_ORPHAN_SECONDS"]
        if orphan_seconds <= 0:
            return
        cutoff = timezone.now() - timedelta(seconds=orphan_seconds)
        orphans = list(
            WebhookEvent.objects.filter(status=WebhookEvent.Status.RECEIVED, received_at__lt=cutoff)
            .select_related("shop")
            .order_by("pk")[: self.batch_max]
        )
        if orphans:
            logger.info("inbox applier picks up %d event(s) left received", len(orphans))
            inbox.webhooks_apply([Pending(event=event) for event in orphans])


def _resolve(future: Future, *, result=None, exception: Exception | None = None) -> None:
    """Resolve a job's future unless its request stopped waiting for it (answered "queued")."""
    try:
        if exception is not None:
            future.set_exception(exception)
        else:
            future.set_result(result)
    except InvalidStateError:
        pass  # cancelled meanwhile


_applier: Applier | None = None
_applier_lock = threading.Lock()


def applier() -> Applier:
    """Return this process's applier, starting it on first use."""
    global _applier  # noqa: PLW0603 - one applier per process
    with _applier_lock:
        if _applier is None or not _applier.is_alive():
            options = settings.CREATORFLOW
            _applier = Applier(batch_max=options["INBOX_BATCH_MAX"])
            _applier.start()
        return _applier


# --- reservation expiry ----------------------------------------------------------------------


class ExpiryTimer(threading.Thread):
    """Release expired reservations from inside a server process, every ``interval`` seconds.

    On for the embedded default (one process, no cron); with several processes in production a
    cron job or systemd timer running ``reservations_expire`` every minute does the same, and
    both may run at once: expiry takes each order's row lock, so every reservation is released once.
    """

    def __init__(self, *, interval: float = 60.0):
        super().__init__(name="creatorflow-expiry", daemon=True)
        self.interval = interval
        self.stopped = threading.Event()
        self.runs = 0

    def run(self) -> None:
        while not self.stopped.wait(self.interval):
            close_old_connections()
            try:
                released = reservations_expire()
            except Exception:
                expiry_logger.exception("reservation expiry failed; trying again in %ss", self.interval)
            else:
                if released:
                    expiry_logger.info("expiry released=%d", released)
            finally:
                self.runs += 1
                connections.close_all()

    def stop(self) -> None:
        self.stopped.set()


def expiry_timer_start(*, interval: float = 60.0) -> ExpiryTimer:
    """Start releasing expired reservations every ``interval`` seconds in this process."""
    timer = ExpiryTimer(interval=interval)
    timer.start()
    return timer
