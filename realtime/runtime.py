"""Process-wide machinery of the realtime app: the server's event loop, the publishing thread,
and the snapshot renders shared between connections.

Everything here belongs to one server process and starts on first use, never at import, so a
server that forks workers starts its own in each worker.
"""

import asyncio
import atexit
import logging
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor

import redis  # channels-redis's own client library
import redis.asyncio
from channels.db import database_sync_to_async
from channels.layers import InMemoryChannelLayer, get_channel_layer
from channels_redis.pubsub import RedisPubSubChannelLayer
from django.conf import settings
from django.db import connection

from creatorflow.changes import SYNC, Change

logger = logging.getLogger("creatorflow.realtime")

# --- the server's event loop -------------------------------------------------------------------

_server_loop: asyncio.AbstractEventLoop | None = None


def server_loop_register() -> None:
    """Remember the running event loop of this server process (the ASGI application calls this)."""
    global _server_loop  # noqa: PLW0603 - one loop per process, set from inside it
    _server_loop = asyncio.get_running_loop()


def server_loop() -> asyncio.AbstractEventLoop | None:
    """Return this process's server loop when it is running, None in a command or before the first request."""
    loop = _server_loop
    return loop if loop is not None and loop.is_running() else None


# --- Redis watched for the open dashboards --------------------------------------------------------


class LayerWatch:
    """Close this process's dashboards when Redis stops answering, so their pages say Disconnected.

    Over Pub/Sub a process that loses Redis receives nothing and no receiver is told: its tabs
    would go on looking live while their pushes are lost. While dashboards are open, the watch
    sends Redis a PING every ``interval`` seconds; when ``failures`` in a row fail (one slow
    answer on a busy machine is not an outage), it closes every open dashboard of the process
    (``close_code``). Their pages show Disconnected and reconnect with backoff,
    which Redis refuses until it is back, and then to a fresh snapshot. Without Redis (the
    in-memory layer of one process) there is nothing to watch.
    """

    def __init__(self, *, interval: float = 1.0, timeout: float = 1.0, failures: int = 2) -> None:
        self.interval, self.timeout, self.failures = interval, timeout, failures
        self.sockets: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # open dashboard → its close code
        self.task: asyncio.Task | None = None

    def watch(self, consumer, *, close_code: int) -> None:
        """Watch Redis for ``consumer`` (an open dashboard on this process's loop)."""
        if not settings.REDIS_URL:
            return
        self.sockets[consumer] = close_code
        loop = asyncio.get_running_loop()
        if self.task is None or self.task.done() or self.task.get_loop() is not loop:  # a server has one loop; tests, many
            self.task = loop.create_task(self._run(), name="creatorflow-layer-watch")

    def forget(self, consumer) -> None:
        self.sockets.pop(consumer, None)
        if not self.sockets and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        client = redis.asyncio.Redis.from_url(settings.REDIS_URL, socket_timeout=self.timeout, socket_connect_timeout=self.timeout)
        failed = 0
        try:
            while self.sockets:
                await asyncio.sleep(self.interval)
                try:
                    await client.ping()
                    failed = 0
                except (redis.RedisError, OSError) as error:
                    failed += 1
                    if failed < self.failures:
                        continue
                    failed = 0
                    lost = list(self.sockets.items())
                    logger.warning("Redis is not answering (%s): closing %s dashboards of this process", type(error).__name__, len(lost))
                    for consumer, close_code in lost:
                        self.sockets.pop(consumer, None)
                        try:
                            await consumer.close(code=close_code)
                        except Exception as closing:  # noqa: BLE001 - its socket went away meanwhile
                            logger.debug("dashboard already closed (%s)", type(closing).__name__)
        finally:
            await client.aclose()


LAYER_WATCH = LayerWatch()


# --- which creators have a dashboard open --------------------------------------------------------


class PubSubWatchers:
    """Which groups of the Redis Pub/Sub channel layer have a member on any server process.

    Over Pub/Sub a group is a Redis channel that each process with a member subscribes to (and
    leaves when its last member does, or when it dies with its connection); ``PUBSUB NUMSUB``
    counts those subscriptions for every group of a publishing cycle in one round trip. When
    Redis does not answer, every group counts as watched and the push is tried as before.
    """

    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.url, self.prefix = url, prefix

    def watched(self, groups: Sequence[str]) -> set[str]:
        # The name channels_redis gives a group's Pub/Sub channel (RedisPubSubLoopLayer).
        try:
            counts = self.client.pubsub_numsub(*(f"{self.prefix}__group__{group}" for group in groups))
        except redis.RedisError:
            return set(groups)
        return {group for group, (_, subscribers) in zip(groups, counts, strict=True) if subscribers}


