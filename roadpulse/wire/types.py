"""The values of protocol v1: what an envelope carries, typed (see docs/protocol.md). Pure."""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

VERSION = 1
# Times a store can hold, in ms: InfluxDB keeps int64 nanoseconds (the years 1677 to 2262).
MAX_TIME_MS = (2**63 - 1) // 1_000_000
Value = int | float | bool | str | None


class WireError(ValueError):
    """A payload that is not valid protocol v1. `reason` is a short code for counters and dead letters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Quality(enum.IntEnum):
    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class TimeFlag(enum.IntFlag):
    NONE = 0
    UNSYNCED = 1
    CORRECTED = 2
    SUSPECT = 4


@dataclass(frozen=True, slots=True)
class Reading:
    """One sensor value at one instant, referring to a metric by alias."""

    alias: int
    ts_ms: int
    value: Value
    quality: Quality = Quality.GOOD
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MetricDef:
    """What an alias means. `type` is fixed for the metric's life: f, i, b or s.

    `decimals` (type f only, 0-9): an int n on the wire means n x 10**-decimals (a float
    is taken as is). None: no scaling, an int is the value itself.
    """

    alias: int
    device: str
    measurement: str
    field: str
    unit: str
    type: str
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    decimals: int | None = None

    def __post_init__(self) -> None:
        if self.decimals is not None and not (
            type(self.decimals) is int and 0 <= self.decimals <= MAX_DECIMALS and self.type == "f"
        ):
            raise ValueError(f"alias {self.alias}: decimals {self.decimals!r} (0-{MAX_DECIMALS}, type f only)")


@dataclass(frozen=True, slots=True)
class DataBatch:
    gateway: str
    boot: str
    seq: int
    ts_ms: int
    readings: list[Reading]
    time_flags: TimeFlag = TimeFlag.NONE
    replay: bool = False
    kind: str = "data"


@dataclass(frozen=True, slots=True)
class Birth:
    gateway: str
    boot: str
    seq: int
    ts_ms: int
    agent_version: str
    config_hash: str
    devices: list[dict[str, Any]]
    metrics: list[MetricDef]
    time_flags: TimeFlag = TimeFlag.NONE


@dataclass(frozen=True, slots=True)
class Death:
    gateway: str
    boot: str
    ts_ms: int
    clean: bool


@dataclass(frozen=True, slots=True)
class Command:
    cmd: str
    ts_ms: int
    reason: str = ""
    # rebirth: the boot whose birth is wanted ("" = the current one). Absent in older commands.
    boot: str = ""


Message = DataBatch | Birth | Death | Command
METRIC_TYPES = frozenset("fibs")
MAX_DECIMALS = 9
# Scaled ints stay below 2**53, so every one is exact as a float too (tools, JSON, InfluxDB).
_SCALED_LIMIT = 2**53


def scale_value(value: Value, decimals: int) -> Value:
    """The wire value of `value` for a metric with `decimals`: the int n with n x 10**-decimals
    == value when there is one (exactly, as Python floats compare), else the value unchanged."""
    factor: int = 10**decimals
    if type(value) is float:
        product = value * factor
        if not -_SCALED_LIMIT < product < _SCALED_LIMIT:  # also nan and inf
            return value
        n = round(product)
        return n if abs(n) < _SCALED_LIMIT and n / factor == value else value
    if type(value) is int:
        n = value * factor
        # Too large to scale: sent as a float, which is what the collector would write anyway.
        return n if abs(n) < _SCALED_LIMIT else float(value)
    return value


def unscale_value(value: Value, decimals: int | None) -> Value:
    """The engineering value of a wire value for a metric with `decimals` (the inverse of scale_value)."""
    if decimals is not None and type(value) is int:
        factor: int = 10**decimals
        return value / factor
    return value


def engineering_values(batch: DataBatch, birth: Birth) -> DataBatch:
    """`batch` (as decoded) with every scaled int turned into the value it stands for, by `birth`'s metrics.

    For tools and tests; the collector writes scaled ints without converting them.
    """
    decimals = {m.alias: m.decimals for m in birth.metrics if m.type == "f" and m.decimals is not None}
    if not decimals:
        return batch
    readings = [
        dataclasses.replace(r, value=unscale_value(r.value, decimals[r.alias]))
        if r.alias in decimals and type(r.value) is int else r
        for r in batch.readings
    ]
    return dataclasses.replace(batch, readings=readings)
