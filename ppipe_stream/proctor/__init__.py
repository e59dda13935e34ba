"""Proctor commands (P-Pipe's requests, streamed on the control topic).

- ``timing.py``: when each ``[[commands]]`` entry is sent;
- ``expressions.py``: safe arithmetic for the ``feature`` command's expected values;
- ``judge.py``: the verdict on one reply;
- ``inbox.py``: the bounded stream that brings the replies from the scorer;
- ``proctor.py``: sending, matching replies, writing ``commands.jsonl``.
"""

from .expressions import Expression, compile_expression
from .judge import CommandStatus, Judgement, judge, values_match
from .proctor import Proctor
from .timing import command_plan

__all__ = ["CommandStatus", "Expression", "Judgement", "Proctor", "command_plan",
           "compile_expression", "judge", "values_match"]
