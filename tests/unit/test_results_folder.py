"""The run folder: naming, atomic summary writes, timeline rows."""

from __future__ import annotations

import json
import re

from ppipe_stream.run.folder import RunFolder, iso_utc


def test_folder_name_and_collisions(tmp_path):
    first = RunFolder.create("demo", root=tmp_path)
    second = RunFolder.create("demo", root=tmp_path)
    assert re.fullmatch(r"demo-\d{8}T\d{6}", first.path.name)
    assert first.path != second.path and second.path.exists()


def test_summary_is_replaced_atomically(tmp_path):
    folder = RunFolder.create("demo", out=tmp_path / "out")
    folder.write_summary({"complete": False, "n": 1})
    folder.write_summary({"complete": True, "n": 2})
    written = json.loads((tmp_path / "out" / "summary.json").read_text())
    assert written.pop("meta")["ppipe_version"]  # every summary carries the run's metadata
    assert written == {"complete": True, "n": 2}
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["summary.json"]


def test_timeline_rows_append_with_one_header(tmp_path):
    folder = RunFolder.create("demo", out=tmp_path)
    folder.append_timeline([{"time_s": 0, "pipeline": "a", "sent": 3}])
    folder.append_timeline([{"time_s": 1, "pipeline": "a", "sent": 4}])
    folder.close()
    assert (tmp_path / "timeline.csv").read_text().splitlines() == [
        "time_s,pipeline,sent", "0,a,3", "1,a,4"]


def test_iso_utc():
    assert iso_utc(0) == "1970-01-01T00:00:00Z"


def test_two_runs_in_the_same_second_have_run_ids_and_topics_of_their_own(tmp_path, monkeypatch):
    """Two runs of one scenario with --out, started in the same second, had one run id
    (``name-<second>``), so on a shared broker they wrote the same topics."""
    from ppipe_stream.run import folder as results
    from ppipe_stream.protocol import Topics

    monkeypatch.setattr(results, "utc_stamp", lambda now=None: "20261202T030000")
    a = RunFolder.create("demo", out=tmp_path / "a", root=tmp_path / "runs")
    b = RunFolder.create("demo", out=tmp_path / "b", root=tmp_path / "runs")
    plain = RunFolder.create("demo", root=tmp_path / "runs")
    assert a.run_id != b.run_id
    assert all(re.fullmatch(r"demo-20261202T030000-[0-9a-f]{4}", f.run_id) for f in (a, b, plain))
    assert plain.path.name == "demo-20261202T030000"  # the folder's name, as users know it
    topics = [Topics(prefix=f"ppipe.{f.run_id}") for f in (a, b)]  # as the run names them
    assert topics[0].input != topics[1].input and a.run_id in topics[0].input
