"""The serial ASCII profile: how a text device frames its output and which key holds each value."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from roadpulse.configfile import Strict
from roadpulse.profiles.base import Measurement, MetricType, Name, Point, unique_names

_METRIC_TYPES = {"float": "f", "int": "i", "str": "s", "bool": "b"}


class Framing(Strict):
    mode: Literal["delimiter", "fixed"] = "delimiter"
    delimiter: str = "\r\n"
    length: Annotated[int, Field(ge=1)] | None = None
    max_length: Annotated[int, Field(ge=1, le=65536)] = 1024

    @model_validator(mode="after")
    def _check(self) -> Framing:
        if self.mode == "fixed" and self.length is None:
            raise ValueError("mode 'fixed' needs 'length'")
        if self.mode == "delimiter" and not self.delimiter:
            raise ValueError("mode 'delimiter' needs a non-empty 'delimiter'")
        return self


class FrameField(Point):
    # keyvalue: the key (Vaisala "Ta"); regex: the group name; nmea: "<sentence>.<index>", e.g. "MWV.3".
    key: str
    type: Literal["float", "int", "str", "bool"] = "float"


class SerialProfile(Strict):
    driver: Literal["serial_ascii"]
    name: Name
    description: str = ""
    measurement: Measurement
    tags: dict[str, str] = Field(default_factory=dict)
    framing: Framing = Framing()
    parser: Literal["regex", "keyvalue", "nmea"]
    pattern: str | None = None
    # Command sent each interval for polled devices; None means the device talks on its own.
    poll: str | None = None
    fields: list[FrameField]

    @model_validator(mode="after")
    def _check(self) -> SerialProfile:
        unique_names([f.name for f in self.fields])
        if self.parser == "regex":
            if self.pattern is None:
                raise ValueError("parser 'regex' needs 'pattern'")
            try:
                groups = re.compile(self.pattern).groupindex
            except re.error as exc:
                raise ValueError(f"pattern does not compile: {exc}") from None
            missing = [f.key for f in self.fields if f.key not in groups]
            if missing:
                raise ValueError(f"pattern has no named group for keys {missing}")
        if self.parser == "nmea":
            bad = [f.key for f in self.fields if not re.fullmatch(r"[A-Z0-9]{3,5}\.[1-9][0-9]*", f.key)]
            if bad:
                raise ValueError(f"nmea keys look like 'MWV.3' (sentence type, 1-based field): {bad}")
        return self

    @property
    def points(self) -> list[Point]:
        return list(self.fields)

    def metric_type(self, point_name: str) -> MetricType:
        fld = next(f for f in self.fields if f.name == point_name)
        return _METRIC_TYPES[fld.type]

    def metric_decimals(self, point_name: str) -> int | None:
        # Text devices print what they like: no promise of a fixed number of decimals.
        del point_name
        return None
