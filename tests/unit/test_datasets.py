"""Datasets as streams: every source, shuffle and loop, bad rows, bounded memory."""

from __future__ import annotations

import itertools
import json
import tracemalloc
from pathlib import Path

import msgspec
import pytest

from ppipe_stream.datasets import open_dataset
from ppipe_stream.errors import DatasetError
from ppipe_stream.scenario.model import Dataset

ROOT = Path(__file__).resolve().parents[2]


def rows(spec: Dataset, base=ROOT / "scenarios", seed=1, limit=None):
    return list(itertools.islice(open_dataset(spec, base_dir=base, seed=seed), limit))


def test_csv_types_and_target():
    got = rows(Dataset(source="csv", path="data/iris.csv", target="variety"))
    assert len(got) == 150
    first = got[0]
    assert first.index == 0 and first.label == "setosa"
    assert first.features == {"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4,
                              "petal_width": 0.2}


def test_shuffle_is_seeded_and_loop_restarts():
    spec = Dataset(source="csv", path="data/iris.csv", target="variety", shuffle=True, loop=True)
    a = [r.index for r in rows(spec, seed=1, limit=300)]
    assert a == [r.index for r in rows(spec, seed=1, limit=300)]
    assert a != [r.index for r in rows(spec, seed=2, limit=300)]
    assert sorted(a[:150]) == list(range(150)) and sorted(a[150:]) == list(range(150))
    assert a[:150] != a[150:]  # the second pass is reshuffled


def test_jsonl_and_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "d.jsonl").write_text("\n".join(json.dumps({"x": i, "y": i % 2}) for i in range(5)))
    got = rows(Dataset(source="jsonl", path="d.jsonl", target="y"), base=tmp_path)
    assert [(r.features, r.label) for r in got][:2] == [({"x": 0}, 0), ({"x": 1}, 1)]
    pq.write_table(pa.table({"x": [1.5, 2.5], "t": [10, 20], "y": ["a", "b"]}), tmp_path / "d.parquet")
    got = rows(Dataset(source="parquet", path="d.parquet", target="y", timestamp="t"), base=tmp_path)
    assert [(r.features, r.label, r.timestamp_s) for r in got] == [({"x": 1.5}, "a", 10.0),
                                                                    ({"x": 2.5}, "b", 20.0)]


def test_bad_rows_name_file_and_line_or_are_skipped(tmp_path):
    (tmp_path / "bad.csv").write_text("a,b,y\n1,2,x\n1,2\n3,4,\n5,6,z\n")
    with pytest.raises(DatasetError, match=r"bad\.csv:3: bad row: 2 fields where the header has 3"):
        rows(Dataset(source="csv", path="bad.csv", target="y"), base=tmp_path)
    stream = open_dataset(Dataset(source="csv", path="bad.csv", target="y", on_bad_row="skip"),
                          base_dir=tmp_path, seed=0)
    assert [r.label for r in stream] == ["x", "z"] and stream.skipped_rows == 2
    (tmp_path / "bad.jsonl").write_text('{"y": 1}\n{oops\n')
    with pytest.raises(DatasetError, match=r"bad\.jsonl:2: bad row: not JSON"):
        rows(Dataset(source="jsonl", path="bad.jsonl", target="y"), base=tmp_path)


def test_timestamps_iso_and_bad(tmp_path):
    (tmp_path / "t.csv").write_text("when,v,y\n2026-01-01T00:00:00Z,1,a\n2026-01-01T00:00:02Z,2,b\nsoon,3,c\n")
    spec = Dataset(source="csv", path="t.csv", target="y", timestamp="when")
    with pytest.raises(DatasetError, match=r"t\.csv:4: bad row: cannot read timestamp 'soon'"):
        rows(spec, base=tmp_path)
    got = rows(spec, base=tmp_path, limit=2)
    assert got[1].timestamp_s - got[0].timestamp_s == 2.0


