"""Wire protocol v1 between the harness and a pipeline (docs/protocol.md).

Owns the message structs, the header names, the topic names of a run and the
environment handed to a pipeline. It holds no I/O: encoding and decoding only.
Unknown fields are ignored on decode, so either side may add fields within v1.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec

__all__ = [
    "PROTOCOL_VERSION",
    "HEADER_INTENDED_NS",
    "HEADER_SENT_NS",
    "Event",
    "Label",
    "Command",
    "Prediction",
    "Reply",
    "InputMessage",
    "OutputMessage",
    "Topics",
    "COMMAND_NAMES",
    "pipeline_env",
    "encode",
    "input_decoder",
    "output_decoder",
    "control_decoder",
]

PROTOCOL_VERSION = 1

HEADER_INTENDED_NS = "ppipe-intended-ns"
HEADER_SENT_NS = "ppipe-sent-ns"

COMMAND_NAMES = ("retrain", "validate", "batch_predict", "feature", "ping")


class Event(msgspec.Struct, tag="event", tag_field="type", omit_defaults=True):
    """Harness -> pipeline: predict this row. ``id`` is unique within a run."""

    id: int
    features: dict[str, Any]
    row: int | None = None


class Label(msgspec.Struct, tag="label", tag_field="type", omit_defaults=True):
    """Harness -> pipeline: the ground truth of event ``id`` (no reply)."""

    id: int
    label: Any


class Command(msgspec.Struct, tag="command", tag_field="type", omit_defaults=True):
    """Harness -> pipeline, on the control topic: a proctor command.
    ``args.pipeline`` names the target pipeline; absent means all."""

    command_id: str
    command: str
    deadline_ns: int
    args: dict[str, Any] = {}


class Prediction(msgspec.Struct, tag="prediction", tag_field="type", omit_defaults=True):
    """Pipeline -> harness: one answer (``id``/``prediction``) or a micro-batch
    (``ids``/``predictions``). ``received_ns``/``emitted_ns`` are optional
    wall-clock stamps that let the scorer split the latency."""

    id: int | None = None
    prediction: Any = None
    ids: list[int] | None = None
    predictions: list[Any] | None = None
    received_ns: int | None = None
    emitted_ns: int | None = None


class Reply(msgspec.Struct, tag="reply", tag_field="type", omit_defaults=True):
    """Pipeline -> harness: the answer to a command."""

    command_id: str
    status: Literal["ok", "error"]
    result: Any = None


InputMessage = Event | Label
OutputMessage = Prediction | Reply

_encoder = msgspec.json.Encoder()
encode = _encoder.encode
input_decoder = msgspec.json.Decoder(InputMessage)
output_decoder = msgspec.json.Decoder(OutputMessage)
control_decoder = msgspec.json.Decoder(Command)


class Topics(msgspec.Struct, frozen=True):
    """The topic names of one run, derived from its prefix."""

    prefix: str

    @property
    def input(self) -> str:
        return f"{self.prefix}.input"

    @property
    def control(self) -> str:
        return f"{self.prefix}.control"

    @property
    def scores(self) -> str:
        return f"{self.prefix}.scores"

    def output(self, pipeline: str) -> str:
        return f"{self.prefix}.output.{pipeline}"

    def group(self, pipeline: str) -> str:
        return f"{self.prefix}.{pipeline}"


def pipeline_env(
    *,
    bootstrap: str,
    topics: Topics,
    pipeline: str,
    run_id: str,
    task: str,
    security: dict[str, str] | None = None,
    acks: Literal["all", "1", "0"] | None = None,
    idempotent: bool | None = None,
) -> dict[str, str]:
    """The environment a pipeline is started with (protocol.md). ``security`` holds
    the ``PPIPE_SECURITY_*`` variables without their prefix (``ClientSecurity.env()``);
    ``acks`` and ``idempotent`` (the run's ``[kafka]`` settings, for the pipeline's
    output producer) become ``PPIPE_ACKS`` and ``PPIPE_IDEMPOTENT`` when given."""
    env = {
        "PPIPE_BOOTSTRAP": bootstrap,
        "PPIPE_INPUT_TOPIC": topics.input,
        "PPIPE_CONTROL_TOPIC": topics.control,
        "PPIPE_OUTPUT_TOPIC": topics.output(pipeline),
        "PPIPE_GROUP_ID": topics.group(pipeline),
        "PPIPE_RUN_ID": run_id,
        "PPIPE_PIPELINE": pipeline,
        "PPIPE_TASK": task,
    }
    if acks is not None:
        env["PPIPE_ACKS"] = acks
    if idempotent is not None:
        env["PPIPE_IDEMPOTENT"] = "true" if idempotent else "false"
    for key, value in (security or {}).items():
        env[f"PPIPE_SECURITY_{key.upper()}"] = value
    return env