_pubsub_watchers: PubSubWatchers | None = None


def groups_watched(groups: Sequence[str]) -> set[str]:
    """Return the channel-layer groups, of ``groups``, that have a member: an open dashboard.

    Most sellers sharing the servers are not watching while one of them sells: a push rendered
    for a group nobody is in is work for nobody. A tab that opens later gets its snapshot, which
    it renders after joining its group, so it misses nothing. The in-memory layer keeps its
    members in the process; the Redis Pub/Sub layer is asked (``PubSubWatchers``); a layer that
    cannot tell counts every group as watched.
    """
    global _pubsub_watchers  # noqa: PLW0603 - one client per process
    if not groups:
        return set()
    layer = get_channel_layer()
    if layer is None:
        return set()
    if isinstance(layer, InMemoryChannelLayer):
        return {group for group in groups if layer.groups.get(group)}
    config = settings.CHANNEL_LAYERS["default"].get("CONFIG", {})
    address = _redis_address(config)
    if not isinstance(layer, RedisPubSubChannelLayer) or address is None:
        return set(groups)
    prefix = config.get("prefix", "asgi")
    if _pubsub_watchers is None or (_pubsub_watchers.url, _pubsub_watchers.prefix) != (address, prefix):
        _pubsub_watchers = PubSubWatchers(address, prefix)
    return _pubsub_watchers.watched(groups)


def _redis_address(config: dict) -> str | None:
    """The URL of a layer's one Redis host; None when it is sharded over several (the layer alone
    knows which of them holds a group) or given in a form other than a URL."""
    hosts = config.get("hosts", [])
    if len(hosts) != 1:
        return None
    address = hosts[0].get("address") if isinstance(hosts[0], dict) else hosts[0]
    return address if isinstance(address, str) else None


# --- coalesced publishing ----------------------------------------------------------------------

Publish = Callable[[dict[int, Change]], None]  # creator → its merged change, every creator due together
Claim = Callable[[int, float], float]


def claim_always(creator_id: int, interval: float) -> float:
    """One server process (the embedded default): it may always publish."""
    return 0.0


class PublishSlots:
    """At most one publish per creator per interval across every server process, kept in Redis.

    A process that wants to publish a creator's changes takes the creator's slot (``SET NX PX``
    for the interval); when another process holds it, it waits until the slot ends and tries
    again, so its own committed changes are still published after they were made. Without Redis
    (an outage), every process publishes: pushes stay current, only the cost grows.
    """

    def __init__(self, url: str, prefix: str) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.prefix = prefix

    def claim(self, creator_id: int, interval: float) -> float:
        """Return 0 when this process may publish now, else the seconds until the slot is free."""
        key = f"{self.prefix}:publish:{creator_id}"
        try:
            if self.client.set(key, b"1", nx=True, px=max(1, int(interval * 1000))):
                return 0.0
            remaining = self.client.pttl(key)
        except redis.RedisError:
            return 0.0
        return max(remaining, 1) / 1000


