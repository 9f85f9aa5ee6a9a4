"""Change marks: what a transaction changed for which creator, handed on after it commits.

Services of every app call ``changes_mark`` for what they change. The marks of one transaction
are gathered per creator and handed, once, after commit, to the listener the realtime app
registers at start-up (``changes_listen``): lower apps announce changes without importing the app
that shows them, and nothing is announced that could still roll back. Outside a transaction the
marks are handed on at once.
"""

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from django.db import connection, transaction

# Topics a change can touch; the realtime app maps each to the fragments and metrics it affects.
ORDERS, INVENTORY, ALERTS, SYNC, SYSTEM, LIVE = "orders", "inventory", "alerts", "sync", "system", "live"
TOPICS = (ORDERS, INVENTORY, ALERTS, SYNC, SYSTEM, LIVE)


@dataclass
class Change:
    """What changed for one creator: the topics, and per topic the ids of the rows marked.

    Row ids are the orders (ORDERS), products (INVENTORY), alerts (ALERTS) or sync operations
    (SYNC) that changed; a topic marked without ids changed as a whole (``whole``), and then its
    ids say nothing more.
    """

    topics: set[str] = field(default_factory=set)
    ids: dict[str, set[int]] = field(default_factory=lambda: defaultdict(set))
    whole: set[str] = field(default_factory=set)

    @classmethod
    def of(cls, *topics: str, ids: Iterable[int] = ()) -> "Change":
        change = cls()
        change.add(topics, ids)
        return change

    def add(self, topics: Iterable[str], ids: Iterable[int] = ()) -> None:
        ids = set(ids)
        for topic in topics:
            self.topics.add(topic)
            if ids:
                self.ids[topic] |= ids
            else:
                self.whole.add(topic)

    def merge(self, other: "Change") -> None:
        self.topics |= other.topics
        self.whole |= other.whole
        for topic, ids in other.ids.items():
            self.ids[topic] |= ids

    def split(self, topics: Iterable[str]) -> tuple["Change", "Change"]:
        """Return this change without ``topics``, and the part of it that is ``topics``."""
        topics = set(topics)
        parts = Change(), Change()
        for part, kept in zip(parts, (self.topics - topics, self.topics & topics), strict=True):
            part.topics = set(kept)
            part.whole = self.whole & kept
            for topic in kept & set(self.ids):
                part.ids[topic] = set(self.ids[topic])
        return parts

    def rows(self, topic: str) -> set[int] | None:
        """Return the ids of the rows of ``topic`` that changed, or None when it changed as a whole (or not at all)."""
        if topic not in self.topics or topic in self.whole:
            return None
        return set(self.ids.get(topic, ()))


Listener = Callable[[int, Change], None]
_listeners: list[Listener] = []


def changes_listen(listener: Listener) -> None:
    """Call ``listener(creator_id, change)`` for every creator's committed changes (once per process)."""
    if listener not in _listeners:
        _listeners.append(listener)


def _hand_on(creator_id: int, change: Change) -> None:
    for listener in _listeners:
        listener(creator_id, change)


class _Pending:
    """Changes per creator in the current transaction of one database connection."""

    def __init__(self) -> None:
        self.changes: dict[int, Change] = defaultdict(Change)

    def flush(self) -> None:
        changes, self.changes = self.changes, defaultdict(Change)
        for creator_id, change in changes.items():
            _hand_on(creator_id, change)


def _pending() -> _Pending:
    pending = getattr(connection, "_creatorflow_pending", None)
    if pending is None:
        pending = connection._creatorflow_pending = _Pending()
    return pending


def changes_mark(creator_id: int, *topics: str, ids: Iterable[int] = ()) -> None:
    """Note that the creator's ``topics`` changed (the rows ``ids`` of them, when given).

    Handed on once per transaction, after commit; outside a transaction, at once.
    """
    if not connection.in_atomic_block:
        _hand_on(creator_id, Change.of(*topics, ids=ids))
        return
    pending = _pending()
    if not any(callback == pending.flush for _, callback, _ in connection.run_on_commit):
        # Whatever is pending belongs to a transaction that rolled back.
        pending.changes.clear()
    # Registered on every mark, so a savepoint rolled back later cannot take the only flush
    # with it; the first flush to run hands on everything pending, the others find nothing.
    transaction.on_commit(pending.flush, robust=True)
    pending.changes[creator_id].add(topics, ids)
