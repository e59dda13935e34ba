"""Human reports of runs: ``report.html`` with charts, and the list of past runs.

- ``charts.py``: PNG charts from a run folder (matplotlib);
- ``html.py``: the self-contained page;
- ``runs.py``: ``ppipe runs``, one line of headline figures per past run;
- ``compare.py``, ``gate.py``: ``ppipe compare``, and its ``--fail-if`` regression gate;
- ``junit.py``, ``summary_md.py``, ``ci.py``: what CI reads, ``junit.xml`` and ``summary.md``.
"""

from .charts import draw_charts, load_run
from .html import write_report
from .runs import list_runs

__all__ = ["draw_charts", "list_runs", "load_run", "write_report"]
