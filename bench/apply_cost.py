"""CPU per order of the applier's two steps, store and apply, in one process: no server, no HTTP.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres REDIS_URL=redis://127.0.0.1:6379/2 \\
        .venv/bin/python bench/apply_cost.py --batch 10 --batches 100 --rounds 3

Seeds a scratch database (``--database``) as ``bench/ingest.py`` does (1 k orders of history),
then, in this process, stores and applies signed new-order webhooks (1–3 lines on the 5 hot SKUs)
the way a server's applier does, ``--batch`` at a time: ``inbox.webhooks_receive`` (verify and
store, one committed INSERT), then ``inbox.webhooks_apply`` (one transaction). Per round it
reports this process's CPU per order for each step and PostgreSQL's CPU per order (all of its
processes, from /proc). Wall-clock rates on this machine move by a third from one run to the
next; CPU per order moves less, which makes this the measure for changes to the order path: run
two checkouts in alternation (``--reuse`` skips seeding). ``--profile`` prints cProfile's
cumulative listing.
"""

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Python put this script's folder first: bench/profile.py would hide the standard library's profile.
sys.path[0] = str(ROOT)
sys.path.append(str(ROOT / "bench"))

import ingest  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=10, help="webhooks stored and applied together (10)")
    parser.add_argument("--batches", type=int, default=100, help="batches per round (100)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--database", default="cf_apply", help="scratch database, dropped and recreated")
    parser.add_argument("--reuse", action="store_true", help="keep the database of an earlier run")
    parser.add_argument("--profile", action="store_true", help="print cProfile's listing of the rounds")
    args = parser.parse_args()
    base, redis_url = os.environ.get("DATABASE_URL"), os.environ.get("REDIS_URL")
    if not base or not redis_url:
        raise SystemExit("bench/apply_cost.py needs DATABASE_URL (PostgreSQL) and REDIS_URL")
    options = argparse.Namespace(pool_max=8, database=args.database, check_up_to=0)
    env = ingest.server_env(ingest.database_url(base, args.database), redis_url, options)
    if not args.reuse:
        ingest.database_recreate(base, args.database)
        ingest.database_prepare(env, 1000, check=False)
    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "creatorflow.settings"
    import django

    django.setup()
    from orders import inbox

    per_round = args.batch * args.batches
    warmup = per_round // 10
    path = ROOT / "bench" / "out" / "requests-apply.txt"
    path.parent.mkdir(exist_ok=True)
    hot = [f"HOT-{n}" for n in range(ingest.HOT_SKUS)]
    ingest.requests_file(path, warmup + per_round * args.rounds, prefix=f"apply-{time.time_ns()}", hot=hot, seed=3)
    deliveries = [(body.encode(), signature) for signature, body in
                  (line.rstrip("\n").split(" ", 1) for line in path.read_text().splitlines())]

    def run(chunk: list) -> tuple[float, float]:
        stored = applied = 0.0
        for start in range(0, len(chunk), args.batch):
            batch = chunk[start:start + args.batch]
            began = time.process_time()
            receipts = inbox.webhooks_receive(batch)
            pending = [item for receipt in receipts if isinstance(receipt, inbox.Receipt)
                       and (item := inbox.receipt_pending(receipt)) is not None]
            middle = time.process_time()
            results = inbox.webhooks_apply(pending)
            stored, applied = stored + middle - began, applied + time.process_time() - middle
            if sum(result.status == "processed" for result in results.values()) != len(batch):
                raise SystemExit(f"a batch was not applied whole: {receipts[:3]} {list(results.values())[:3]}")
        return stored, applied

    run(deliveries[:warmup])
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    for number in range(args.rounds):
        chunk = deliveries[warmup + number * per_round:warmup + (number + 1) * per_round]
        postgres = ingest.postgres_cpu_seconds()
        stored, applied = run(chunk)
        postgres = ingest.postgres_cpu_seconds() - postgres
        print(f"round {number + 1}: store {1000 * stored / per_round:.3f} + apply {1000 * applied / per_round:.3f} "
              f"= {1000 * (stored + applied) / per_round:.3f} ms of this process's CPU per order; "
              f"PostgreSQL {1000 * postgres / per_round:.3f} ms (batches of {args.batch}, load {os.getloadavg()[0]:.2f})",
              flush=True)
    if args.profile:
        import pstats

        profiler.disable()
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(60)


if __name__ == "__main__":
    main()
