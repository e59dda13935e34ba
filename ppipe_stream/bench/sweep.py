"""``ppipe bench``: ingestion latency against rate (or message size, partitions,
replicas: ``axes.py``), beside a raw baseline; and the highest rate a pipeline
sustains (``--find-max``).

Owns the probes: each is a fresh, complete run of the scenario at one constant
rate and one :class:`~.axes.Setting` (its own topics and run folder under the
bench folder, named for the axis' value: ``rate-100``, ``size-1000``), read back from its
summary and timeline. Every bench invocation has an id of its own
(:func:`new_bench_id`); a probe's run is named after the scenario, that id and the
probe (so its run id and topics are its own, even beside another bench started in
the same second on the same broker), and so is its raw baseline's topic.

A rate is *sustained* when the harness offered it in full (achieved >= 99% of
the target; its lag spikes are in the open-loop latency, which the SLO
judges), the pipeline's p99 is within the SLO, nothing is missing, and its backlog (events sent minus answered, per window) does not grow: the
slope of a least-squares line through the backlog stays under 1% of the rate
(Theodolite's lag-trend test). The search doubles the rate until a probe fails,
then bisects between the last sustained and the first failed rate until they
are within ``precision``; every probe is independent, so one noisy probe
cannot drag the search along, and it never reports a rate it has not run.
"""

from __future__ import annotations

import csv
import json
import math
import re
import secrets
from pathlib import Path
from typing import Any, Callable

import msgspec
import numpy as np

from ..run.orchestration import run_scenario
from ..scenario import LoadedScenario
from ..scenario.model import ConstantLoad
from ..units import Duration
from .axes import Axis, Setting, apply
from .raw import raw_latency_ms

__all__ = ["Probe", "backlog_slope", "failures", "find_max", "new_bench_id", "probe_names", "sweep"]

_NAME_MAX = 63  # a scenario name's longest (model.Name)


class Probe(msgspec.Struct, kw_only=True):
    """One run at one setting, and the verdict; ``axis`` and ``value``: what the sweep
    varied and this probe's value of it (``size`` is bytes of padding per event)."""

    rate: float
    axis: Axis = Axis.RATE
    value: float | None = None
    size: int = 0
    partitions: int | None = None
    replicas: int | None = None
    achieved: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    p999_ms: float | None = None
    lag_p99_ms: float | None = None
    missing: int = 0
    backlog_slope: float = 0.0
    valid: bool = True
    sustained: bool = False
    why: str = ""
    raw_p50_ms: float | None = None
    raw_p99_ms: float | None = None
    raw_p999_ms: float | None = None
    folder: str = ""
    raw_topic: str = ""


def new_bench_id() -> str:
    """An id of one bench invocation: 8 random hex digits."""
    return secrets.token_hex(4)


def probe_names(scenario_name: str, bench_id: str, label: str) -> tuple[str, str]:
    """The name a probe's run goes by (its run id and topics follow from it) and its raw
    baseline's topic; both carry the bench's id and the probe's ``label`` (its folder)."""
    label = re.sub(r"[^A-Za-z0-9_.-]+", "-", label)
    suffix = f"-{bench_id}-{label}"
    return scenario_name[: max(_NAME_MAX - len(suffix), 1)] + suffix, f"ppipe.bench.{bench_id}.raw.{label}"


def backlog_slope(timeline: Path, pipeline: str, warmup_s: float) -> float:
    """Events/s by which the pipeline's backlog (sent - answered) grows, from the timeline."""
    times, backlog, total = [], [], 0.0
    with open(timeline, newline="") as fh:
        for row in csv.DictReader(fh):
            if row["pipeline"] != pipeline:
                continue
            total += float(row["sent"] or 0) - float(row["answered"] or 0)
            if float(row["time_s"]) >= warmup_s and float(row["sent"] or 0) > 0:
                times.append(float(row["time_s"]))
                backlog.append(total)
    if len(times) < 3:
        return 0.0
    slope, _ = np.polyfit(np.asarray(times), np.asarray(backlog), 1)
    return float(slope)


def failures(result: Probe, slo_p99_ms: float | None) -> list[str]:
    """Why the pipeline did not sustain ``result.rate`` (empty: it did). A run the
    validity rules call invalid for a dispatch-lag spike still counts when the rate
    was offered in full: the lag is inside the open-loop latency the SLO judges."""
    reasons = []
    if result.achieved < 0.99 * result.rate:
        reasons.append(f"the harness sent only {result.achieved:.1f}/s")
    if slo_p99_ms is not None and (result.p99_ms is None or result.p99_ms > slo_p99_ms):
        reasons.append(f"p99 {result.p99_ms} ms over the SLO {slo_p99_ms} ms")
    if result.missing:
        reasons.append(f"{result.missing} missing")
    if result.backlog_slope > max(0.01 * result.rate, 1.0):
        reasons.append(f"backlog grows {result.backlog_slope:.1f} events/s")
    return reasons


