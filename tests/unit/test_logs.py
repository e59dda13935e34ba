"""Where log records go: library noise (aiokafka) into the log file, never the console;
a command of several runs (``ppipe bench``) keeps a log of its own between them."""

from __future__ import annotations

import logging
import subprocess
import sys
import textwrap


def test_between_runs_a_session_folder_takes_the_records_and_the_console_none(tmp_path):
    """Before the fix, aiokafka's warnings between two runs (the bench's raw baseline)
    had no handler, and logging's last resort printed them on standard error."""
    code = textwrap.dedent(f"""
        import logging, pathlib, structlog
        from ppipe_stream.run.logs import configure_logging, close_logging, session_logging
        bench, run = pathlib.Path({str(tmp_path / "bench")!r}), pathlib.Path({str(tmp_path / "run")!r})
        run.mkdir()
        noise = logging.getLogger("aiokafka.producer.sender")
        with session_logging(bench):
            noise.warning("before the run: NotLeaderForPartitionError, retrying")
            configure_logging(run)
            noise.warning("in the run: NotLeaderForPartitionError, retrying")
            close_logging()
            noise.warning("after the run: NotLeaderForPartitionError, retrying")
            structlog.get_logger().info("bench.between", step=1)
        close_logging()
        noise.warning("with no log at all: NotLeaderForPartitionError, retrying")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "NotLeaderForPartitionError" not in result.stderr + result.stdout
    bench = (tmp_path / "bench" / "log.jsonl").read_text()
    assert "before the run" in bench and "after the run" in bench and "bench.between" in bench
    assert "in the run" not in bench
    assert "in the run" in (tmp_path / "run" / "log.jsonl").read_text()


def test_session_logging_leaves_no_handler_behind(tmp_path):
    from ppipe_stream.run.logs import session_logging

    before = list(logging.getLogger().handlers)
    with session_logging(tmp_path / "s"):
        assert len(logging.getLogger().handlers) == len(before) + 1
    assert logging.getLogger().handlers == before
