"""Every push to a creator's browsers goes through here, after commit."""

import logging

logger = logging.getLogger("creatorflow.realtime")


def creator_group(creator_id: int) -> str:
    """Name the channel-layer group of one creator's open dashboards."""
    return f"creator.{creator_id}"


def dashboard_push(*, creator_id: int, topics: set[str]) -> None:
    """Render the fragments under ``topics`` once and send them to the creator's group."""
