"""Measure the original design's order path (its SQL only) with pgbench.

    python bench/original/run.py --database-url postgres://postgres@127.0.0.1:5432 \
        --history 1000,1000000 --seconds 20 --clients 1 [--json out.json]

For each history size: drop and create the scratch database ``cf_original``, load
``schema.sql`` and ``history.sql``, bulk-load that many past orders with ``load_history``,
VACUUM ANALYZE, then run ``pgbench -n -f order.sql -c CLIENTS -T SECONDS`` and report
orders/s, ms per order and the load average before and after. Afterwards it checks that every
transaction made one order and that every hot SKU's reserved quantity equals its reservations.
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

try:
    import psycopg
except ImportError:  # pragma: no cover - depends on the interpreter
    sys.exit("run.py needs psycopg 3 (use the project's .venv/bin/python).")

HERE = Path(__file__).resolve().parent
SCRATCH = "cf_original"
CREATOR = "00000000-0000-4000-8000-0000000000c1"


def pgbench_find() -> str:
    """Return the pgbench binary: a PostgreSQL install's own first, then PATH."""
    versioned = sorted(glob.glob("/usr/lib/postgresql/*/bin/pgbench"),
                       key=lambda path: int(re.search(r"/(\d+)/bin/", path).group(1)))
    found = versioned[-1] if versioned else shutil.which("pgbench")
    if not found:
        sys.exit("pgbench not found (looked in /usr/lib/postgresql/*/bin and on PATH): "
                 "install the PostgreSQL client tools (Debian: postgresql-contrib or postgresql-client).")
    return found


def url_with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, "/" + database, parts.query, parts.fragment))


def server_check(url: str) -> str:
    try:
        with psycopg.connect(url_with_database(url, "postgres"), connect_timeout=5) as connection:
            return connection.execute("SHOW server_version").fetchone()[0]
    except psycopg.OperationalError as error:
        parts = urlsplit(url)  # host and port only: the URL may carry a password
        sys.exit(f"PostgreSQL is not reachable at {parts.hostname}:{parts.port or 5432}: {str(error).strip()}")


