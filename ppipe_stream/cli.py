"""The ``ppipe`` command line.

Owns argument parsing, the one place that catches :class:`PpipeError`, the
one-line error messages, and the exit codes of results.md: 0 ran and passed,
3 a threshold failed, 2 bad scenario or usage, 1 the run itself failed, 130
interrupted. ``ppipe run`` prints the run folder's path as the last line of
standard output.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import anyio
from rich.console import Console

from . import __version__
from .errors import PpipeError, UsageError

if TYPE_CHECKING:
    from .results.model import Summary
    from .run.orchestration import RunOutcome
    from .scenario import LoadedScenario
    from .view.prometheus import MetricsServer

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
    run.add_argument("--force", action="store_true",
                     help="write into an --out folder that holds files already (an earlier run's)")
    run.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY.PATH=VALUE",
                     help="override a scenario key, e.g. --set load.rate=500 (repeatable)")
    run.add_argument("-e", "--env", dest="env", action="append", default=[], metavar="NAME=VALUE",
                     help="add a variable to every process and docker pipeline's environment (repeatable)")
    run.add_argument("--tag", dest="tags", action="append", default=[], metavar="KEY=VALUE",
                     help="label the run (summary.json meta.tags; ppipe runs --tag filters) (repeatable)")
    run.add_argument("--junit", type=Path, default=None, metavar="FILE",
                     help="also write the run's JUnit XML here: a testcase per threshold per pipeline, "
                     "the validity, the outcome of a run that did not complete (the run folder has "
                     "junit.xml)")
    run.add_argument("--summary-md", type=Path, default=None, metavar="FILE",
                     help="append the run's Markdown summary (headline table, thresholds) here, e.g. "
                     "\"$GITHUB_STEP_SUMMARY\" (the run folder has summary.md)")
    run.add_argument("--metrics-port", type=_port, default=None, metavar="PORT",
                     help="serve live metrics for Prometheus on this port while the run goes "
                     "(http://HOST:PORT/metrics; docs/results.md lists them)")
    run.add_argument("--metrics-host", default=None, metavar="HOST",
                     help="the address --metrics-port listens on (default 127.0.0.1; 0.0.0.0: every interface)")
    run.add_argument("--metrics-linger", type=_duration, default=None, metavar="DURATION",
                     help="after the run, keep serving its final figures until they are scraped once, "
                     "at most this long (e.g. 30s: more than Prometheus' scrape interval; not after Ctrl+C)")

    validate = sub.add_parser("validate", help="check a scenario file without running it")
    validate.add_argument("scenario", type=Path)

    compare = sub.add_parser("compare", help="two runs' figures side by side, with differences")
    compare.add_argument("run_a", type=Path, help="run folder A, the BASE of --fail-if")
    compare.add_argument("run_b", type=Path, help="run folder B, the NEW run --fail-if judges")
    compare.add_argument("--fail-if", dest="fail_if", action="append", default=[],
                         metavar="EXPR",
                         help="exit 3 when B changed from A past this bound, e.g. \"latency.p99 > +10%%\" "
                         "(relative to A) or \"accuracy < -0.01\" (absolute); any threshold figure, "
                         "every pipeline in both runs unless prefixed with one (repeatable)")

    report = sub.add_parser("report", help="write report.html (charts) for a run, or overlay two runs")
    report.add_argument("runs", type=Path, nargs="+", metavar="RUN")
    report.add_argument("--out", type=Path, default=None,
                        help="the page to write (default RUN/report.html, two runs: A/report-vs-B.html)")
    report.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run names are looked up")

    bench = sub.add_parser(
        "bench", help="ingestion latency against rate, size, partitions or replicas, beside a raw "
        "aiokafka baseline", description="One probe (a complete run) per value of --axis; the other "
        "flags hold one value each. Writes bench.json, bench.png and one folder per probe.")
    bench.add_argument("scenario", type=Path, nargs="?", help="default: the echo pipeline on iris")
    bench.add_argument("--axis", choices=["rate", "size", "partitions", "replicas"], default="rate",
                       help="what the sweep varies; the table and bench.png follow it (default: rate)")
    bench.add_argument("--rates", default=None,
                       help="comma-separated events/s (default 100,500,1000,2000; 500 when "
                       "another axis is swept)")
    bench.add_argument("--sizes", default=None, help="bytes of padding per event ([dataset] pad), "
                       "comma-separated with --axis size (default 100,1000,10000; else the scenario's pad, 0)")
    bench.add_argument("--partitions", default=None, help="partitions of every topic, comma-separated "
                       "with --axis partitions (default 1,4,16; else the scenario's)")
    bench.add_argument("--replicas", default=None, help="replication factor, comma-separated with "
                       "--axis replicas (default 1,3; else the scenario's); above 1 needs "
                       "--bootstrap of a cluster")
    bench.add_argument("--seconds", type=float, default=10.0, help="per probe")
    bench.add_argument("--kind", choices=["kafka", "tansu"], default="kafka", help="broker to start")
    bench.add_argument("--bootstrap", help="use this broker instead of starting one")
    bench.add_argument("--out", type=Path, default=None, help="bench folder (default runs/bench-<UTC time>)")
    bench.add_argument("--force", action="store_true",
                       help="write into an --out folder that holds files already (an earlier bench's)")
    bench.add_argument("--find-max", action="store_true", help="search the highest sustained rate")
    bench.add_argument("--slo", default=None, help='p99 bound for --find-max, e.g. "100ms"')
    bench.add_argument("--start", type=float, default=100.0, help="first rate of --find-max")

    tail = sub.add_parser("tail", help="watch a run: its folder, or its scores topic on any host")
    tail.add_argument("run", type=Path, nargs="?", help="a run folder (same host)")
    tail.add_argument("--bootstrap", help="the run's broker, HOST:PORT (with --run-id)")
    tail.add_argument("--run-id", help="the run's id (the folder's name)")
    tail.add_argument("--wait", action="store_true", help="wait for a run that has not started yet")
    tail.add_argument("--runs-dir", type=Path, default=Path("runs"), help="where run names are looked up")

    runs = sub.add_parser("runs", help="list past runs with their headline figures")
    runs.add_argument("--runs-dir", type=Path, default=Path("runs"))
    runs.add_argument("--name", help="only runs whose name contains this")
    runs.add_argument("--tag", dest="tags", action="append", default=[], metavar="KEY=VALUE",
                      help="only runs with this tag (repeatable: all must match)")
    runs.add_argument("--limit", type=int, default=None, help="at most this many, newest first")

    sub.add_parser("clean", help="remove containers, networks and images that runs left behind")
    init = sub.add_parser("init", help="scaffold a pipeline folder that runs as generated")
    init.add_argument("name")
    init.add_argument("--dir", type=Path, default=Path("."), help="where to create it")
    init.add_argument("--runtime", choices=["docker", "process"], default="docker",
                      help="docker: a sandboxed container (needs a Docker engine); process: a local process")

    images = sub.add_parser("images", help="build the images compose/*.yml use, without a registry")
    images_sub = images.add_subparsers(dest="images_command", required=True, parser_class=_Parser)
    images_sub.add_parser("build", help="build ppipe/kafka and ppipe/harness-base offline (once; "
                          "cached), then print the variables that point compose/*.yml at them")

    broker = sub.add_parser("broker", help="run a local broker")
    broker_sub = broker.add_subparsers(dest="broker_command", required=True, parser_class=_Parser)
    start = broker_sub.add_parser("start", help="start a broker in the foreground (Ctrl+C stops it)")
    from .brokers.cli import add_start_arguments

    add_start_arguments(start)
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: give a port from 1 to 65535")
    return port


def _duration(text: str) -> float:
    from .units import parse_duration

    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r}: {exc}") from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``ppipe`` console script; returns the exit code."""
    err = Console(stderr=True, highlight=False, soft_wrap=True)
    try:
        args = build_parser().parse_args(argv)
        args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in the run's summary
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
        return _compare(args)
    if args.command == "report":
        from .report import write_report

        if len(args.runs) > 2:
            raise UsageError("report takes one run, or two to overlay")
        folders = [_run_folder(given, args.runs_dir) for given in args.runs]
        for folder in folders:
            if not (folder / "summary.json").exists():
                raise UsageError(f"{folder}: no summary.json (is it a run folder?)")
        print(write_report(folders, args.out))
        return EXIT_OK
    if args.command == "bench":
        from .bench.axes import Axis
        from .bench.command import run_bench

        return anyio.run(lambda: run_bench(
            scenario=args.scenario, rates=args.rates, seconds=args.seconds, kind=args.kind,
            bootstrap=args.bootstrap, out=args.out, find_max_rate=args.find_max, slo=args.slo,
            start=args.start, console=_stdout(), axis=Axis(args.axis), sizes=args.sizes,
            partitions=args.partitions, replicas=args.replicas, force=args.force))
    if args.command == "tail":
        from .view.tail import tail_folder, tail_topic

        console = _stdout()
        if args.bootstrap or args.run_id:
            if not (args.bootstrap and args.run_id):
                raise UsageError("--bootstrap and --run-id go together")
            tail_topic(args.bootstrap, args.run_id, console=console, wait=args.wait)
        elif args.run is not None:
            from .report.runs import resolve_run

            folder = resolve_run(args.run, args.runs_dir) or args.run  # else tail says why, or waits
            tail_folder(folder, console=console, wait=args.wait)
        else:
            raise UsageError("give a run folder, or --bootstrap and --run-id")
        return EXIT_OK
    if args.command == "runs":
        from .report.runs import runs_table

        if args.limit is not None and args.limit < 1:
            raise UsageError(f"--limit {args.limit}: give 1 or more")
        _stdout().print(runs_table(args.runs_dir, name=args.name, tags=_tags(args.tags),
                                   limit=args.limit))
        return EXIT_OK
    if args.command == "clean":
        from .run.housekeeping import clean

        removed = clean()
        print(", ".join(f"{count} {what.replace('_', ' ')}" for what, count in removed.items()) + " removed")
        return EXIT_OK
    if args.command == "init":
        from .run.housekeeping import init_pipeline

        folder = init_pipeline(args.name, where=args.dir, runtime=args.runtime)
        print(f"created {folder}: main.py, requirements.txt, scenario.toml, Dockerfile, wheels/")
        if args.runtime == "docker":
            print("it runs in a Docker container: it needs a Docker engine (DOCKER_HOST); without "
                  f"one: ppipe init {args.name} --runtime process")
            print("requirements.txt: list what main.py imports; ppipe run fetches it on this host "
                  "into wheels/ (the image builds without network)")
        else:
            print("it runs as a local process: pip install -r requirements.txt into this Python first")
        print(f"run it: ppipe run {folder / 'scenario.toml'}")
        return EXIT_OK
    if args.command == "images":
        from .runtime.compose_images import build_compose_images
        from .runtime.docker import docker_client

        client = docker_client()
        try:
            variables = build_compose_images(client)
        finally:
            client.close()
        for name, value in variables.items():  # eval "$(ppipe images build)" exports them
            print(f"export {name}={shlex.quote(value)}")
        return EXIT_OK
    if args.command == "broker":
        from .brokers import main_broker_start

        return main_broker_start(args.kind, args.port, nodes=args.nodes,
                                 restart_after=args.restart_after)
    raise UsageError(f"unknown command {args.command!r}")


