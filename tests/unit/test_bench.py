"""The max-rate search's lag-trend test, offline."""

import csv

import pytest

from ppipe_stream.bench import backlog_slope


def write_timeline(path, answered_per_window):
    with open(path, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["time_s", "pipeline", "sent", "answered"])
        for second, answered in enumerate(answered_per_window):
            writer.writerow([second, "p", 100, answered])
            writer.writerow([second, "other", 100, 100])


def test_a_pipeline_that_keeps_up_has_a_flat_backlog(tmp_path):
    write_timeline(tmp_path / "t.csv", [90, 110, 100, 95, 105, 100, 100, 100])
    assert abs(backlog_slope(tmp_path / "t.csv", "p", warmup_s=0)) < 2


def test_a_pipeline_that_falls_behind_grows_its_backlog(tmp_path):
    write_timeline(tmp_path / "t.csv", [70] * 10)  # 30 events/s short
    assert backlog_slope(tmp_path / "t.csv", "p", warmup_s=2) == pytest.approx(30, abs=0.5)
    assert backlog_slope(tmp_path / "t.csv", "other", warmup_s=0) == pytest.approx(0, abs=1e-9)


def test_a_harness_lag_spike_does_not_fail_the_pipeline():
    """CI once judged a 50/s probe of a 100/s pipeline unsustained because the run was
    invalid (dispatch lag p99 over the bound) although the rate was offered in full."""
    from ppipe_stream.bench import Probe, failures

    spike = Probe(rate=50, achieved=49.9, p99_ms=40.0, lag_p99_ms=35.0, valid=False, backlog_slope=0.2)
    assert failures(spike, slo_p99_ms=None) == []
    assert failures(spike, slo_p99_ms=30.0) == ["p99 40.0 ms over the SLO 30.0 ms"]
    short = Probe(rate=50, achieved=40.0, backlog_slope=0.0)
    assert failures(short, slo_p99_ms=None) == ["the harness sent only 40.0/s"]
    behind = Probe(rate=200, achieved=200.0, backlog_slope=60.0, missing=3)
    assert failures(behind, slo_p99_ms=None) == ["3 missing", "backlog grows 60.0 events/s"]


def test_every_bench_and_every_probe_in_it_has_names_of_its_own():
    """Two benches on one broker, even started in the same second, never share a run
    name (the harness's run id and topics follow from it) nor a raw baseline topic."""
    import re

    from ppipe_stream.bench import new_bench_id, probe_names

    a, b = new_bench_id(), new_bench_id()
    assert a != b
    names = {probe_names("bench-echo", bench, label) for bench in (a, b)
             for label in ("rate-100", "rate-1000", "probe-0-100")}
    assert len({run for run, _ in names}) == len({topic for _, topic in names}) == 6
    long_name = "x" * 63
    run, topic = probe_names(long_name, a, "rate-1e+06")
    assert re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}", run), run  # still a valid scenario name
    assert a in run and re.fullmatch(r"[A-Za-z0-9._-]+", topic) and a in topic  # a valid Kafka topic


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_the_default_bench_scenario_works_from_an_installed_wheel(tmp_path):
    """The default scenario found iris through the repository (``parents[2] / "scenarios"``):
    from a wheel installed anywhere else it failed. Its data now ships in the wheel."""
    import os
    import shutil
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(root / name, source / name)
    shutil.copytree(root / "ppipe_stream", source / "ppipe_stream",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w",
                    str(tmp_path / "dist"), str(source)], check=True, capture_output=True, timeout=180)
    wheel = next((tmp_path / "dist").glob("ppipe_stream-*.whl"))
    assert "ppipe_stream/data/iris.csv" in zipfile.ZipFile(wheel).namelist()
    site = tmp_path / "site"
    subprocess.run([*pip, "install", "--no-deps", "--no-index", "--target", str(site), str(wheel)],
                   check=True, capture_output=True, timeout=120)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    probe = ("import ppipe_stream; from ppipe_stream.bench.command import _scenario; "
             "loaded = _scenario(None); "  # what `ppipe bench` without a scenario runs
             "print(ppipe_stream.__file__); print(loaded.resolve(loaded.scenario.dataset.path))")
    result = subprocess.run([sys.executable, "-c", probe], cwd=elsewhere, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(site)}, timeout=60)
    assert result.returncode == 0, result.stderr
    package, iris = result.stdout.split()
    assert Path(package).is_relative_to(site) and Path(iris).is_relative_to(site), result.stdout
    assert Path(iris).read_text().startswith("sepal_length,")


