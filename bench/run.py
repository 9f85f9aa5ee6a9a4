"""`make bench`: every benchmark scenario, one after the other, figures into bench/results/.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/2 make bench
    ... make bench QUICK=1      # a short run of each scenario (CI runs this so the suite cannot rot)

Scenarios (each script's docstring says what it measures):

* ingest: ``bench/ingest.py`` — signed new-order webhooks from wrk on ``make serve``; closed loop,
  paced at 300/s, and the bare-Django floor; 1 k and 1 M orders of history;
* original: ``bench/original/run.py`` — the original design's SQL through pgbench, same history sizes;
* push: ``bench/push_latency.py`` — commit→frame at 1,000 dashboard websockets during webhooks;
* flash: ``bench/push_latency.py`` for one creator's flash sale — 10 tabs, 5 hot SKUs of 2,000 units,
  500 webhooks/s offered for 60 s: lag to every tab, orders kept, oversold units (must be 0);
* publish: ``bench/publish_cost.py`` — one publish piece by piece (metrics, each fragment, the send), then publishing cycles of several creators.

Benchmarks share the machine with nothing else: a lock file keeps two from running at once.
The JSON of each full run goes to ``bench/results/`` (QUICK runs: ``bench/out/``, not kept).
"""

import argparse
import fcntl
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOCK = Path("/tmp/creatorflow-bench.lock")

FULL = {
    "ingest": ["bench/ingest.py", "--history", "1000,1000000", "--seconds", "20", "--sweep", "50,100,150,200"],
    "original": ["bench/original/run.py", "--history", "1000,1000000", "--seconds", "20", "--clients", "1"],
    "push": ["bench/push_latency.py", "--creators", "100", "--clients-per-creator", "10", "--rate", "300",
             "--duration", "30", "--servers", "2", "--history", "1000"],
    "flash": ["bench/push_latency.py", "--creators", "1", "--clients-per-creator", "10", "--rate", "500",
              "--duration", "60", "--servers", "2", "--stock", "2000", "--history", "1000", "--label", "flash-sale"],
    "publish": ["bench/publish_cost.py", "--orders", "1000", "--products", "25", "--repeat", "60", "--no-live"],
}
QUICK = {
    "ingest": ["bench/ingest.py", "--history", "1000,10000", "--seconds", "3", "--warmup", "1", "--settle", "0.5"],
    "original": ["bench/original/run.py", "--quick"],
    "push": ["bench/push_latency.py", "--creators", "4", "--clients-per-creator", "2", "--rate", "20",
             "--duration", "3", "--servers", "2", "--drain", "20", "--label", "quick"],
    "flash": ["bench/push_latency.py", "--creators", "1", "--clients-per-creator", "3", "--rate", "60",
              "--duration", "3", "--servers", "2", "--stock", "20", "--drain", "20", "--label", "flash-quick"],
    "publish": ["bench/publish_cost.py", "--orders", "40", "--products", "5", "--repeat", "3", "--cycle-creators", "5"],
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="a short run of every scenario")
    parser.add_argument("--only", help="comma-separated scenarios (ingest, original, push, flash, publish)")
    args = parser.parse_args()
    missing = [name for name in ("DATABASE_URL", "REDIS_URL") if not os.environ.get(name)]
    if missing or not os.environ["DATABASE_URL"].startswith(("postgres://", "postgresql://")):
        print("make bench needs PostgreSQL and Redis, as production runs: set DATABASE_URL=postgres://... "
              "and REDIS_URL=redis://... (a scratch database is created on that server).", file=sys.stderr)
        return 2
    for tool in ("wrk", "pgbench"):
        if shutil.which(tool) is None and not (tool == "pgbench" and list(Path("/usr/lib/postgresql").glob("*/bin/pgbench"))):
            print(f"make bench needs {tool} (apt-get install {'wrk' if tool == 'wrk' else 'postgresql-client'}).",
                  file=sys.stderr)
            return 2
    plan = QUICK if args.quick else FULL
    names = args.only.split(",") if args.only else list(plan)
    results = ROOT / "bench" / ("out" if args.quick else "results")
    results.mkdir(exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    failed = []
    with open(LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # never two benchmarks at once on this machine
        for name in names:
            command = [sys.executable, *plan[name]]
            if name in ("push", "flash"):  # push_latency.py names its own results file
                command += ["--results", str(results)]
            else:
                command += ["--json", str(results / f"{name}-{'quick-' if args.quick else ''}{stamp}.json")]
            print(f"\n### {name}: {' '.join(command[1:])}  (load average {os.getloadavg()[0]:.2f})", flush=True)
            started = time.monotonic()
            if subprocess.run(command, cwd=ROOT).returncode:
                failed.append(name)
            print(f"### {name}: {time.monotonic() - started:.0f} s", flush=True)
    if failed:
        print(f"\nmake bench: {', '.join(failed)} failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
