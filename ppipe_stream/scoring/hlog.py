"""Latency interval logs: ``latency-<pipeline>.hlog`` in HdrHistogram's log format.

Owns one log file per pipeline, written as windows close, readable by the
standard HdrHistogram tools (HistogramLogProcessor, hdrh's HistogramLogReader).
Values are recorded in microseconds; the log's max-value unit ratio is set so
tools print milliseconds.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import IO

from hdrh.histogram import HdrHistogram
from hdrh.log import HistogramLogWriter

__all__ = ["HlogFiles", "US_PER_MS"]

US_PER_MS = 1000.0


class HlogFiles:
    """The interval logs of a run's pipelines, opened on first use."""

    def __init__(self, folder: Path, start_ns: int) -> None:
        self._folder = folder
        self._start_s = start_ns / 1e9
        self._files: dict[str, tuple[IO[str], HistogramLogWriter]] = {}

    def path(self, pipeline: str) -> Path:
        return self._folder / f"latency-{pipeline}.hlog"

    def write(self, intervals: list[tuple[str, int, int, HdrHistogram]]) -> None:
        for pipeline, start_ns, end_ns, histogram in intervals:
            writer = self._writer(pipeline)
            writer.output_interval_histogram(histogram, start_ns / 1e9 - self._start_s,
                                             end_ns / 1e9 - self._start_s, US_PER_MS)
        for fh, _ in self._files.values():
            fh.flush()

    def _writer(self, pipeline: str) -> HistogramLogWriter:
        if pipeline not in self._files:
            fh = open(self.path(pipeline), "w", encoding="utf-8")  # noqa: SIM115 - closed in close()
            writer = HistogramLogWriter(fh)
            writer.output_comment(f"ppipe latency of pipeline {pipeline}, values in microseconds")
            writer.output_log_format_version()
            # hdrh's own output_start_time() fails on epoch times (it reads ms as
            # seconds), so the two header lines are written here, in the format
            # of the Java HistogramLogWriter.
            moment = dt.datetime.fromtimestamp(self._start_s, tz=dt.timezone.utc)
            fh.write(f"#[StartTime: {self._start_s:.3f} (seconds since epoch), "
                     f"{moment.strftime('%a %b %d %H:%M:%S UTC %Y')}]\n")
            fh.write(f"#[BaseTime: {self._start_s:.3f} (seconds since epoch)]\n")
            writer.output_legend()
            self._files[pipeline] = (fh, writer)
        return self._files[pipeline][1]

    def close(self) -> None:
        for fh, _ in self._files.values():
            fh.close()
        self._files.clear()
