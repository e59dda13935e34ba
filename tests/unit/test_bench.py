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
