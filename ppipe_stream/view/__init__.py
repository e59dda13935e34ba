"""What a person sees in a terminal: the live view, the end-of-run table, ``ppipe tail``;
and what a Prometheus scrapes while a run goes.

- ``live.py``: one redrawn screen of a run, shared by ``ppipe run`` and ``ppipe tail``;
- ``display.py``: progress while the run goes and the table at its end;
- ``tail.py``: following a run from another terminal or host;
- ``prometheus.py``: the ``--metrics-port`` endpoint (imported only when asked for).
"""