def database_prepare(url: str, history: int) -> float:
    """Recreate the scratch database with the schema and ``history`` past orders; return seconds."""
    started = time.perf_counter()
    with psycopg.connect(url_with_database(url, "postgres"), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")
        connection.execute(f"CREATE DATABASE {SCRATCH}")
    with psycopg.connect(url_with_database(url, SCRATCH)) as connection:
        connection.execute((HERE / "schema.sql").read_text())
        connection.execute((HERE / "history.sql").read_text())
        connection.execute("SELECT load_history(%s)", [history])
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")
    return time.perf_counter() - started


def database_drop(url: str) -> None:
    with psycopg.connect(url_with_database(url, "postgres"), autocommit=True) as connection:
        connection.execute(f"DROP DATABASE IF EXISTS {SCRATCH} WITH (FORCE)")


def pgbench_run(pgbench: str, url: str, clients: int, seconds: int) -> dict:
    command = [pgbench, "-n", "-f", str(HERE / "order.sql"), "-c", str(clients), "-j", str(clients),
               "-T", str(seconds), url_with_database(url, SCRATCH)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"pgbench failed (exit {done.returncode}):\n{done.stderr.strip()}\n{done.stdout.strip()}")
    output = done.stdout

    def number(pattern: str) -> float:
        match = re.search(pattern, output)
        if not match:
            sys.exit(f"could not read {pattern!r} from pgbench's output:\n{output}")
        return float(match.group(1))

    failed = re.search(r"number of failed transactions: (\d+)", output)
    return {
        "orders_per_s": number(r"tps = ([\d.]+) \(without initial connection time\)"),
        "ms_per_order": number(r"latency average = ([\d.]+) ms"),
        "transactions": int(number(r"number of transactions actually processed: (\d+)")),
        "failed": int(failed.group(1)) if failed else 0,
    }


def database_check(url: str) -> dict:
    """Count the orders the run made and compare reserved stock with the reservation rows."""
    with psycopg.connect(url_with_database(url, SCRATCH)) as connection:
        placed = connection.execute(
            "SELECT count(*) FROM orders WHERE creator_id = %s AND tiktok_order_id LIKE 'LIVE-%%'",
            [CREATOR]).fetchone()[0]
        mismatched = connection.execute("""
            SELECT count(*) FROM inventory i
            WHERE i.reserved_quantity <> (SELECT coalesce(sum(r.quantity), 0)
                                          FROM inventory_reservations r WHERE r.product_id = i.id)
        """).fetchone()[0]
    return {"orders_placed": placed, "stock_consistent": mismatched == 0}


def run_one(url: str, pgbench: str, history: int, clients: int, seconds: int) -> dict:
    print(f"history {history:,}: loading ...", end="", flush=True)
    load_seconds = database_prepare(url, history)
    print(f" {load_seconds:.1f} s; pgbench {clients} client(s) x {seconds} s ...", end="", flush=True)
    load_before = os.getloadavg()
    measured = pgbench_run(pgbench, url, clients, seconds)
    load_after = os.getloadavg()
    checked = database_check(url)
    print(" done", flush=True)
    if checked["orders_placed"] != measured["transactions"] or not checked["stock_consistent"]:
        print(f"  CHECK FAILED: {measured['transactions']} transactions, {checked['orders_placed']} orders, "
              f"stock consistent: {checked['stock_consistent']}", flush=True)
    return {"history": history, "clients": clients, "seconds": seconds, **measured, **checked,
            "load_seconds": round(load_seconds, 1),
            "loadavg_before": [round(value, 2) for value in load_before],
            "loadavg_after": [round(value, 2) for value in load_after]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432"),
                        help="PostgreSQL server (any database path is replaced by the scratch database "
                             f"{SCRATCH!r}, which is dropped and recreated).")
    parser.add_argument("--history", default="1000,1000000", help="Comma-separated history sizes (past orders).")
    parser.add_argument("--seconds", type=int, default=20, help="pgbench duration per history size.")
    parser.add_argument("--clients", type=int, default=1, help="pgbench clients (one thread each).")
    parser.add_argument("--quick", action="store_true", help="Short run: history 1000 and 10000, 5 s each.")
    parser.add_argument("--json", type=Path, help="Write the figures to this file.")
    parser.add_argument("--keep", action="store_true", help=f"Keep the scratch database {SCRATCH!r} afterwards.")
    args = parser.parse_args()
    if args.quick:
        args.history, args.seconds = "1000,10000", 5
    histories = [int(size.replace("_", "")) for size in args.history.split(",")]

    pgbench = pgbench_find()
    server_version = server_check(args.database_url)
    pgbench_version = subprocess.run([pgbench, "--version"], capture_output=True, text=True).stdout.strip()
    print(f"PostgreSQL {server_version}; {pgbench_version}; {os.cpu_count()} cores", flush=True)

    results = [run_one(args.database_url, pgbench, history, args.clients, args.seconds) for history in histories]
    if not args.keep:
        database_drop(args.database_url)

    print("\n| history | clients | orders/s | ms/order | failed | load avg before -> after (1 min) |")
    print("|---:|---:|---:|---:|---:|---|")
    for result in results:
        print(f"| {result['history']:,} | {result['clients']} | {result['orders_per_s']:.1f} | "
              f"{result['ms_per_order']:.2f} | {result['failed']} | "
              f"{result['loadavg_before'][0]:.2f} -> {result['loadavg_after'][0]:.2f} |")
    if len(results) > 1:
        first, last = results[0], results[-1]
        print(f"\nper-order cost at {last['history']:,} vs {first['history']:,} orders of history: "
              f"{last['ms_per_order'] / first['ms_per_order']:.1f}x")

    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "machine": {"cores": os.cpu_count(), "platform": platform.platform(),
                        "postgresql": server_version, "pgbench": pgbench_version},
            "results": results,
        }, indent=2) + "\n")
        print(f"figures written to {args.json}")
    failed = [r for r in results if r["failed"] or r["orders_placed"] != r["transactions"] or not r["stock_consistent"]]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
