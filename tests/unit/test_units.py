"""Durations and sizes as written in scenario files."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ppipe_stream.units import Duration, format_duration, parse_duration, parse_size


@pytest.mark.parametrize("text,seconds", [("500ms", 0.5), ("20s", 20), ("1.5m", 90), ("2h", 7200),
                                          ("250us", 0.00025), ("7", 7), ("never", math.inf)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "fast", "-1s", "1 parsec", "1e3s"])
def test_bad_duration(text):
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration(text)


def test_duration_keeps_its_text():
    d = Duration("1.5s")
    assert d == 1.5 and str(d) == "1.5s" and d.ns == 1_500_000_000


@given(st.floats(min_value=0, max_value=1e6, allow_nan=False))
def test_format_parses_back(seconds):
    assert parse_duration(format_duration(seconds)) == pytest.approx(seconds, rel=1e-5, abs=1e-9)


def test_sizes():
    assert parse_size("512m") == 512 * 2**20 and parse_size("2g") == 2 * 2**30
    with pytest.raises(ValueError):
        parse_size("lots")
