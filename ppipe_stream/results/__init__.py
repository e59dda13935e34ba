"""A run's results as typed values, and the verdicts read from them.

- ``model.py``: ``summary.json`` and a timeline row as frozen msgspec Structs
  (docs/results.md, docs/results.schema.json), and :func:`load_summary`;
- ``builder.py``: the one place a summary is assembled from the components' snapshots;
- ``validity.py``: whether the figures can be trusted, and why not;
- ``outcome.py``: how a run ended, as its folder tells it.
"""
