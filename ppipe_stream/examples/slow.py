"""Example pipeline with a known cost: it spends ``PPIPE_SLOW_MS`` (default 20)
milliseconds of wall time on every event, then answers ``PPIPE_ECHO_ANSWER``.
The fidelity tests use it: the reported compute time must equal the known one."""

from __future__ import annotations

import os
import time

from ppipe_stream.sdk import Pipeline


def main() -> None:
    delay = float(os.environ.get("PPIPE_SLOW_MS", "20")) / 1000
    answer = os.environ.get("PPIPE_ECHO_ANSWER", "slow")
    app = Pipeline()

    @app.predict
    def predict(features):
        end = time.perf_counter() + delay
        while time.perf_counter() < end:  # busy: a sleep would yield the CPU and hide cost
            pass
        return answer

    app.run()


if __name__ == "__main__":
    main()