def test_sklearn_and_river_bundled():
    iris = rows(Dataset(source="sklearn", name="iris"))
    assert len(iris) == 150 and iris[0].label == "setosa" and "sepal_length_cm" in iris[0].features
    assert type(iris[0].label) is str  # numpy.str_ crashed the dispatcher's JSON encoder
    msgspec.json.encode([iris[0].label, iris[0].features])
    phishing = rows(Dataset(source="river", name="phishing"), limit=3)
    assert len(phishing) == 3 and isinstance(phishing[0].label, bool)
    with pytest.raises(DatasetError, match="downloaded on first use"):
        rows(Dataset(source="river", name="creditcard"))
    with pytest.raises(DatasetError, match="did you mean 'iris'"):
        rows(Dataset(source="sklearn", name="irs"))


def test_synth_drift_changes_the_concept():
    spec = Dataset(source="synth", generator="sea", drift_at=[500])
    got = rows(spec, seed=3, limit=1000)
    assert [r.index for r in got] == list(range(1000))

    def rule_agreement(part, threshold):  # SEA: label = x0 + x1 > threshold
        return sum((r.features["0"] + r.features["1"] > threshold) == r.label for r in part) / len(part)

    assert rule_agreement(got[:500], 8) == 1.0  # variant 0
    assert rule_agreement(got[500:], 9) == 1.0  # variant 1
    assert rule_agreement(got[500:], 8) < 0.95
    with pytest.raises(DatasetError, match="no concepts to drift"):
        rows(Dataset(source="synth", generator="hyperplane", drift_at=[10]))


def test_a_large_file_streams_in_bounded_memory(tmp_path):
    path = tmp_path / "big.csv"
    with open(path, "w") as fh:
        fh.write("a,b,c,y\n")
        for i in range(100_000):
            fh.write(f"{i},{i * 0.5},word{i % 7},{i % 3}\n")
    size = path.stat().st_size
    tracemalloc.start()
    count = sum(1 for _ in open_dataset(Dataset(source="csv", path="big.csv", target="y"),
                                        base_dir=tmp_path, seed=0))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 100_000
    assert peak < size / 20, f"peak {peak} bytes for a {size}-byte file"


# -- checking a dataset against its data, without streaming it (ppipe validate) ---

def test_check_finds_the_columns_of_each_file_kind(tmp_path):
    from ppipe_stream.datasets.check import check_dataset

    import pyarrow as pa
    import pyarrow.parquet as pq

    (tmp_path / "a.jsonl").write_text('\n{"x": 1, "when": 5, "y": "a"}\n{"x": 2}\n')
    pq.write_table(pa.table({"x": [1, 2], "y": ["a", "b"]}), tmp_path / "a.parquet")
    good = [Dataset(source="csv", path=str(ROOT / "scenarios" / "data" / "iris.csv"), target="variety"),
            Dataset(source="jsonl", path="a.jsonl", target="y", timestamp="when"),
            Dataset(source="parquet", path="a.parquet", target="y"),
            Dataset(source="sklearn", name="wine"), Dataset(source="river", name="Phishing"),
            Dataset(source="synth", generator="sea")]
    for spec in good:
        assert check_dataset(spec, base_dir=tmp_path) == [], spec
    [problem] = check_dataset(Dataset(source="jsonl", path="a.jsonl", target="y", timestamp="wen"),
                              base_dir=tmp_path)
    assert problem.key == "timestamp" and f"{tmp_path / 'a.jsonl'}:2" in problem.message
    assert "the first record" in problem.message and problem.hint == "did you mean `when`?"
    [problem] = check_dataset(Dataset(source="parquet", path="a.parquet", target="Y2"), base_dir=tmp_path)
    assert "the schema of" in problem.message and problem.hint.startswith("did you mean `y`?")


