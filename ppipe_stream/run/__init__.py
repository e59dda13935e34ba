"""One ``ppipe run``: its order of things, its folder, and what it leaves.

- ``orchestration.py``: the start order and the cleanup of one run (:func:`run_scenario`);
- ``output_reader.py``: the consumer of every pipeline's output topic;
- ``folder.py``: the run folder's layout and safe writes;
- ``metadata.py``: what ran, where, and how it was asked for;
- ``preflight.py``: cross-checks of a scenario before anything starts;
- ``logs.py``: structured logging into ``log.jsonl``;
- ``housekeeping.py``: ``ppipe clean`` and ``ppipe init``.
"""