class Coalescer:
    """Publish each creator's changes at most once per ``interval``, on a small pool of threads.

    A flash sale commits hundreds of orders a second for one creator; recomputing metrics and
    rendering fragments for each would cost more than the orders themselves. The first change
    after a quiet spell is published at once (leading edge); changes gathered while a creator
    waits out its interval, or while its last publish runs, are merged and published once, from
    the state current by then (latest state wins).

    Every creator due at the same moment is handed to ``publish`` in one call (a cycle), which
    reads and writes for all of them together. At most ``workers`` cycles run at once, side by
    side, so one slow cycle never holds up the next; while they all run, what falls due waits
    and goes in the next cycle together, as the applier batches webhooks: at low load a cycle is
    one creator published at once, and a hundred busy creators cost a few cycles a second
    instead of a hundred publishes. One creator never runs twice at once.

    ``slow_topics`` (sync news) keep a longer interval of their own, ``slow_interval``, with the
    same leading edge and latest-state-last: while they wait it out, the creator's other changes
    go without them; once due, they go with the next of those, or on their own when none comes
    within another interval.
    """

    def __init__(
        self,
        interval: float,
        publish: Publish,
        *,
        workers: int = 2,
        claim: Claim = claim_always,
        slow_topics: Iterable[str] = (),
        slow_interval: float = 0.0,
    ) -> None:
        self.interval = interval
        self.publish = publish
        self.claim = claim
        self.slow_topics = frozenset(slow_topics)
        self.slow_interval = slow_interval
        self.condition = threading.Condition()
        self.pending: dict[int, Change] = defaultdict(Change)
        self.last: dict[int, float] = {}
        self.last_slow: dict[int, float] = {}  # creator → when its slow topics were last published
        self.running: set[int] = set()
        self.thread: threading.Thread | None = None
        self.workers = workers
        self.in_flight = 0  # cycles started and not finished
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="creatorflow-publish")
        self.publishes = 0  # how many creator publishes started (for tests and diagnostics)
        self.cycles = 0  # how many calls of ``publish`` they took
        # What the cycles took, from start to end and on this process's CPU: far apart, the
        # process is starved (its other threads or the machine's other processes hold the CPU).
        self.publish_seconds = 0.0
        self.publish_cpu_seconds = 0.0
        self.slowest_publish_seconds = 0.0  # since the last ``slowest_publish_take``
        atexit.register(self.flush)  # a command's last changes reach the dashboards before it exits

    def add(self, creator_id: int, change: Change) -> None:
        with self.condition:
            self.pending[creator_id].merge(change)
            if self.thread is None or not self.thread.is_alive():
                self.thread = threading.Thread(target=self._run, name="creatorflow-coalesce", daemon=True)
                self.thread.start()
            self.condition.notify()

    def _due(self) -> dict[int, Change]:
        with self.condition:
            while True:
                if self.in_flight >= self.workers:  # every worker busy: gather for the next cycle
                    self.condition.wait()
                    continue
                now = time.monotonic()
                waiting = [c for c in self.pending if c not in self.running]
                due = []
                for creator_id in waiting:
                    if now < self._ready_at(creator_id):
                        continue
                    wait = self.claim(creator_id, self.interval)
                    if wait > 0:  # another process published this creator just now: after its slot
                        self.last[creator_id] = now - self.interval + wait
                    else:
                        due.append(creator_id)
                if due:
                    for creator_id in due:
                        self.last[creator_id] = now
                        self.running.add(creator_id)
                    self.in_flight += 1
                    return {creator_id: self._take(creator_id, now) for creator_id in due}
                waits = [self._ready_at(c) - now for c in waiting]
                self.condition.wait(timeout=max(0.0, min(waits)) if waits else None)

    def _slow_due_at(self, creator_id: int) -> float:
        return self.last_slow.get(creator_id, float("-inf")) + self.slow_interval

    def _ready_at(self, creator_id: int) -> float:
        """When the creator's waiting change may go: after its interval, and later when it holds slow topics only.

        Slow topics due go with the creator's next other change; alone, only one more slow
        interval later. A busy creator's sync news thus rides along with its orders instead of
        costing publishes of its own, and the latest still goes out when the orders stop.
        """
        at = self.last.get(creator_id, float("-inf")) + self.interval
        if self.pending[creator_id].topics <= self.slow_topics:
            at = max(at, self._slow_due_at(creator_id) + self.slow_interval)
        return at

    def _take(self, creator_id: int, now: float) -> Change:
        """Take the creator's waiting change, leaving its slow topics waiting when their interval has not passed."""
        change = self.pending.pop(creator_id)
        if not change.topics & self.slow_topics:
            return change
        if now < self._slow_due_at(creator_id):
            change, held = change.split(self.slow_topics)
            self.pending[creator_id] = held
        else:
            self.last_slow[creator_id] = now
        return change

    def _run(self) -> None:
        while True:
            due = self._due()
            try:
                self.pool.submit(self._publish, due)
            except RuntimeError:  # the interpreter is shutting down: flush() publishes the rest
                with self.condition:
                    for creator_id, change in due.items():
                        self.pending[creator_id].merge(change)
                        self.running.discard(creator_id)
                    self.in_flight -= 1
                return

    def slowest_publish_take(self) -> float:
        """Return the slowest cycle's seconds since the last call, and start over."""
        with self.condition:
            slowest, self.slowest_publish_seconds = self.slowest_publish_seconds, 0.0
        return slowest

    def flush(self) -> None:
        """Publish everything still waiting, now, on this thread (a command or server ending)."""
        with self.condition:
            pending, self.pending = dict(self.pending), defaultdict(Change)
            self.in_flight += 1
        self._publish(pending)

    def _publish(self, changes: dict[int, Change]) -> None:
        with self.condition:
            self.publishes += len(changes)
            self.cycles += bool(changes)
        started, cpu_started = time.perf_counter(), time.thread_time()
        try:
            if changes:
                self.publish(changes)
        except Exception as error:  # noqa: BLE001 - the changes are committed; the next publish corrects
            logger.error("coalesced publish for creators %s failed (%s)", ", ".join(map(str, changes)), type(error).__name__)
        finally:
            took, cpu = time.perf_counter() - started, time.thread_time() - cpu_started
            connection.close()  # back to the pool between bursts
            with self.condition:
                if changes:
                    self.publish_seconds += took
                    self.publish_cpu_seconds += cpu
                    self.slowest_publish_seconds = max(self.slowest_publish_seconds, took)
                self.running.difference_update(changes)
                self.in_flight -= 1
                self.condition.notify()


