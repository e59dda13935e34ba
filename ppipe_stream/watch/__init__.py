"""What watches a run while it goes, and what breaks it on purpose.

- ``broker_health.py``: is each broker node answering right now (availability);
- ``supervision.py``: the hang rule, telling a hung pipeline from a slow one;
- ``incidents.py``: the incident log (``incidents.jsonl``);
- ``fault_injector.py``: the scenario's ``[[faults]]`` carried out at their times;
- ``loop_lag.py``: the harness's own event-loop lateness;
- ``resources.py``: CPU and memory of the pipelines, the harness and the broker.
"""
