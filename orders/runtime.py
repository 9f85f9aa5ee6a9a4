"""Process-wide machinery of the orders app: the inbox applier and the reservation expiry timer.

Everything here is per server process and started on first use (or from ``creatorflow.asgi``),
never at import, so a server that forks workers starts it in each worker.
"""

import logging
import queue
import threading
import time
from concurrent.futures import Future
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
class _Job:
    pending: Pending
    future: Future


class Applier(threading.Thread):
    """Apply this process's waiting inbox events in batches, one transaction per batch.

    A request that stored a delivery hands it here and waits for its future. The applier takes
    every job waiting (up to ``batch_max``) and applies them together (``inbox.webhooks_apply``),
    in arrival order, then resolves their futures. At low load a batch is one event; under a
    flash sale it holds tens, and the hot stock rows are locked once per batch instead of once per
    order. When idle it also applies events left ``received`` for ``orphan_seconds`` by a process
    that died between storing and applying them, on any server of the shared database.
    """

    def __init__(self, *, batch_max: int, sweep_seconds: float = 2.0) -> None:
        super().__init__(name="creatorflow-applier", daemon=True)
        self.batch_max, self.sweep_seconds = batch_max, sweep_seconds
        self.jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self.batches = 0  # batches applied (diagnostics, tests)
        self.largest_batch = 0
        self._swept = time.monotonic()
        self.stopped = threading.Event()
        # Events answered "queued" whose batch then met a database outage: their senders were
        # told they would be applied, so the applier tries them again with its next batch.
        self._owed: dict[int, Pending] = {}

    def submit(self, pending: Pending) -> Future:
        """Queue a stored event; its future resolves to ``inbox.Applied`` (or the database error)."""
        future: Future = Future()
        self.jobs.put(_Job(pending, future))
        return future

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

    def _take(self) -> list[_Job]:
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

    def _apply(self, jobs: list[_Job]) -> None:
        connection.close_if_unusable_or_obsolete()
        owed, self._owed = self._owed, {}
        pending = [*owed.values(), *(job.pending for job in jobs if job.pending.event.pk not in owed)]
        self.batches += 1
        self.largest_batch = max(self.largest_batch, len(pending))
        try:
            results = inbox.webhooks_apply(pending)
        except Exception as error:  # noqa: BLE001 - a database outage: every waiter hears of it (503)
            self._owed.update(owed)
            for job in jobs:
                if job.future.cancelled():  # answered "queued": still ours to apply
                    self._owed[job.pending.event.pk] = job.pending
                elif not job.future.done():
                    job.future.set_exception(error)
            raise
        for job in jobs:
            result = results.get(job.pending.event.pk)
            if not job.future.done():
                job.future.set_result(result)

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
