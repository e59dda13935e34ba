"""``ppipe runs``' finding: runs in the runs dir, bench probes one level down, indexed ``--out``
runs elsewhere (gone folders and cut lines left out), filters, and names back to folders."""

from __future__ import annotations

import json

from ppipe_stream.run.metadata import RunMeta
from ppipe_stream.report.runs import list_runs, resolve_run
from ppipe_stream.run.folder import INDEX_NAME, RunFolder


def _summary(folder, run_id, started, tags=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps({"run_id": run_id, "started_at": started,
                                                     "meta": {"tags": tags or {}}}))


def test_runs_found_everywhere_and_filtered(tmp_path):
    root = tmp_path / "runs"
    _summary(root / "a-1", "a-1", "2026-01-01T00:00:01Z", {"team": "ml"})
    _summary(root / "bench-x" / "rate-100", "echo-2", "2026-01-01T00:00:02Z")
    out = RunFolder.create("c", out=tmp_path / "elsewhere", root=root, meta=RunMeta(tags={"team": "web"}))
    _summary(out.path, out.run_id, "2026-01-01T00:00:03Z", {"team": "web"})
    with open(root / INDEX_NAME, "a") as fh:
        fh.write(json.dumps({"run_id": "gone", "path": str(tmp_path / "gone")}) + "\n")
        fh.write('{"run_id": "cut sh')
    assert [e.name for e in list_runs(root)] == [out.run_id, "echo-2", "a-1"]
    assert [e.name for e in list_runs(root, tags={"team": "ml"})] == ["a-1"]
    assert [e.name for e in list_runs(root, name="echo")] == ["echo-2"]
    assert [e.name for e in list_runs(root, limit=1)] == [out.run_id]
    assert resolve_run(type(root)(out.run_id), root) == out.path
    assert resolve_run(type(root)("a-1"), root) == root / "a-1"
    assert resolve_run(type(root)("nope"), root) is None


def test_api_runs_are_not_indexed(tmp_path):
    RunFolder.create("d", out=tmp_path / "x", root=tmp_path / "runs")
    assert not (tmp_path / "runs" / INDEX_NAME).exists()
