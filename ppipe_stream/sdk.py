"""The pipeline SDK: a Python pipeline in a few lines.

Owns the pipeline side of protocol v1 (docs/protocol.md): the environment it is
started with, the Kafka loop (input events and labels in the pipeline's group,
every command on the control topic), the `received_ns` / `emitted_ns` stamps,
the rows kept for `validate`, and the replies. A secured cluster's login
(``PPIPE_SECURITY_*``: SASL PLAIN/SCRAM, TLS) is read by
``PipelineConfig.from_env`` and used by all three of its Kafka clients; the output
producer's ``acks`` and idempotence come from ``PPIPE_ACKS`` / ``PPIPE_IDEMPOTENT``
(the run's ``[kafka]`` settings), so an answer the broker acknowledged survives a
leader loss when the run asks for ``acks = "all"``. It must not import the harness
(runner, scorer, dispatcher): a pipeline depends on this module alone.

    from ppipe_stream.sdk import Pipeline

    app = Pipeline()

    @app.predict
    def predict(features):
        return model.predict_one(features)

    @app.learn
    def learn(features, label):
        model.learn_one(features, label)

    app.run()
"""

from __future__ import annotations

import asyncio
import collections
import os
import signal
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from . import protocol
from .security import PLAINTEXT, ClientSecurity

__all__ = ["Pipeline", "PipelineConfig"]

PredictFn = Callable[[dict[str, Any]], Any]
LearnFn = Callable[[dict[str, Any], Any], None]
CommandFn = Callable[[protocol.Command], Any]


class PipelineConfig(msgspec.Struct, frozen=True, kw_only=True):
    """What the harness hands a pipeline in its environment."""

    bootstrap: str
    input_topic: str
    control_topic: str
    output_topic: str
    group_id: str
    run_id: str = ""
    pipeline: str = "pipeline"
    task: str = "classification"
    security: ClientSecurity = PLAINTEXT  # from PPIPE_SECURITY_* (docs/protocol.md)
    # the output producer, from PPIPE_ACKS / PPIPE_IDEMPOTENT (the run's [kafka] acks /
    # idempotent); unset: acks 1, not idempotent, which every broker (tansu too) takes
    acks: str = "1"
    idempotent: bool = False

    def __post_init__(self) -> None:
        if self.acks not in ACKS:
            raise ValueError(f"PPIPE_ACKS is {self.acks!r}; use one of {', '.join(ACKS)}")
        if self.idempotent and self.acks != "all":
            raise ValueError(f"PPIPE_IDEMPOTENT=true needs PPIPE_ACKS=all "
                             f"(Kafka's idempotent producer requires it), not {self.acks!r}")

    def producer_kwargs(self) -> dict[str, Any]:
        """The output producer's delivery settings (aiokafka's ``acks``, ``enable_idempotence``)."""
        return {"acks": "all" if self.acks == "all" else int(self.acks),
                "enable_idempotence": self.idempotent}

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> PipelineConfig:
        env = dict(os.environ if env is None else env)
        missing = [k for k in ("PPIPE_BOOTSTRAP", "PPIPE_INPUT_TOPIC", "PPIPE_CONTROL_TOPIC",
                               "PPIPE_OUTPUT_TOPIC", "PPIPE_GROUP_ID") if not env.get(k)]
        if missing:
            raise SystemExit(f"ppipe pipeline: environment variable(s) not set: {', '.join(missing)}")
        try:
            return cls._from_env(env)
        except ValueError as exc:  # one clear line, never a traceback
            raise SystemExit(f"ppipe pipeline: {exc}") from None

    @classmethod
    def _from_env(cls, env: dict[str, str]) -> PipelineConfig:
        return cls(
            bootstrap=env["PPIPE_BOOTSTRAP"],
            input_topic=env["PPIPE_INPUT_TOPIC"],
            control_topic=env["PPIPE_CONTROL_TOPIC"],
            output_topic=env["PPIPE_OUTPUT_TOPIC"],
            group_id=env["PPIPE_GROUP_ID"],
            run_id=env.get("PPIPE_RUN_ID", ""),
            pipeline=env.get("PPIPE_PIPELINE", "pipeline"),
            task=env.get("PPIPE_TASK", "classification"),
            security=ClientSecurity.from_env(env),
            acks=env.get("PPIPE_ACKS") or "1",
            idempotent=_flag(env, "PPIPE_IDEMPOTENT"),
        )