def _stdout() -> Console:
    """Standard output: the terminal's width, or 180 columns when it is a file or pipe."""
    console = Console(highlight=False, soft_wrap=True)
    return console if console.is_terminal else Console(highlight=False, soft_wrap=True, width=180)


def _load(path: Path, overrides=None):
    from .run.preflight import scenario_checks
    from .scenario import load_scenario

    return load_scenario(path, extra_checks=scenario_checks, overrides=overrides)


def _validate(args: argparse.Namespace) -> int:
    from .run.preflight import check_before_run

    loaded = _load(args.scenario)
    check_before_run(loaded)  # the data's columns, the dataset's name, the pipelines' commands
    scenario = loaded.scenario
    names = ", ".join(p.name for p in scenario.pipelines)
    print(f"{args.scenario}: ok ({scenario.load.profile} load, {len(scenario.pipelines)} "
          f"pipeline(s): {names})")
    return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from .view.display import RunDisplay
    from .run.metadata import RunMeta
    from .run.folder import check_out
    from .run.orchestration import run_scenario
    from .scenario.overrides import Overrides

    overrides = Overrides(args.sets, args.env)
    meta = RunMeta(command_line=["ppipe", *args.argv],
                   tags=_tags(args.tags), overrides=overrides.describe(), env_names=list(overrides.env))
    if args.out is not None:
        check_out(args.out, force=args.force)  # before the scenario is even read
    if args.metrics_port is None and (args.metrics_host is not None or args.metrics_linger is not None):
        raise UsageError("--metrics-host and --metrics-linger go with --metrics-port")
    loaded: LoadedScenario | None = None
    metrics: MetricsServer | None = None
    linger = 0.0  # after Ctrl+C or a failure to start: stop serving at once
    try:
        loaded = _load(args.scenario, overrides)
        if args.metrics_port is not None:  # bound before anything starts: a port in use is exit 2
            from .view.prometheus import MetricsServer

            metrics = MetricsServer.start(args.metrics_port, host=args.metrics_host or "127.0.0.1")
        out = _stdout()
        try:
            with RunDisplay(force_plain=args.plain) as display:
                outcome = anyio.run(lambda: run_scenario(loaded, out=args.out, on_update=display.update,
                                                         runs_root=args.runs_dir, force=args.force,
                                                         meta=meta, metrics=metrics))
        except PpipeError as exc:  # the CI files still say the run failed, and why
            _write_ci_files_failed(args, loaded, exc)
            if exc.exit_code == EXIT_FAILED:  # the run itself failed: its last figures are served
                linger = args.metrics_linger or 0.0
            raise
        linger = 0.0 if outcome.interrupted else (args.metrics_linger or 0.0)
        return _after_run(args, out, outcome)
    finally:
        if metrics is not None:
            if linger > 0:
                print(f"ppipe: serving the final metrics on port {metrics.port} until scraped "
                      f"(at most {linger:g}s)", file=sys.stderr)
            metrics.close(linger)


