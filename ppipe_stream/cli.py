"""The ``ppipe`` command line.

Owns argument parsing, the one place that catches :class:`PpipeError`, the
one-line error messages, and the exit codes of results.md: 0 ran and passed,
3 a threshold failed, 2 bad scenario or usage, 1 the run itself failed, 130
interrupted. ``ppipe run`` prints the run folder's path as the last line of
standard output.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import NoReturn

import anyio
from rich.console import Console

from . import __version__
from .errors import PpipeError, UsageError

__all__ = ["main", "EXIT_OK", "EXIT_FAILED", "EXIT_USAGE", "EXIT_THRESHOLD", "EXIT_INTERRUPTED"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_THRESHOLD = 3
EXIT_INTERRUPTED = 130


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see '{self.prog} --help')")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ppipe", description="Stream a dataset into ML pipelines over Kafka "
                     "and score how well they keep up.")
    parser.add_argument("--version", action="version", version=f"ppipe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="run a scenario and write its results folder")
    run.add_argument("scenario", type=Path, help="scenario TOML file")
    run.add_argument("--out", type=Path, default=None, help="results folder (default runs/<name>-<UTC time>)")
    run.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run folders go")
    run.add_argument("--plain", action="store_true", help="plain progress lines, even in a terminal")

    validate = sub.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("scenario", type=Path)

    compare = sub.add_parser("compare", help="two runs' figures side by side, with differences")
    compare.add_argument("run_a", type=Path)
    compare.add_argument("run_b", type=Path)

    sub.add_parser("clean", help="remove containers, networks and images that runs left behind")
    init = sub.add_parser("init", help="scaffold a pipeline folder that runs as generated")
    init.add_argument("name")
    init.add_argument("--dir", type=Path, default=Path("."), help="where to create it")

    broker = sub.add_parser("broker", help="run a local broker")
    broker_sub = broker.add_subparsers(dest="broker_command", required=True, parser_class=_Parser)
    start = broker_sub.add_parser("start", help="start a broker in the foreground (Ctrl+C stops it)")
    start.add_argument("--kind", choices=["kafka", "tansu"], default="tansu")
    start.add_argument("--port", type=int, default=None)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ppipe`` console script; returns the exit code."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        args = build_parser().parse_args(argv)
        return _dispatch(args)
    except PpipeError as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        err.print(f"[bold red]ppipe: error:[/] {first}", markup=True)
        rest = str(exc).splitlines()[1:]
        for line in rest[-10:]:
            err.print(f"  {line}", markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        err.print("ppipe: interrupted")
        return EXIT_INTERRUPTED
    except Exception as exc:  # noqa: BLE001 - a bug of ours: one line, never a traceback
        err.print(f"[bold red]ppipe: internal error:[/] {type(exc).__name__}: {exc} "
                  "(please report it, with the run's log.jsonl)", markup=True)
        return EXIT_FAILED


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "validate":
        return _validate(args)
    if args.command == "run":
        return _run(args)
    if args.command == "compare":
        from .compare import compare_table, load_summary

        console = Console(highlight=False, soft_wrap=True)
        if not console.is_terminal:
            console = Console(highlight=False, soft_wrap=True, width=160)
        console.print(compare_table(load_summary(args.run_a), load_summary(args.run_b)))
        return EXIT_OK
    if args.command == "clean":
        from .housekeeping import clean

        removed = clean()
        print(", ".join(f"{count} {what.replace('_', ' ')}" for what, count in removed.items()) + " removed")
        return EXIT_OK
    if args.command == "init":
        from .housekeeping import init_pipeline

        folder = init_pipeline(args.name, where=args.dir)
        print(f"created {folder}: main.py, Dockerfile, requirements.txt, scenario.toml")
        print(f"run it: ppipe run {folder / 'scenario.toml'}")
        return EXIT_OK
    if args.command == "broker":
        from .brokers import main_broker_start

        return main_broker_start(args.kind, args.port)
    raise UsageError(f"unknown command {args.command!r}")


def _load(path: Path):
    from .checks import scenario_checks
    from .scenario import load_scenario

    return load_scenario(path, extra_checks=scenario_checks)


def _validate(args: argparse.Namespace) -> int:
    loaded = _load(args.scenario)
    scenario = loaded.scenario
    names = ", ".join(p.name for p in scenario.pipelines)
    print(f"{args.scenario}: ok ({scenario.load.profile} load, {len(scenario.pipelines)} "
          f"pipeline(s): {names})")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from .display import RunDisplay, summary_table
    from .run import run_scenario

    loaded = _load(args.scenario)
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out = Console(highlight=False, soft_wrap=True, width=160)
    with RunDisplay(force_plain=args.plain) as display:
        outcome = anyio.run(lambda: run_scenario(loaded, out=args.out, on_update=display.update,
                                                 runs_root=args.runs_dir))
    out.print(summary_table(outcome.summary))
    if outcome.interrupted:
        print("interrupted: partial results (complete: false)", file=sys.stderr)
        code = EXIT_INTERRUPTED
    elif not outcome.complete:
        code = EXIT_FAILED
    else:
        code = EXIT_OK if outcome.passed else EXIT_THRESHOLD
    print(outcome.folder)
    return code


if __name__ == "__main__":
    sys.exit(main())
