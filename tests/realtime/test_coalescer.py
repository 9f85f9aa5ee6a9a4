"""Coalesced publishing: leading edge, at most one publish per creator per interval, latest state
last, one slow creator never holding up another, and one slot per creator across processes."""

import os
import threading
import time
import uuid

import pytest

from creatorflow.changes import Change
from realtime.runtime import Coalescer, PublishSlots

INTERVAL = 0.1


class Recorder:
    """A publish function that notes when each creator was published, optionally slowly."""

    def __init__(self, *, slow: dict[int, float] | None = None) -> None:
        self.calls: list[tuple[int, float, frozenset]] = []
        self.cycles: list[set[int]] = []
        self.slow = slow or {}
        self.lock = threading.Lock()

    def __call__(self, changes: dict[int, Change]) -> None:
        started = time.monotonic()
        time.sleep(max(self.slow.get(creator_id, 0) for creator_id in changes))
        with self.lock:
            self.cycles.append(set(changes))
            self.calls.extend((creator_id, started, frozenset(change.topics)) for creator_id, change in changes.items())

    def of(self, creator_id: int) -> list[float]:
        with self.lock:
            return [at for creator, at, _ in self.calls if creator == creator_id]


def wait_for(predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def burst(coalescers: list[Coalescer], creator_id: int, *, seconds: float, topics=("orders",)) -> float:
    """Add a change every 5 ms for ``seconds``, spread over the coalescers; return when the last was added."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        coalescers[n % len(coalescers)].add(creator_id, Change.of(*topics))
        n += 1
        time.sleep(0.005)
    return time.monotonic()


def test_the_first_change_is_published_at_once_and_a_burst_at_most_once_per_interval():
    recorder = Recorder()
    coalescer = Coalescer(INTERVAL, recorder)
    added = time.monotonic()
    coalescer.add(1, Change.of("orders"))
    wait_for(lambda: recorder.of(1))
    assert recorder.of(1)[0] - added < INTERVAL / 2  # leading edge

    last_added = burst([coalescer], 1, seconds=1.0)
    wait_for(lambda: recorder.of(1)[-1] > last_added)  # the latest state is published last
    publishes = recorder.of(1)
    assert len(publishes) <= 1 + 1.0 / INTERVAL + 2, len(publishes)  # not 200
    gaps = [later - earlier for earlier, later in zip(publishes, publishes[1:], strict=False)]
    assert min(gaps) >= INTERVAL * 0.9, gaps


def test_sync_news_keeps_an_interval_of_its_own_and_its_latest_state_still_goes_last():
    recorder = Recorder()
    coalescer = Coalescer(INTERVAL, recorder, slow_topics={"sync"}, slow_interval=0.5)
    added = time.monotonic()
    coalescer.add(1, Change.of("orders", "sync"))
    wait_for(lambda: recorder.of(1))
    assert recorder.calls[0][1] - added < INTERVAL / 2
    assert recorder.calls[0][2] == {"orders", "sync"}  # after a quiet spell, sync news goes at once too

    # Every order of a sale advances the webhook stream: orders keep their interval, sync its own.
    last_added = burst([coalescer], 1, seconds=1.2, topics=("orders", "sync"))
    wait_for(lambda: any("sync" in topics and at > last_added for _, at, topics in recorder.calls), seconds=3)
    with_sync = [at for _, at, topics in recorder.calls if "sync" in topics]
    gaps = [later - earlier for earlier, later in zip(with_sync, with_sync[1:], strict=False)]
    assert min(gaps) >= 0.5 * 0.9, gaps
    assert len(recorder.calls) >= 2 * len(with_sync), recorder.calls  # orders went out in between, without it
    # While orders flow, sync news rides along with them: no publish of its own.
    assert all(topics == {"orders", "sync"} for _, at, topics in recorder.calls if "sync" in topics and at <= last_added)
    # The last sync state went after the last change, on its own once the orders were out.
    assert recorder.calls[-1][2] == {"sync"}


def test_sync_news_due_waits_for_the_next_order_instead_of_a_publish_of_its_own():
    # A hundred creators each selling an order every second or so: sync news must not double their publishes.
    recorder = Recorder()
    coalescer = Coalescer(INTERVAL, recorder, slow_topics={"sync"}, slow_interval=0.5)
    end = time.monotonic() + 2.0
    while time.monotonic() < end:
        last_added = time.monotonic()
        coalescer.add(1, Change.of("orders", "sync"))
        time.sleep(0.3)
    wait_for(lambda: not coalescer.pending and not coalescer.in_flight, seconds=3)

    during = [topics for _, at, topics in recorder.calls if at <= last_added]
    assert {"sync"} not in during, during
    assert sum("sync" in topics for topics in during) >= 2, during  # it still went along, every 0.5 s or so
    # The latest sync state went last: with the last order, or alone after it, once.
    assert "sync" in recorder.calls[-1][2] and recorder.calls[-1][1] >= last_added
    assert len(recorder.calls) <= len(during) + 1


def test_a_split_change_keeps_each_topics_rows_and_wholeness():
    change = Change.of("orders", ids=[1, 2])
    change.add(["sync"])
    change.add(["inventory"], ids=[7])
    rest, sync = change.split({"sync"})
    assert (rest.topics, rest.rows("orders"), rest.rows("inventory"), rest.whole) == ({"orders", "inventory"}, {1, 2}, {7}, set())
    assert (sync.topics, sync.whole, sync.rows("sync")) == ({"sync"}, {"sync"}, None)


def test_a_slow_creator_does_not_hold_up_another():
    recorder = Recorder(slow={1: 1.0})
    coalescer = Coalescer(INTERVAL, recorder, workers=4)
    coalescer.add(1, Change.of("orders"))
    time.sleep(0.05)
    added = time.monotonic()
    coalescer.add(2, Change.of("orders"))
    wait_for(lambda: recorder.of(2))
    assert recorder.of(2)[0] - added < 0.5
    wait_for(lambda: recorder.of(1), seconds=5)


def test_creators_falling_due_while_every_worker_is_busy_are_published_together_in_one_cycle():
    recorder = Recorder(slow={1: 0.3})
    coalescer = Coalescer(INTERVAL, recorder, workers=1)
    coalescer.add(1, Change.of("orders"))
    wait_for(lambda: recorder.cycles or coalescer.in_flight)  # creator 1's cycle holds the one worker
    for creator_id in (2, 3, 4):
        coalescer.add(creator_id, Change.of("orders"))
    wait_for(lambda: len(recorder.calls) == 4)
    assert recorder.cycles == [{1}, {2, 3, 4}]
    assert (coalescer.publishes, coalescer.cycles) == (4, 2)


def test_at_low_load_each_change_is_published_at_once_in_a_cycle_of_its_own():
    recorder = Recorder()
    coalescer = Coalescer(INTERVAL, recorder)
    for creator_id in (1, 2):
        added = time.monotonic()
        coalescer.add(creator_id, Change.of("orders"))
        wait_for(lambda creator_id=creator_id: recorder.of(creator_id))
        assert recorder.of(creator_id)[0] - added < INTERVAL / 2
    assert recorder.cycles == [{1}, {2}]


@pytest.mark.redis
def test_processes_sharing_redis_publish_a_creator_once_per_interval_between_them():
    # Two coalescers with their own slots client stand for two server processes.
    prefix = f"test-{uuid.uuid4().hex[:8]}"
    url = os.environ["REDIS_URL"]
    recorder = Recorder()
    processes = [Coalescer(INTERVAL, recorder, claim=PublishSlots(url, prefix).claim) for _ in range(2)]

    last_added = burst(processes, 7, seconds=1.0)

    wait_for(lambda: recorder.of(7) and recorder.of(7)[-1] > last_added)  # latest state still published last
    publishes = sorted(recorder.of(7))
    assert len(publishes) <= 1 + 1.0 / INTERVAL + 2, len(publishes)  # one process's worth, not two
    gaps = [later - earlier for earlier, later in zip(publishes, publishes[1:], strict=False)]
    assert min(gaps) >= INTERVAL * 0.8, gaps
