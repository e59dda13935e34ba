"""``ppipe bench``: the ingestion-latency benchmark and the max-rate search.

- ``raw.py``: the plain aiokafka producer-to-consumer baseline;
- ``sweep.py``: probes (one full run per rate), the rate sweep, ``--find-max``;
- ``command.py``: the command line's driver: broker, default scenario, table, chart.
"""

from .sweep import Probe, backlog_slope, failures, find_max, new_bench_id, probe_names, sweep

__all__ = ["Probe", "backlog_slope", "failures", "find_max", "new_bench_id", "probe_names", "sweep"]
