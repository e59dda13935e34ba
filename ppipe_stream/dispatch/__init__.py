"""The Data Dispatcher: when each event goes, and sending it.

- ``base.py``: the :class:`Dispatch` Protocol the run drives, and its figures;
- ``schedule.py``: load schedules, the intended send time of every event (open loop);
- ``dispatcher.py``: the in-process send loop (one process);
- ``workers.py``: the same dispatching split over N processes (``[load] workers``);
- ``messages.py``: the tagged Structs the run and its workers exchange.
"""
