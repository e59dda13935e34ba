"""The scorer and what judges a run's figures.

- ``scorer.py``: the join of sent events with answers, statuses, latency, metrics, timeline;
- ``metrics.py``: river metrics by name;
- ``thresholds.py``: pass/fail rules on the summary;
- ``hlog.py``: HdrHistogram interval logs.
"""

from .hlog import HlogFiles
from .metrics import check_metric_names, make_metrics
from ..hist import new_histogram, percentiles_ms
from .scorer import Advance, EventStatus, Scorer, ScoringConfig
from .thresholds import Threshold, evaluate, parse_threshold

__all__ = [
    "Advance",
    "EventStatus",
    "HlogFiles",
    "Scorer",
    "ScoringConfig",
    "Threshold",
    "check_metric_names",
    "evaluate",
    "make_metrics",
    "new_histogram",
    "parse_threshold",
    "percentiles_ms",
]
