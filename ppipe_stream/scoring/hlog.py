"""Latency interval logs: ``latency-<pipeline>.hlog`` in HdrHistogram's log format.

Owns one log file per pipeline, written as windows close, readable by the
standard HdrHistogram tools (Java's HistogramLogProcessor / HistogramLogReader,
hdrh's HistogramLogReader). Values are recorded in microseconds.

The lines follow the Java HistogramLogWriter (format 1.3): a ``StartTime`` and
a ``BaseTime`` header (seconds since the epoch, the run's start), the legend,
then one ``start,length,max,payload`` line per interval with times in seconds
relative to the base time and the max in milliseconds, each to 3 decimals.
hdrh's own writer is not used for the lines: it floors the max to a whole
unit (``//``) and reads a start time of 0 as "none"; its encoder makes the
payload (compressed, base64, the V2 cookie every reader knows).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import IO

from hdrh.histogram import HdrHistogram

__all__ = ["HlogFiles", "LEGEND", "US_PER_MS"]

US_PER_MS = 1000.0
LEGEND = '"StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"'


class HlogFiles:
    """The interval logs of a run's pipelines, each opened on its first interval."""

    def __init__(self, folder: Path, start_ns: int) -> None:
        self._folder = folder
        self._start_ns = start_ns
        self._files: dict[str, IO[str]] = {}

    def path(self, pipeline: str) -> Path:
        return self._folder / f"latency-{pipeline}.hlog"

    def write(self, intervals: list[tuple[str, int, int, HdrHistogram]]) -> None:
        """Append ``(pipeline, start_ns, end_ns, histogram)`` intervals, then flush."""
        touched = set()
        for pipeline, start_ns, end_ns, histogram in intervals:
            fh = self._file(pipeline)
            start_s = (start_ns - self._start_ns) / 1e9
            length_s = (end_ns - start_ns) / 1e9
            max_ms = histogram.get_max_value() / US_PER_MS
            payload = histogram.encode().decode("ascii")
            fh.write(f"{start_s:.3f},{length_s:.3f},{max_ms:.3f},{payload}\n")
            touched.add(pipeline)
        for pipeline in touched:
            self._files[pipeline].flush()

    def _file(self, pipeline: str) -> IO[str]:
        fh = self._files.get(pipeline)
        if fh is None:
            fh = open(self.path(pipeline), "w", encoding="utf-8")  # noqa: SIM115 - see close()
            start_s = self._start_ns / 1e9
            moment = dt.datetime.fromtimestamp(start_s, tz=dt.UTC)
            fh.write(f"#ppipe latency of pipeline {pipeline}, values in microseconds\n"
                     "#[Histogram log format version 1.3]\n"
                     f"#[StartTime: {start_s:.3f} (seconds since epoch), "
                     f"{moment.strftime('%a %b %d %H:%M:%S UTC %Y')}]\n"
                     f"#[BaseTime: {start_s:.3f} (seconds since epoch)]\n"
                     f"{LEGEND}\n")
            self._files[pipeline] = fh
        return fh

    def close(self) -> None:
        for fh in self._files.values():
            fh.close()
        self._files.clear()
