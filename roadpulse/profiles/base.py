"""What every profile shares: names, the meaning of one value, and the profile's own surface.

A profile says what a device type is (its points and how each value reads); the agent's
driver of the same name says how to talk to it. The simulator serves devices from the same
profiles, so this lives in the shared package and imports nothing of the apps.
"""

from __future__ import annotations

from typing import Annotated, Protocol

from pydantic import AfterValidator, Field, model_validator

from roadpulse.configfile import Strict
from roadpulse.wire.names import check_name

Name = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")]
# Wire types of a metric (docs/protocol.md): float, int, bool, str.
MetricType = str


def _not_reserved(name: str) -> str:
    if name.startswith("roadpulse_"):
        raise ValueError("measurements named roadpulse_* are reserved for roadpulse's own metrics")
    return check_name(name, "measurement")


def _storable_tags(tags: dict[str, str]) -> dict[str, str]:
    for key, value in tags.items():
        check_name(key, "tag key")
        check_name(value, "tag value")
    return tags


# The collector refuses a birth whose names a store cannot hold (roadpulse.wire.names): the
# same rules here make such a profile a config error before the agent starts.
Tags = Annotated[dict[str, str], AfterValidator(_storable_tags)]


# The collector tells readings from agent health and its own metrics by this prefix.
Measurement = Annotated[Name, AfterValidator(_not_reserved)]


class Point(Strict):
    """What one value means once read: shared by registers and frame fields."""

    name: Name
    unit: str = ""
    measurement: Measurement | None = None
    field: Name | None = None
    tags: Tags = Field(default_factory=dict)
    scale: float = 1.0
    offset: float = 0.0
    # Raw values that mean "no value" (32767, 65535, 1001, ...): reported as quality bad, reason invalid.
    invalid: list[float] = Field(default_factory=list)
    # Report by exception: skip a value within `deadband` of the last sent one, unless `max_silence_s` passed.
    deadband: float | None = None
    max_silence_s: float | None = None

    @model_validator(mode="after")
    def _storable_field(self) -> Point:
        check_name(self.field or self.name, "field")
        return self


class DeviceProfile(Protocol):
    """What generic code (catalogue, scheduler, tools) asks of any profile, whatever its driver."""

    @property
    def driver(self) -> str: ...

    @property
    def name(self) -> str: ...

    @property
    def measurement(self) -> str: ...

    @property
    def tags(self) -> dict[str, str]: ...

    @property
    def points(self) -> list[Point]:
        """Every point, in profile order: the order of aliases and of a poll's readings."""
        ...

    def metric_type(self, point_name: str) -> MetricType:
        """The wire type of a point: fixed once, so InfluxDB never sees int one day and float the next."""
        ...

    def metric_decimals(self, point_name: str) -> int | None:
        """Decimals d when every value of the point is an integer times 10**-d, else None."""
        ...

    def model_dump(self, *, mode: str = "python") -> dict[str, object]: ...


def unique_names(names: list[str]) -> None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise ValueError(f"point name {name!r} is used twice")
        seen.add(name)