def _after_run(args: argparse.Namespace, out: Console, outcome: RunOutcome) -> int:
    """The end table, the CI files, the folder's path last; the exit code."""
    from .view.display import summary_table

    out.print(summary_table(outcome.results))
    _write_ci_files(args, outcome.results)
    if outcome.interrupted:
        print("interrupted: partial results (complete: false)", file=sys.stderr)
        code = EXIT_INTERRUPTED
    elif not outcome.complete:
        code = EXIT_FAILED
    else:
        code = EXIT_OK if outcome.passed else EXIT_THRESHOLD
    print(outcome.folder)
    return code


def _compare(args: argparse.Namespace) -> int:
    """The table; with ``--fail-if``, one line per bound that failed and exit 3."""
    from .report.compare import compare_table, load_summary
    from .report.gate import judge_bounds, parse_bound

    base, new = load_summary(args.run_a), load_summary(args.run_b)
    try:
        bounds = [parse_bound(text, [*base.pipelines, *new.pipelines]) for text in args.fail_if]
        results = judge_bounds(bounds, base, new)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    console = _stdout()
    console.print(compare_table(base, new))
    failed = [result for result in results if result.failed]
    for result in failed:
        print(result.line())
    if bounds and not failed:
        print(f"--fail-if: every bound held ({len(results)} figure(s) judged)")
    return EXIT_THRESHOLD if failed else EXIT_OK


