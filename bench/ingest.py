"""Benchmark webhook ingest on `make serve` (PostgreSQL + Redis): webhooks/s, ack latency, cost.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/ingest.py --history 1000,1000000

For each history size it recreates a scratch database (``--database``), migrates it, and seeds
one creator: 5 hot SKUs with 10 M units each, 20 cold products, and N past orders bulk-inserted
with generate_series, their rollups rebuilt in SQL (checked against ``metrics_resync`` up to
``--check-up-to``). It starts ``make serve`` (uvicorn, one worker per core) on 127.0.0.1 with the
benchmark settings (CreatorFlow plus the bare-Django floor route, ``bench/floor.py``) and drives
it with wrk (a C load generator, ``bench/wrk/webhooks.lua``) over pre-signed new-order webhooks,
1–3 lines on the hot SKUs, a new order each:

* closed: ``--connections`` connections, each sending its next webhook when the last is answered;
* paced: ``--rate`` webhooks/s on a fixed schedule;
* floor (first history size only): the closed loop against ``/bench/floor/``, served as the
  webhooks are (Django without the browser's middleware); floor-pages: the same view through the
  pages' middleware, as the floor was measured before webhooks left it.

Figures per phase: answered/s, p50/p90/p99 ack, errors, and CPU per order (server processes and
PostgreSQL, from /proc), with the load average. Afterwards exactly-once is checked: every
acknowledged webhook is one order and no inbox event failed or was left unapplied.
"""

import argparse
import hashlib
import hmac
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import suppress
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
HOT_SKUS, COLD_PRODUCTS = 5, 20
SHOP_ID, APP_KEY, APP_SECRET = "bench-shop", "bench-app-key", "bench-app-secret"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


# --- database ------------------------------------------------------------------------------


def database_url(base: str, name: str) -> str:
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


def database_recreate(base: str, name: str) -> None:
    import psycopg

    with psycopg.connect(database_url(base, "postgres"), autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')


def sql(env: dict, query: str, params=None) -> list:
    import psycopg

    with psycopg.connect(env["DATABASE_URL"], autocommit=True) as connection:
        cursor = connection.execute(query, params)
        return cursor.fetchall() if cursor.description else []


def server_env(url: str, redis_url: str, args) -> dict:
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
        "LOG_LEVEL": "WARNING",
        "DATABASE_POOL_MAX": str(args.pool_max),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "bench.settings",
    }


SEED = r"""
import json, sys
from decimal import Decimal
import django
django.setup()
from django.contrib.auth import get_user_model
from django.db import connection
from bench.floor import FLOOR_TABLES
from bench.history import history_insert
from inventory.services.catalogue import product_upsert
from inventory.services.stock import stock_restock
from orders.models import ShopConnection
from realtime.services import metrics_recompute, metrics_resync

history, check = int(sys.argv[1]), sys.argv[2] == "check"
creator = get_user_model().objects.create_user(username="bench", password="bench-pass-1234", timezone="UTC")
shop = ShopConnection.objects.create(creator=creator, shop_id=%(shop)r, app_key=%(key)r, app_secret=%(secret)r)
hot = []
for n in range(%(hot)d):
    product, _ = product_upsert(creator_id=creator.pk, external_id=f"HOT-{n}", name=f"Hot {n}", sku=f"HOT-{n}",
                                reorder_point=100, unit_cost=Decimal("4.00"))
    for _ in range(10):
        stock_restock(product=product, quantity=1_000_000, reference="bench stock")
    hot.append(product.external_id)
cold = []
for n in range(%(cold)d):
    product, _ = product_upsert(creator_id=creator.pk, external_id=f"COLD-{n}", name=f"Cold {n}", sku=f"COLD-{n}",
                                reorder_point=10, unit_cost=Decimal("2.00"))
    stock_restock(product=product, quantity=500, reference="bench stock")
    cold.append(product.pk)
with connection.cursor() as cursor:
    cursor.execute(FLOOR_TABLES)
    # Past orders over the last year, and the rollups kept for them (bench/history.py).
    history_insert(cursor, shops={creator.pk: shop.pk}, products={creator.pk: cold}, per_creator=history)
# Vacuumed and analyzed now, so autovacuum does not pick the bulk load up during the measurements.
connection.cursor().execute("VACUUM ANALYZE")
metrics_recompute(creator_id=creator.pk)
drifts = metrics_resync(creator_id=creator.pk) if check else []
print(json.dumps({"creator": creator.pk, "hot": hot, "drifts": [f"{d.metric}: {d.stored} != {d.actual}" for d in drifts]}))
""" % {"shop": SHOP_ID, "key": APP_KEY, "secret": APP_SECRET, "hot": HOT_SKUS, "cold": COLD_PRODUCTS}


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


