"""Benchmark the TikTok webhook on PostgreSQL + Redis: sustained webhooks/s and ack latency.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/webhooks.py --history 1000,1000000

For each history size it recreates a scratch database (``--database``, default ``cf_bench``),
migrates it, seeds one creator with hot and cold products and ``history`` orders of past
history (bulk SQL with generate_series; the rollup tables are rebuilt from those rows and
checked with metrics_resync), starts ``--servers`` daphne processes on 127.0.0.1, and posts
signed new-order webhooks (1 to 3 lines on five hot SKUs, a new order each time) from
``--connections`` keep-alive connections spread over the servers, like a load balancer would:

* open loop: ``--rate`` webhooks/s for ``--duration`` s; latency counts from each request's
  scheduled send time, so a server falling behind shows up in the figures;
* closed loop: every connection sends its next webhook as soon as the last one is answered,
  for ``--duration`` s: the sustained maximum.

It then checks every acknowledged webhook became exactly one processed inbox row and one
order, and reads the per-webhook server time from the ``creatorflow.webhooks`` log lines.
Traffic goes to 127.0.0.1 only, bounded in count and time; everything it starts, it stops.
"""

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOT_SKUS = 5
COLD_PRODUCTS = 20
HOT_STOCK_RESTOCKS = 10  # × 1,000,000 units each: a flash sale never runs out here
SHOP_ID, APP_KEY, APP_SECRET = "bench-shop", "bench-app-key", "bench-app-secret"
LOG_LINE = re.compile(r"webhook shop=\S+ type=\S+ outcome=(\S+) ms=([0-9.]+) queued_ms=([0-9.]+)")


# --- database ------------------------------------------------------------------------------


