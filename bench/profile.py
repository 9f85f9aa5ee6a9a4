"""Profile `make serve` under closed-loop webhook load with py-spy; print where the time goes.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/profile.py --seconds 10

Seeds a scratch database like bench/ingest.py, starts the server, drives it with wrk (closed
loop) and samples every worker process with py-spy (``--gil``: only the thread running Python). Prints the
functions of CreatorFlow holding the most samples, inclusive, and writes the collapsed stacks
(flamegraph input) to bench/out/profile-<pid>.txt.
"""

import argparse
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import ingest  # noqa: E402

ROOT = ingest.ROOT
OURS = ("creatorflow/", "orders/", "inventory/", "realtime/", "accounts/", "django/", "channels", "uvicorn", "asgiref")
WAITS = ("wait (", "get (", "select (", "_run_once (", "acquire (", "sleep (", "poll (")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    options = argparse.Namespace(pool_max=8, database="cf_bench", check_up_to=0)
    base, redis_url = os.environ["DATABASE_URL"], os.environ["REDIS_URL"]
    ingest.database_recreate(base, options.database)
    env = ingest.server_env(ingest.database_url(base, options.database), redis_url, options)
    seeded = ingest.database_prepare(env, args.history, check=False)
    out = ROOT / "bench" / "out"
    out.mkdir(exist_ok=True)
    requests = ingest.requests_file(out / "requests-profile.txt", args.seconds * 2000, prefix="profile",
                                    hot=seeded["hot"], seed=7)
    server = ingest.Server(env, port=8111, workers=os.cpu_count() or 2, log=out / "serve-profile.log")
    try:
        workers = [int(pid) for pid in subprocess.run(["pgrep", "-g", str(server.process.pid), "-f", "spawn_main"],
                                                      capture_output=True, text=True).stdout.split()]
        load = threading.Thread(target=lambda: print(ingest.wrk(
            8111, "/webhooks/tiktok/", requests, seconds=args.seconds + 4, connections=args.connections, threads=1,
            rate=0, server=server)["per_second"], "webhooks/s under the profiler"))
        load.start()
        time.sleep(2)
        spies = [subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--gil", "-r", "100", "-d", str(args.seconds), "-f", "raw", "-o",
                                   str(out / f"profile-{pid}.txt"), "-p", str(pid)], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL) for pid in workers]
        for spy in spies:
            spy.wait()
        load.join()
    finally:
        server.stop()
    inclusive: Counter = Counter()
    total = 0
    for pid in workers:
        for line in (out / f"profile-{pid}.txt").read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if any(wait in stack.rsplit(";", 1)[-1] for wait in WAITS):
                continue  # a thread waiting (for a lock, a queue, the database): not CPU
            total += int(count)
            seen = set()
            for frame in stack.split(";"):
                name = frame.split(" (")[0] + " " + frame.split(" (")[-1].split(":")[0].rstrip(")")
                if any(part in frame for part in OURS) and name not in seen:
                    seen.add(name)
                    inclusive[name] += int(count)
    print(f"\n{total} CPU samples over {len(workers)} workers; functions by inclusive share:")
    for name, count in inclusive.most_common(args.top):
        print(f"{100 * count / total:5.1f}%  {name}")


if __name__ == "__main__":
    main()
