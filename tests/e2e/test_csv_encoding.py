"""A csv with a byte that is not UTF-8, as a user runs it: ``ppipe validate`` and
``ppipe run`` say so in one line naming the file and the line, exit 2, and start
nothing. Before the fix, validate said "ok" (it read the header alone) and run
started the broker and the pipeline, then failed on the text reader's first 8 KB
chunk with a bare ``UnicodeDecodeError`` and no line."""

from __future__ import annotations

import pytest

from tests.e2e.test_validate import one_line, scenario
from tests.helpers import ppipe

CSV = 'source = "csv"\npath = "data/latin.csv"\ntarget = "label"'


def latin_csv(folder, rows_before: int = 2) -> None:
    data = folder / "data" / "latin.csv"
    data.parent.mkdir(parents=True, exist_ok=True)
    good = b"".join(b"%d,a\n" % i for i in range(rows_before))
    data.write_bytes(b"x,label\n" + good + "caf\xe9,b\n".encode("latin-1") + b"7,a\n" * 10)


@pytest.mark.parametrize("command", ["validate", "run"])
def test_a_latin1_byte_in_the_first_rows_is_one_line_naming_file_and_line(tmp_path, command):
    latin_csv(tmp_path)
    scenario(tmp_path, dataset=CSV)
    line = one_line(ppipe(command, "scenario.toml", cwd=tmp_path))
    assert f"{tmp_path / 'data' / 'latin.csv'}:4:" in line, line  # header, 2 rows, then it
    assert "not UTF-8" in line and "0xe9" in line and "internal error" not in line
    assert not (tmp_path / "runs").exists()  # nothing started, no run folder
