"""Example pipelines built on :mod:`ppipe_stream.sdk`.

- ``river_online``: an online model from river that learns from delayed labels.
- ``echo``: answers every event with a fixed value: the harness's latency floor.
- ``faulty``: answers some events twice, some late, some with garbage, some with
  ids never sent, by rules the tests know (used to check the scorer's counts).
"""
