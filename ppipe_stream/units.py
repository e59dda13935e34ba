"""Human units in scenario files: durations ("500ms", "20s", "1m", "never")
and sizes ("512m", "2g").

Owns parsing and printing of these values and nothing else. The parse
functions raise ``ValueError`` with a short message; the scenario loader turns
that into a :class:`~ppipe_stream.errors.ScenarioError` with the key path.
"""

from __future__ import annotations

import math
import re

__all__ = ["Duration", "parse_duration", "parse_size", "format_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|µs|ms|s|m|h)?\s*$")
_FACTORS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d*)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_SIZE_FACTORS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}


class Duration(float):
    """A duration in seconds that remembers how it was written.

    ``Duration("1.5s") == 1.5``; ``str(d)`` gives back ``"1.5s"``; ``never`` is
    ``math.inf``.
    """

    text: str

    def __new__(cls, value: str | float | int) -> Duration:
        if isinstance(value, str):
            seconds = parse_duration(value)
            text = value.strip()
        else:
            seconds = float(value)
            if seconds < 0 or math.isnan(seconds):
                raise ValueError(f"a duration cannot be {value!r}")
            text = format_duration(seconds)
        self = super().__new__(cls, seconds)
        self.text = text
        return self

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return f"Duration({self.text!r})"

    @property
    def ns(self) -> int:
        """The duration in whole nanoseconds (raises OverflowError for never)."""
        return int(round(float(self) * 1e9))


def parse_duration(text: str) -> float:
    """Seconds in ``text`` ("250ms", "2s", "1.5m", "never"; a bare number is
    seconds). Raises ValueError naming the accepted forms."""
    if text.strip().lower() == "never":
        return math.inf
    match = _DURATION.match(text)
    if not match:
        raise ValueError(
            f"{text!r} is not a duration; write a number with a unit: "
            "ns, us, ms, s, m or h (e.g. \"500ms\", \"20s\")"
        )
    number, unit = match.groups()
    return float(number) * _FACTORS[unit or "s"]


def format_duration(seconds: float) -> str:
    """Text for ``seconds`` (to the nanosecond) that parses back to it."""
    if math.isinf(seconds):
        return "never"
    ns = round(seconds * 1e9)
    if ns >= 1_000_000_000 and ns % 1_000_000 == 0:
        return f"{ns / 1e9:.3f}".rstrip("0").rstrip(".") + "s"
    for unit, size in (("ms", 1_000_000), ("us", 1_000)):
        if ns >= size and ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns" if ns else "0s"


def parse_size(text: str | int) -> int:
    """Bytes in ``text`` ("512m", "2g", "1024"; binary units). Raises ValueError."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write e.g. \"512m\" or \"2g\"")
    number, unit = match.groups()
    return int(float(number) * _SIZE_FACTORS[unit.lower()])
