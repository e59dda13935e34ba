"""The latency interval log reads back with hdrh's standard reader."""

from hdrh.log import HistogramLogReader

from ppipe_stream.scoring.hist import new_histogram, record_many
from ppipe_stream.scoring import HlogFiles

T0 = 1_700_000_000_000_000_000


def test_intervals_read_back(tmp_path):
    files = HlogFiles(tmp_path, T0)
    first, second = new_histogram(), new_histogram()
    record_many(first, [1000, 2000, 3000])
    record_many(second, [5000] * 7)
    files.write([("p", T0, T0 + 10**9, first), ("p", T0 + 10**9, T0 + 2 * 10**9, second)])
    files.close()
    text = (tmp_path / "latency-p.hlog").read_text()
    assert "#[StartTime: 1700000000.000 (seconds since epoch)" in text
    reader = HistogramLogReader(str(tmp_path / "latency-p.hlog"), new_histogram())
    counts = []
    while (hist := reader.get_next_interval_histogram()) is not None:
        counts.append((hist.get_total_count(), hist.get_max_value()))
    reader.close()
    assert counts[0][0] == 3 and counts[1][0] == 7
    assert abs(counts[1][1] - 5000) <= 5