ACKS = ("all", "1", "0")


def _flag(env: dict[str, str], name: str) -> bool:
    """``true`` / ``false`` (unset: false); anything else is a ValueError naming it."""
    value = env.get(name, "").strip().lower()
    if value not in ("", "true", "false"):
        raise ValueError(f"{name} is {env[name]!r}; use true or false")
    return value == "true"


class Pipeline:
    """A pipeline: register handlers, then :meth:`run`.

    ``keep`` bounds how many ingested rows are held (for learning from delayed
    labels and answering ``validate``); the oldest are dropped first.
    ``on_error``: when a handler raises on one event or label, ``"skip"`` (the
    default) prints the first tracebacks to stderr, leaves that event unanswered
    (the scorer counts it missing) and goes on; ``"raise"`` ends the pipeline.
    A bad row must not cost every event after it.
    """

    def __init__(self, *, keep: int = 200_000, fetch_max_wait_ms: int = 5,
                 linger_ms: int = 1, on_error: str = "skip") -> None:
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', not {on_error!r}")
        self._on_error = on_error
        self._predict: PredictFn | None = None
        self._learn: LearnFn | None = None
        self._commands: dict[str, CommandFn] = {}
        self._rows: collections.OrderedDict[int, dict[str, Any]] = collections.OrderedDict()
        self._keep = keep
        self._fetch_max_wait_ms = fetch_max_wait_ms
        self._linger_ms = linger_ms
        self._stopping: asyncio.Event | None = None  # created in serve(), inside its loop
        self._assigned: asyncio.Event | None = None
        self.events_seen = 0
        self.labels_seen = 0
        self.handler_errors = 0

    # -- registration -------------------------------------------------------
    def predict(self, fn: PredictFn) -> PredictFn:
        """Register ``fn(features) -> prediction``."""
        self._predict = fn
        return fn

    def learn(self, fn: LearnFn) -> LearnFn:
        """Register ``fn(features, label)``, called when a label arrives."""
        self._learn = fn
        return fn

    def command(self, name: str) -> Callable[[CommandFn], CommandFn]:
        """Register a handler for a proctor command (``retrain``, ``feature``...);
        its return value is the reply's ``result``."""
        if name not in protocol.COMMAND_NAMES:
            raise ValueError(f"unknown command {name!r}; known: {', '.join(protocol.COMMAND_NAMES)}")

        def register(fn: CommandFn) -> CommandFn:
            self._commands[name] = fn
            return fn

        return register

    @property
    def rows(self) -> dict[int, dict[str, Any]]:
        """The rows ingested so far and still kept, by event id."""
        return self._rows

    # -- running ------------------------------------------------------------
    def run(self, config: PipelineConfig | None = None) -> None:
        """Serve until SIGTERM/SIGINT. Reads the environment when no config is given."""
        asyncio.run(self.serve(config or PipelineConfig.from_env()))

    async def serve(self, config: PipelineConfig) -> None:
        if self._predict is None:
            raise RuntimeError("register a predict handler with @pipeline.predict first")
        self._stopping = asyncio.Event()
        self._assigned = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._stopping.set)
        secure = config.security.kafka_kwargs
        producer = AIOKafkaProducer(bootstrap_servers=config.bootstrap, linger_ms=self._linger_ms,
                                    **config.producer_kwargs(), **secure())
        inputs = AIOKafkaConsumer(
            config.input_topic, bootstrap_servers=config.bootstrap, group_id=config.group_id,
            auto_offset_reset="earliest", enable_auto_commit=True,
            fetch_max_wait_ms=self._fetch_max_wait_ms, session_timeout_ms=6000,
            heartbeat_interval_ms=500, max_poll_records=2000, **secure(),
        )
        control = AIOKafkaConsumer(bootstrap_servers=config.bootstrap, group_id=None,
                                   auto_offset_reset="earliest",
                                   fetch_max_wait_ms=max(self._fetch_max_wait_ms, 20), **secure())
        await producer.start()
        await inputs.start()
        await control.start()
        control.assign([TopicPartition(config.control_topic, 0)])
        tasks = [asyncio.create_task(self._input_loop(inputs, producer, config)),
                 asyncio.create_task(self._control_loop(control, producer, config))]
        try:
            stop = asyncio.create_task(self._stopping.wait())
            done, _ = await asyncio.wait([stop, *tasks], return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                if task is not stop and task.exception():
                    raise task.exception()  # type: ignore[misc]
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await control.stop()
            await inputs.stop()
            await producer.stop()

    async def _input_loop(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                          config: PipelineConfig) -> None:
        predict, learn, rows, keep = self._predict, self._learn, self._rows, self._keep
        topic = config.output_topic
        assert predict is not None and self._assigned is not None
        while True:
            batches = await consumer.getmany(timeout_ms=100)
            if consumer.assignment():
                self._assigned.set()
            futures = []
            for records in batches.values():
                for record in records:
                    received = time.time_ns()
                    try:
                        message = protocol.input_decoder.decode(record.value)
                    except msgspec.DecodeError:
                        print(f"ppipe sdk: skipping a malformed input message at offset {record.offset}",
                              file=sys.stderr)
                        continue
                    if isinstance(message, protocol.Event):
                        self.events_seen += 1
                        rows[message.id] = message.features
                        if len(rows) > keep:
                            rows.popitem(last=False)
                        try:
                            prediction = predict(message.features)
                        except Exception:  # noqa: BLE001 - counted and reported in _failed
                            self._failed("predict", message.id)
                            continue
                        answer = protocol.Prediction(
                            id=message.id, prediction=prediction, received_ns=received)
                        answer.emitted_ns = time.time_ns()
                        futures.append(await producer.send(
                            topic, protocol.encode(answer), key=record.key,
                            partition=record.partition))
                    else:
                        self.labels_seen += 1
                        features = rows.get(message.id)
                        if learn is not None and features is not None:
                            try:
                                learn(features, message.label)
                            except Exception:  # noqa: BLE001 - counted and reported in _failed
                                self._failed("learn", message.id)
            if futures:
                await asyncio.gather(*futures)

    def _failed(self, handler: str, event_id: int) -> None:
        """A handler raised: re-raise with ``on_error="raise"``, else report and go on."""
        if self._on_error == "raise":
            raise  # noqa: PLE0704 - called only from an except block: re-raises the handler's error
        self.handler_errors += 1
        if self.handler_errors <= 5:
            print(f"ppipe sdk: {handler} failed on event {event_id} (left unanswered):\n"
                  f"{traceback.format_exc()}", file=sys.stderr)
        elif self.handler_errors in (10, 100) or self.handler_errors % 1000 == 0:
            print(f"ppipe sdk: {self.handler_errors} handler errors so far", file=sys.stderr)

    async def _control_loop(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer,
                            config: PipelineConfig) -> None:
        assert self._assigned is not None
        while True:
            batches = await consumer.getmany(timeout_ms=200)
            for records in batches.values():
                for record in records:
                    try:
                        command = protocol.control_decoder.decode(record.value)
                    except msgspec.DecodeError:
                        continue
                    target = command.args.get("pipeline")
                    if target is not None and target != config.pipeline:
                        continue
                    if command.command == "ping":
                        # Answer only once the input partitions are ours: the
                        # harness uses ping as the readiness probe.
                        await self._assigned.wait()
                    reply = self._answer(command)
                    await producer.send_and_wait(config.output_topic, protocol.encode(reply))

    def _answer(self, command: protocol.Command) -> protocol.Reply:
        handler = self._commands.get(command.command)
        try:
            if handler is not None:
                result = handler(command)
            elif command.command == "ping":
                result = "pong"
            elif command.command == "validate":
                result = {str(i): self._rows[int(i)] for i in command.args.get("ids", [])
                          if int(i) in self._rows}
            elif command.command == "batch_predict":
                assert self._predict is not None
                result = [{"id": row["id"], "prediction": self._predict(row["features"])}
                          for row in command.args.get("rows", [])]
            elif command.command == "retrain":
                result = "nothing to retrain"
            else:
                return protocol.Reply(command_id=command.command_id, status="error",
                                      result=f"no handler for {command.command!r}")
        except Exception as exc:  # noqa: BLE001 - a user handler failed: reported in the reply, not fatal
            return protocol.Reply(command_id=command.command_id, status="error",
                                  result=f"{type(exc).__name__}: {exc}")
        return protocol.Reply(command_id=command.command_id, status="ok", result=result)
