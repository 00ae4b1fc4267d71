"""Units a profile may store a value in, the letters devices write for them, and the exact conversions.

A text device writes a unit beside each value: a Vaisala WXT a letter after the number
(`Ta=74.6F`), an NMEA MWV sentence a letter after the speed (`13.41,N`), an XDR quadruplet a
letter after the value (`P,1.0133,B,0`). What a letter means depends on the quantity: `M` is
m/s for a speed, mmHg for a pressure and mm for rain; `P` is % for humidity and Pa for a
pressure. So the profile's `unit` names the quantity, and the letter is looked up among
that quantity's letters (Vaisala WXT530 user guide M211840EN, "Transducer table" and the
wind, PTU and rain settings; NMEA 0183 XDR and MWV).

Conversions are the exact definitions: 1 kn = 1852/3600 m/s, 1 mph = 0.44704 m/s,
1 km/h = 1/3.6 m/s, °C = (°F - 32) × 5/9, 1 bar = 1000 hPa, 1 mmHg = 133.322387415 Pa
(conventional, 13.5951 g/cm³ × 9.80665 m/s² × 1 mm), 1 inHg = 25.4 mmHg, 1 in = 25.4 mm.
A letter this module does not know, or one of another quantity, is never converted: the
reading is bad with reason `unit:<letter>`.

Pure, no I/O: shared by profile validation, the agent's parsers and the tools.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MMHG_PA = 133.322387415
INHG_PA = 25.4 * MMHG_PA


@dataclass(frozen=True, slots=True)
class Unit:
    quantity: str
    # value in this unit -> value in the quantity's base unit, and back
    to_base: Callable[[float], float]
    from_base: Callable[[float], float]


def _linear(factor: float) -> tuple[Callable[[float], float], Callable[[float], float]]:
    return (lambda x: x * factor), (lambda x: x / factor)


def _unit(quantity: str, factor: float) -> Unit:
    to_base, from_base = _linear(factor)
    return Unit(quantity, to_base, from_base)


# Stored units a profile can name (its `unit`), by quantity. Base units: m/s, °C, Pa, %, °, m, m/s, s, V.
UNITS: dict[str, Unit] = {
    "m/s": _unit("speed", 1.0),
    "km/h": _unit("speed", 1 / 3.6),
    "mph": _unit("speed", 0.44704),
    "kn": _unit("speed", 1852 / 3600),
    "°C": _unit("temperature", 1.0),
    "°F": Unit("temperature", lambda f: (f - 32) * 5 / 9, lambda c: c * 9 / 5 + 32),
    "hPa": _unit("pressure", 100.0),
    "Pa": _unit("pressure", 1.0),
    "bar": _unit("pressure", 100_000.0),
    "mmHg": _unit("pressure", MMHG_PA),
    "inHg": _unit("pressure", INHG_PA),
    "%": _unit("humidity", 1.0),
    "°": _unit("angle", 1.0),
    "mm": _unit("precipitation", 0.001),
    "in": _unit("precipitation", 0.0254),
    "mm/h": _unit("precipitation_rate", 0.001),
    "in/h": _unit("precipitation_rate", 0.0254),
    "s": _unit("duration", 1.0),
    "V": _unit("voltage", 1.0),
}

# The letters devices write, by quantity (Vaisala ASCII and NMEA 0183 agree on these).
LETTERS: dict[str, dict[str, str]] = {
    "speed": {"M": "m/s", "K": "km/h", "S": "mph", "N": "kn"},
    "temperature": {"C": "°C", "F": "°F"},
    "pressure": {"H": "hPa", "P": "Pa", "B": "bar", "M": "mmHg", "I": "inHg"},
    "humidity": {"P": "%"},
    "angle": {"D": "°"},
    "precipitation": {"M": "mm", "I": "in"},
    "precipitation_rate": {"M": "mm/h", "I": "in/h"},
    "duration": {"s": "s", "S": "s"},
    # Vaisala heating voltage: the letter says how the heater runs (N off, V/F half power, W full); volts all.
    "voltage": {"V": "V", "N": "V", "F": "V", "W": "V"},
}

# NMEA 0183 XDR transducer types and the quantity each measures (WXT530 user guide, transducer table).
XDR_TYPES: dict[str, str] = {
    "C": "temperature",
    "A": "angle",
    "S": "speed",
    "P": "pressure",
    "H": "humidity",
    "V": "precipitation",
    "Z": "duration",
    "R": "precipitation_rate",
    "U": "voltage",
}


def quantity_of(unit: str) -> str | None:
    """The quantity of a stored unit, or None for a unit this module does not convert."""
    known = UNITS.get(unit)
    return known.quantity if known else None


def letter_unit(letter: str, quantity: str) -> str | None:
    """The unit a device means by `letter` for a value of `quantity`, or None."""
    return LETTERS.get(quantity, {}).get(letter)


@dataclass(frozen=True, slots=True)
class Resolved:
    """How to turn a number the device wrote into the stored unit; `reason` set when it cannot be."""

    convert: Callable[[float], float] | None = None
    reason: str = ""
    # The device's unit in words (`kn`), for the probe tool; None when the device wrote no unit.
    device_unit: str | None = None


def resolve(letter: str | None, *, unit: str, declared: str | None, expected: bool = True) -> Resolved:
    """The conversion from what the device wrote (`letter`) into the profile's `unit`.

    - No letter where the format puts one (`expected`): bad (`unit:none`) when the profile
      says what it wants (a unit this module knows, or a `declared` letter); otherwise, and
      for formats that carry no unit, the value is taken as is.
    - A stored unit this module knows: the letter must be one of its quantity's, then the exact
      conversion applies (none when the units are the same).
    - Another stored unit: the letter must be the declared one (or anything when none is declared).
    """
    target = UNITS.get(unit)
    if letter is None:
        if expected and (declared is not None or target is not None):
            return Resolved(reason="unit:none")
        return Resolved()
    if target is None:
        if declared is None or letter == declared:
            return Resolved(device_unit=letter)
        return Resolved(reason=f"unit:{letter}", device_unit=letter)
    source_name = letter_unit(letter, target.quantity)
    if source_name is None:
        return Resolved(reason=f"unit:{letter}", device_unit=letter)
    if source_name == unit:
        return Resolved(device_unit=source_name)
    source = UNITS[source_name]
    return Resolved(lambda x: target.from_base(source.to_base(x)), device_unit=source_name)
