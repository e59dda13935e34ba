"""One ``ppipe run``: its order of things, its stop rules, its folder, and what it leaves.

- ``orchestration.py``: the start order and the cleanup of one run (:func:`run_scenario`);
- ``tracker.py``: when the run stops and why (:class:`RunTracker`);
- ``broker_start.py``: which broker the scenario asks for, starting it, the run's topics;
- ``pipelines.py``: each pipeline's runner, its start, the readiness wait;
- ``parts.py``: the scorer, proctor, watches and dispatch, built on the run's clock;
- ``ticker.py``: what happens every tick (windows, polls, partial summary, frames);
- ``timeline.py``: ``timeline.csv`` rows and hlog intervals as the scorer closes them;
- ``progress.py``: the run's state, its long set-up steps and its live frame;
- ``summary_writer.py``: ``summary.json`` from the components' typed snapshots;
- ``cleanup.py``: shielded, time-bound cleanup calls;
- ``output_reader.py``: the consumer of every pipeline's output topic;
- ``folder.py``: the run folder's layout and safe writes;
- ``metadata.py``: what ran, where, and how it was asked for;
- ``preflight.py``: cross-checks of a scenario (and this machine) before anything starts;
- ``logs.py``: structured logging into ``log.jsonl``;
- ``housekeeping.py``: ``ppipe clean`` and ``ppipe init``.
"""