async def probe(loaded: LoadedScenario, setting: Setting, *, seconds: float, folder: Path,
                slo_p99_ms: float | None, bench_id: str, raw_bootstrap: str | None = None,
                axis: Axis = Axis.RATE, force: bool = False) -> Probe:
    loaded = apply(loaded, setting)
    scenario = loaded.scenario
    rate = setting.rate
    warmup = min(2.0, seconds / 4)
    load = ConstantLoad(rate=rate, duration=Duration(seconds), warmup=Duration(warmup),
                        drain=Duration("5s"))
    run_name, raw_topic = probe_names(scenario.name, bench_id, folder.name)
    run = LoadedScenario(msgspec.structs.replace(scenario, name=run_name, load=load),
                         loaded.path, loaded.base_dir)
    outcome = await run_scenario(run, out=folder, force=force)
    summary = outcome.summary
    name = scenario.pipelines[0].name
    figures = (summary.get("pipelines") or {}).get(name, {})
    latency = figures.get("latency_ms") or {}
    dispatch = summary.get("dispatch") or {}
    result = Probe(rate=rate, axis=axis, value=setting.value(axis), size=setting.size,
                   partitions=setting.partitions, replicas=setting.replicas,
                   achieved=float(dispatch.get("achieved_rate") or 0.0),
                   p50_ms=latency.get("p50"), p99_ms=latency.get("p99"), p999_ms=latency.get("p999"),
                   lag_p99_ms=(dispatch.get("lag_ms") or {}).get("p99"),
                   missing=int((figures.get("status") or {}).get("missing", 0)),
                   valid=bool((summary.get("validity") or {}).get("valid", True)), folder=str(folder))
    result.backlog_slope = backlog_slope(folder / "timeline.csv", name, warmup) \
        if (folder / "timeline.csv").exists() else 0.0
    reasons = failures(result, slo_p99_ms)
    result.sustained = not reasons
    result.why = "; ".join(reasons) or "sustained"
    if raw_bootstrap is not None:
        from ..security import ClientSecurity

        security = ClientSecurity.resolve(scenario.kafka.security, base_dir=loaded.base_dir)
        result.raw_topic = raw_topic
        raw = await raw_latency_ms(raw_bootstrap, topic=raw_topic, rate=rate,
                                   seconds=seconds, partitions=setting.partitions, warmup_s=warmup,
                                   security=security, pad=setting.size,
                                   replication_factor=setting.replicas)
        result.raw_p50_ms, result.raw_p99_ms, result.raw_p999_ms = (
            round(float(np.percentile(raw, q)), 3) for q in (50, 99, 99.9))
    return result


def _base(loaded: LoadedScenario, rate: float) -> Setting:
    """The scenario's own place on every axis, at ``rate``."""
    kafka = loaded.scenario.kafka
    return Setting(rate=rate, size=loaded.scenario.dataset.pad, partitions=kafka.partitions,
                   replicas=kafka.replication_factor)


async def sweep(loaded: LoadedScenario, rates: list[float], *, seconds: float, out: Path,
                slo_p99_ms: float | None, raw_bootstrap: str, bench_id: str | None = None,
                report: Callable[[Probe], None] = lambda p: None, axis: Axis = Axis.RATE,
                settings: list[Setting] | None = None, force: bool = False) -> list[Probe]:
    """One probe per rate (or per setting, along ``axis``), each with the raw baseline
    at the same rate and setting."""
    bench_id = bench_id or new_bench_id()
    if settings is None:
        settings = [_base(loaded, rate) for rate in rates]
    probes = []
    for setting in settings:
        result = await probe(loaded, setting, seconds=seconds, folder=out / setting.label(axis),
                             slo_p99_ms=slo_p99_ms, bench_id=bench_id, raw_bootstrap=raw_bootstrap,
                             axis=axis, force=force)
        report(result)
        probes.append(result)
    _save(out, probes, bench_id=bench_id, axis=axis.value)
    return probes


async def find_max(loaded: LoadedScenario, *, start: float, seconds: float, out: Path,
                   slo_p99_ms: float | None, precision: float = 0.1, max_probes: int = 12,
                   bench_id: str | None = None,
                   report: Callable[[Probe], None] = lambda p: None, base: Setting | None = None,
                   force: bool = False) -> tuple[float | None, list[Probe]]:
    """The highest sustained rate found (None if even ``start`` fails), and every probe;
    ``base``: the size, partitions and replicas of every probe (default: the scenario's)."""
    bench_id = bench_id or new_bench_id()
    probes: list[Probe] = []
    base = base or _base(loaded, start)

    async def run(rate: float) -> bool:
        result = await probe(loaded, msgspec.structs.replace(base, rate=rate), seconds=seconds,
                             folder=out / f"probe-{len(probes)}-{rate:g}",
                             slo_p99_ms=slo_p99_ms, bench_id=bench_id, force=force)
        report(result)
        probes.append(result)
        return result.sustained

    good, bad = 0.0, math.inf
    rate = start
    while bad == math.inf and len(probes) < max_probes:
        if await run(rate):
            good, rate = rate, rate * 2
        else:
            bad = rate
    while bad < math.inf and good > 0 and (bad - good) / bad > precision and len(probes) < max_probes:
        middle = round((good + bad) / 2, 3)
        if await run(middle):
            good = middle
        else:
            bad = middle
    _save(out, probes, found=good or None, bench_id=bench_id)
    return (good or None), probes


def _save(out: Path, probes: list[Probe], **extra: Any) -> None:
    out.mkdir(parents=True, exist_ok=True)
    data = {"axis": Axis.RATE.value, "probes": [msgspec.to_builtins(p) for p in probes], **extra}
    (out / "bench.json").write_text(json.dumps(data, indent=2) + "\n")
