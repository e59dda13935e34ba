"""Scorer throughput: predictions judged per second on one core.

Measures what the run loop asks of the scorer for every answer it reads:
decode (msgspec, the protocol's output decoder), join with the sent event,
status, latency histogram and river metric, windows closed as the run goes.
Printed beside a baseline: decoding the same bytes with msgspec alone, the
floor no scorer can beat. The last line is one JSON object of the figures.

    .venv/bin/python benchmarks/bench_scorer.py [--events 300000] [--metrics accuracy,f1]

The feed mimics a run: the dispatcher's ``record_sent`` in batches of 500,
answers in ``getmany``-sized batches (``--batch``), ``advance`` every 100 ms
of simulated time. Simulated clock: 50,000 events/s, answers 2-40 ms late,
one in 50 carries the latency-split stamps, one in 20 is a micro-batch of 8.
Then a flat-memory run (``--flat-events``, 2 million by default; try 10 million):
100,000 events/s simulated, one message per answer, RSS and the scorer's join
slots sampled ten times: both must stay flat.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import random
import sys
import time
from typing import Any

import msgspec

from ppipe_stream import protocol
from ppipe_stream.scoring import Scorer, ScoringConfig

MS = 1_000_000
T0 = 1_700_000_000_000_000_000
RATE = 50_000  # simulated events per second


def build_feed(n: int, seed: int = 1, task: str = "classification"):
    """Labels, intended stamps and answers ``(read_ns, value)`` in read order."""
    rng = random.Random(seed)
    labels: list[Any]
    guess: list[Any]
    if task == "regression":
        labels = [round(rng.uniform(0, 100), 3) for _ in range(n)]
        guess = [y if rng.random() < 0.5 else y + rng.gauss(0, 1) for y in labels]
    else:
        classes = ["setosa", "versicolor", "virginica"]
        labels = [rng.choice(classes) for _ in range(n)]
        guess = [y if rng.random() < 0.9 else rng.choice(classes) for y in labels]
    intended = [T0 + i * (10**9 // RATE) for i in range(n)]
    answers: list[tuple[int, bytes]] = []  # (read_ns, value)
    encode = protocol.encode
    i = 0
    while i < n:
        if rng.random() < 0.05 and i + 8 <= n:  # a micro-batch of 8
            ids = list(range(i, i + 8))
            preds = [guess[j] for j in ids]
            msg = protocol.Prediction(ids=ids, predictions=preds)
            read = intended[i + 7] + rng.randint(2, 40) * MS
            answers.append((read, encode(msg)))
            i += 8
            continue
        pred = guess[i]
        read = intended[i] + rng.randint(2, 40) * MS
        if rng.random() < 0.02:
            msg = protocol.Prediction(id=i, prediction=pred, received_ns=intended[i] + MS,
                                      emitted_ns=read - MS)
        else:
            msg = protocol.Prediction(id=i, prediction=pred)
        answers.append((read, encode(msg)))
        i += 1
    answers.sort(key=lambda a: a[0])
    return labels, intended, answers


def run_scorer(labels, intended, answers, *, batch: int, metrics: list[str],
               task: str = "classification") -> tuple[float, dict]:
    """Seconds spent inside the scorer, and its summary."""
    n = len(labels)
    config = ScoringConfig(task=task, metrics=metrics, deadline_ns=500 * MS,
                           window_ns=1000 * MS, drain_ns=1000 * MS, warmup_end_ns=T0)
    scorer = Scorer(["p"], config, start_ns=T0)
    sent_upto = 0
    next_tick = T0 + 100 * MS
    spent = 0.0
    clock = time.perf_counter
    for start in range(0, len(answers), batch):
        chunk = answers[start:start + batch]
        read_ns = chunk[-1][0]
        values = [value for _, value in chunk]
        t = clock()
        while sent_upto < n and intended[sent_upto] <= read_ns:  # the dispatcher ran ahead
            end = min(sent_upto + 500, n)
            ids = range(sent_upto, end)
            scorer.record_sent(ids, intended[sent_upto:end],
                               [x + 50_000 for x in intended[sent_upto:end]], labels[sent_upto:end])
            sent_upto = end
        scorer.on_output("p", values, read_ns)
        while next_tick <= read_ns:
            scorer.advance(next_tick)
            next_tick += 100 * MS
        spent += clock() - t
    t = clock()
    scorer.finish(next_tick + 10_000 * MS)
    summary = scorer.summary()["p"]
    spent += clock() - t
    return spent, summary


def baseline(answers) -> float:
    """Seconds to decode every value with the protocol's decoder, nothing else."""
    values = [value for _, value in answers]
    decode = protocol.output_decoder.decode
    t = time.perf_counter()
    for value in values:
        decode(value)
    return time.perf_counter() - t


