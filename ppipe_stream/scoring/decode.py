"""Decoding a batch of a pipeline's output messages into columns.

Owns the line between "this is an answer" and "this is a syntax error" (the
protocol's rules, protocol.md): a value must decode, with the protocol's
output decoder, to a ``prediction`` or a ``reply``. A prediction carries
either ``id`` + ``prediction`` or ``ids`` + ``predictions`` of the same length
(a micro-batch: one answer per id), never both. Anything else - not JSON, not
an object, an unknown ``type``, a field of the wrong type, a missing id, a
tombstone (``None``) - counts as one syntax error and is otherwise dropped.
Only msgspec's errors are caught: a bug here must not pass for bad data.

It knows nothing of sent events; the scorer joins the columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from .. import protocol

__all__ = ["Answers", "decode_answers"]

_Prediction = protocol.Prediction
_Reply = protocol.Reply


class Answers:
    """One batch of output messages as columns.

    ``ids[k]`` was answered ``predictions[k]``; ``stamped`` lists the ``k`` whose
    message carried both ``received_ns`` and ``emitted_ns`` (in ``received`` and
    ``emitted``, same order).
    """

    __slots__ = ("ids", "predictions", "stamped", "received", "emitted", "syntax_errors",
                 "replies")

    def __init__(self) -> None:
        self.ids: list[int] = []
        self.predictions: list[Any] = []
        self.stamped: list[int] = []
        self.received: list[int] = []
        self.emitted: list[int] = []
        self.syntax_errors = 0
        self.replies: list[protocol.Reply] = []


def decode_answers(values: Sequence[bytes | None]) -> Answers:
    """Decode raw message values; never raises on bad data."""
    out = Answers()
    decode = protocol.output_decoder.decode
    ids, predictions = out.ids, out.predictions
    bad = 0
    for value in values:
        if value is None:
            bad += 1
            continue
        try:
            message = decode(value)
        except msgspec.DecodeError:  # ValidationError is a DecodeError
            bad += 1
            continue
        if isinstance(message, _Prediction):
            if message.id is not None:
                if message.ids is not None or message.predictions is not None:
                    bad += 1
                    continue
                if message.received_ns is not None and message.emitted_ns is not None:
                    out.stamped.append(len(ids))
                    out.received.append(message.received_ns)
                    out.emitted.append(message.emitted_ns)
                ids.append(message.id)
                predictions.append(message.prediction)
            else:
                batch_ids, batch_predictions = message.ids, message.predictions
                if (batch_ids is None or batch_predictions is None
                        or len(batch_ids) != len(batch_predictions)):
                    bad += 1
                    continue
                if message.received_ns is not None and message.emitted_ns is not None:
                    first = len(ids)
                    out.stamped.extend(range(first, first + len(batch_ids)))
                    out.received.extend([message.received_ns] * len(batch_ids))
                    out.emitted.extend([message.emitted_ns] * len(batch_ids))
                ids.extend(batch_ids)
                predictions.extend(batch_predictions)
        else:
            out.replies.append(message)
    out.syntax_errors = bad
    return out
