"""Per-connection pacing of dashboard frames.

A flash sale changes the same fragments hundreds of times a minute; a browser needs only the
latest state of each, a few times a second. ``FramePacer`` sends at most one state of each
fragment per interval, keeps only the newest pending state, and never sends a state older than
one it already sent (states are ordered by ``stamp``: when their publishing cycle or render
started, before its reads and after the change it shows was committed).

A state is due an interval after the connection's last frame of its fragment, or at once when
it was rendered at least an interval after the state that frame carried. The publisher already
spaces each creator's renders by its interval; pacing their arrival again would hold most of
them (they take unequal times to render and travel), adding up to an interval to what a busy
seller's tabs trail behind. A tab thus gets at most one state of a fragment per interval of the
states' own time, at the rate the publisher renders them.

Rows pushed on their own are gathered per fragment: every pending row, newest state of each,
goes out at most once per interval. A row is never sent older than the last whole render of its
fragment sent, and a whole render never goes out older than a row of it already sent (it is
rendered afresh instead).

Everything due at the same moment goes out as one websocket frame: a broadcast's cards, chart
and rows together, a snapshot's fragments together (the htmx ws extension swaps every element of
a frame). Whole renders come first, then each list's rows, so rows land in a list no older than
them; the rows travel in a ``<template>`` (``fragments.rows_frame``), where table rows parse
whatever stands before them. One frame a moment, not one per list, keeps a busy seller's tabs
at a frame per push: a websocket write is a system call for every tab.
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
    """Coalesce the frames of one websocket connection."""

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
        self._render = render
        self._interval = interval
        self._on_backlog = on_backlog
        self._wrap_rows = wrap_rows
        self._in_flight = 0
        self._sent_at: dict[str, float] = {}  # pacing key → when its last state was sent (monotonic)
        self._sent_stamp: dict[str, float] = {}  # fragment → stamp of the whole render sent last
        self._sent_state: dict[str, float] = {}  # pacing key → stamp of the newest state in its last frame
        self._pending: dict[str, _Pending] = {}  # fragment → newest whole state waiting
        self._rows: dict[str, dict[str, _Pending]] = {}  # fragment → row id → newest pending state
        self._row_stamps: dict[str, dict[str, float]] = {}  # fragment → row id → stamp sent
        self._timer: asyncio.Task | None = None
        self._timer_at = float("inf")
        self.frames_sent = 0
        self.frames_dropped = 0  # coalesced away or stale

    @property
    def backlog(self) -> int:
        """States given to this connection and not yet written to it."""
        return len(self._pending) + sum(map(len, self._rows.values())) + self._in_flight

    # --- taking states ---------------------------------------------------------------------------

    async def offer(self, name: str, html: str | None, *, stamp: float) -> None:
        """Take a new state of fragment ``name`` (``RENDER_HERE``: render it at send time)."""
        await self.offer_all({name: html}, {}, stamp=stamp)

    async def offer_rows(self, name: str, rows: dict[str, str], *, stamp: float) -> None:
        """Take new states of rows (row id → HTML) of fragment ``name``."""
        await self.offer_all({}, {name: rows}, stamp=stamp)

    async def offer_all(self, fragments: dict[str, str | None], rows: dict[str, dict[str, str]], *, stamp: float) -> None:
        """Take a broadcast's whole fragments and rows; send at once whatever is due (see ``_flush``)."""
        for name, html in fragments.items():
            self._take(name, html, stamp)
        for name, states in rows.items():
            self._take_rows(name, states, stamp)
        await self._flush()
        if self.backlog > BACKLOG_LIMIT and self._on_backlog is not None:
            await self._on_backlog(self.backlog)

    async def send_now(self, frames: dict[str, str], *, stamp: float) -> None:
        """Send a snapshot at once, its fragments in one frame, superseding anything pending for them."""
        wholes, rows, sent = [], [], {}
        for name, html in frames.items():
            if self._is_stale(name, stamp):
                continue
            pending = self._pending.get(name)
            if pending is not None and pending.stamp > stamp:
                continue
            self._pending.pop(name, None)
            sent[name] = stamp
            if (part := await self._whole(name, _Pending(stamp, html))) is not None:
                wholes.append(part)
        for name in frames:
            if name not in self._rows:
                continue
            newest = self._rows_newest(name)
            if (part := self._rows_part(name)) is not None:
                rows.append(part)  # rows that waited behind these renders, if newer
                sent[name + ROWS] = newest
        self._mark_sent(sent)
        await self._write(wholes + rows)  # renders first: rows land in a list no older than them
        self._schedule()

    def _is_stale(self, name: str, stamp: float) -> bool:
        return stamp < self._sent_stamp.get(name, float("-inf"))

    def _row_is_stale(self, name: str, row_id: str, stamp: float) -> bool:
        return self._is_stale(name, stamp) or stamp < self._row_stamps.get(name, {}).get(row_id, float("-inf"))

    def _take(self, name: str, html: str | None, stamp: float) -> None:
        if self._is_stale(name, stamp):
            self.frames_dropped += 1
            MONITOR.frames_lost()
            return
        pending = self._pending.get(name)
        if pending is not None:
            self.frames_dropped += 1
            MONITOR.frame_coalesced()
            if stamp < pending.stamp:
                return
        self._pending[name] = _Pending(stamp, html)

    def _take_rows(self, name: str, states: dict[str, str], stamp: float) -> None:
        pending = self._rows.setdefault(name, {})
        for row_id, html in states.items():
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

    # --- sending ---------------------------------------------------------------------------------

    def _due_at(self, key: str) -> float:
        return self._sent_at.get(key, float("-inf")) + self._interval

    def _is_due(self, key: str, stamp: float, now: float) -> bool:
        """Due an interval after the key's last frame, or at once when rendered an interval after the state it carried."""
        return self._due_at(key) <= now or stamp >= self._sent_state.get(key, float("-inf")) + self._interval

    def _rows_newest(self, name: str) -> float:
        return max((row.stamp for row in self._rows.get(name, {}).values()), default=0.0)

    async def _flush(self) -> None:
        """Send every whole render and row set that is due, in one frame: the renders, then each list's rows."""
        now = time.monotonic()
        wholes, rows, renewed, sent = [], [], set(), {}
        for name in [name for name, pending in self._pending.items() if self._is_due(name, pending.stamp, now)]:
            pending = self._pending.pop(name, None)
            if pending is None:
                continue  # sent meanwhile, by a flush that ran while this one awaited a render
            sent[name] = pending.stamp
            if (part := await self._whole(name, pending)) is not None:
                wholes.append(part)
                renewed.add(name)
        for name in list(self._rows):
            if name in self._pending:
                continue  # rows wait behind their list's render
            newest = self._rows_newest(name)
            if (name in renewed or self._is_due(name + ROWS, newest, now)) and (part := self._rows_part(name)) is not None:
                rows.append(part)
                sent[name + ROWS] = newest
        self._mark_sent(sent)
        await self._write(wholes + rows)  # renders first: rows land in a list no older than them
        self._schedule()

    def _mark_sent(self, sent: dict[str, float]) -> None:
        """Start the interval of everything sent together at one instant, so it falls due together again.

        ``sent``: pacing key → stamp of the newest state it carried.
        """
        now = time.monotonic()
        for key, stamp in sent.items():
            self._sent_at[key] = now
            self._sent_state[key] = max(stamp, self._sent_state.get(key, float("-inf")))

    def _schedule(self) -> None:
        """Wake up when the next pending state is due."""
        due = [self._due_at(name) for name in self._pending]
        due += [self._due_at(name + ROWS) for name in self._rows if name not in self._pending]
        if not due:
            return
        at = min(due)
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = at
        self._timer = asyncio.create_task(self._flush_at(at))

    async def _flush_at(self, at: float) -> None:
        try:
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            self._timer, self._timer_at = None, float("inf")  # from here on, nothing may cancel this flush
            await self._flush()
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception("dashboard frame could not be sent")

    async def _whole(self, name: str, pending: _Pending) -> str | None:
        """Return the whole render to send for ``name`` (rendered here when asked or when older than a row sent)."""
        stamp, html = pending.stamp, pending.html
        rows_sent = self._row_stamps.get(name)
        if html is not RENDER_HERE and rows_sent and stamp < max(rows_sent.values()):
            html = RENDER_HERE  # older than a row of it already on the page: render it afresh
        if html is RENDER_HERE:
            stamp, html = await self._render(name)
        if self._is_stale(name, stamp):
            self.frames_dropped += 1
            MONITOR.frames_lost()
            return None
        self._sent_stamp[name] = stamp
        if rows_sent:
            self._row_stamps[name] = {row_id: at for row_id, at in rows_sent.items() if at > stamp}
        return html

    def _rows_part(self, name: str) -> str | None:
        """Return the pending rows of ``name`` newer than what was sent, wrapped as one element."""
        rows = self._rows.pop(name, {})
        fresh = {row_id: row for row_id, row in rows.items() if not self._row_is_stale(name, row_id, row.stamp)}
        lost = len(rows) - len(fresh)
        if lost:
            self.frames_dropped += lost
            MONITOR.frames_lost(lost)
        if not fresh:
            return None
        sent = self._row_stamps.setdefault(name, {})
        for row_id, row in fresh.items():
            sent.pop(row_id, None)  # re-inserted: the dict stays in the order rows were last sent
            sent[row_id] = row.stamp
        while len(sent) > ROW_STAMPS_KEPT:
            del sent[next(iter(sent))]
        return self._wrap_rows(name, [row.html for row in fresh.values()])

    async def _write(self, parts: list[str]) -> None:
        """Send what is due as one frame."""
        if not parts:
            return
        self.frames_sent += 1
        started = time.monotonic()
        self._in_flight += 1
        try:
            await self._send("".join(parts))
        finally:
            self._in_flight -= 1
        MONITOR.frame_sent(time.monotonic() - started)

    def close(self) -> None:
        """Cancel pending sends: the connection is gone."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        MONITOR.frames_lost(len(self._pending) + sum(map(len, self._rows.values())))
        self._pending.clear()
        self._rows.clear()