# --- the server (make serve) -----------------------------------------------------------------


class Server:
    """``make serve`` in its own process group; its log goes to ``log``."""

    def __init__(self, env: dict, *, port: int, workers: int, log: Path, daphne: bool = False) -> None:
        self.port, self.log = port, log
        port_free_check(port)
        command = ["make", "--no-print-directory", "serve", f"PORT={port}", f"WORKERS={workers}", f"PYTHON={PYTHON}"]
        if daphne:  # the development server's ASGI server, one process (it cannot share a port)
            command = [str(Path(PYTHON).parent / "daphne"), "-b", "127.0.0.1", "-p", str(port), "creatorflow.asgi:application"]
        with open(log, "w") as output:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True,
            )
        deadline = time.monotonic() + 90
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"make serve did not start on port {port}; see {log}")
            time.sleep(0.3)

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as connection:
                connection.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
                return connection.recv(64).startswith(b"HTTP/1.1")
        except OSError:
            return False

    def cpu_seconds(self) -> float:
        return cpu_seconds(lambda stat: int(stat[4]) == self.process.pid)  # pgrp field

    def stop(self) -> None:
        process_group_stop(self.process)


def port_free_check(port: int) -> None:
    """Refuse to start a server on a port something already listens on.

    A server left running by an interrupted benchmark would otherwise answer for the new one,
    whose start then fails unseen ("address already in use"): the figures would be the old code's.
    """
    with suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
        raise SystemExit(f"port {port} is in use: a server is still running there (an interrupted benchmark's?); stop it first")


def process_group_stop(process: subprocess.Popen) -> None:
    """SIGTERM a server started in its own process group; SIGKILL it after 20 s."""
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


def processes(matches):
    """Yield (/proc/<pid> folder, stat fields) of each process whose stat fields satisfy ``matches``.

    fields[0] is the name, fields[1] the state, fields[3] the process group, fields[12:14] utime, stime.
    """
    for stat_path in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, ValueError, IndexError):
            text = stat_path.read_text()
            name = text[text.index("(") + 1 : text.rindex(")")]
            fields = [name, *text[text.rindex(")") + 2 :].split()]
            if matches(fields):
                yield stat_path.parent, fields


def cpu_seconds(matches) -> float:
    """User + system CPU seconds of the processes whose /proc/<pid>/stat fields satisfy ``matches``."""
    return sum(int(fields[12]) + int(fields[13]) for _, fields in processes(matches)) / CLOCK_TICKS


def postgres_cpu_seconds() -> float:
    return cpu_seconds(lambda fields: fields[0].startswith("postgres"))


# --- load ----------------------------------------------------------------------------------


def requests_file(path: Path, count: int, *, prefix: str, hot: list[str], seed: int) -> Path:
    """Write ``count`` pre-signed new orders (1 to 3 lines on the hot SKUs) as "signature body" lines."""
    rng = random.Random(seed)
    now = int(time.time())
    with open(path, "w") as output:
        for number in range(count):
            lines = rng.sample(hot, k=rng.randint(1, 3))
            items = [{"product_id": product_id, "quantity": rng.randint(1, 2), "price": "9.90"} for product_id in lines]
            body = json.dumps({
                "type": "ORDER_STATUS_CHANGE", "shop_id": SHOP_ID, "timestamp": now,
                "data": {"order_id": f"{prefix}-{number}", "status": "AWAITING_SHIPMENT", "items": items,
                         "total_amount": f"{sum(9.9 * item['quantity'] for item in items):.2f}"},
            }, separators=(",", ":"))
            signature = hmac.new(APP_SECRET.encode(), APP_KEY.encode() + body.encode(), hashlib.sha256).hexdigest()
            output.write(f"{signature} {body}\n")
    return path


