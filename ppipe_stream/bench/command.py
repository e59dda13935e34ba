"""The driver of ``ppipe bench``: which broker, which scenario, and what is shown.

Owns starting the benchmark's broker (Apache Kafka by default: latency figures
on tansu are tansu's), the default scenario (the echo pipeline on iris, which
ships as package data, ``ppipe_stream/data/iris.csv``, so an installed wheel
has it), the bench's id (every invocation's topics are its own), the printed
table, and the chart of latency percentiles against the sweep's axis
(``bench.png``: rate, message size, partitions or replicas, ``axes.py``) beside
the raw baseline, the bench folder (refused when it holds anything, unless
``force``) and its own ``log.jsonl``: what happens between the probes (the raw
baseline's clients, the broker) is logged there, and library noise never reaches
the console. The measuring is ``sweep.py``'s.
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
from ..run.logs import session_logging
from ..scenario import LoadedScenario, loads_scenario
from ..units import parse_duration
from .axes import Axis, settings
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
    from ..run.preflight import scenario_checks
    from ..scenario import load_scenario

    if path is not None:
        return load_scenario(path, extra_checks=scenario_checks)
    return default_scenario()


def _table(probes: list[Probe], axis: Axis = Axis.RATE) -> Table:
    title = "rate" if axis is Axis.RATE else axis.title
    table = Table(title=f"ingestion latency against {title} (ms, from intended send time)")
    columns = ["rate"] if axis is Axis.RATE else [axis.title, "rate"]
    for column in (*columns, "achieved", "p50", "p99", "p99.9", "raw p50", "raw p99", "raw p99.9",
                   "lag p99", "backlog/s", "verdict"):
        table.add_column(column, justify="left" if column == "verdict" else "right")
    fmt = lambda v: "-" if v is None else f"{v:.2f}"  # noqa: E731
    for p in probes:
        first = [f"{p.rate:g}"] if axis is Axis.RATE else [f"{p.value:g}", f"{p.rate:g}"]
        table.add_row(*first, f"{p.achieved:.1f}", fmt(p.p50_ms), fmt(p.p99_ms), fmt(p.p999_ms),
                      fmt(p.raw_p50_ms), fmt(p.raw_p99_ms), fmt(p.raw_p999_ms), fmt(p.lag_p99_ms),
                      f"{p.backlog_slope:.1f}", p.why)
    return table


def _chart(probes: list[Probe], path: Path, axis: Axis = Axis.RATE) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    xs = [p.rate if axis is Axis.RATE else p.value for p in probes]
    fig, ax = plt.subplots(figsize=(8, 4))
    for attr, label, style in (("p50_ms", "ppipe p50", "o-"), ("p99_ms", "ppipe p99", "s-"),
                               ("raw_p50_ms", "raw aiokafka p50", "o--"), ("raw_p99_ms", "raw aiokafka p99", "s--")):
        values = [getattr(p, attr) for p in probes]
        if any(v is not None for v in values):
            ax.plot(xs, values, style, label=label)
    if axis is Axis.RATE:
        ax.set(title="Latency against rate", xlabel="events/s", ylabel="ms")
    else:
        ax.set(title=f"Latency against {axis.value} (at {probes[0].rate:g} events/s)" if probes
               else f"Latency against {axis.value}", xlabel=axis.title, ylabel="ms")
    if axis.log_scale and xs and min(xs) > 0:
        ax.set_xscale("log")
    elif not axis.log_scale:
        ax.set_xticks(xs)
    ax.set_yscale("log")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def bench_folder(out: Path | None, *, force: bool) -> Path:
    """Where the bench writes: ``out`` (UsageError when it holds anything already,
    an earlier bench's probes say, unless ``force``), else ``runs/bench-<UTC time>``."""
    if out is None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
        out, n = Path("runs") / f"bench-{stamp}", 1
        while out.exists():  # two benches within one second
            n += 1
            out = Path("runs") / f"bench-{stamp}-{n}"
        return out
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out}: a file is there, not a folder")
    if not force and out.is_dir() and any(p.name != "log.jsonl" for p in out.iterdir()):  # a log alone:
        # a bench that failed before its first probe
        what = "an earlier bench's results" if (out / "bench.json").exists() or any(
            (p / "summary.json").exists() for p in out.iterdir() if p.is_dir()) else "files"
        raise UsageError(f"--out {out}: holds {what} already; give a new or empty folder, "
                         "or --force to write over them")
    return out


