"""The resource sampler reads live processes only: an ended one is not a 0 MiB reading."""

from __future__ import annotations

import subprocess
import sys
import time

import psutil

from ppipe_stream.watch.resources import TreeSampler


def test_an_ended_unreaped_process_is_no_reading() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline, "the child did not end"
            time.sleep(0.05)
        assert TreeSampler(lambda: [child.pid]).sample() is None
    finally:
        child.wait()


def test_a_live_process_reads_its_memory() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        sample = TreeSampler(lambda: [child.pid]).sample()
        assert sample is not None and sample["memory_mib"] > 0
    finally:
        child.kill()
        child.wait()


def test_the_host_is_scanned_for_children_once_per_rescan(monkeypatch) -> None:
    """Finding children reads every process on the host (on the run's loop): once per
    ``rescan_s``, while the known tree is sampled every ``every_s``."""
    scans: list[int] = []
    children = psutil.Process.children

    def counted(self: psutil.Process, recursive: bool = False) -> list[psutil.Process]:
        scans.append(self.pid)
        return children(self, recursive=recursive)

    monkeypatch.setattr(psutil.Process, "children", counted)
    parent = subprocess.Popen([sys.executable, "-c",
                               "import subprocess, sys, time\n"
                               "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
                               "time.sleep(30)"])
    try:
        deadline = time.monotonic() + 30
        while not children(psutil.Process(parent.pid)):
            assert time.monotonic() < deadline, "the grandchild did not start"
            time.sleep(0.05)
        clock = [0.0]
        monkeypatch.setattr("ppipe_stream.watch.resources.time.monotonic", lambda: clock[0])
        sampler = TreeSampler(lambda: [parent.pid], every_s=1.0, rescan_s=5.0)
        readings = []
        for second in range(10):
            clock[0] = 100.0 + second
            readings.append(sampler.sample())
        assert len(scans) == 2  # at 100 s and at 105 s, not every second
        single = TreeSampler(lambda: [parent.pid], children=False).sample()
        assert all(r is not None and single is not None and r["memory_mib"] > single["memory_mib"]
                   for r in readings)  # the child is counted between the scans too
    finally:
        for process in psutil.Process(parent.pid).children(recursive=True):
            process.kill()
        parent.kill()
        parent.wait()
