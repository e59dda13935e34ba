"""The scorer and what judges a run's figures. Pure computation: no Kafka I/O.

- ``scorer.py``: :class:`Scorer`, statuses, latency, metrics, the run's figures;
- ``ledger.py``: the join state of the events in flight (bounded memory);
- ``answers.py``: the statuses and the rules that give them, one batch at a time;
- ``decode.py``: a batch of output messages into columns, syntax errors counted;
- ``windows.py``: timeline windows and their ``timeline.csv`` rows;
- ``metrics.py``: river metrics by name, fed in batches;
- ``thresholds.py``: pass/fail rules on the summary;
- ``hlog.py``: HdrHistogram interval logs (``latency-<pipeline>.hlog``);
- ``hist.py``: latency histograms (HdrHistogram in microseconds), one module for all.
"""

from .hlog import HlogFiles
from .ledger import LedgerError
from .metrics import MetricSet, check_metric_names, make_metrics
from .scorer import COUNTERS, Advance, EventStatus, Scorer, ScoringConfig
from .thresholds import Threshold, evaluate, figure_names, parse_threshold, settled_failures

__all__ = [
    "COUNTERS",
    "Advance",
    "EventStatus",
    "HlogFiles",
    "LedgerError",
    "MetricSet",
    "Scorer",
    "ScoringConfig",
    "Threshold",
    "check_metric_names",
    "evaluate",
    "figure_names",
    "make_metrics",
    "parse_threshold",
    "settled_failures",
]