def database_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def database_recreate(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(database_url(base, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def server_env(url: str, redis_url: str, pool_max: int, coalesce: float) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": url,
        "REDIS_URL": redis_url,
        "CHANNEL_LAYER_PREFIX": "cfbench",
        "DEBUG": "0",
        "SECRET_KEY": "bench-only-" + "x" * 40,
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "0",
        "SECURE_COOKIES": "0",
        "LOG_LEVEL": "INFO",
        "DATABASE_POOL_MAX": str(pool_max),
        "CREATORFLOW_PUBLISH_COALESCE": str(coalesce),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "creatorflow.settings",
    }


SEED = r"""
import json, sys
from decimal import Decimal
import django
django.setup()
from django.db import connection
from inventory.services.catalogue import product_upsert
from inventory.services.stock import stock_restock
from orders.models import ShopConnection
from realtime.services import metrics_recompute, metrics_resync
from django.contrib.auth import get_user_model

history, check = int(sys.argv[1]), sys.argv[2] == "check"
creator = get_user_model().objects.create_user(username="bench", password="bench-pass-1234", timezone="UTC")
shop = ShopConnection.objects.create(creator=creator, shop_id="%(shop)s", app_key="%(key)s", app_secret="%(secret)s")
hot = []
for n in range(%(hot)d):
    product, _ = product_upsert(creator_id=creator.pk, external_id=f"HOT-{n}", name=f"Hot {n}", sku=f"HOT-{n}",
                                reorder_point=100, unit_cost=Decimal("4.00"))
    for _ in range(%(restocks)d):
        stock_restock(product=product, quantity=1_000_000, reference="bench stock")
    hot.append(product.external_id)
cold = []
for n in range(%(cold)d):
    product, _ = product_upsert(creator_id=creator.pk, external_id=f"COLD-{n}", name=f"Cold {n}", sku=f"COLD-{n}",
                                reorder_point=10, unit_cost=Decimal("2.00"))
    stock_restock(product=product, quantity=500, reference="bench stock")
    cold.append(product.pk)
with connection.cursor() as cursor:
    # Past orders, first seen already delivered or completed: they hold no stock.
    cursor.execute('''
        INSERT INTO orders_order (creator_id, shop_id, external_id, status, total_amount, currency, flags,
                                  placed_at, paid_at, shipped_at, cancelled_at, completed_at, tiktok_updated_at,
                                  created_at, updated_at)
        SELECT %%s, %%s, 'HIST-' || g, CASE WHEN g %%%% 10 = 0 THEN 'DELIVERED' ELSE 'COMPLETED' END,
               (10 + g %%%% 50)::numeric(14, 2), 'USD', '[]'::jsonb,
               p, p, p + interval '1 day', NULL, CASE WHEN g %%%% 10 = 0 THEN NULL ELSE p + interval '5 days' END,
               p + interval '5 days', now(), now()
        FROM generate_series(1, %%s) AS g,
             LATERAL (SELECT now() - interval '8 days' - make_interval(secs => g * 31536000.0 / %%s)) AS t(p)
    ''', [creator.pk, shop.pk, history, history])
    cursor.execute('''
        INSERT INTO orders_orderitem (order_id, product_id, quantity, unit_price)
        SELECT o.id, (%%s::bigint[])[1 + o.id %%%% %%s], 1 + o.id %%%% 3, 10.00
        FROM orders_order o WHERE o.creator_id = %%s
    ''', [cold, len(cold), creator.pk])
    # Rollups rebuilt from those rows in SQL (UTC quarter hours, as realtime.rollups does).
    cursor.execute('''
        INSERT INTO realtime_orderstatsbucket (creator_id, start, placed_count, shipped_count, processing_seconds)
        SELECT %%s, coalesce(p.start, s.start), coalesce(p.n, 0), coalesce(s.n, 0), coalesce(s.seconds, 0)
        FROM (SELECT date_bin('15 minutes', placed_at, TIMESTAMPTZ '2000-01-01 00:00+00') AS start, count(*) AS n
              FROM orders_order WHERE creator_id = %%s GROUP BY 1) p
        FULL OUTER JOIN
             (SELECT date_bin('15 minutes', shipped_at, TIMESTAMPTZ '2000-01-01 00:00+00') AS start, count(*) AS n,
                     sum(greatest(0, floor(extract(epoch FROM shipped_at - placed_at))))::bigint AS seconds
              FROM orders_order WHERE creator_id = %%s AND shipped_at IS NOT NULL GROUP BY 1) s
        ON p.start = s.start
    ''', [creator.pk] * 3)
    cursor.execute('''
        INSERT INTO realtime_ordertotals (creator_id, orders_count, completed_revenue)
        SELECT %%s, count(*), coalesce(sum(total_amount) FILTER (WHERE status = 'COMPLETED'), 0)
        FROM orders_order WHERE creator_id = %%s
    ''', [creator.pk] * 2)
    cursor.execute("ANALYZE")
metrics_recompute(creator_id=creator.pk)
drifts = metrics_resync(creator_id=creator.pk) if check else []
print(json.dumps({"creator": creator.pk, "hot": hot, "drifts": [f"{d.metric}: {d.stored} != {d.actual}" for d in drifts]}))
""" % {"shop": SHOP_ID, "key": APP_KEY, "secret": APP_SECRET, "hot": HOT_SKUS, "restocks": HOT_STOCK_RESTOCKS,
       "cold": COLD_PRODUCTS}


def database_prepare(env: dict, history: int, check: bool) -> dict:
    subprocess.run([PYTHON, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    started = time.perf_counter()
    done = subprocess.run([PYTHON, "-c", SEED, str(history), "check" if check else "-"], cwd=ROOT, env=env,
                          capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"seeding failed:\n{done.stderr[-3000:]}")
    seeded = json.loads(done.stdout.strip().splitlines()[-1])
    seeded["seconds"] = time.perf_counter() - started
    return seeded


def sql(env: dict, query: str) -> list:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"]) as connection:
        return connection.execute(query).fetchall()


# --- servers -------------------------------------------------------------------------------


def servers_start(env: dict, ports: list[int], logs: Path) -> list[subprocess.Popen]:
    processes = []
    for port in ports:
        log = open(logs / f"daphne-{port}.log", "w")
        processes.append(subprocess.Popen(
            [str(Path(PYTHON).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "creatorflow.asgi:application"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        ))
    deadline = time.monotonic() + 60
    for port in ports:
        while True:
            try:
                with __import__("socket").create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    servers_stop(processes)
                    raise SystemExit(f"daphne on port {port} did not start; see {logs}/daphne-{port}.log")
                time.sleep(0.2)
    return processes


def servers_stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    for process in processes:
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)


# --- load ----------------------------------------------------------------------------------


def deliveries(count: int, *, prefix: str, hot: list[str], seed: int) -> list[bytes]:
    """Pre-build signed HTTP requests for ``count`` new orders (1 to 3 lines on the hot SKUs)."""
    rng = random.Random(seed)
    requests = []
    for number in range(count):
        lines = rng.sample(hot, k=rng.randint(1, 3))
        items = [{"product_id": product_id, "quantity": rng.randint(1, 2), "price": "9.90"} for product_id in lines]
        body = json.dumps({
            "type": "ORDER_STATUS_CHANGE", "shop_id": SHOP_ID, "timestamp": int(time.time()),
            "data": {"order_id": f"{prefix}-{number}", "status": "AWAITING_SHIPMENT", "items": items,
                     "total_amount": f"{sum(9.9 * item['quantity'] for item in items):.2f}"},
        }, separators=(",", ":")).encode()
        # The contract's signature (orders.webhooks.webhook_signature), without loading Django here.
        signature = hmac.new(APP_SECRET.encode(), APP_KEY.encode() + body, hashlib.sha256).hexdigest()
        head = (f"POST /webhooks/tiktok/ HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Authorization: {signature}\r\nContent-Length: {len(body)}\r\n\r\n")
        requests.append(head.encode() + body)
    return requests


async def _exchange(reader, writer, request: bytes) -> int:
    writer.write(request)
    await writer.drain()
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionError("server closed the connection")
    length = 0
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        if name.strip().lower() == "content-length":
            length = int(value.strip())
    if length:
        await reader.readexactly(length)
    return int(status_line.split()[1])


async def load_run(requests: list[bytes], *, ports: list[int], connections: int, rate: float | None,
                   duration: float) -> dict:
    """Send ``requests`` open-loop at ``rate`` (or closed-loop when None) for at most ``duration`` s."""
    queue: asyncio.Queue = asyncio.Queue()
    results: list[tuple[float, int]] = []  # (latency s, status)
    errors = 0
    started = time.perf_counter()
    stop_at = started + duration

    async def connection_loop(port: int) -> None:
        nonlocal errors
        reader = writer = None
        while True:
            item = await queue.get()
            if item is None:
                break
            scheduled, request = item
            scheduled = scheduled if scheduled is not None else time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                status = await asyncio.wait_for(_exchange(reader, writer, request), timeout=30)
                results.append((time.perf_counter() - scheduled, status))
            except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError, ConnectionError, ValueError):
                errors += 1
                if writer is not None:
                    writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    workers = [asyncio.create_task(connection_loop(ports[n % len(ports)])) for n in range(connections)]
    if rate is None:
        # Closed loop: keep exactly one request per connection in flight until the time is up.
        async def refill():
            sent = 0
            for request in requests:
                while queue.qsize() >= connections:
                    if time.perf_counter() >= stop_at:
                        return sent
                    await asyncio.sleep(0.0005)
                if time.perf_counter() >= stop_at:
                    return sent
                queue.put_nowait((None, request))
                sent += 1
            return sent
        sent = await refill()
    else:
        sent = 0
        for number, request in enumerate(requests):
            at = started + number / rate
            if at >= stop_at:
                break
            delay = at - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((at, request))
            sent += 1
    # Bounded in time: requests still queued when the time is up are never sent (counted as dropped).
    dropped = 0
    while not queue.empty():
        queue.get_nowait()
        dropped += 1
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - started
    latencies = sorted(latency for latency, _ in results)
    ok = sum(1 for _, status in results if 200 <= status < 300)

    def percentile(share: float) -> float:
        return latencies[min(len(latencies) - 1, int(share * len(latencies)))] * 1000 if latencies else float("nan")

    return {
        "sent": sent - dropped, "dropped": dropped, "answered": len(results), "ok": ok, "errors": errors + len(results) - ok,
        "seconds": elapsed, "per_second": ok / elapsed,
        "p50_ms": percentile(0.50), "p99_ms": percentile(0.99), "max_ms": percentile(1.0),
    }


def server_times(logs: Path, ports: list[int]) -> list[float]:
    times = []
    for port in ports:
        for line in (logs / f"daphne-{port}.log").read_text(errors="replace").splitlines():
            match = LOG_LINE.search(line)
            if match and match.group(1) == "processed":
                # Time spent on this webhook, less the wait for a processing slot behind others.
                times.append(float(match.group(2)) - float(match.group(3)))
    return times


# --- main ----------------------------------------------------------------------------------


def run_one(args, history: int, logs: Path) -> dict:
    base, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    database_recreate(base, args.database)
    env = server_env(database_url(base, args.database), redis_url, args.pool_max, args.coalesce)
    print(f"\n== history {history:,} orders: seeding ...", flush=True)
    seeded = database_prepare(env, history, check=history <= args.check_up_to)
    print(f"   seeded in {seeded['seconds']:.1f} s; rollup drift: {seeded['drifts'] or 'none'}", flush=True)
    ports = [args.first_port + n for n in range(args.servers)]
    plan = {
        "warmup": int(args.rate * args.warmup),
        "closed": int(args.closed_max_rate * args.duration),
        "open": int(args.rate * args.duration * 1.05),
        "sustainable": int(args.closed_max_rate * args.duration),
    }
    requests = {phase: deliveries(count, prefix=f"{phase}-{history}", hot=seeded["hot"], seed=history)
                for phase, count in plan.items()}
    processes = servers_start(env, ports, logs)
    phases = {}
    try:
        asyncio.run(load_run(requests["warmup"], ports=ports, connections=args.connections, rate=args.rate,
                             duration=args.warmup))
        for phase, rate in (("closed", None), ("open", args.rate), ("sustainable", None)):
            if phase == "sustainable":
                # Open loop at 80 % of the closed-loop maximum: latency at a load the servers keep up with.
                rate = max(1.0, 0.8 * phases["closed"]["per_second"])
            time.sleep(args.settle)  # let the previous phase's queued requests drain
            before = len(server_times(logs, ports))
            result = asyncio.run(load_run(requests[phase], ports=ports, connections=args.connections, rate=rate,
                                          duration=args.duration))
            result["rate"] = rate
            result["server_ms"] = statistics.fmean(server_times(logs, ports)[before:] or [float("nan")])
            phases[phase] = result
            print(f"   {phase:<11} rate {rate or 0:6.0f}: {result['per_second']:6.1f} ok/s, p50 {result['p50_ms']:8.1f} ms, "
                  f"p99 {result['p99_ms']:8.1f} ms, errors {result['errors']}, dropped {result['dropped']}, "
                  f"server {result['server_ms']:.1f} ms/webhook", flush=True)
    finally:
        servers_stop(processes)
    acknowledged = sum(result["ok"] for result in phases.values())
    (orders, events, processed, failed) = sql(env, """
        SELECT (SELECT count(*) FROM orders_order WHERE external_id NOT LIKE 'HIST-%' AND external_id NOT LIKE 'warmup-%'),
               (SELECT count(*) FROM orders_webhookevent),
               (SELECT count(*) FROM orders_webhookevent WHERE status = 'processed'),
               (SELECT count(*) FROM orders_webhookevent WHERE status = 'failed')
    """)[0]
    return {"history": history, **phases, "orders": orders, "acknowledged": acknowledged, "events": events,
            "processed": processed, "failed": failed, "drifts": seeded["drifts"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", default="1000,1000000", help="Comma-separated history sizes (orders).")
    parser.add_argument("--servers", type=int, default=2, help="daphne processes (2).")
    parser.add_argument("--connections", type=int, default=32, help="Client keep-alive connections (32).")
    parser.add_argument("--rate", type=float, default=300, help="Open-loop webhooks per second (300).")
    parser.add_argument("--duration", type=float, default=30, help="Seconds per phase (30).")
    parser.add_argument("--warmup", type=float, default=5, help="Warm-up seconds at --rate (5).")
    parser.add_argument("--closed-max-rate", type=float, default=1500, help="Requests pre-built for the closed loop, per second.")
    parser.add_argument("--database", default="cf_bench", help="Scratch database, dropped and recreated (cf_bench).")
    parser.add_argument("--first-port", type=int, default=8101)
    parser.add_argument("--coalesce", type=float, default=0.1,
                        help="CREATORFLOW_PUBLISH_COALESCE for the servers: 0 publishes once per transaction (0.1).")
    parser.add_argument("--settle", type=float, default=5, help="Seconds between phases (5).")
    parser.add_argument("--pool-max", type=int, default=8, help="DATABASE_POOL_MAX per server process (8).")
    parser.add_argument("--check-up-to", type=int, default=1_000_000,
                        help="Run metrics_resync to check the seeded rollups up to this history size.")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")) or not os.environ.get("REDIS_URL"):
        raise SystemExit("Set DATABASE_URL=postgres://... and REDIS_URL=redis://...: the benchmark runs on both.")
    if args.duration > 300 or args.rate > 5_000 or args.connections > 256:
        raise SystemExit("Keep it bounded: --duration ≤ 300, --rate ≤ 5000, --connections ≤ 256.")
    logs = ROOT / "bench" / "out"
    logs.mkdir(exist_ok=True)
    results = [run_one(args, int(history), logs) for history in args.history.split(",")]

    print(f"\nservers {args.servers} × daphne, connections {args.connections}, {os.cpu_count()} CPUs, "
          f"phases of {args.duration:.0f} s, publish coalescing {args.coalesce} s, load average {os.getloadavg()[0]:.2f}\n")
    print("| history | phase | offered/s | ok/s | p50 ms | p99 ms | errors | dropped | server ms/webhook |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for result in results:
        for phase in ("closed", "open", "sustainable"):
            row = result[phase]
            offered = "as fast as answered" if phase == "closed" else f"{row['rate']:.0f}"
            print(f"| {result['history']:,} | {phase} | {offered} | {row['per_second']:.1f} | {row['p50_ms']:.1f} "
                  f"| {row['p99_ms']:.1f} | {row['errors']} | {row['dropped']} | {row['server_ms']:.1f} |")
    for result in results:
        exact = result["orders"] == result["acknowledged"] and result["failed"] == 0
        print(f"\nhistory {result['history']:,}: {result['acknowledged']} acknowledged → {result['orders']} orders, "
              f"{result['failed']} failed events: exactly once {'yes' if exact else 'NO'}; "
              f"seeded rollups drift: {result['drifts'] or 'none'}")
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"\nper-order cost at {last['history']:,} vs {first['history']:,} orders of history: "
              f"server ms/webhook {last['closed']['server_ms'] / first['closed']['server_ms']:.2f}×, "
              f"closed-loop throughput {last['closed']['per_second'] / first['closed']['per_second']:.2f}×")


if __name__ == "__main__":
    main()
