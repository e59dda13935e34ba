"""Dataset files read as a stream: csv, jsonl, parquet.

Owns parsing rows one at a time (csv module, one JSON document per line,
pyarrow record batches), turning cells into JSON values (numbers to int/float,
empty to None), splitting off the target and timestamp columns, and bad rows:
a clear DatasetError naming file and line, or counted and skipped when the
scenario says ``on_bad_row = "skip"``. A file larger than memory works: only
one row (or one parquet batch) is held at a time. :func:`first_columns` reads
just the columns (the header, the first record, the schema) for the checks, and
of a csv the first :data:`SCAN_BYTES` too: a byte that is not UTF-8 there is named
by line before anything starts. Further down, such a byte makes its row a bad row
(the csv is decoded with ``surrogateescape``: a stray byte never stops the reader
mid-file without a line).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import DatasetError
from ..scenario.model import Dataset
from . import DatasetStream, Row

__all__ = ["first_columns", "open_file", "parse_cell", "parse_timestamp", "SCAN_BYTES"]

SCAN_BYTES = 8192  # of a csv, checked for bytes that are not UTF-8 before a run
_ESCAPED = re.compile("[\udc80-\udcff]")  # a byte that was not UTF-8, under surrogateescape


def parse_cell(text: str) -> Any:
    """A csv cell as a JSON value: int, float, None for empty, else the string."""
    if text == "":
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return text
    return value if value == value and value not in (float("inf"), float("-inf")) else text


def parse_timestamp(value: Any) -> float:
    """Seconds since the epoch from a number or an ISO-8601 string; ValueError otherwise."""
    if isinstance(value, bool) or value is None:
        raise ValueError(f"not a timestamp: {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    try:
        return float(text)
    except ValueError:
        pass
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


class _Splitter:
    """Turns a record (dict) into a Row, or raises ValueError saying what is wrong."""

    def __init__(self, spec: Dataset) -> None:
        self.target = spec.target
        self.timestamp = spec.timestamp

    def __call__(self, index: int, record: dict[str, Any]) -> Row:
        label = None
        if self.target is not None:
            if self.target not in record:
                raise ValueError(f"no target column {self.target!r}")
            label = record.pop(self.target)
            if label is None:
                raise ValueError(f"the target {self.target!r} is empty")
        ts = None
        if self.timestamp is not None:
            if self.timestamp not in record:
                raise ValueError(f"no timestamp column {self.timestamp!r}")
            raw = record.pop(self.timestamp)
            try:
                ts = parse_timestamp(raw)
            except ValueError:
                raise ValueError(f"cannot read timestamp {raw!r}") from None
        return Row(index, record, label, ts)


def open_file(spec: Dataset, *, base_dir: Path, seed: int) -> DatasetStream:
    assert spec.path is not None
    path = (base_dir / spec.path).resolve()
    if not path.is_file():
        raise DatasetError(str(path), "no such file")
    readers = {"csv": _csv_records, "jsonl": _jsonl_records, "parquet": _parquet_records}
    reader = readers[spec.source]
    split = _Splitter(spec)
    skip = spec.on_bad_row == "skip"
    stream: DatasetStream

    def rows() -> Iterator[Row]:
        index = 0
        stream.skipped_rows = 0
        for line, record in reader(path):
            try:
                if isinstance(record, Exception):
                    raise ValueError(str(record))
                row = split(index, record)
            except ValueError as exc:
                if skip:
                    stream.skipped_rows += 1
                    continue
                raise DatasetError(str(path), f"bad row: {exc}", line=line) from None
            index += 1
            yield row

    n_rows = _count_rows(path, spec.source) if spec.source != "jsonl" or path.stat().st_size < 64 << 20 else None
    stream = DatasetStream(str(path), rows, spec=spec, seed=seed, n_rows=n_rows, in_memory=False)
    return stream


def first_columns(path: Path, source: str, *, skip_bad: bool = False) -> tuple[int | None, list[str], str]:
    """The columns a file's rows have, read from as little of it as it takes: the
    line they were read at (None for parquet), the names, and where they come from
    (``"the header"``, ``"the first record"``, ``"the schema"``). A jsonl file's
    first record is its first good one when ``skip_bad``. DatasetError when the file
    cannot be read or has no header or record."""
    try:
        if source == "parquet":
            import pyarrow.parquet as pq

            try:
                return None, list(pq.read_schema(path).names), "the schema"
            except Exception as exc:  # noqa: BLE001 - pyarrow raises several kinds; one message
                raise DatasetError(str(path), f"not a readable parquet file ({exc})") from None
        if source == "csv":
            found = _csv_header(path)
            if not skip_bad:
                _check_utf8(path, found[0])
            return found
        for line, record in _jsonl_records(path):
            if isinstance(record, Exception):
                if skip_bad:
                    continue
                raise DatasetError(str(path), f"bad row: {record}", line=line)
            return line, list(record), "the first record"
        raise DatasetError(str(path), "no record in it")
    except UnicodeDecodeError:
        raise DatasetError(str(path), "not UTF-8 text") from None
    except OSError as exc:
        raise DatasetError(str(path), f"cannot read it: {exc.strerror or exc}") from None


def _csv_header(path: Path) -> tuple[int, list[str], str]:
    """The header, from its own lines only (read as bytes: a bad byte further down is
    the run's business); a quoted name may span lines."""
    text, number = "", 0
    with open(path, "rb") as fh:
        for raw in fh:
            number += 1
            try:
                text += raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as exc:
                raise DatasetError(str(path), f"cannot read the header: {exc}", line=number) from None
            if text.count('"') % 2 == 0:  # the record's quotes are closed
                try:
                    return number, next(csv.reader(io.StringIO(text)), []), "the header"
                except csv.Error as exc:
                    raise DatasetError(str(path), f"cannot read the header: {exc}", line=number) from None
    raise DatasetError(str(path), "empty: no header line")


def _check_utf8(path: Path, header_lines: int) -> None:
    """DatasetError naming the line of the first byte in the first :data:`SCAN_BYTES`
    that is not UTF-8 (a character cut by the scan's end is not one)."""
    with open(path, "rb") as fh:
        head = fh.read(SCAN_BYTES)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(head) - 3 and exc.reason == "unexpected end of data":
            return  # a character the scan cut in two
        line = head.count(b"\n", 0, exc.start) + 1
        column = exc.start - (head.rfind(b"\n", 0, exc.start) + 1) + 1
        raise DatasetError(str(path), f"not UTF-8 text: byte 0x{head[exc.start]:02x} at column "
                           f"{column} (save the file as UTF-8)", line=line) from None


def _not_utf8(texts: list[str]) -> str | None:
    """What a row decoded with surrogateescape holds that was not UTF-8 (None: nothing)."""
    found = _ESCAPED.search("".join(texts))
    return f"not UTF-8 text: byte 0x{ord(found.group()) - 0xDC00:02x}" if found else None


def _count_rows(path: Path, source: str) -> int | None:
    """Rows in one pass, cheaply (needed by the releases profile)."""
    if source == "parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    with open(path, "rb") as fh:
        lines = sum(1 for line in fh if line.strip())
    return max(lines - (1 if source == "csv" else 0), 0)


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | Exception]]:
    with open(path, newline="", encoding="utf-8-sig", errors="surrogateescape") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DatasetError(str(path), f"cannot read the header: {exc}", line=1) from None
        bad = _not_utf8(header)
        if bad:
            raise DatasetError(str(path), f"cannot read the header: {bad}", line=reader.line_num)
        width = len(header)
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                yield reader.line_num, ValueError(str(exc))
                continue
            if not cells:
                continue
            if len(cells) != width:
                yield reader.line_num, ValueError(f"{len(cells)} fields where the header has {width}")
                continue
            bad = _not_utf8(cells)
            if bad:
                yield reader.line_num, ValueError(bad)
                continue
            yield reader.line_num, {name: parse_cell(cell) for name, cell in zip(header, cells, strict=True)}


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | Exception]]:
    with open(path, encoding="utf-8") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                yield number, ValueError(f"not JSON ({exc.msg})")
                continue
            if not isinstance(record, dict):
                yield number, ValueError("not a JSON object")
                continue
            yield number, record


def _parquet_records(path: Path) -> Iterator[tuple[int, dict[str, Any] | Exception]]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=8192):
        for record in batch.to_pylist():
            number += 1
            yield number, record
