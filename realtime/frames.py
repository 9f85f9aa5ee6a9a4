"""Per-connection pacing of dashboard frames.

A flash sale changes the same fragments hundreds of times a minute; a browser needs only the
latest state of each, a few times a second. ``FramePacer`` sends at most one frame per fragment
per interval, keeps only the newest pending state, and never sends a state older than one it
already sent (states are ordered by ``stamp``: the time their render started, taken after the
change it shows was committed).

Rows pushed on their own (``offer_rows``) are gathered per fragment: every pending row, newest
state of each, goes out in one frame at most once per interval. A row is never sent older than
the last whole render of its fragment sent, and a whole render never goes out older than a row
of it already sent (it is rendered afresh instead).
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
ROWS = "#rows"  # the pacing key of a fragment's rows: "recent-orders#rows"
ROW_STAMPS_KEPT = 2000  # per fragment, the newest rows' sent stamps remembered (the rest are long superseded)


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
        wrap_rows: Callable[[str, list[str]], str] = lambda name, rows: "".join(rows),
    ) -> None:
        self._send = send
        self._wrap_rows = wrap_rows
        self._on_backlog = on_backlog
        self._in_flight = 0
        self._render = render
        self._interval = interval
        self._sent_at: dict[str, float] = {}
        self._sent_stamp: dict[str, float] = {}
        self._pending: dict[str, _Pending] = {}
        self._rows: dict[str, dict[str, _Pending]] = {}  # fragment → row id → newest pending state
        self._row_stamps: dict[str, dict[str, float]] = {}  # fragment → row id → stamp sent
        self._timers: dict[str, asyncio.Task] = {}
        self.frames_sent = 0
        self.frames_dropped = 0  # coalesced away or stale

    @property
    def backlog(self) -> int:
        """Frames given to this connection and not yet written to it."""
        return len(self._pending) + sum(map(len, self._rows.values())) + self._in_flight

    def _is_stale(self, name: str, stamp: float) -> bool:
        return stamp < self._sent_stamp.get(name, float("-inf"))

    def _row_is_stale(self, name: str, row_id: str, stamp: float) -> bool:
        return self._is_stale(name, stamp) or stamp < self._row_stamps.get(name, {}).get(row_id, float("-inf"))

    async def offer_rows(self, name: str, rows: dict[str, str], *, stamp: float) -> None:
        """Take new states of rows (row id → HTML) of fragment ``name``."""
        pending = self._rows.setdefault(name, {})
        for row_id, html in rows.items():
            if self._row_is_stale(name, row_id, stamp):
                self.frames_dropped += 1
                MONITOR.frames_lost()
                continue
            current = pending.get(row_id)
            if current is not None:
                self.frames_dropped += 1
                MONITOR.frame_coalesced()
                if stamp < current.stamp:
                    continue
            pending[row_id] = _Pending(stamp, html)
        if not pending:
            del self._rows[name]
            return
        key = name + ROWS
        if key in self._timers or name in self._pending:
            return  # already on their way, or riding behind the fragment's whole render
        wait = self._sent_at.get(key, float("-inf")) + self._interval - time.monotonic()
        if wait <= 0:
            await self._deliver_rows(name)
            return
        self._timers[key] = asyncio.create_task(self._deliver_later(key, wait))
        if self.backlog > BACKLOG_LIMIT and self._on_backlog is not None:
            await self._on_backlog(self.backlog)

    async def _deliver_rows(self, name: str) -> None:
        rows = self._rows.pop(name, {})
        fresh = {row_id: row for row_id, row in rows.items() if not self._row_is_stale(name, row_id, row.stamp)}
        lost = len(rows) - len(fresh)
        if lost:
            self.frames_dropped += lost
            MONITOR.frames_lost(lost)
        if not fresh:
            return
        self._sent_at[name + ROWS] = time.monotonic()
        sent = self._row_stamps.setdefault(name, {})
        for row_id, row in fresh.items():
            sent.pop(row_id, None)  # re-inserted: the dict stays in the order rows were last sent
            sent[row_id] = row.stamp
        while len(sent) > ROW_STAMPS_KEPT:
            del sent[next(iter(sent))]
        await self._write(self._wrap_rows(name, [row.html for row in fresh.values()]))

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
            if name.endswith(ROWS):
                await self._deliver_rows(name.removesuffix(ROWS))
                return
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
        await self._deliver_whole(name, pending)
        if name in self._rows and name + ROWS not in self._timers:
            await self._deliver_rows(name)  # rows that waited behind this render, if newer than it

    async def _deliver_whole(self, name: str, pending: _Pending) -> None:
        self._sent_at[name] = time.monotonic()
        stamp, html = pending.stamp, pending.html
        rows_sent = self._row_stamps.get(name)
        if html is not RENDER_HERE and rows_sent and stamp < max(rows_sent.values()):
            html = RENDER_HERE  # older than a row of it already on the page: render it afresh
        if html is RENDER_HERE:
            stamp, html = await self._render(name)
        if self._is_stale(name, stamp):
            self.frames_dropped += 1
            MONITOR.frames_lost()
            return
        self._sent_stamp[name] = stamp
        if rows_sent:
            self._row_stamps[name] = {row_id: at for row_id, at in rows_sent.items() if at > stamp}
        await self._write(html)

    async def _write(self, html: str) -> None:
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
        MONITOR.frames_lost(len(self._pending) + sum(map(len, self._rows.values())))
        self._pending.clear()
        self._rows.clear()