def wrk(port: int, route: str, requests: Path, *, seconds: float, connections: int, threads: int,
        rate: float, server: Server) -> dict:
    """Run wrk against ``route``; return its figures with CPU per answered request and the load average."""
    env = {**os.environ, "CF_REQUESTS": str(requests), "CF_PATH": route, "CF_THREADS": str(threads),
           "CF_RATE": str(rate)}
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--timeout", "10s",
               "-s", str(ROOT / "bench" / "wrk" / "webhooks.lua"), f"http://127.0.0.1:{port}"]
    server_cpu, postgres_cpu = server.cpu_seconds(), postgres_cpu_seconds()
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=seconds + 60)
    server_cpu, postgres_cpu = server.cpu_seconds() - server_cpu, postgres_cpu_seconds() - postgres_cpu
    line = next((line for line in done.stdout.splitlines() if line.startswith("CFJSON ")), None)
    if done.returncode or line is None:
        raise SystemExit(f"wrk failed ({done.returncode}):\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    figures = json.loads(line.removeprefix("CFJSON "))
    answered = max(1, figures["requests"])
    figures.update(
        rate=rate, connections=connections, per_second=figures["requests"] / figures["duration_s"],
        server_cpu_ms=1000 * server_cpu / answered, postgres_cpu_ms=1000 * postgres_cpu / answered,
        load_average=os.getloadavg()[0],
    )
    return figures


def inbox_settled(env: dict, deadline: float = 30) -> tuple:
    """Wait until no inbox event waits (the applier finishes what was answered "queued")."""
    stop = time.monotonic() + deadline
    while True:
        (waiting,) = sql(env, "SELECT count(*) FROM orders_webhookevent WHERE status = 'received'")[0]
        if not waiting or time.monotonic() > stop:
            return waiting


def run_history(args, history: int, out: Path, *, floor: bool) -> dict:
    base, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    database_recreate(base, args.database)
    env = server_env(database_url(base, args.database), redis_url, args)
    print(f"\n== history {history:,} orders: seeding ...", flush=True)
    seeded = database_prepare(env, history, check=history <= args.check_up_to)
    print(f"   seeded in {seeded['seconds']:.1f} s; rollup drift: {seeded['drifts'] or 'none'}", flush=True)
    count = int(args.seconds * args.max_rate)
    server = Server(env, port=args.port, workers=args.workers, log=out / f"serve-{history}.log", daphne=args.daphne)
    phases: dict[str, dict] = {}
    try:
        plan = [("warmup", "/webhooks/tiktok/", args.warmup, args.rate), ("closed", "/webhooks/tiktok/", args.seconds, 0),
                ("paced", "/webhooks/tiktok/", args.seconds, args.rate)]
        if floor:  # the latency curve: paced at each of --sweep's rates (first history size only)
            plan += [(f"paced-{rate:g}", "/webhooks/tiktok/", args.seconds, rate) for rate in args.sweep]
        if floor:
            plan += [("floor", "/bench/floor/", args.seconds, 0), ("floor-pages", "/bench/floor-pages/", args.seconds, 0)]
        for phase, route, seconds, rate in plan:
            requests = requests_file(out / f"requests-{phase}.txt", count, prefix=f"{phase}-{history}",
                                     hot=seeded["hot"], seed=len(phase) * 1_000_003 + history)
            time.sleep(args.settle)
            figures = wrk(args.port, route, requests, seconds=seconds, connections=args.connections,
                          threads=args.threads, rate=rate, server=server)
            phases[phase] = figures
            print(f"   {phase:<7} {'closed' if not rate else f'{rate:.0f}/s':>7}: {figures['per_second']:7.1f}/s "
                  f"p50 {figures['p50_ms']:7.1f} p90 {figures['p90_ms']:7.1f} p99 {figures['p99_ms']:7.1f} ms, "
                  f"non-2xx {figures['non_2xx']}, errors {figures['errors']}, queued {figures['queued']}, "
                  f"cpu/order server {figures['server_cpu_ms']:.2f} ms + postgres {figures['postgres_cpu_ms']:.2f} ms, "
                  f"load {figures['load_average']:.2f}", flush=True)
        waiting = inbox_settled(env)
    finally:
        server.stop()
    ingest_phases = [phase for phase in phases if not phase.startswith("floor")]
    acknowledged = sum(phases[p]["processed"] + phases[p]["queued"] for p in ingest_phases)
    duplicates = sum(phases[p]["duplicate"] for p in ingest_phases)
    (orders, processed, failed, received) = sql(env, """
        SELECT (SELECT count(*) FROM orders_order WHERE external_id NOT LIKE 'HIST-%%'),
               (SELECT count(*) FROM orders_webhookevent WHERE status = 'processed'),
               (SELECT count(*) FROM orders_webhookevent WHERE status = 'failed'),
               (SELECT count(*) FROM orders_webhookevent WHERE status = 'received')
    """)[0]
    # wrk stops counting at the end of each phase; requests still in flight then are applied but
    # not counted, so up to one per connection and phase may be orders without a counted answer.
    in_flight = args.connections * len(ingest_phases)
    exactly_once = (orders == processed and acknowledged <= orders <= acknowledged + in_flight
                    and not failed and not received and not waiting)
    print(f"   exactly once: {acknowledged} acknowledged new orders ({duplicates} duplicate answers; up to {in_flight} "
          f"more in flight at phase ends) → {orders} orders, {processed} processed events, {failed} failed, "
          f"{received} left received: {'yes' if exactly_once else 'NO'}", flush=True)
    return {"history": history, "phases": phases, "orders": orders, "acknowledged": acknowledged,
            "duplicates": duplicates, "processed": processed, "failed": failed, "received": received,
            "exactly_once": exactly_once, "drifts": seeded["drifts"], "seed_seconds": seeded["seconds"]}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--history", default="1000,1000000", help="comma-separated history sizes (orders)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2, help="make serve WORKERS (one per core)")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections (32)")
    parser.add_argument("--threads", type=int, default=1, help="wrk threads (1: the client's share of 2 cores)")
    parser.add_argument("--rate", type=float, default=300, help="paced webhooks per second (300)")
    parser.add_argument("--seconds", type=float, default=20, help="seconds per phase (20)")
    parser.add_argument("--warmup", type=float, default=3, help="warm-up seconds at --rate (3)")
    parser.add_argument("--settle", type=float, default=2, help="pause before each phase (2 s)")
    parser.add_argument("--max-rate", type=float, default=1500, help="requests pre-built per second of a phase")
    parser.add_argument("--database", default="cf_bench", help="scratch database, dropped and recreated")
    parser.add_argument("--port", type=int, default=8111)
    parser.add_argument("--pool-max", type=int, default=8, help="DATABASE_POOL_MAX per worker (8)")
    parser.add_argument("--check-up-to", type=int, default=10_000, help="check seeded rollups up to this history")
    parser.add_argument("--sweep", default="", type=lambda text: [float(rate) for rate in text.split(",") if rate],
                        help="also pace at each of these comma-separated rates (first history size): latency against rate")
    parser.add_argument("--daphne", action="store_true", help="serve with one daphne process instead (to compare)")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args(argv)
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")) or not os.environ.get("REDIS_URL"):
        raise SystemExit("bench/ingest.py needs DATABASE_URL=postgres://... and REDIS_URL=redis://... (the production pair).")
    if shutil.which("wrk") is None:
        raise SystemExit("bench/ingest.py needs wrk (apt-get install wrk).")
    if args.seconds > 300 or args.rate > 5_000 or args.connections > 256:
        raise SystemExit("Keep it bounded: --seconds ≤ 300, --rate ≤ 5000, --connections ≤ 256.")
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    sizes = [int(size) for size in args.history.split(",")]
    runs = [run_history(args, size, out, floor=index == 0) for index, size in enumerate(sizes)]
    server = "daphne, 1 process" if args.daphne else f"make serve (uvicorn, {args.workers} workers)"
    result = {"scenario": "ingest", "server": server,
              "connections": args.connections, "wrk_threads": args.threads, "cpus": os.cpu_count(), "runs": runs}
    first, last = runs[0], runs[-1]
    if "floor" in first["phases"]:
        result["vs_floor"] = first["phases"]["closed"]["per_second"] / first["phases"]["floor"]["per_second"]
        result["vs_floor_pages"] = first["phases"]["closed"]["per_second"] / first["phases"]["floor-pages"]["per_second"]
        print(f"\ningest / floor (closed loop, history {first['history']:,}): {result['vs_floor']:.2f}× "
              f"(against the floor through the pages' middleware: {result['vs_floor_pages']:.2f}×)")
    if len(runs) > 1:
        def cost(run):
            closed = run["phases"]["closed"]
            return closed["server_cpu_ms"] + closed["postgres_cpu_ms"]
        result["cost_ratio"] = cost(last) / cost(first)
        print(f"per-order CPU at {last['history']:,} vs {first['history']:,} orders of history: {result['cost_ratio']:.2f}×")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
