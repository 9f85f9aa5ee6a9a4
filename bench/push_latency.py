"""Benchmark the live dashboard: commit-to-frame latency at 1,000 websocket clients during a sale.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/push_latency.py --creators 100 --clients-per-creator 10 --rate 300

Without ``DATABASE_URL`` it runs on the embedded default (a scratch SQLite file, the in-memory
channel layer, one server process). With it, it recreates a scratch database ``--database``
on that PostgreSQL server; with ``REDIS_URL`` as well, ``--servers`` server processes share it
(``make serve``'s uvicorn workers on one port; ``--daphne``: daphne processes, one port each).

It seeds ``--creators`` creators (a shop and five products each, stock that never runs out, and
on PostgreSQL ``--history`` past orders each with their rollups, then ``VACUUM ANALYZE``),
logs every creator in (sessions written to the database), starts the server processes on
127.0.0.1, opens ``--clients-per-creator`` dashboard websockets per creator spread over the
processes, waits for every snapshot, then posts signed new-order webhooks (DESIGN.md's
contract) at ``--rate`` per second for ``--duration`` seconds, round-robin over creators and
processes, from keep-alive connections.

Each client notes when a recent-orders frame first shows an order. Latency is measured from the
order row's ``updated_at`` (written inside the webhook's transaction, just before it commits)
to that moment: commit-to-frame, slightly over-counted by the end of the transaction. A push
carries a creator's newest orders up to the list's length, so in a flash sale most orders of a
burst are never a row (the page would drop them): such an order counts as reflected on a tab at
the first frame after its commit carrying a row committed no earlier than it
(``orders_superseded_before_their_row``; ``commit_to_frame_ms_rows_only`` leaves them out). It also
reports webhook-send-to-frame, webhook answer times, frames per client, CPU per answered order (the
servers, this process, PostgreSQL), clients disconnected,
orders a client never saw, and the server processes' resident memory (idle, with clients
connected, peak during the run). Traffic goes to 127.0.0.1 only, bounded in count and time;
everything it starts, it stops. Results are written to ``bench/results/``.
"""

import argparse
import asyncio
import bisect
import hashlib
import hmac
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import suppress
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from ingest import (  # noqa: E402 - helpers of the ingest benchmark
    cpu_seconds,
    database_recreate,
    database_url,
    port_free_check,
    postgres_cpu_seconds,
    process_group_stop,
    processes,
)

PRODUCTS_PER_CREATOR = 5
STOCK = 1_000_000  # units per product unless --stock says otherwise (a flash sale's few)
MONITOR_REPORT_SECONDS = 2
APP_KEY, APP_SECRET = "bench-app-key", "bench-app-secret"
ORDER_ROW = re.compile(r'data-order-id="([^"]+)"[^>]*?\sdata-updated-at="([0-9.]+)"')
# Recent orders arrive whole (the snapshot, among other fragments) or as rows appended to their list.
RECENT_ORDERS_MARKS = ('<section id="recent-orders"', '<template hx-swap-oob="beforeend:#recent-orders-rows"')


# --- environment and data ----------------------------------------------------------------------


def environment(args) -> dict[str, str]:
    """Return the environment shared by this process's Django and the servers."""
    env = {
        "DJANGO_SETTINGS_MODULE": "creatorflow.settings",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "LOG_LEVEL": "WARNING",
        "CREATORFLOW_EXPIRE_IN_PROCESS": "0",
        "PYTHONUNBUFFERED": "1",
    }
    base = os.environ.get("DATABASE_URL", "")
    if base:
        database_recreate(base, args.database)
        env["DATABASE_URL"] = database_url(base, args.database)
    else:
        env["DATABASE_URL"] = ""
        env["SQLITE_PATH"] = str(Path(tempfile.mkdtemp(prefix="cf-bench-")) / "bench.sqlite3")
    redis_url = os.environ.get("REDIS_URL", "")
    env["REDIS_URL"] = redis_url
    env["CHANNEL_LAYER_PREFIX"] = "cfbenchpush"
    env["REDIS_CHANNEL_LAYER"] = args.channel_layer
    # Each server process stores its figures (publishes among them) this often; the last report
    # after the run gives the publishes.
    env["CREATORFLOW_MONITOR_REPORT_SECONDS"] = str(MONITOR_REPORT_SECONDS)
    if not redis_url and args.servers > 1:
        raise SystemExit("several server processes need REDIS_URL (a shared channel layer)")
    if args.publish_coalesce is not None:
        env["CREATORFLOW_PUBLISH_COALESCE"] = str(args.publish_coalesce)
    return env


