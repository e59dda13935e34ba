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