def _write_ci_files(args: argparse.Namespace, summary: Summary) -> None:
    """``--junit`` and ``--summary-md``, when given; a path that cannot be written is a UsageError."""
    from .report.ci import write_requested

    try:
        write_requested(summary, junit=args.junit, summary_md=args.summary_md)
    except OSError as exc:
        raise UsageError(f"{exc.filename}: cannot write it ({exc.strerror})") from None


def _write_ci_files_failed(args: argparse.Namespace, loaded: LoadedScenario | None,
                           exc: PpipeError) -> None:
    """The CI files of a run that raised: failed, with the scenario's thresholds (when it
    could be read) not judged. A path that cannot be written is one line on stderr:
    the run's own error is the one ``ppipe`` ends with."""
    if args.junit is None and args.summary_md is None:
        return
    from .report.ci import failed_summary
    from .scenario.calibration import without_floor

    scenario = loaded.scenario if loaded is not None else None
    failed = failed_summary(scenario.name if scenario else args.scenario.stem,
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                            thresholds=scenario.thresholds if scenario else None,
                            # the floor is no competitor: no threshold of the scenario is its
                            pipelines=[p.name for p in without_floor(scenario).pipelines] if scenario else ())
    try:
        _write_ci_files(args, failed)
    except UsageError as unwritable:
        print(f"ppipe: {unwritable}", file=sys.stderr)


def _run_folder(given: Path, runs_dir: Path) -> Path:
    """A run given by its folder or by the name ``ppipe runs`` lists; UsageError if neither."""
    from .report.runs import resolve_run

    folder = resolve_run(given, runs_dir)
    if folder is None:
        raise UsageError(f"{given}: no such run (neither a folder nor a run in {runs_dir}; "
                         "`ppipe runs` lists them)")
    return folder


def _tags(pairs: list[str]) -> dict[str, str]:
    from .run.metadata import parse_tags

    try:
        return parse_tags(pairs)
    except ValueError as exc:
        raise UsageError(str(exc)) from None


if __name__ == "__main__":
    sys.exit(main())
