"""``ppipe bench``: the ingestion-latency benchmark and the max-rate search.

- ``raw.py``: the plain aiokafka producer-to-consumer baseline;
- ``axes.py``: what a sweep varies (rate, message size, partitions, replicas) and each probe's setting;
- ``sweep.py``: probes (one full run per setting), the sweep along an axis, ``--find-max``;
- ``command.py``: the command line's driver: broker, default scenario, bench folder and log, table, chart.
"""

from .axes import Axis, Setting
from .sweep import Probe, backlog_slope, failures, find_max, new_bench_id, probe_names, sweep

__all__ = ["Axis", "Probe", "Setting", "backlog_slope", "failures", "find_max", "new_bench_id",
           "probe_names", "sweep"]
