"""What this server process's websockets are doing: counters, a report every 30 s, limits.

Each server process counts its open dashboard connections, the creator groups they joined, the
frames it sent, coalesced (a newer state replaced a pending one) and dropped (older than what
the browser already has, or pending when the connection closed), with the slowest send, and the
publishes it started. Every 30 seconds (``MONITOR_REPORT_SECONDS``) it logs one line and stores
the figures as a SystemHealth record named after the process, so staff see every process on
``/system/``. The same beat marks failed the resyncs that stopped sending their heartbeat
(``orders.syncs``), so none shows "running" for ever.
"""

import asyncio
import logging
import os
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.conf import settings

from creatorflow.health import health_record
from orders.syncs import sync_operations_fail_stale
from orders.writeback import writer_figures

from .runtime import coalescer_current

logger = logging.getLogger("creatorflow.realtime.monitor")

CONNECTIONS_WARNING = 5000
BACKLOG_LIMIT = 1000
COMPONENT_PREFIX = "realtime@"


@dataclass
class RealtimeMonitor:
    connections: int = 0
    groups: Counter = field(default_factory=Counter)
    frames_sent: int = 0
    frames_coalesced: int = 0
    frames_dropped: int = 0
    slowest_send_ms: float = 0.0
    backlog_closes: int = 0
    started: float = field(default_factory=time.monotonic)
    _reporter: asyncio.Task | None = None

    @property
    def component(self) -> str:
        return f"{COMPONENT_PREFIX}{socket.gethostname()}:{os.getpid()}"

    # --- what consumers and pacers tell it --------------------------------------------------

    def connection_opened(self, creator_id: int) -> None:
        self.connections += 1
        self.groups[creator_id] += 1
        if self.connections == CONNECTIONS_WARNING + 1:
            logger.warning(
                "realtime process %s holds %d connections (more than %d): add a server process",
                self.component, self.connections, CONNECTIONS_WARNING,
            )

    def connection_closed(self, creator_id: int) -> None:
        self.connections -= 1
        self.groups[creator_id] -= 1
        if self.groups[creator_id] <= 0:
            del self.groups[creator_id]

    def frame_sent(self, seconds: float) -> None:
        self.frames_sent += 1
        self.slowest_send_ms = max(self.slowest_send_ms, seconds * 1000)

    def frame_coalesced(self) -> None:
        self.frames_coalesced += 1

    def frames_lost(self, count: int = 1) -> None:
        self.frames_dropped += count

    def backlog_exceeded(self, *, creator_id: int, backlog: int) -> None:
        self.backlog_closes += 1
        logger.warning(
            "dashboard connection of creator %s has %d unsent frames (limit %d): closing it; it will resync by snapshot",
            creator_id, backlog, BACKLOG_LIMIT,
        )

    # --- reporting ----------------------------------------------------------------------------

    def snapshot(self) -> dict:
        write_back = writer_figures()
        publisher = coalescer_current()
        return {
            "process": self.component,
            "connections": self.connections,
            "groups": len(self.groups),
            "frames_sent": self.frames_sent,
            "frames_coalesced": self.frames_coalesced,
            "frames_dropped": self.frames_dropped,
            "slowest_send_ms": round(self.slowest_send_ms, 1),
            "backlog_closes": self.backlog_closes,
            "publishes": publisher.publishes if publisher is not None else 0,
            "publish_cycles": publisher.cycles if publisher is not None else 0,
            **_publish_times(publisher),
            "uptime_seconds": round(time.monotonic() - self.started),
            "stock_write_back_calls": write_back["calls"],
            "stock_write_back_owed": write_back["owed"],
            "stock_write_back_shops_failing": write_back["shops_failing"],
        }

    def report(self) -> dict:
        """Log this process's figures and store them as a SystemHealth record; return them."""
        figures = self.snapshot()
        logger.info(" ".join(f"{key}={value}" for key, value in figures.items()))
        overloaded = self.connections > CONNECTIONS_WARNING or self.backlog_closes
        health_record(
            component=self.component,
            status="warning" if overloaded else "nominal",
            metrics=figures,
            error_message=f"{self.connections} connections" if self.connections > CONNECTIONS_WARNING else "",
        )
        self.slowest_send_ms = 0.0  # the slowest send of each reporting interval
        if (publisher := coalescer_current()) is not None:
            publisher.slowest_publish_take()  # and the slowest publish of each
        return figures

    def reporting_start(self, interval: float | None = None) -> None:
        """Report every ``interval`` seconds (``MONITOR_REPORT_SECONDS``) from the running event loop, once per process."""
        if self._reporter is None or self._reporter.done():
            interval = interval or settings.CREATORFLOW["MONITOR_REPORT_SECONDS"]
            self._reporter = asyncio.get_running_loop().create_task(self._report_forever(interval))

    async def _report_forever(self, interval: float) -> None:
        while True:
            # database_sync_to_async: the connection goes back to the pool after each beat, and a
            # connection broken by a database restart is replaced instead of failing every beat.
            try:
                await database_sync_to_async(sync_operations_fail_stale)()
            except Exception:  # noqa: BLE001 - tried again on the next beat
                logger.exception("marking stale resyncs failed did not work")
            await asyncio.sleep(interval)
            try:
                await database_sync_to_async(self.report)()
            except Exception:  # noqa: BLE001 - a report lost to a database outage is not worth a crash
                logger.exception("realtime monitor report failed")


def _publish_times(publisher) -> dict:
    """What this process's publishing cycles took: mean, slowest since the last report, share of it on CPU.

    A share far below 100 % says the cycles waited for the CPU (the process's other threads, or
    the machine's other processes): under a flash sale on a saturated machine, that wait and not
    the publishing work sets how far the dashboards trail the orders.
    """
    if publisher is None or not publisher.publish_seconds:
        return {"publish_ms_mean": 0.0, "slowest_publish_ms": 0.0, "publish_cpu_percent": 0}
    return {
        "publish_ms_mean": round(publisher.publish_seconds * 1000 / publisher.cycles, 1),  # timed cycles were counted
        "slowest_publish_ms": round(publisher.slowest_publish_seconds * 1000, 1),
        "publish_cpu_percent": round(100 * publisher.publish_cpu_seconds / publisher.publish_seconds),
    }


MONITOR = RealtimeMonitor()
