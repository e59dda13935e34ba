"""A container's network cost: the docker quickstart beside the same model as a process.

Both sides are ``ppipe run`` of ``scenarios/docker-quickstart.toml`` on the run's
own Apache Kafka (the embedded default): the same river model, the same load
(200 events/s), the same broker kind. One side runs the model in the sandboxed
container (non-root, read-only, no capabilities, its network's only peer the
broker on the gateway); the other runs ``ppipe_stream.examples.river_online``
as a local process. The two alternate (docker, process, docker, process...) so
a change in the machine's load falls on both.

Target (issue "Container pipelines on every broker", item 4): the container's
p50 within 1 ms of the process's. The last line is one JSON object.

    .venv/bin/python benchmarks/bench_container.py [--rounds 2] [--duration 20s]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIO = ROOT / "scenarios" / "docker-quickstart.toml"
PROCESS = '''name = "river-process"
runtime = "process"
command = ["python", "-m", "ppipe_stream.examples.river_online"]
'''


def variant(kind: str, duration: str) -> str:
    """The docker quickstart's text, as a process pipeline when ``kind`` says so."""
    text = SCENARIO.read_text().replace('duration = "20s"', f'duration = "{duration}"')
    # the copy lives elsewhere: its relative paths made absolute
    text = text.replace('"data/iris.csv"', f'"{SCENARIO.parent / "data" / "iris.csv"}"')
    text = text.replace('"../examples/river-online"', f'"{ROOT / "examples" / "river-online"}"')
    if kind == "process":
        head, _, rest = text.partition('name = "river-docker"\n')
        rest = rest.split("\n\n", 1)[1]  # the docker pipeline's keys, to the blank line
        text = head + PROCESS + "\n" + rest
    return text


def run(kind: str, duration: str, folder: Path) -> dict:
    path = folder / f"{kind}.toml"
    path.write_text(variant(kind, duration))
    out = folder / f"run-{kind}"
    done = subprocess.run([sys.executable, "-m", "ppipe_stream", "run", str(path), "--plain",
                           "--force", "--out", str(out)], cwd=ROOT / "scenarios", check=False,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if not (out / "summary.json").exists():
        sys.exit(f"bench_container: the {kind} run left no summary: {done.stderr[-2000:]}")
    summary = json.loads((out / "summary.json").read_text())
    figures = next(iter(summary["pipelines"].values()))
    latency = figures["latency_ms"]
    return {"kind": kind, "broker": summary["broker"]["kind"], "p50": latency["p50"],
            "p99": latency["p99"], "missing": figures["status"]["missing"],
            "valid": summary.get("validity", {}).get("valid")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", default="20s")
    args = parser.parse_args()
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.rounds):
            for kind in ("docker", "process"):
                rows.append(run(kind, args.duration, Path(tmp)))
                row = rows[-1]
                print(f"{row['kind']:8} on {row['broker']:6} p50 {row['p50']:7.2f} ms  "
                      f"p99 {row['p99']:7.2f} ms  missing {row['missing']}  valid {row['valid']}",
                      flush=True)
    p50 = {kind: statistics.median(r["p50"] for r in rows if r["kind"] == kind)
           for kind in ("docker", "process")}
    p99 = {kind: statistics.median(r["p99"] for r in rows if r["kind"] == kind)
           for kind in ("docker", "process")}
    cost = p50["docker"] - p50["process"]
    print(f"\ncontainer p50 {p50['docker']:.2f} ms, process p50 {p50['process']:.2f} ms: "
          f"the container adds {cost:+.2f} ms (target within 1 ms: "
          f"{'met' if abs(cost) <= 1.0 else 'not met'})")
    print(json.dumps({"benchmark": "container", "p50_ms": p50, "p99_ms": p99,
                      "container_cost_p50_ms": round(cost, 3), "runs": rows}))


if __name__ == "__main__":
    main()