def rss_mib() -> float:
    """This process's resident memory now (Linux), in MiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def flat_run(n: int, *, rate: int = 100_000) -> list[tuple[int, float, int]]:
    """Stream ``n`` events (``rate``/s simulated, each answered 5 ms later in its own
    message) and sample (events, RSS MiB, ledger capacity) ten times along the way."""
    config = ScoringConfig(task="classification", metrics=["accuracy"], deadline_ns=500 * MS,
                           window_ns=1000 * MS, drain_ns=1000 * MS, warmup_end_ns=T0)
    scorer = Scorer(["p"], config, start_ns=T0)
    encode = protocol.encode
    step = rate // 10  # events per 100 ms tick
    samples = []
    for base in range(0, n, step):
        at = T0 + base * (10**9 // rate)
        ids = range(base, min(base + step, n))
        scorer.record_sent(ids, [at] * len(ids), [at] * len(ids), ["a"] * len(ids))
        scorer.on_output("p", [encode(protocol.Prediction(id=i, prediction="a")) for i in ids],
                         at + 5 * MS)
        scorer.advance(at + 99 * MS)
        if (base // step + 1) % max(n // step // 10, 1) == 0:
            gc.collect()
            samples.append((base + len(ids), round(rss_mib(), 1), scorer.state_size))
    scorer.finish(T0 + (n // rate + 10) * 10**9)
    assert scorer.summary()["p"]["status"]["correct"] == n - scorer.warmup_events
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=300_000)
    parser.add_argument("--batch", type=int, default=2_000, help="answers per on_output call")
    parser.add_argument("--task", default="classification",
                        choices=["classification", "regression"])
    parser.add_argument("--metrics", default="", help="comma-separated metric names "
                        "(default: accuracy, or mae for regression)")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs")
    parser.add_argument("--flat-events", type=int, default=2_000_000,
                        help="events of the flat-memory run (0: skip it)")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # one core
    metrics = [m for m in args.metrics.split(",") if m] or \
        (["mae"] if args.task == "regression" else ["accuracy"])

    labels, intended, answers = build_feed(args.events, task=args.task)
    predictions = args.events  # one answer per event (micro-batches count one per id)
    base = min(baseline(answers) for _ in range(args.repeat))
    best: float | None = None
    summary: dict[str, Any] = {}
    for _ in range(args.repeat):
        spent, summary = run_scorer(labels, intended, answers, batch=args.batch, metrics=metrics,
                                     task=args.task)
        best = spent if best is None else min(best, spent)
    assert best is not None
    status = summary["status"]
    assert status["missing"] == 0 and status["syntax_error"] == 0, status
    assert sum(status[k] for k in ("correct", "incorrect", "deadline_exceeded")) == predictions
    samples = flat_run(args.flat_events) if args.flat_events else []

    figures = {
        "events": args.events,
        "messages": len(answers),
        "batch": args.batch,
        "task": args.task,
        "metrics": metrics,
        "scorer_predictions_per_s": round(predictions / best),
        "decode_only_predictions_per_s": round(predictions / base),
        "decode_only_messages_per_s": round(len(answers) / base),
        "scorer_us_per_prediction": round(best / predictions * 1e6, 3),
        "decode_us_per_message": round(base / len(answers) * 1e6, 3),
        "target_predictions_per_s": 150_000,
        "latency_p99_ms": summary["latency_ms"]["p99"],
        "flat_events": args.flat_events,
        "flat_rss_mib": [rss for _, rss, _ in samples],
        "flat_state_slots": [slots for _, _, slots in samples],
        "python": sys.version.split()[0],
        "msgspec": msgspec.__version__,
    }
    print(f"decode only (baseline): {figures['decode_only_predictions_per_s']:>10,} predictions/s "
          f"({figures['decode_only_messages_per_s']:,} messages/s, "
          f"{figures['decode_us_per_message']} us each)")
    print(f"scorer (decode+join+histogram+{'+'.join(metrics)}): "
          f"{figures['scorer_predictions_per_s']:>10,} predictions/s "
          f"({figures['scorer_us_per_prediction']} us each; target 150,000/s)")
    for events, rss, slots in samples:
        print(f"flat memory: {events:>10,} events  RSS {rss:7.1f} MiB  join slots {slots:,}")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
