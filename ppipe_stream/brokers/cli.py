"""``ppipe broker start --kind kafka|tansu [--nodes N]``: a local broker (or Kafka cluster) in the foreground.

Owns the foreground life of a broker for users: start it, print one line
``bootstrap=HOST:PORT``, wait for Ctrl+C or SIGTERM, stop it. Also
``prepare-kafka`` (resolve the jars only), used by scripts/test.
"""

from __future__ import annotations

import signal
import sys
import threading

from ..errors import UsageError

__all__ = ["main_broker_start", "main"]


def main_broker_start(kind: str, port: int | None = None, *, nodes: int = 1) -> int:
    """Run a broker (or, for kafka, a cluster of ``nodes``) until SIGINT/SIGTERM;
    returns the exit code (0 on a clean stop)."""
    from .cluster import start_kafka_cluster
    from .kafka import start_kafka
    from .tansu import start_tansu

    if kind not in ("kafka", "tansu"):
        raise UsageError(f"unknown broker kind {kind!r}; use kafka or tansu")
    if nodes < 1 or (nodes > 1 and kind != "kafka"):
        raise UsageError("--nodes takes a positive count, and more than one only with --kind kafka")
    if nodes > 1 and port is not None:
        raise UsageError("--port is for one node; a cluster's nodes pick free ports")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        if nodes > 1:
            broker = start_kafka_cluster(nodes)
            where = f"{nodes} nodes, data in {broker.data_dir}"
        else:
            broker = start_kafka(port=port) if kind == "kafka" else start_tansu(port=port)
            where = f"pid {broker.pid}, log {broker.log_path}"
        with broker:
            print(f"bootstrap={broker.bootstrap}", flush=True)
            print(f"{kind} broker running ({where}); Ctrl+C stops it", file=sys.stderr, flush=True)
            while not stop.wait(0.5):
                if nodes > 1 and len(broker.alive()) < nodes:
                    print(f"a node exited (alive: {broker.alive()})", file=sys.stderr)
                    return 1
                if nodes == 1 and not broker.alive():
                    print(f"the broker exited (code {broker.process.returncode})", file=sys.stderr)
                    return 1
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    from ..errors import PpipeError

    parser = argparse.ArgumentParser(prog="python -m ppipe_stream.brokers")
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start")
    start.add_argument("--kind", choices=["kafka", "tansu"], default="tansu")
    start.add_argument("--port", type=int)
    start.add_argument("--nodes", type=int, default=1)
    sub.add_parser("prepare-kafka", help="resolve Apache Kafka's jars into the cache")
    args = parser.parse_args(argv)
    try:
        if args.command == "prepare-kafka":
            from .kafka import ensure_kafka_jars

            print(ensure_kafka_jars())
            return 0
        return main_broker_start(args.kind, args.port, nodes=args.nodes)
    except PpipeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
