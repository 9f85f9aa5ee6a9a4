"""The dashboard's websocket: a snapshot on connect, then paced fragment frames.

Frames are raw HTML whose root elements carry ``id`` and ``hx-swap-oob``: the htmx ws
extension swaps them in place. Rendering and the rules live in ``realtime.fragments``.
"""

import json
import logging
import time
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from . import fragments
from .broadcast import FRAGMENTS_EVENT, creator_group
from .frames import RENDER_HERE, FramePacer
from .monitor import MONITOR
from .runtime import LAYER_WATCH, SNAPSHOTS

logger = logging.getLogger("creatorflow.realtime")

CLOSE_UNAUTHENTICATED = 4401
CLOSE_BACKLOG = 4408  # too far behind: the client reconnects and starts again from a snapshot
CLOSE_LAYER_LOST = 4503  # Redis stopped answering: the page shows Disconnected and reconnects


def _render_stamped(creator_id: int, names, filters) -> tuple[float, dict[str, str]]:
    stamp = time.time()
    return stamp, fragments.fragments_render(creator_id=creator_id, names=names, filters=filters)


def _filters_from_query(creator_id: int, query_string: bytes) -> fragments.DashboardFilters:
    query = {key: values[-1] for key, values in parse_qs(query_string.decode("latin-1")).items()}
    return fragments.filters_parse(creator_id=creator_id, data=query)


def _filters_update(creator_id: int, current: fragments.DashboardFilters, message: dict):
    data = {**current.as_query(), **{key: message[key] for key in ("warehouse", "status") if key in message}}
    return fragments.filters_parse(creator_id=creator_id, data=data)


class DashboardConsumer(AsyncWebsocketConsumer):
    """One browser tab's live dashboard: its creator's group only."""

    creator_id: int | None = None
    pacer: FramePacer | None = None
    filters: fragments.DashboardFilters = fragments.DEFAULT_FILTERS

    async def connect(self):
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            # Accept first: a refused handshake reaches the browser as 1006, which clients retry.
            await self.accept()
            await self.close(code=CLOSE_UNAUTHENTICATED)
            return
        self.creator_id = user.pk
        MONITOR.connection_opened(self.creator_id)
        MONITOR.reporting_start()
        self.pacer = FramePacer(
            send=self._send_frame,
            render=self._render_one,
            interval=settings.CREATORFLOW["PUSH_INTERVAL_SECONDS"],
            on_backlog=self._backlog_exceeded,
            wrap_rows=fragments.rows_frame,
        )
        # Join before rendering the snapshot, so no change between the two is missed.
        await self.channel_layer.group_add(creator_group(self.creator_id), self.channel_name)
        joined_at = time.time()
        LAYER_WATCH.watch(self, close_code=CLOSE_LAYER_LOST)
        # Accept before the database work: a crowd reconnecting after a restart must not run
        # into the server's handshake time limit while snapshots render.
        await self.accept()
        self.filters = await database_sync_to_async(_filters_from_query)(
            self.creator_id, self.scope.get("query_string", b"")
        )
        creator_id, filters = self.creator_id, self.filters
        stamp, snapshot = await SNAPSHOTS.render(
            (creator_id, filters),
            lambda: _render_stamped(creator_id, fragments.FRAGMENT_NAMES, filters),
            joined_at=joined_at,
        )
        await self.pacer.send_now(snapshot, stamp=stamp)

    async def disconnect(self, code):
        if self.pacer is not None:
            self.pacer.close()
        if self.creator_id is not None:
            LAYER_WATCH.forget(self)
            MONITOR.connection_closed(self.creator_id)
            try:
                await self.channel_layer.group_discard(creator_group(self.creator_id), self.channel_name)
            except Exception as error:  # noqa: BLE001 - Redis is away: the membership ends with its connection
                logger.info("dashboard left its group without Redis (%s)", type(error).__name__)

    async def receive(self, text_data=None, bytes_data=None):
        """Apply a filter change sent by the page (``ws-send``) and re-render what it narrows."""
        if self.creator_id is None or not text_data:
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        if not isinstance(message, dict):
            return
        filters = await database_sync_to_async(_filters_update)(self.creator_id, self.filters, message)
        changed = filters.fragments_changed_from(self.filters)
        self.filters = filters
        if changed:
            stamp, rendered = await database_sync_to_async(_render_stamped)(self.creator_id, changed, filters)
            await self.pacer.send_now(rendered, stamp=stamp)

    async def dispatch(self, message):
        """Hand broadcasts straight to their handler; everything else the Channels way.

        Channels closes stale database connections before every handler, a hop through the
        one thread that runs thread-sensitive code. Broadcast frames are rendered HTML and touch
        no database here (renders for filtered views close their own connections), so under a
        flash sale they skip that queue instead of waiting behind every other sync call.
        """
        if message.get("type") == FRAGMENTS_EVENT:
            await self.dashboard_fragments(message)
            return
        await super().dispatch(message)

    async def dashboard_fragments(self, event):
        """Pass a broadcast's fragments and rows on, rendering here the fragments this connection filters."""
        whole: dict[str, str | None] = {
            name: RENDER_HERE if self.filters.differs_for(name) else html for name, html in event["fragments"].items()
        }
        rows = {}
        for name, states in event.get("rows", {}).items():
            if self.filters.differs_for(name):
                whole[name] = RENDER_HERE  # which rows belong under this connection's filter, only a render can tell
            else:
                rows[name] = states
        await self.pacer.offer_all(whole, rows, stamp=event["stamp"])

    async def _render_one(self, name: str) -> tuple[float, str]:
        stamp, rendered = await database_sync_to_async(_render_stamped)(self.creator_id, [name], self.filters)
        return stamp, rendered[name]

    async def _send_frame(self, html: str) -> None:
        try:
            await self.send(text_data=html)
        except Exception as error:  # noqa: BLE001 - the socket went away; its disconnect event follows
            logger.debug("dashboard frame not sent, socket closed (%s)", type(error).__name__)
            if self.pacer is not None:
                self.pacer.close()

    async def _backlog_exceeded(self, backlog: int) -> None:
        MONITOR.backlog_exceeded(creator_id=self.creator_id, backlog=backlog)
        self.pacer.close()
        await self.close(code=CLOSE_BACKLOG)