def seed(args) -> list[dict]:
    """Create creators, shops, products and sessions; return what clients and webhooks need."""
    import django  # noqa: PLC0415 - configured from the environment set above

    django.setup()
    from django.conf import settings  # noqa: PLC0415
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model  # noqa: PLC0415
    from django.contrib.sessions.backends.db import SessionStore  # noqa: PLC0415
    from django.core.management import call_command  # noqa: PLC0415

    from inventory.services.catalogue import product_upsert
    from inventory.services.stock import stock_restock  # noqa: PLC0415
    from orders.models import ShopConnection  # noqa: PLC0415

    call_command("migrate", verbosity=0)
    creators = []
    shops: dict[int, int] = {}
    product_pks: dict[int, list[int]] = {}
    for number in range(args.creators):
        user = get_user_model().objects.create_user(username=f"bench{number}", password=None)
        shop = ShopConnection.objects.create(
            creator=user, shop_id=f"bench-shop-{number}", app_key=APP_KEY, app_secret=APP_SECRET
        )
        products = []
        for index in range(PRODUCTS_PER_CREATOR):
            product, _ = product_upsert(
                creator_id=user.pk, external_id=f"B{number}-{index}", name=f"Bench item {index}", sku=f"SKU-{index}"
            )
            stock_restock(product=product, quantity=args.stock, reference="bench")
            products.append(product.external_id)
            product_pks.setdefault(user.pk, []).append(product.pk)
        shops[user.pk] = shop.pk
        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
        session[HASH_SESSION_KEY] = user.get_session_auth_hash()
        session.create()
        creators.append(
            {
                "shop_id": shop.shop_id,
                "products": products,
                "cookie": f"{settings.SESSION_COOKIE_NAME}={session.session_key}",
            }
        )
    from django.db import connection, connections  # noqa: PLC0415

    if connection.vendor == "postgresql" and args.history:
        from history import history_insert  # noqa: PLC0415 - bench/history.py

        from realtime.services import metrics_recompute  # noqa: PLC0415

        with connection.cursor() as cursor:
            history_insert(cursor, shops=shops, products=product_pks, per_creator=args.history)
            # Statistics from a database that has seen sales, as a seller's LIVE day has (bench/README.md).
            cursor.execute("VACUUM ANALYZE")
        for creator_id in shops:
            metrics_recompute(creator_id=creator_id)
    connections.close_all()
    return creators


def stock_check(args) -> dict:
    """After the run: orders kept, units reserved against units stocked, and any unit sold twice."""
    from django.db import connections  # noqa: PLC0415
    from django.db.models import Sum  # noqa: PLC0415

    from inventory.models import Stock  # noqa: PLC0415
    from orders.models import Order  # noqa: PLC0415

    rows = list(Stock.objects.values_list("on_hand", "reserved", "available"))
    flags = list(Order.objects.filter(external_id__startswith="BENCH-").values_list("flags", flat=True))
    figures = {
        "units_stocked": args.stock * PRODUCTS_PER_CREATOR * args.creators,
        "units_reserved": Stock.objects.aggregate(total=Sum("reserved"))["total"] or 0,
        # Reserved beyond what is on hand, or available below zero: a unit promised twice.
        "oversold_units": sum(max(0, reserved - on_hand, -available) for on_hand, reserved, available in rows),
        "orders": len(flags),
        "orders_short": sum(Order.Flag.INSUFFICIENT_STOCK in order_flags for order_flags in flags),
    }
    connections.close_all()
    return figures