async def run_bench(*, scenario: Path | None, rates: list[float] | str | None, seconds: float,
                    kind: str, bootstrap: str | None, out: Path | None, find_max_rate: bool,
                    slo: str | None, start: float, console: Console, axis: Axis = Axis.RATE,
                    sizes: str | None = None, partitions: str | None = None,
                    replicas: str | None = None, force: bool = False) -> int:
    """``ppipe bench``: one probe per value of ``axis`` (the other flags hold one value
    each), or ``find_max_rate``; prints the bench folder's path last."""
    from ..brokers import start_kafka, start_tansu

    from ..run.preflight import check_before_run

    loaded = _scenario(scenario)
    check_before_run(loaded)  # before the broker starts, not at the first probe
    if isinstance(rates, list):
        rates = ",".join(f"{r:g}" for r in rates)
    if find_max_rate and axis is not Axis.RATE:
        raise UsageError(f"--find-max searches the rate: drop --axis {axis.value} (give one "
                         "--sizes / --partitions / --replicas value to search at)")
    chosen = settings(axis, loaded, rates=rates if not find_max_rate else f"{start:g}",
                      sizes=sizes, partitions=partitions, replicas=replicas)
    most = max(s.replicas for s in chosen)
    if most > 1 and bootstrap is None:
        raise UsageError(f"--replicas {most}: needs a cluster of at least {most} brokers, and the "
                         "broker bench starts is one; give --bootstrap of a cluster "
                         f"(e.g. `ppipe broker start --nodes {most}`)")
    bench_id = new_bench_id()
    slo_ms = parse_duration(slo) * 1000 if slo else None
    out = bench_folder(out, force=force)
    with session_logging(out):
        broker = None
        if bootstrap is None:
            broker = start_kafka() if kind == "kafka" else start_tansu()
            bootstrap = broker.bootstrap
        try:
            kafka = msgspec.structs.replace(loaded.scenario.kafka, bootstrap=bootstrap)
            loaded = LoadedScenario(msgspec.structs.replace(loaded.scenario, kafka=kafka),
                                    loaded.path, loaded.base_dir)

            def show(probe: Probe) -> None:
                where = "" if axis is Axis.RATE else f"{axis.value} {probe.value:g}, "
                console.print(f"{where}rate {probe.rate:g}/s: p50 {probe.p50_ms} ms, "
                              f"p99 {probe.p99_ms} ms -> {probe.why}")

            if find_max_rate:
                found, probes = await find_max(loaded, start=start, seconds=seconds, out=out,
                                               slo_p99_ms=slo_ms, bench_id=bench_id, report=show,
                                               base=chosen[0], force=force)
                console.print(_table(probes))
                console.print(f"highest sustained rate: {found if found is not None else 'none (even the start rate failed)'}"
                              f" events/s (SLO p99 {slo or 'none'}, backlog not growing)")
            else:
                probes = await sweep(loaded, [s.rate for s in chosen], seconds=seconds, out=out,
                                     slo_p99_ms=slo_ms, raw_bootstrap=bootstrap, bench_id=bench_id,
                                     report=show, axis=axis, settings=chosen, force=force)
                console.print(_table(probes, axis))
                _chart(probes, out / "bench.png", axis)
                console.print(f"chart: {out / 'bench.png'}")
        finally:
            if broker is not None:
                broker.stop()
    print(out)
    return 0