def test_an_axis_sweeps_its_values_and_the_other_flags_hold_one_each():
    from ppipe_stream.bench.axes import Axis, Setting, apply, settings
    from ppipe_stream.bench.command import default_scenario
    from ppipe_stream.errors import UsageError

    loaded = default_scenario()  # 4 partitions, 1 replica, no padding
    by_rate = settings(Axis.RATE, loaded, rates=None, sizes=None, partitions=None, replicas=None)
    assert [s.rate for s in by_rate] == [100, 500, 1000, 2000]
    assert {(s.size, s.partitions, s.replicas) for s in by_rate} == {(0, 4, 1)}
    by_size = settings(Axis.SIZE, loaded, rates="200", sizes="100,1000", partitions="2", replicas=None)
    assert by_size == [Setting(rate=200, size=100, partitions=2, replicas=1),
                       Setting(rate=200, size=1000, partitions=2, replicas=1)]
    assert [s.label(Axis.SIZE) for s in by_size] == ["size-100", "size-1000"]
    assert [s.rate for s in settings(Axis.PARTITIONS, loaded, rates=None, sizes=None,
                                     partitions="1,8", replicas=None)] == [500, 500]
    with pytest.raises(UsageError, match="--rates 100,200: only the axis is swept"):
        settings(Axis.SIZE, loaded, rates="100,200", sizes=None, partitions=None, replicas=None)
    with pytest.raises(UsageError, match="--partitions '0': give whole numbers of at least 1"):
        settings(Axis.PARTITIONS, loaded, rates=None, sizes=None, partitions="0", replicas=None)
    with pytest.raises(UsageError, match="--sizes '1.5'"):
        settings(Axis.SIZE, loaded, rates=None, sizes="1.5", partitions=None, replicas=None)
    applied = apply(loaded, by_size[1]).scenario
    assert (applied.dataset.pad, applied.kafka.partitions, applied.kafka.replication_factor) == (1000, 2, 1)


def test_the_table_and_chart_follow_the_axis(tmp_path):
    from rich.console import Console

    from ppipe_stream.bench import Probe
    from ppipe_stream.bench.axes import Axis
    from ppipe_stream.bench.command import _chart, _table

    probes = [Probe(rate=500, axis=Axis.SIZE, value=v, size=int(v), p50_ms=2.0 + v / 1000,
                    p99_ms=5.0, raw_p50_ms=1.0, raw_p99_ms=3.0, why="sustained") for v in (100, 1000)]
    console = Console(width=200, record=True)
    console.print(_table(probes, Axis.SIZE))
    text = console.export_text()
    assert "against size (pad bytes)" in text and "size (pad bytes)" in text.splitlines()[2]
    assert any(line.split("│")[1].strip() == "1000" for line in text.splitlines() if "│" in line)
    _chart(probes, tmp_path / "bench.png", Axis.SIZE)
    assert (tmp_path / "bench.png").stat().st_size > 0


def test_a_bench_folder_with_probes_is_refused_unless_force(tmp_path):
    """It was refused at the first probe with a hint to --force, which bench did not have."""
    from ppipe_stream.bench.command import bench_folder
    from ppipe_stream.errors import UsageError

    (tmp_path / "old" / "rate-100").mkdir(parents=True)
    (tmp_path / "old" / "rate-100" / "summary.json").write_text("{}")
    with pytest.raises(UsageError, match="earlier bench's results already.*--force"):
        bench_folder(tmp_path / "old", force=False)
    assert bench_folder(tmp_path / "old", force=True) == tmp_path / "old"
    assert bench_folder(tmp_path / "new", force=False) == tmp_path / "new"
