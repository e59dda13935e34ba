"""The driver of ``ppipe bench``: which broker, which scenario, and what is shown.

Owns starting the benchmark's broker (Apache Kafka by default: latency figures
on tansu are tansu's), the default scenario (the echo pipeline on iris, which
ships as package data, ``ppipe_stream/data/iris.csv``, so an installed wheel
has it), the bench's id (every invocation's topics are its own), the printed
table, and the chart of latency percentiles against rate (``bench.png``)
beside the raw baseline. The measuring is ``sweep.py``'s.
"""

from __future__ import annotations

import json
import time
from importlib import resources
from pathlib import Path

import msgspec
from rich.console import Console
from rich.table import Table

from ..errors import UsageError
from ..scenario import LoadedScenario, loads_scenario
from ..units import parse_duration
from .sweep import Probe, find_max, new_bench_id, sweep

__all__ = ["default_scenario", "run_bench"]

_DEFAULT = """
name = "bench-echo"
[dataset]
source = "csv"
path = {iris}
target = "variety"
loop = true
[load]
profile = "constant"
rate = 100
duration = "10s"
[labels]
delay = "never"
[[pipelines]]
name = "echo"
runtime = "process"
command = ["python", "-m", "ppipe_stream.examples.echo"]
[scoring]
deadline = "5s"
"""


def default_scenario() -> LoadedScenario:
    """The echo pipeline on the iris rows shipped inside the package."""
    iris = Path(str(resources.files("ppipe_stream") / "data" / "iris.csv"))
    if not iris.is_file():
        raise UsageError(f"the default bench scenario needs {iris}, which this installation "
                         "lacks; give a scenario")
    return loads_scenario(_DEFAULT.format(iris=json.dumps(str(iris))), file="<bench>", base_dir=iris.parent)


def _scenario(path: Path | None) -> LoadedScenario:
    from ..checks import scenario_checks
    from ..scenario import load_scenario

    if path is not None:
        return load_scenario(path, extra_checks=scenario_checks)
    return default_scenario()


def _table(probes: list[Probe]) -> Table:
    table = Table(title="ingestion latency against rate (ms, from intended send time)")
    for column in ("rate", "achieved", "p50", "p99", "p99.9", "raw p50", "raw p99", "raw p99.9",
                   "lag p99", "backlog/s", "verdict"):
        table.add_column(column, justify="left" if column == "verdict" else "right")
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for p in probes:
        table.add_row(f"{p.rate:g}", f"{p.achieved:.1f}", fmt(p.p50_ms), fmt(p.p99_ms), fmt(p.p999_ms),
                      fmt(p.raw_p50_ms), fmt(p.raw_p99_ms), fmt(p.raw_p999_ms), fmt(p.lag_p99_ms),
                      f"{p.backlog_slope:.1f}", p.why)
    return table


def _chart(probes: list[Probe], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rates = [p.rate for p in probes]
    fig, ax = plt.subplots(figsize=(8, 4))
    for attr, label, style in (("p50_ms", "ppipe p50", "o-"), ("p99_ms", "ppipe p99", "s-"),
                               ("raw_p50_ms", "raw aiokafka p50", "o--"), ("raw_p99_ms", "raw aiokafka p99", "s--")):
        values = [getattr(p, attr) for p in probes]
        if any(v is not None for v in values):
            ax.plot(rates, values, style, label=label)
    ax.set(title="Latency against rate", xlabel="events/s", ylabel="ms")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


async def run_bench(*, scenario: Path | None, rates: list[float], seconds: float, kind: str,
                    bootstrap: str | None, out: Path | None, find_max_rate: bool, slo: str | None,
                    start: float, console: Console) -> int:
    from ..brokers import start_kafka, start_tansu

    from ..checks import check_before_run

    loaded = _scenario(scenario)
    check_before_run(loaded)  # before the broker starts, not at the first probe
    bench_id = new_bench_id()
    slo_ms = parse_duration(slo) * 1000 if slo else None
    out = out or Path("runs") / f"bench-{time.strftime('%Y%m%dT%H%M%S', time.gmtime())}"
    broker = None
    if bootstrap is None:
        broker = start_kafka() if kind == "kafka" else start_tansu()
        bootstrap = broker.bootstrap
    try:
        kafka = msgspec.structs.replace(loaded.scenario.kafka, bootstrap=bootstrap)
        loaded = LoadedScenario(msgspec.structs.replace(loaded.scenario, kafka=kafka),
                                loaded.path, loaded.base_dir)

        def show(probe: Probe) -> None:
            console.print(f"rate {probe.rate:g}/s: p50 {probe.p50_ms} ms, p99 {probe.p99_ms} ms -> {probe.why}")

        if find_max_rate:
            found, probes = await find_max(loaded, start=start, seconds=seconds, out=out,
                                           slo_p99_ms=slo_ms, bench_id=bench_id, report=show)
            console.print(_table(probes))
            console.print(f"highest sustained rate: {found if found is not None else 'none (even the start rate failed)'}"
                          f" events/s (SLO p99 {slo or 'none'}, backlog not growing)")
        else:
            probes = await sweep(loaded, rates, seconds=seconds, out=out, slo_p99_ms=slo_ms,
                                 raw_bootstrap=bootstrap, bench_id=bench_id, report=show)
            console.print(_table(probes))
            _chart(probes, out / "bench.png")
            console.print(f"chart: {out / 'bench.png'}")
    finally:
        if broker is not None:
            broker.stop()
    print(out)
    return 0
