"""Every push to a creator's browsers goes through here, after commit.

``dashboard_push`` renders each changed fragment once per creator and sends the HTML to the
creator's group; every connected dashboard (in any server process sharing the channel layer)
then paces it out to its browser (``realtime.frames``).
"""

import logging
import time

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

from . import fragments

logger = logging.getLogger("creatorflow.realtime")

FRAGMENTS_EVENT = "dashboard.fragments"


def creator_group(creator_id: int) -> str:
    """Name the channel-layer group of one creator's open dashboards."""
    return f"creator.{creator_id}"


def dashboard_push(*, creator_id: int, topics: set[str]) -> None:
    """Render the fragments under ``topics`` once and send them to the creator's group.

    Never raises: the change is committed already, and a dashboard that misses a push is
    corrected by its next one or by the snapshot it gets when it reconnects.
    """
    names = fragments.fragments_for_topics(topics)
    if not names:
        return
    try:
        # Taken before rendering, so a later render of a later commit always carries a later stamp.
        stamp = time.time()
        rendered = fragments.fragments_render(creator_id=creator_id, names=names)
        layer = get_channel_layer()
        if layer is None:
            return
        async_to_sync(layer.group_send)(
            creator_group(creator_id),
            {"type": FRAGMENTS_EVENT, "stamp": stamp, "fragments": rendered},
        )
    except Exception as error:  # noqa: BLE001 - a failed push must not fail the committed change
        logger.error(
            "dashboard push to creator %s failed (%s: %s)",
            creator_id,
            type(error).__name__,
            _first_line(error),
            exc_info=logger.isEnabledFor(logging.DEBUG),
        )


def _first_line(error: Exception) -> str:
    return (str(error).splitlines() or [""])[0][:200]