def orders_committed() -> dict[str, float]:
    """When each benchmark order last changed (its rows' ``data-updated-at``), by its order id."""
    from django.db import connections  # noqa: PLC0415

    from orders.models import Order  # noqa: PLC0415

    committed = {
        external_id: updated_at.timestamp()
        for external_id, updated_at in Order.objects.filter(external_id__startswith="BENCH-").values_list("external_id", "updated_at")
    }
    connections.close_all()
    return committed


def reflected(client: "Client", expected: set[str], committed: dict[str, float]) -> tuple[list[float], int]:
    """Commit→frame of the orders a tab never got a row for, and how many it never saw.

    A push carries each creator's newest orders up to the recent-orders list's length: an order
    with that many newer ones committed beside it is never a row, as the page would drop it. A
    tab is current with such an order at the first frame after its commit that carries a row
    committed no earlier than it (the publish read the list after the order committed).
    """
    newest_so_far, running = [], float("-inf")
    for _, newest in client.order_frames:
        running = max(running, newest)
        newest_so_far.append(running)
    lags, unseen = [], 0
    for order_id in expected - client.seen:
        at = committed.get(order_id)
        index = bisect.bisect_left(newest_so_far, at) if at is not None else len(newest_so_far)
        if index == len(newest_so_far):
            unseen += 1
        else:
            lags.append((client.order_frames[index][0] - at) * 1000)
    return lags, unseen


def publishes_count() -> dict:
    """Creator publishes, publishing cycles and what the cycles took, from each server process's latest monitor report.

    ``publish_ms_mean`` is the servers' mean time per cycle, from start to end; ``publish_cpu_percent``
    the share of it on the process's CPU (the rest it waited for the CPU, held by the process's
    other threads or the machine's other processes).
    """
    from django.db import connections  # noqa: PLC0415

    from creatorflow.models import SystemHealth  # noqa: PLC0415

    latest: dict[str, dict] = {}
    for component, metrics in SystemHealth.objects.filter(component__startswith="realtime@").order_by("pk").values_list("component", "metrics"):
        latest[component] = metrics
    connections.close_all()
    publishes = sum(metrics.get("publishes", 0) for metrics in latest.values())
    cycles = sum(metrics.get("publish_cycles", 0) for metrics in latest.values())
    seconds = sum(metrics.get("publish_cycles", 0) * metrics.get("publish_ms_mean", 0) / 1000 for metrics in latest.values())
    cpu_seconds = sum(
        metrics.get("publish_cycles", 0) * metrics.get("publish_ms_mean", 0) * metrics.get("publish_cpu_percent", 0) / 100_000
        for metrics in latest.values()
    )
    return {
        "publishes": publishes,
        "cycles": cycles,
        "publish_ms_mean": round(seconds * 1000 / cycles, 1) if cycles else None,
        "publish_cpu_percent": round(100 * cpu_seconds / seconds) if seconds else None,
    }


# --- servers -----------------------------------------------------------------------------------


