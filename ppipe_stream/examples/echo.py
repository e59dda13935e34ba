"""Example pipeline: answers every event at once with a fixed value
(``PPIPE_ECHO_ANSWER``, default ``"echo"``). Its latency is the harness's floor."""

from __future__ import annotations

import os

from ppipe_stream.sdk import Pipeline


def main() -> None:
    answer = os.environ.get("PPIPE_ECHO_ANSWER", "echo")
    app = Pipeline()
    app.predict(lambda features: answer)
    app.run()


if __name__ == "__main__":
    main()
