"""Every push to a creator's browsers goes through here, after commit.

``dashboard_push`` renders each changed fragment, or each changed row, once per creator and
sends the HTML to the creator's group; every connected dashboard (in any server process sharing the channel layer)
then paces it out to its browser (``realtime.frames``).
"""

import asyncio
import logging
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from creatorflow.changes import Change

from . import fragments, runtime

logger = logging.getLogger("creatorflow.realtime")

FRAGMENTS_EVENT = "dashboard.fragments"
SEND_TIMEOUT_SECONDS = 5.0

def creator_group(creator_id: int) -> str:
    """Name the channel-layer group of one creator's open dashboards."""
    return f"creator.{creator_id}"


def dashboard_push(*, creator_id: int, change: Change) -> None:
    """Render what ``change`` altered once and send it to the creator's group (``dashboards_push``)."""
    dashboards_push({creator_id: change})


def dashboards_push(changes: Mapping[int, Change], *, stamp: float | None = None) -> None:
    """Render what each creator's change altered, once, and send it to the creator's group.

    Only creators with a dashboard open somewhere are rendered for (``runtime.groups_watched``).

    Whole fragments go as ``fragments`` (name → HTML), rows pushed on their own as ``rows``
    (fragment → row id → HTML; ``fragments.push_plan`` decides which). Several creators are
    read together (``fragments.push_render_many``); when that fails, it raises, so the publisher
    can publish each on its own and one creator's failure never holds back another's push. For
    one creator it never raises: the change is committed already, and a dashboard that misses a
    push is corrected by its next one or by the snapshot it gets when it reconnects.
    """
    try:
        watched = runtime.groups_watched([creator_group(creator_id) for creator_id in changes])
        changes = {creator_id: change for creator_id, change in changes.items() if creator_group(creator_id) in watched}
        pushes = {creator_id: fragments.push_plan(creator_id=creator_id, change=change) for creator_id, change in changes.items()}
        pushes = {creator_id: push for creator_id, push in pushes.items() if push.fragments or push.rows}
        if not pushes:
            return
        # Taken before rendering (by the caller, before the reads it makes for this push), so a
        # later render of a later commit always carries a later stamp.
        stamp = time.time() if stamp is None else stamp
        rendered = fragments.push_render_many(pushes)
    except Exception as error:  # noqa: BLE001 - a failed push must not fail the committed change
        if len(changes) > 1:
            raise  # changes_publish_many publishes each creator on its own
        _log_failure(changes, error)
        return
    messages = [
        (creator_group(creator_id), {"type": FRAGMENTS_EVENT, "stamp": stamp, "fragments": whole, "rows": rows})
        for creator_id, (whole, rows) in rendered.items()
        if whole or rows
    ]
    try:
        _group_send(messages)
    except Exception as error:  # noqa: BLE001 - as above
        _log_failure(changes, error)


def _log_failure(changes: Mapping[int, Change], error: Exception) -> None:
    logger.error(
        "dashboard push to creator %s failed (%s: %s)",
        ", ".join(map(str, changes)),
        type(error).__name__,
        _first_line(error),
        exc_info=logger.isEnabledFor(logging.DEBUG),
    )


def _group_send(messages: list[tuple[str, dict]]) -> None:
    """Send each (group, message), all in one hop onto the server's event loop when there is one.

    Views run in threads that asgiref links to the server loop, but a plain thread (the
    reservation expiry timer) would get a fresh loop from ``async_to_sync``: the in-memory
    layer's queues belong to the server loop and would not wake its consumers, and Redis
    connections would be opened per call.
    """
    layer = get_channel_layer()
    if layer is None or not messages:
        return

    async def send_all() -> None:
        await asyncio.gather(*(layer.group_send(group, message) for group, message in messages))

    loop = runtime.server_loop()
    here = _running_loop()
    if loop is not None and here is not loop:
        asyncio.run_coroutine_threadsafe(send_all(), loop).result(timeout=SEND_TIMEOUT_SECONDS)
    elif here is not None and loop is None:
        # A synchronous caller inside some other running loop (a notebook, a browser-driven test):
        # async_to_sync may not block that loop's thread, so the send runs on a thread of its own.
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="creatorflow-send") as sender:
            sender.submit(async_to_sync(send_all)).result(timeout=SEND_TIMEOUT_SECONDS)
    else:
        async_to_sync(send_all)()


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [""])[0][:200]