class Server:
    """The server under test: ``make serve`` (uvicorn, ``workers`` processes on one port), or with
    ``workers=None`` one daphne process (the development server's, to compare). Its own process group."""

    def __init__(self, port: int, env: dict[str, str], log_dir: Path, *, workers: int | None):
        self.port = port
        port_free_check(port)
        if workers:
            name = "serve"
            command = ["make", "--no-print-directory", "serve", f"PORT={port}", f"WORKERS={workers}", f"PYTHON={sys.executable}"]
        else:
            name = "daphne"
            command = [sys.executable, "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "creatorflow.asgi:application"]
        self.log_path = log_dir / f"{name}-{port}.log"
        self.process = subprocess.Popen(
            command, cwd=ROOT, env={**os.environ, **env}, stdout=self.log_path.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    async def wait_ready(self, deadline: float = 90) -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.process.poll() is not None:
                raise SystemExit(f"server on {self.port} exited; see {self.log_path}")
            with suppress(OSError):
                status, _ = await http_request("127.0.0.1", self.port, "GET", "/healthz", b"", {})
                if status == 200:
                    return
            await asyncio.sleep(0.2)
        raise SystemExit(f"server on {self.port} did not start; see {self.log_path}")

    def rss_kib(self) -> list[int]:
        """Resident memory of each serving process: uvicorn's workers, or the daphne process."""
        sizes = []
        for folder, _ in processes(lambda fields: int(fields[3]) == self.process.pid):  # its process group
            with suppress(OSError, ValueError):
                command = (folder / "cmdline").read_bytes()
                if b"spawn_main" not in command and b"daphne" not in command:
                    continue  # make, uvicorn's supervisor, multiprocessing's resource tracker
                for line in (folder / "status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]))
        return sorted(sizes)

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server's processes have used so far, all of them together."""
        return cpu_seconds(lambda fields: int(fields[3]) == self.process.pid)  # its process group

    def stop(self) -> None:
        process_group_stop(self.process)


# --- a small keep-alive HTTP/1.1 client --------------------------------------------------------


async def http_request(host, port, method, path, body: bytes, headers: dict, connection=None):
    """Send one request (on ``connection`` when given, kept alive); return (status, connection)."""
    if connection is None:
        connection = await asyncio.open_connection(host, port)
    reader, writer = connection
    head = [f"{method} {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    head += [f"{name}: {value}" for name, value in headers.items()]
    writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    status = int(status_line.split()[1])
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return status, connection


# --- clients -----------------------------------------------------------------------------------


class Client:
    def __init__(self, creator: int, port: int, cookie: str):
        self.creator, self.port, self.cookie = creator, port, cookie
        self.seen: set[str] = set()
        self.snapshot_done = asyncio.Event()
        self.frames = 0
        self.samples: list[tuple[str, float, float]] = []  # (order id, updated_at, received_at)
        self.order_frames: list[tuple[float, float]] = []  # (received_at, newest updated_at among its order rows)
        self.refused = 0  # handshakes that failed before a first snapshot
        self.disconnects = 0  # connections lost after their snapshot
        self.socket = None

    async def run(self, stop: asyncio.Event) -> None:
        """Stay connected like a dashboard tab: reconnect after a refused or dropped socket."""
        while not stop.is_set():
            try:
                await self._connection(stop)
            except Exception:  # noqa: BLE001 - refused handshakes and drops are counted, then retried
                pass
            if stop.is_set():
                return
            if self.snapshot_done.is_set():
                self.disconnects += 1
            else:
                self.refused += 1
            await asyncio.sleep(min(10.0, 0.5 * 2 ** min(self.refused + self.disconnects, 5)))

    async def _connection(self, stop: asyncio.Event) -> None:
        from websockets.asyncio.client import connect  # noqa: PLC0415

        async with connect(
            f"ws://127.0.0.1:{self.port}/ws/dashboard/",
            additional_headers={"Cookie": self.cookie, "Origin": f"http://127.0.0.1:{self.port}"},
            compression=None,
            max_size=None,
            open_timeout=60,
            ping_interval=None,
        ) as socket:
            self.socket = socket
            snapshot = True  # the first frame carries every fragment
            async for message in socket:
                received = time.time()
                self.frames += 1
                if any(mark in message for mark in RECENT_ORDERS_MARKS):
                    rows = ORDER_ROW.findall(message)
                    if rows and not snapshot:
                        self.order_frames.append((received, max(float(updated_at) for _, updated_at in rows)))
                    for order_id, updated_at in rows:
                        if order_id not in self.seen:
                            self.seen.add(order_id)
                            if not snapshot and self.snapshot_done.is_set():
                                self.samples.append((order_id, float(updated_at), received))
                if snapshot:
                    snapshot = False
                    self.snapshot_done.set()


# --- the run -----------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def summary(values: list[float]) -> dict:
    return {
        "count": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


async def send_webhooks(args, creators, ports, sent_at: dict, statuses: dict, answer_ms: list, answered_ids: set) -> float:
    total = int(args.rate * args.duration)
    pool: asyncio.Queue = asyncio.Queue()
    for index in range(args.connections):
        pool.put_nowait((ports[index % len(ports)], None))
    tasks = set()

    async def post(number: int, scheduled: float) -> None:
        creator = creators[number % len(creators)]
        order_id = f"BENCH-{number}"
        document = {
            "type": "ORDER_STATUS_CHANGE",
            "shop_id": creator["shop_id"],
            "timestamp": int(time.time()),
            "data": {
                "order_id": order_id,
                "status": "AWAITING_SHIPMENT",
                "total_amount": "25.00",
                "items": [
                    {"product_id": creator["products"][number % PRODUCTS_PER_CREATOR], "quantity": 1 + number % 3, "price": "12.50"}
                ],
            },
        }
        body = json.dumps(document).encode()
        signature = hmac.new(APP_SECRET.encode(), APP_KEY.encode() + body, hashlib.sha256).hexdigest()
        port, connection = await pool.get()
        sent_at[order_id] = time.time()
        answered = False
        try:
            status, connection = await http_request(
                "127.0.0.1",
                port,
                "POST",
                "/webhooks/tiktok/",
                body,
                {"Authorization": signature, "Content-Type": "application/json"},
                connection,
            )
        except (OSError, ConnectionError, asyncio.IncompleteReadError):
            status, connection = 0, None
        except asyncio.CancelledError:
            if connection is not None:
                connection[1].close()
            raise
        if status == 200:
            answered_ids.add(order_id)
        answer_ms.append((time.monotonic() - scheduled) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        pool.put_nowait((port, connection))

    start = time.monotonic()
    for number in range(total):
        scheduled = start + number / args.rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(post(number, scheduled))
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        # A saturated server answers long after the schedule ends: bounded wait, then give up.
        _, late = await asyncio.wait(set(tasks), timeout=args.drain)
        for task in late:
            task.cancel()
        statuses["unanswered"] = len(late)
    elapsed = time.monotonic() - start
    while not pool.empty():  # the keep-alive connections, closed so the servers can stop at once
        _, connection = pool.get_nowait()
        if connection is not None:
            connection[1].close()
    return elapsed


def load_average() -> float:
    """Return the 1-minute load average: the machine is shared, and the figures move with it."""
    return float(Path("/proc/loadavg").read_text().split()[0])


async def run(args, env: dict[str, str], creators: list[dict]) -> dict:
    load_at_start = load_average()
    log_dir = Path(tempfile.mkdtemp(prefix="cf-bench-logs-"))
    if args.daphne:  # daphne cannot share a port: one process per port
        servers = [Server(args.port + index, env, log_dir, workers=None) for index in range(args.servers)]
    else:
        servers = [Server(args.port, env, log_dir, workers=args.servers)]
    ports = [server.port for server in servers]
    stop = asyncio.Event()
    try:
        await asyncio.gather(*(server.wait_ready() for server in servers))
        rss_idle = [kib for server in servers for kib in server.rss_kib()]
        print(f"servers up on {ports}; connecting {args.creators * args.clients_per_creator} clients …", flush=True)
        clients = [
            Client(number, ports[(number * args.clients_per_creator + index) % len(ports)], creators[number]["cookie"])
            for number in range(args.creators)
            for index in range(args.clients_per_creator)
        ]
        client_tasks = []
        connect_started = time.monotonic()
        for batch in range(0, len(clients), 10):
            client_tasks += [asyncio.create_task(client.run(stop)) for client in clients[batch : batch + 10]]
            await asyncio.sleep(10 / args.ramp)  # tabs open over a while, not in one packet
        await asyncio.wait_for(asyncio.gather(*(client.snapshot_done.wait() for client in clients)), timeout=600)
        connect_seconds = time.monotonic() - connect_started
        refused_at_connect = sum(client.refused for client in clients)
        rss_connected = [kib for server in servers for kib in server.rss_kib()]
        print(f"all snapshots in; webhooks at {args.rate}/s for {args.duration}s …", flush=True)

        peak = list(rss_connected)

        async def sample_memory():
            while not stop.is_set():
                now = [kib for server in servers for kib in server.rss_kib()]
                if len(now) == len(peak):  # sorted sizes, compared rank by rank
                    peak[:] = [max(was, kib) for was, kib in zip(peak, now)]
                await asyncio.sleep(1)

        sampler = asyncio.create_task(sample_memory())
        sent_at: dict[str, float] = {}
        statuses: dict[int, int] = {}
        answer_ms: list[float] = []
        frames_before = sum(client.frames for client in clients)
        cpu_before = sum(server.cpu_seconds() for server in servers), time.process_time(), postgres_cpu_seconds()
        answered_ids: set[str] = set()
        elapsed = await send_webhooks(args, creators, ports, sent_at, statuses, answer_ms, answered_ids)
        # Let the last frames arrive: until every client saw every one of its creator's orders, or 10 s.
        expected = {number: set() for number in range(args.creators)}
        for order_id in answered_ids:
            expected[int(order_id.split("-")[1]) % len(creators)].add(order_id)
        settle_end = time.monotonic() + 10
        while time.monotonic() < settle_end:
            if all(expected[client.creator] <= client.seen for client in clients):
                break
            await asyncio.sleep(0.1)
        frames_during = sum(client.frames for client in clients) - frames_before
        cpu_now = sum(server.cpu_seconds() for server in servers), time.process_time(), postgres_cpu_seconds()
        cpu_during = [now - before for now, before in zip(cpu_now, cpu_before, strict=True)]
        load_at_end = load_average()
        await asyncio.sleep(MONITOR_REPORT_SECONDS + 1)  # every process reports its publishes once more
        stop.set()
        sampler.cancel()
        rss_end = [kib for server in servers for kib in server.rss_kib()]
        for client in clients:
            if client.socket is not None:
                with suppress(Exception):
                    await client.socket.close()
        await asyncio.gather(*client_tasks, return_exceptions=True)
    finally:
        stop.set()
        for server in servers:
            server.stop()

    published = await asyncio.to_thread(publishes_count)
    publishes, cycles = published["publishes"], published["cycles"]
    committed = await asyncio.to_thread(orders_committed)
    superseded = [reflected(client, expected[client.creator], committed) for client in clients]
    commit_to_frame = [(received - updated) * 1000 for client in clients for _, updated, received in client.samples]
    superseded_lags = [lag for lags, _ in superseded for lag in lags]
    send_to_frame = [
        (received - sent_at[order_id]) * 1000
        for client in clients
        for order_id, _, received in client.samples
        if order_id in sent_at
    ]
    missed = sum(unseen for _, unseen in superseded)
    # Commit-to-frame by when the order committed, in 5 s slices: a warm-up or a backlog shows here.
    first_commit = min((updated for client in clients for _, updated, _ in client.samples), default=0.0)
    slices: dict[int, list[float]] = {}
    for client in clients:
        for _, updated, received in client.samples:
            slices.setdefault(int((updated - first_commit) // 5) * 5, []).append((received - updated) * 1000)
    return {
        "config": {
            "creators": args.creators,
            "clients": len(clients),
            "servers": args.servers,
            "server": "daphne" if args.daphne else "make serve (uvicorn)",
            "redis_channel_layer": env["REDIS_CHANNEL_LAYER"] if env.get("REDIS_URL") else None,
            "rate": args.rate,
            "duration": args.duration,
            "connections": args.connections,
            "ramp": args.ramp,
            "database": "postgresql" if env.get("DATABASE_URL") else "sqlite",
            "channel_layer": "redis" if env.get("REDIS_URL") else "in-memory",
            "publish_coalesce": args.publish_coalesce,
            "label": args.label,
        },
        "webhooks": {
            "sent": len(sent_at),
            "answered_200": len(answered_ids),
            "answered_per_second": round(len(answered_ids) / elapsed, 1),
            "statuses": statuses,
            "answer_ms": summary(answer_ms),
        },
        "commit_to_frame_ms": summary(commit_to_frame + superseded_lags),
        "commit_to_frame_ms_rows_only": summary(commit_to_frame),
        "orders_superseded_before_their_row": len(superseded_lags),
        "send_to_frame_ms": summary(send_to_frame),
        "commit_to_frame_ms_by_5s": {str(start): summary(values) for start, values in sorted(slices.items())},
        "publishes": {
            "total": publishes,
            "per_second_of_webhooks": round(publishes / max(elapsed, 0.001), 1),
            "cycles": cycles,
            "creators_per_cycle": round(publishes / cycles, 2) if cycles else None,
            "cycle_ms_mean": published["publish_ms_mean"],
            "cycle_cpu_percent": published["publish_cpu_percent"],
        },
        "frames_per_client_per_second": round(frames_during / len(clients) / max(elapsed, 0.001), 2),
        # From the webhooks' first send until every tab saw its orders: what each answered order cost.
        "cpu_ms_per_order": {
            "server": round(cpu_during[0] * 1000 / max(len(answered_ids), 1), 2),
            "load_generator_and_clients": round(cpu_during[1] * 1000 / max(len(answered_ids), 1), 2),
            "postgres": round(cpu_during[2] * 1000 / max(len(answered_ids), 1), 2),
        },
        "clients_disconnected": sum(client.disconnects for client in clients),
        "connect": {
            "seconds_until_all_snapshots": round(connect_seconds, 1),
            "handshakes_refused_then_retried": refused_at_connect,
        },
        "orders_never_seen": missed,
        "server_rss_mib": {
            "idle": [round(kib / 1024, 1) for kib in rss_idle],
            "clients_connected": [round(kib / 1024, 1) for kib in rss_connected],
            "peak": [round(kib / 1024, 1) for kib in peak],
            "end": [round(kib / 1024, 1) for kib in rss_end],
        },
        "load_average": {"start": load_at_start, "end_of_webhooks": load_at_end},
        "server_logs": str(log_dir),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--creators", type=int, default=100)
    parser.add_argument("--clients-per-creator", type=int, default=10)
    parser.add_argument("--rate", type=float, default=300, help="webhooks per second")
    parser.add_argument("--duration", type=float, default=30, help="seconds of webhooks")
    parser.add_argument("--servers", type=int, default=1, help="server processes: make serve WORKERS (several need REDIS_URL)")
    parser.add_argument("--daphne", action="store_true", help="serve with --servers daphne processes, one port each, instead of make serve")
    parser.add_argument("--connections", type=int, default=32, help="keep-alive webhook connections")
    parser.add_argument("--ramp", type=float, default=100, help="new websocket clients per second")
    parser.add_argument("--drain", type=float, default=60, help="seconds to wait for answers after the last send")
    parser.add_argument("--port", type=int, default=8301)
    parser.add_argument("--database", default="cf_bench_push", help="scratch PostgreSQL database (recreated)")
    parser.add_argument("--publish-coalesce", type=float, default=None, help="CREATORFLOW_PUBLISH_COALESCE for the servers")
    parser.add_argument("--channel-layer", choices=("lists", "pubsub"), default="pubsub",
                        help="REDIS_CHANNEL_LAYER for the servers: RedisChannelLayer or RedisPubSubChannelLayer")
    parser.add_argument("--results", type=Path, default=ROOT / "bench" / "results", help="folder for the JSON")
    parser.add_argument("--label", default="", help="name for the results file")
    parser.add_argument("--stock", type=int, default=STOCK, help="units of each product (a flash sale: few)")
    parser.add_argument("--history", type=int, default=1000,
                        help="past orders per creator, bulk-inserted and analyzed before the run (PostgreSQL; 0: none)")
    args = parser.parse_args()
    if args.duration * args.rate > 100_000:
        raise SystemExit("bounded run: at most 100,000 webhooks")

    env = environment(args)
    os.environ.update(env)
    print(f"seeding {args.creators} creators …", flush=True)
    creators = seed(args)
    result = asyncio.run(run(args, env, creators))
    result["stock"] = stock_check(args)
    out = args.results
    out.mkdir(parents=True, exist_ok=True)
    name = f"push_latency{'-' + args.label if args.label else ''}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    (out / name).write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"written to {out / name}")


if __name__ == "__main__":
    main()
