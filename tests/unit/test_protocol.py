"""Protocol v1 structs: the JSON shapes of protocol.md, both ways."""

from __future__ import annotations

import json

import msgspec
import pytest

from ppipe_stream import protocol


def test_event_and_label_shapes():
    event = json.loads(protocol.encode(protocol.Event(id=42, features={"a": 5.1}, row=7)))
    assert event == {"type": "event", "id": 42, "features": {"a": 5.1}, "row": 7}
    label = json.loads(protocol.encode(protocol.Label(id=42, label="setosa")))
    assert label == {"type": "label", "id": 42, "label": "setosa"}


def test_decoders_ignore_unknown_fields():
    message = protocol.output_decoder.decode(
        b'{"type":"prediction","id":4,"prediction":"a","future_field":1}')
    assert message == protocol.Prediction(id=4, prediction="a")
    reply = protocol.output_decoder.decode(
        b'{"type":"reply","command_id":"c1","status":"ok","result":[1],"x":2}')
    assert reply == protocol.Reply(command_id="c1", status="ok", result=[1])


@pytest.mark.parametrize("raw", [
    b"not json", b"[]", b'{"type":"nonsense"}', b'{"id":1}',
    b'{"type":"reply","command_id":"c","status":"maybe"}',
])
def test_garbage_is_a_decode_error(raw):
    with pytest.raises(msgspec.DecodeError):
        protocol.output_decoder.decode(raw)


def test_topics_and_environment():
    topics = protocol.Topics(prefix="ppipe.r1")
    env = protocol.pipeline_env(bootstrap="127.0.0.1:9092", topics=topics, pipeline="p",
                                run_id="r1", task="classification", security={"sasl_mechanism": "PLAIN"})
    assert env == {
        "PPIPE_BOOTSTRAP": "127.0.0.1:9092", "PPIPE_INPUT_TOPIC": "ppipe.r1.input",
        "PPIPE_CONTROL_TOPIC": "ppipe.r1.control", "PPIPE_OUTPUT_TOPIC": "ppipe.r1.output.p",
        "PPIPE_GROUP_ID": "ppipe.r1.p", "PPIPE_RUN_ID": "r1", "PPIPE_PIPELINE": "p",
        "PPIPE_TASK": "classification", "PPIPE_SECURITY_SASL_MECHANISM": "PLAIN",
    }
    assert topics.scores == "ppipe.r1.scores"
