"""Draw the benchmark figures beside bench/README.md from the JSON in bench/results/.

    .venv/bin/python bench/plot.py      # needs matplotlib (make bench installs it)

* ``ingest-latency.png``: ack latency p50/p90/p99 against the offered rate (the newest ingest run
  with a ``--sweep``), with the achieved rate of each point;
* ``push-latency.png``: commit→frame p50/p90/p99 against the offered rate, 100 creators with 10
  tabs each (the newest push run labelled ``sweep-…`` at each rate), with the webhooks answered a second;
* ``cost-history.png``: the machine's time per order (1000 / orders per second) against orders of
  history: CreatorFlow over HTTP (newest ingest run with two history sizes, closed loop) and the
  original design's SQL alone (newest ``original`` run, one client).
"""

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"


def newest(pattern: str, accept) -> tuple[Path, dict] | None:
    for path in sorted(RESULTS.glob(pattern), key=lambda path: path.stat().st_mtime, reverse=True):
        data = json.loads(path.read_text())
        if accept(data):
            return path, data
    return None


def latency_plot() -> str | None:
    found = newest("ingest-*.json", lambda data: any(p.startswith("paced-") for p in data["runs"][0]["phases"]))
    if found is None:
        return None
    path, data = found
    phases = data["runs"][0]["phases"]
    paced = sorted((figures["rate"], figures) for name, figures in phases.items() if name.startswith("paced"))
    rates = [rate for rate, _ in paced]
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for key, style in (("p50_ms", "o-"), ("p90_ms", "s-"), ("p99_ms", "^-")):
        axis.plot(rates, [figures[key] for _, figures in paced], style, label=key.removesuffix("_ms"))
    for rate, figures in paced:
        axis.annotate(f"{figures['per_second']:.0f}/s", (rate, figures["p99_ms"]), textcoords="offset points",
                      xytext=(0, 6), ha="center", fontsize=8)
    axis.axhline(100, color="grey", linestyle=":", label="target p99 (100 ms)")
    axis.set(xlabel="offered webhooks/s (label: achieved)", ylabel="ack latency, ms",
             title=f"Ingest on make serve, {data['runs'][0]['history']:,} orders of history")
    axis.legend()
    figure.tight_layout()
    figure.savefig(BENCH / "ingest-latency.png", dpi=110)
    return f"ingest-latency.png from {path.name}"


def push_plot() -> str | None:
    runs: dict[float, tuple[Path, dict]] = {}
    for path in sorted(RESULTS.glob("push_latency-sweep-*.json"), key=lambda path: path.stat().st_mtime):
        data = json.loads(path.read_text())
        runs[data["config"]["rate"]] = (path, data)  # the newest at each rate
    if len(runs) < 2:
        return None
    rates = sorted(runs)
    figure, axis = plt.subplots(figsize=(7, 4.2))
    for key, style in (("p50", "o-"), ("p90", "s-"), ("p99", "^-")):
        axis.plot(rates, [runs[rate][1]["commit_to_frame_ms"][key] for rate in rates], style, label=key)
    for rate in rates:
        data = runs[rate][1]
        axis.annotate(f"{data['webhooks']['answered_per_second']:.0f}/s", (rate, data["commit_to_frame_ms"]["p99"]),
                      textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    axis.axhline(150, color="grey", linestyle=":", label="target p99 (150 ms)")
    config = runs[rates[0]][1]["config"]
    axis.set(yscale="log", xlabel="offered webhooks/s (label: answered)", ylabel="commit → frame, ms",
             title=f"Push to {config['clients']:,} tabs of {config['creators']} creators, {config['server']}")
    axis.legend()
    figure.tight_layout()
    figure.savefig(BENCH / "push-latency.png", dpi=110)
    return f"push-latency.png from {', '.join(runs[rate][0].name for rate in rates)}"


def cost_plot() -> str | None:
    ours = newest("ingest-*.json", lambda data: len(data["runs"]) > 1)
    original = newest("original-*.json", lambda data: True)
    if ours is None or original is None:
        return None
    figure, axis = plt.subplots(figsize=(7, 4.2))
    histories = [run["history"] for run in ours[1]["runs"]]
    costs = [1000 / run["phases"]["closed"]["per_second"] for run in ours[1]["runs"]]
    axis.plot(histories, costs, "o-", label="CreatorFlow over HTTP (make serve, closed loop)")
    rows = original[1]["results"]
    axis.plot([row["history"] for row in rows], [1000 / row["orders_per_s"] for row in rows], "s-",
              label="original design, SQL only (pgbench, 1 client)")
    axis.set(xscale="log", yscale="log", xlabel="orders of history", ylabel="ms per order (1000 / orders per s)",
             title="Per-order cost against history")
    axis.legend()
    figure.tight_layout()
    figure.savefig(BENCH / "cost-history.png", dpi=110)
    return f"cost-history.png from {ours[0].name} and {original[0].name}"


def main() -> int:
    drawn = [line for line in (latency_plot(), push_plot(), cost_plot()) if line]
    for line in drawn:
        print(line)
    return 0 if drawn else 1


if __name__ == "__main__":
    sys.exit(main())
