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
