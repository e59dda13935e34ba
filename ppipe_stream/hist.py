"""Latency histograms: HdrHistogram in microseconds, recorded in batches, read in one pass.

Owns the histogram settings every figure shares (1 us to 1 h, 3 significant
digits), batch recording, and reading percentiles without hdrh's slow paths
(its mean walks every bucket in Python), and moving histograms between
processes (:func:`encode`, :func:`merge`: lossless, so dispatch workers' lag
histograms add up to the one a single process would have). Used by the
dispatcher (lag) and the scorer (latency).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from hdrh.histogram import HdrHistogram

__all__ = ["MAX_US", "decode", "encode", "merge", "new_histogram", "percentiles_ms", "record_many"]

MAX_US = 3_600_000_000


_EXACT_BITS = 11  # 3 significant digits: 2048 sub-buckets, values below 2**11 are exact


def new_histogram() -> HdrHistogram:
    """Microseconds from 1 us to 1 h at 3 significant digits."""
    return HdrHistogram(1, MAX_US, 3)


def record_many(histogram: HdrHistogram, values_us: Sequence[int]) -> None:
    """Record a batch with one ``record_value`` per distinct *bucket*.

    hdrh's ``record_value`` is pure Python (~1 us a call). Values are first
    rounded down to the lowest value of their HDR bucket (at 3 significant
    digits a bucket spans ``2**(bit_length - 11)`` values), which changes no
    count, percentile or max the histogram reports, and leaves at most a few
    thousand distinct values per batch whatever its size.
    """
    if not len(values_us):
        return
    values = np.clip(np.asarray(values_us, dtype=np.int64), 1, MAX_US)
    shift = np.maximum(np.floor(np.log2(values)).astype(np.int64) + 1 - _EXACT_BITS, 0)
    values = (values >> shift) << shift
    buckets, counts = np.unique(values, return_counts=True)
    for value, count in zip(buckets.tolist(), counts.tolist()):
        histogram.record_value(value, count)


def percentiles_ms(histogram: HdrHistogram, keys: Sequence[str] = ("p50", "p90", "p99", "p999"),
                   *, total_us: float | None = None) -> dict[str, float | None]:
    """The named percentiles (and max; mean when ``total_us``, the exact sum of the
    recorded values, is given) in milliseconds; None when empty. One pass over
    the histogram (hdrh's own mean walks every bucket in Python: 45 ms)."""
    quantiles = {"p50": 50, "p90": 90, "p99": 99, "p999": 99.9}
    count = histogram.get_total_count()
    out: dict[str, float | None] = {}
    if total_us is not None:
        out["mean"] = round(total_us / count / 1000, 4) if count else None
    if count == 0:
        return {**out, **{k: None for k in keys}, "max": None}
    values = histogram.get_percentile_to_value_dict([quantiles[k] for k in keys])
    for key in keys:
        out[key] = values[quantiles[key]] / 1000
    out["max"] = histogram.get_max_value() / 1000
    return out


def encode(histogram: HdrHistogram) -> bytes:
    """The histogram as hdrh's compressed wire form (every count kept)."""
    return histogram.encode()


def decode(encoded: bytes) -> HdrHistogram:
    """A histogram back from :func:`encode`."""
    return HdrHistogram.decode(encoded)


def merge(histograms: Sequence[HdrHistogram]) -> HdrHistogram:
    """One histogram holding every count of ``histograms`` (all made by
    :func:`new_histogram`): the same counts, percentiles, min and max as one
    histogram that had recorded all their values."""
    out = new_histogram()
    for histogram in histograms:
        if histogram.get_total_count():
            out.add(histogram)
    return out
