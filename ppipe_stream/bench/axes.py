"""The axes of ``ppipe bench``: what one sweep varies, and what each probe is set to.

Owns the :class:`Axis` a sweep follows (the rate, the message size, the topics'
partitions, their replicas, as OpenMessaging Benchmark users sweep them), the
:class:`Setting` of one probe (a value on every axis: the swept one varies, the
others hold one value each), reading the command line's value lists into
settings, and applying a setting to a scenario (``[load]`` is the probe's own,
set by ``sweep.py``). The message size is padding: ``[dataset] pad`` bytes added
to every event as one more feature. It runs nothing and starts no broker.
"""

from __future__ import annotations

import enum

import msgspec

from ..errors import UsageError
from ..scenario import LoadedScenario

__all__ = ["Axis", "Setting", "DEFAULT_VALUES", "apply", "parse_values", "settings"]


class Axis(enum.Enum):
    """What a sweep varies (``--axis``); its values come from ``--rates``, ``--sizes``,
    ``--partitions`` or ``--replicas``."""

    RATE = "rate"
    SIZE = "size"
    PARTITIONS = "partitions"
    REPLICAS = "replicas"

    @property
    def title(self) -> str:
        """The axis as the table's first column and the chart's x label name it."""
        return {"rate": "rate", "size": "size (pad bytes)", "partitions": "partitions",
                "replicas": "replicas"}[self.value]

    @property
    def log_scale(self) -> bool:
        """Whether the chart spreads this axis' values on a log scale."""
        return self in (Axis.RATE, Axis.SIZE)


# the values swept when the axis is chosen and its flag not given
DEFAULT_VALUES = {Axis.RATE: "100,500,1000,2000", Axis.SIZE: "100,1000,10000",
                  Axis.PARTITIONS: "1,4,16", Axis.REPLICAS: "1,3"}
_FLAGS = {Axis.RATE: "--rates", Axis.SIZE: "--sizes", Axis.PARTITIONS: "--partitions",
          Axis.REPLICAS: "--replicas"}
FIXED_RATE = 500.0  # the rate of every probe when another axis is swept and --rates not given


class Setting(msgspec.Struct, frozen=True, kw_only=True):
    """One probe's place on every axis."""

    rate: float
    size: int = 0  # bytes of padding per event
    partitions: int = 4
    replicas: int = 1

    def value(self, axis: Axis) -> float:
        return float(getattr(self, axis.value))

    def label(self, axis: Axis) -> str:
        """The probe's folder name: ``rate-100``, ``size-1000``, ``partitions-4``."""
        return f"{axis.value}-{self.value(axis):g}"


def parse_values(flag: str, text: str, *, integer: bool, minimum: float) -> list[float]:
    """A comma-separated list of numbers, each above 0 (``minimum`` 0: rates) or at
    least ``minimum``; UsageError naming ``flag`` otherwise."""
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise UsageError(f"{flag} {text!r}: give numbers separated by commas") from None
    if flag == "--rates" and (not values or min(values) <= 0):
        raise UsageError("--rates needs positive rates")
    if not values:
        raise UsageError(f"{flag} {text!r}: give at least one value")
    if any(v < minimum or (integer and v != int(v)) for v in values):
        raise UsageError(f"{flag} {text!r}: give {'whole numbers' if integer else 'numbers'} "
                         f"of at least {minimum:g}")
    return values


def settings(axis: Axis, loaded: LoadedScenario, *, rates: str | None, sizes: str | None,
             partitions: str | None, replicas: str | None) -> list[Setting]:
    """One setting per value of ``axis``; every other flag gives one value (or the
    scenario's: its ``[kafka]`` partitions and replication factor, its ``pad``).
    UsageError when a flag that is not the axis lists several values."""
    kafka, dataset = loaded.scenario.kafka, loaded.scenario.dataset
    given = {Axis.RATE: rates, Axis.SIZE: sizes, Axis.PARTITIONS: partitions, Axis.REPLICAS: replicas}
    if given[axis] is None:
        given[axis] = DEFAULT_VALUES[axis]
    fallback = {Axis.RATE: f"{FIXED_RATE:g}", Axis.SIZE: str(dataset.pad),
                Axis.PARTITIONS: str(kafka.partitions), Axis.REPLICAS: str(kafka.replication_factor)}
    lists: dict[Axis, list[float]] = {}
    for each, text in given.items():
        flag = _FLAGS[each]
        lists[each] = parse_values(flag, text if text is not None else fallback[each],
                                   integer=each is not Axis.RATE,
                                   minimum=0 if each in (Axis.RATE, Axis.SIZE) else 1)
        if each is not axis and len(lists[each]) > 1:
            raise UsageError(f"{flag} {text}: only the axis is swept (--axis {axis.value}); give "
                             f"one value, or --axis {each.value}")
    base = Setting(rate=lists[Axis.RATE][0], size=int(lists[Axis.SIZE][0]),
                   partitions=int(lists[Axis.PARTITIONS][0]), replicas=int(lists[Axis.REPLICAS][0]))
    kind = float if axis is Axis.RATE else int
    return [msgspec.structs.replace(base, **{axis.value: kind(v)}) for v in lists[axis]]


def apply(loaded: LoadedScenario, setting: Setting) -> LoadedScenario:
    """``loaded`` with the setting's padding, partitions and replicas (not its rate)."""
    scenario = loaded.scenario
    kafka = msgspec.structs.replace(scenario.kafka, partitions=setting.partitions,
                                    replication_factor=setting.replicas)
    dataset = msgspec.structs.replace(scenario.dataset, pad=setting.size)
    return LoadedScenario(msgspec.structs.replace(scenario, kafka=kafka, dataset=dataset),
                          loaded.path, loaded.base_dir)
