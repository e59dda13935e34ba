"""Latency histograms: HdrHistogram in microseconds, recorded in numpy batches, read in numpy.

Owns every histogram the tool keeps (the dispatcher's lag, the loop lateness,
the scorer's latency and split): their settings (1 us to 1 h, 3 significant
digits), batch recording, percentiles, and moving them between processes
(:func:`encode`, :func:`merge`: lossless, so dispatch workers' lag histograms
add up to the one a single process would have).

hdrh is pure Python: ``record_value`` costs about a microsecond a value and
``get_percentile_to_value_dict`` walks all 23,552 counters in a Python loop.
Both are replaced here by numpy operations on a view of the histogram's own
counts array (a ctypes array of native uint64), computing exactly hdrh's
counts index and its percentile rank, so the histograms stay ordinary
``HdrHistogram`` objects that hdrh's encoder, ``add`` and log writer handle
as usual. Unit tests check both against hdrh's own methods, value for value.

Values are integers in the histogram's unit (microseconds everywhere here);
this module does not know about events, windows or pipelines.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
from hdrh.histogram import HdrHistogram

__all__ = ["MAX_US", "QUANTILES", "counts_view", "decode", "encode", "merge", "merged_counts",
           "new_histogram", "quantiles_ms", "record_array", "record_many"]

MAX_US = 3_600_000_000
QUANTILES = {"p50": 50.0, "p90": 90.0, "p99": 99.0, "p999": 99.9}


def new_histogram() -> HdrHistogram:
    """Microseconds from 1 us to 1 h at 3 significant digits."""
    return HdrHistogram(1, MAX_US, 3)


def counts_view(histogram: HdrHistogram) -> np.ndarray:
    """A writable uint64 numpy view of the histogram's counters (no copy)."""
    view: np.ndarray = np.ctypeslib.as_array(histogram.counts)
    return view


def _indexes(histogram: HdrHistogram, values: np.ndarray) -> np.ndarray:
    """hdrh's counts index of each value (int64, already clipped to the range)."""
    # pow2ceiling = bit length of (value | sub_bucket_mask); frexp's exponent is the
    # bit length of a positive integer, exact below 2**53.
    bits = np.frexp((values | histogram.sub_bucket_mask).astype(np.float64))[1].astype(np.int64)
    bucket = bits - histogram.unit_magnitude - (histogram.sub_bucket_half_count_magnitude + 1)
    sub_bucket = values >> (bucket + histogram.unit_magnitude)
    index: np.ndarray = ((bucket + 1) << histogram.sub_bucket_half_count_magnitude) + sub_bucket \
        - histogram.sub_bucket_half_count
    return index


def record_array(histogram: HdrHistogram, values: np.ndarray | Sequence[int], *,
                 lowest: int = 0) -> None:
    """Record every value of a batch, as ``record_value`` would one by one.
    Values are clipped to [``lowest``, the histogram's highest trackable value]."""
    array = np.asarray(values, dtype=np.int64)
    if array.size == 0:
        return
    array = np.minimum(np.maximum(array, lowest), histogram.highest_trackable_value)  # np.clip is slow
    index = _indexes(histogram, array)
    view = counts_view(histogram)
    if array.size > 2048:
        view += np.bincount(index, minlength=histogram.counts_len).astype(np.uint64)
    else:
        np.add.at(view, index, 1)
    histogram.total_count += int(array.size)
    histogram.min_value = min(histogram.min_value, int(array.min()))
    histogram.max_value = max(histogram.max_value, int(array.max()))


def record_many(histogram: HdrHistogram, values_us: np.ndarray | Sequence[int]) -> None:
    """Record a batch of microsecond figures (lags, lateness) with the histogram's
    1 us floor: values are clipped to [1 us, :data:`MAX_US`]."""
    record_array(histogram, values_us, lowest=1)


def merged_counts(histograms: Iterable[HdrHistogram]) -> tuple[np.ndarray | None, int]:
    """The sum of several histograms' counters (same settings) and their total count."""
    total, count = None, 0
    for histogram in histograms:
        if histogram.total_count == 0:
            continue
        view = counts_view(histogram)
        total = view.copy() if total is None else total + view
        count += histogram.total_count
    return total, count


def quantiles_ms(histograms: HdrHistogram | Iterable[HdrHistogram],
                 keys: Sequence[str] = ("p50", "p90", "p99", "p999"),
                 *, unit_per_ms: float = 1000.0) -> dict[str, float | None]:
    """The named percentiles and the max, in milliseconds, of one histogram or of
    several taken together; None when nothing was recorded.

    Percentiles follow hdrh exactly: the rank is ``round(q% x count)`` (at least
    1) and the value is the highest value equivalent to the bucket reached.
    """
    group = [histograms] if isinstance(histograms, HdrHistogram) else list(histograms)
    counts, total = merged_counts(group)
    out: dict[str, float | None] = dict.fromkeys(keys)
    out["max"] = None
    if counts is None or total == 0:
        return out
    first = group[0]
    cumulative = np.cumsum(counts)
    for key in keys:
        rank = max(int(QUANTILES[key] * total / 100 + 0.5), 1)
        index = int(np.searchsorted(cumulative, rank, side="left"))
        value = first.get_highest_equivalent_value(first.get_value_from_index(index))
        out[key] = round(value / unit_per_ms, 6)
    top = int(np.flatnonzero(counts)[-1])
    out["max"] = round(first.get_highest_equivalent_value(first.get_value_from_index(top))
                       / unit_per_ms, 6)
    return out


def encode(histogram: HdrHistogram) -> bytes:
    """The histogram as hdrh's compressed wire form (every count kept)."""
    encoded: bytes = histogram.encode()
    return encoded


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
