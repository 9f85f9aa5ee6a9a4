"""Per-connection pacing of dashboard frames.

A flash sale changes the same fragments hundreds of times a minute; a browser needs only the
latest state of each, a few times a second. ``FramePacer`` sends at most one frame per fragment
per interval, keeps only the newest pending state, and never sends a state older than one it
already sent (states are ordered by ``stamp``: the time their render started, taken after the
change it shows was committed).
"""

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from .monitor import BACKLOG_LIMIT, MONITOR

logger = logging.getLogger("creatorflow.realtime")

# Marks a pending fragment that this connection must render itself (it is filtered).
RENDER_HERE = None


@dataclass
class _Pending:
    stamp: float
    html: str | None


class FramePacer:
    """Coalesce fragment frames for one websocket connection."""

    def __init__(
        self,
        *,
        send: Callable[[str], Awaitable[None]],
        render: Callable[[str], Awaitable[tuple[float, str]]],
        interval: float,
        on_backlog: Callable[[int], Awaitable[None]] | None = None,
    ) -> None:
        self._send = send
        self._on_backlog = on_backlog
        self._in_flight = 0
        self._render = render
        self._interval = interval
        self._sent_at: dict[str, float] = {}
        self._sent_stamp: dict[str, float] = {}
        self._pending: dict[str, _Pending] = {}
        self._timers: dict[str, asyncio.Task] = {}
        self.frames_sent = 0
        self.frames_dropped = 0  # coalesced away or stale

    @property
    def backlog(self) -> int:
        """Frames given to this connection and not yet written to it."""
        return len(self._pending) + self._in_flight

    def _is_stale(self, name: str, stamp: float) -> bool:
        return stamp < self._sent_stamp.get(name, float("-inf"))

    async def offer(self, name: str, html: str | None, *, stamp: float) -> None:
        """Take a new state of fragment ``name`` (``RENDER_HERE``: render it at send time)."""
        if self._is_stale(name, stamp):
            self.frames_dropped += 1
            MONITOR.frames_lost()
            return
        pending = self._pending.get(name)
        if pending is not None:
            if stamp >= pending.stamp:
                pending.stamp, pending.html = stamp, html
            self.frames_dropped += 1
            MONITOR.frame_coalesced()
            return
        wait = self._sent_at.get(name, float("-inf")) + self._interval - time.monotonic()
        if wait <= 0:
            await self._deliver(name, _Pending(stamp, html))
            return
        self._pending[name] = _Pending(stamp, html)
        self._timers[name] = asyncio.create_task(self._deliver_later(name, wait))
        if self.backlog > BACKLOG_LIMIT and self._on_backlog is not None:
            await self._on_backlog(self.backlog)

    async def send_now(self, frames: dict[str, str], *, stamp: float) -> None:
        """Send a snapshot at once, superseding anything pending for its fragments."""
        for name, html in frames.items():
            if self._is_stale(name, stamp):
                continue
            pending = self._pending.get(name)
            if pending is not None and pending.stamp > stamp:
                continue
            self._pending.pop(name, None)
            timer = self._timers.pop(name, None)
            if timer is not None:
                timer.cancel()
            await self._deliver(name, _Pending(stamp, html))

    async def _deliver_later(self, name: str, wait: float) -> None:
        try:
            await asyncio.sleep(wait)
            pending = self._pending.pop(name, None)
            if pending is not None:
                await self._deliver(name, pending)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("dashboard frame for %s could not be sent", name)
        finally:
            if self._timers.get(name) is asyncio.current_task():
                del self._timers[name]

    async def _deliver(self, name: str, pending: _Pending) -> None:
        self._sent_at[name] = time.monotonic()
        stamp, html = pending.stamp, pending.html
        if html is RENDER_HERE:
            stamp, html = await self._render(name)
        if self._is_stale(name, stamp):
            self.frames_dropped += 1
            MONITOR.frames_lost()
            return
        self._sent_stamp[name] = stamp
        self.frames_sent += 1
        started = time.monotonic()
        self._in_flight += 1
        try:
            await self._send(html)
        finally:
            self._in_flight -= 1
        MONITOR.frame_sent(time.monotonic() - started)

    def close(self) -> None:
        """Cancel pending sends: the connection is gone."""
        for task in self._timers.values():
            task.cancel()
        self._timers.clear()
        MONITOR.frames_lost(len(self._pending))
        self._pending.clear()