_coalescer: Coalescer | None = None


def coalescer(interval: float, publish: Publish) -> Coalescer:
    """Return this process's coalescer for ``interval`` (a new one when an interval changed).

    With Redis, server processes share each creator's publish slot (``PublishSlots``).
    """
    global _coalescer  # noqa: PLW0603 - one coalescer per process
    slow_interval = settings.CREATORFLOW["PUBLISH_SYNC_SECONDS"]
    if _coalescer is None or (_coalescer.interval, _coalescer.slow_interval) != (interval, slow_interval):
        claim = claim_always
        if settings.REDIS_URL:
            prefix = settings.CHANNEL_LAYERS["default"]["CONFIG"].get("prefix", "creatorflow")
            claim = PublishSlots(settings.REDIS_URL, prefix).claim
        _coalescer = Coalescer(interval, publish, claim=claim, slow_topics=[SYNC], slow_interval=slow_interval)
    return _coalescer


def coalescer_current() -> Coalescer | None:
    return _coalescer


def coalescer_reset() -> None:
    """Forget the coalescer, so the next coalesced publish starts a fresh one (tests)."""
    global _coalescer  # noqa: PLW0603
    _coalescer = None


# --- shared snapshot renders -------------------------------------------------------------------

Stamped = tuple[float, dict[str, str]]


class _Flight:
    """One snapshot render, shareable until it starts reading the database."""

    def __init__(self, render: Callable[[], Stamped]) -> None:
        self.started_at: float | None = None
        self._render_fn = render
        self.future = asyncio.ensure_future(database_sync_to_async(self._render, thread_sensitive=False)())

    def _render(self) -> Stamped:
        self.started_at = time.time()
        return self._render_fn()

    def covers(self, joined_at: float) -> bool:
        """Tell whether a connection that joined its group at ``joined_at`` may use this render."""
        return self.started_at is None or self.started_at >= joined_at


class SnapshotFlights:
    """Share one snapshot render among the connections of a creator that arrive together.

    A restarted server sees every tab reconnect within a second or two; rendering the same
    snapshot once per tab would queue them all behind each other. A render is shared only with
    connections that had joined the creator's group before it started reading, so none of them
    can miss a change committed in between (the render shows it, or its broadcast reaches them).
    Renders run in the worker pool rather than the one thread-sensitive thread, so a crowd of
    snapshots does not hold up the session lookups of the handshakes behind them.
    """

    def __init__(self) -> None:
        self._flights: dict[tuple, _Flight] = {}

    async def render(self, key: tuple, render: Callable[[], Stamped], *, joined_at: float) -> Stamped:
        flight = self._flights.get(key)
        if flight is None or not flight.covers(joined_at):
            flight = self._flights[key] = _Flight(render)
            flight.future.add_done_callback(lambda done, key=key, flight=flight: self._forget(key, flight))
        return await asyncio.shield(flight.future)

    def _forget(self, key: tuple, flight: _Flight) -> None:
        if self._flights.get(key) is flight:
            del self._flights[key]


SNAPSHOTS = SnapshotFlights()