def test_check_reads_only_the_first_record(tmp_path):
    """A file's later rows are the run's business (on_bad_row): the check reads the
    header and no further, so rows it could not parse do not matter to it."""
    from ppipe_stream.datasets.check import check_dataset

    (tmp_path / "rows.csv").write_bytes(b"x,label\n1,a\n1,2,3\n" + b"9,b\n" * 100_000)
    assert check_dataset(Dataset(source="csv", path="rows.csv", target="label"), base_dir=tmp_path) == []
    with pytest.raises(DatasetError, match="rows.csv:3: bad row"):
        rows(Dataset(source="csv", path="rows.csv", target="label"), base=tmp_path)


def test_check_of_a_bad_file_names_it(tmp_path):
    from ppipe_stream.datasets.check import check_dataset

    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "latin.csv").write_bytes("caf\xe9,label\n1,a\n".encode("latin-1"))
    (tmp_path / "bad.jsonl").write_text("not json\n{\"y\": 1}\n")
    (tmp_path / "bad.parquet").write_text("not parquet")
    cases = {("csv", "empty.csv"): "empty: no header line", ("csv", "latin.csv"): "",
             ("jsonl", "bad.jsonl"): "bad.jsonl:1: bad row: not JSON", ("parquet", "bad.parquet"): "parquet",
             ("csv", "missing.csv"): "not found"}
    for (source, name), expected in cases.items():
        [problem] = check_dataset(Dataset(source=source, path=name, target="y"), base_dir=tmp_path)
        assert problem.key == "path" and expected in problem.message and name in problem.message, problem
    # with on_bad_row = "skip", the first good record is the one that counts
    assert check_dataset(Dataset(source="jsonl", path="bad.jsonl", target="y", on_bad_row="skip"),
                         base_dir=tmp_path) == []


def test_the_closest_column_is_named_and_the_columns_when_none_is_close():
    from ppipe_stream.datasets.check import closest_column

    columns = ["sepal_length", "sepal_width", "petal_length", "petal_width", "variety"]
    assert closest_column("varity", columns) == "did you mean `variety`?"
    assert closest_column("VARIETY", columns) == "did you mean `variety`?"
    weak = closest_column("nope", columns)
    assert weak.startswith("did you mean `") and "variety" in weak and weak.count("`") == 2
    assert closest_column("x", []) is None


def test_a_byte_that_is_not_utf8_is_a_bad_row_with_its_line_anywhere_in_the_file(tmp_path):
    """Past the first 8 KB the text reader raised a bare UnicodeDecodeError (no line),
    and in the first 8 KB it raised while reading the header; now it is the row's."""
    from ppipe_stream.datasets.check import check_dataset

    body = b"".join(b"%d,a\n" % i for i in range(3000))  # about 17 KB before the bad row
    (tmp_path / "late.csv").write_bytes(b"x,label\n" + body + "caf\xe9,b\n".encode("latin-1") + b"1,c\n")
    spec = Dataset(source="csv", path="late.csv", target="label")
    assert check_dataset(spec, base_dir=tmp_path) == []  # past what the check reads
    with pytest.raises(DatasetError, match=r"late\.csv:3002: bad row: not UTF-8 text: byte 0xe9"):
        rows(spec, base=tmp_path)
    skipping = open_dataset(Dataset(source="csv", path="late.csv", target="label", on_bad_row="skip"),
                            base_dir=tmp_path, seed=0)
    assert [r.label for r in skipping][-1] == "c" and skipping.skipped_rows == 1
    (tmp_path / "early.csv").write_bytes(b"x,label\n1,a\n\xff,b\n")
    [problem] = check_dataset(Dataset(source="csv", path="early.csv", target="label"), base_dir=tmp_path)
    assert problem.key == "path" and "early.csv:3: not UTF-8 text: byte 0xff at column 1" in problem.message


def test_pad_adds_a_feature_of_that_many_bytes():
    from ppipe_stream.datasets import PAD_FEATURE

    [row] = rows(Dataset(source="csv", path="data/iris.csv", target="variety", pad=100), limit=1)
    assert row.features[PAD_FEATURE] == "x" * 100 and row.features["sepal_length"] == 5.1
    [plain] = rows(Dataset(source="csv", path="data/iris.csv", target="variety"), limit=1)
    assert PAD_FEATURE not in plain.features
