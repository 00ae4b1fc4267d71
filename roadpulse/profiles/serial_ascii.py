"""The serial ASCII profile: how a text device frames its output and which key holds each value."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from roadpulse.configfile import LocatedValueError, Strict
from roadpulse.profiles.base import Measurement, MetricType, Name, Point, Tags, unique_names
from roadpulse.profiles.units import XDR_TYPES, letter_unit, quantity_of

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
    """One value of a text frame: where it is, and what the device must say it is.

    `unit` is the unit the value is stored in. What the device writes beside the value is
    checked against it (roadpulse.profiles.units): another unit of the same quantity is
    converted when the conversion is exact, anything else makes the reading bad, `unit:<letter>`.
    """

    # keyvalue: the key (Vaisala "Ta"); regex: the group name; nmea: "<sentence>.<index>", e.g. "MWV.3",
    # or "XDR" with `transducer` and `transducer_name`.
    key: str
    type: Literal["float", "int", "str", "bool"] = "float"
    # The unit as the device is set to write it: a Vaisala letter ("C", "M"), an NMEA unit letter ("N", "B").
    device_unit: Annotated[str, Field(min_length=1, max_length=4)] | None = None
    # nmea/regex: the key whose text is this value's unit letter (MWV.3's is MWV.4 without saying so).
    unit_key: str | None = None
    # MWV: the wind this field holds, "R" (relative to the sensor or the bow) or "T" (true).
    reference: Literal["R", "T"] | None = None
    # XDR: the transducer type letter (C temperature, P pressure, H humidity, A angle, S speed, ...)
    # and the transducer name ("0", "TEMP", "PTCH"; "" when the device sends none).
    transducer: Annotated[str, Field(pattern=r"^[A-Z]$")] | None = None
    transducer_name: str | None = None


def _field_problem(parser: str, fld: FrameField) -> tuple[str, str] | None:
    """(key, reason) of the first declaration of `fld` that cannot be right, or None."""
    numeric = fld.type in ("float", "int")
    quantity = quantity_of(fld.unit)
    sentence = fld.key.partition(".")[0] if parser == "nmea" else ""
    if fld.reference is not None and sentence != "MWV":
        return "reference", "only MWV fields have a wind reference"
    if (fld.transducer is None) != (fld.transducer_name is None) or (fld.transducer is not None and sentence != "XDR"):
        return "transducer", "XDR fields (key = 'XDR') need both 'transducer' and 'transducer_name', others neither"
    if parser == "keyvalue" and fld.unit_key is not None:
        return "unit_key", "Vaisala values carry their unit letter: no 'unit_key'"
    if parser == "regex" and fld.device_unit is not None and fld.unit_key is None:
        return "device_unit", "a regex field checks its unit through 'unit_key' (the group holding the letter)"
    if sentence == "XDR":
        if fld.key != "XDR":
            return "key", ("XDR readings are found by transducer type and name, never by position: "
                           "key = 'XDR' with 'transducer' and 'transducer_name'")
        if fld.transducer is None:
            return "transducer", "key 'XDR' needs 'transducer' and 'transducer_name'"
        measured = XDR_TYPES.get(fld.transducer)
        if quantity is not None and measured is not None and measured != quantity:
            return "unit", f"transducer {fld.transducer!r} measures {measured}, unit {fld.unit!r} is {quantity}"
    if sentence == "MWV" and fld.key in ("MWV.1", "MWV.3") and numeric:
        if fld.reference is None:
            return "reference", "MWV wind needs 'reference': 'T' (true) or 'R' (relative); the other is not this field"
        wanted = "angle" if fld.key == "MWV.1" else "speed"
        if quantity is not None and quantity != wanted:
            return "unit", f"{fld.key} is a wind {wanted}, unit {fld.unit!r} is {quantity}"
    if fld.device_unit is not None and quantity is not None and letter_unit(fld.device_unit, quantity) is None:
        return "device_unit", f"{fld.device_unit!r} is no letter for a {quantity} (unit {fld.unit!r})"
    return None


class SerialProfile(Strict):
    driver: Literal["serial_ascii"]
    name: Name
    description: str = ""
    measurement: Measurement
    tags: Tags = Field(default_factory=dict)
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
            bad = [f.key for f in self.fields
                   if f.key != "XDR" and not re.fullmatch(r"[A-Z0-9]{3,5}\.[1-9][0-9]*", f.key)]
            if bad:
                raise ValueError(f"nmea keys look like 'MWV.3' (sentence type, 1-based field) or 'XDR': {bad}")
        for index, fld in enumerate(self.fields):
            problem = _field_problem(self.parser, fld)
            if problem:
                raise LocatedValueError(("fields", index, problem[0]), problem[1])
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
