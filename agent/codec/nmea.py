"""NMEA 0183 sentences: strict checksum, fields by position, and readings by meaning (MWV, XDR).

A sentence is `$<talker><type>,<field>,...*hh`: `hh` is exactly two hex digits, the XOR
of the bytes between `$` and `*`. Most sentence types have a fixed layout, so a field is
named by position (`ZDA.1`). Two do not say what a value is by position alone:

- MWV (wind speed and angle): `angle,reference,speed,unit,status`. The reference (`R`
  relative, `T` true) says which wind it is, the unit (`K`, `M`, `N`, non-standard `S`)
  what the speed is in, and status `V` that the reading is not valid.
- XDR (transducer measurements): any number of quadruplets `type,value,unit,name`, in an
  order that differs by vendor (Vaisala names its transducers 0, 1, 2; others PTCH, ROLL,
  TEMP, BARO). A reading is found by its type and name, never by its position.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from agent.codec.errors import FrameError
from roadpulse.profiles import FrameField

Fields = dict[str, str | None]

_CHECKSUM = re.compile(r"[0-9A-Fa-f]{2}")


@dataclass(frozen=True, slots=True)
class Found:
    """One field's text as the device sent it, with what the device said beside it.

    `text` None: the device sent no value (empty NMEA field, Vaisala `#`). `unit`: the unit
    letter it wrote, if any. `bad`: a reason the device itself gave for not trusting it.
    """

    text: str | None
    unit: str | None = None
    bad: str = ""
    # The format puts a unit beside this value (Vaisala, MWV speed, XDR, a declared `unit_key`):
    # a value without one is of unknown unit.
    unit_expected: bool = False


def nmea_checksum(body: str) -> int:
    checksum = 0
    for char in body.encode("ascii"):
        checksum ^= char
    return checksum


def parse_nmea(text: str) -> Fields:
    """One NMEA 0183 sentence, checksum checked; keys are `<type>.<index>` (`MWV.3`).

    The type drops the two-letter talker (`IIMWV` -> `MWV`), so one profile fits
    any talker. Index 1 is the first field after the address. An empty field is None.
    """
    start = text.find("$")
    if start < 0:
        start = text.find("!")
    if start < 0:
        raise FrameError("garbage", "no '$'")
    sentence = text[start + 1 :]
    body, star, given = sentence.partition("*")
    if not star:
        raise FrameError("checksum", "no checksum")
    # Exactly two hex digits and nothing after them: `*0`, `* 0`, `*+0` and `*F` are not checksums.
    if not _CHECKSUM.fullmatch(given):
        raise FrameError("checksum", f"unreadable checksum {given!r}")
    if nmea_checksum(body) != int(given, 16):
        raise FrameError("checksum", f"{nmea_checksum(body):02X} != {given}")
    parts = body.split(",")
    address = parts[0]
    if len(address) < 3:
        raise FrameError("parse", f"bad address {address!r}")
    kind = address[2:] if len(address) >= 5 else address
    # An empty NMEA field is the talker's way of saying "no value": invalid, not unparseable.
    fields = {f"{kind}.{i}": (value or None) for i, value in enumerate(parts[1:], start=1)}
    if kind == "XDR":
        _check_xdr(fields)
    return fields


_XDR_TYPE = re.compile(r"[A-Z]")
# Units are one letter in NMEA 0183; a few vendors write more. A name or a number in the unit's place
# means the quadruplets are out of step.
_XDR_UNIT = re.compile(r"[A-Za-z]{0,3}")


def _check_xdr(fields: Fields) -> None:
    """Quadruplets out of step (a field lost) would pair values with the wrong names: refuse the sentence."""
    for kind, _value, unit, _name in xdr_quadruplets(fields):
        if not _XDR_TYPE.fullmatch(kind) or not _XDR_UNIT.fullmatch(unit or ""):
            raise FrameError("parse", f"XDR quadruplet out of step at type {kind!r}, unit {unit!r}")


def xdr_quadruplets(fields: Fields) -> list[tuple[str, str | None, str | None, str]]:
    """(type, value, unit, name) of each XDR measurement; a name missing at the end is ''."""
    out = []
    index = 1
    while f"XDR.{index}" in fields:
        kind = fields[f"XDR.{index}"] or ""
        value = fields.get(f"XDR.{index + 1}")
        unit = fields.get(f"XDR.{index + 2}")
        name = fields.get(f"XDR.{index + 3}") or ""
        out.append((kind, value, unit, name))
        index += 4
    return out


def find_nmea(fields: Fields, fld: FrameField) -> Found | None:
    """The field's reading in this sentence, or None when the sentence does not carry it.

    A sentence of the field's type that carries another quantity (relative wind for a true
    wind field, an XDR heel angle for a pressure field) does not carry this field.
    """
    if fld.key == "XDR":
        if "XDR.1" not in fields:
            return None
        matches = [(value, unit) for kind, value, unit, name in xdr_quadruplets(fields)
                   if kind == fld.transducer and name == (fld.transducer_name or "")]
        if not matches:
            return None
        if len(matches) > 1:
            return Found(None, bad="ambiguous")
        value, unit = matches[0]
        return Found(value, unit, unit_expected=True)
    if fld.key not in fields:
        return None
    sentence = fld.key.partition(".")[0]
    text = fields[fld.key]
    unit = fields.get(fld.unit_key) if fld.unit_key else None
    expected = fld.unit_key is not None
    if sentence == "MWV":
        if fld.reference is not None and fields.get("MWV.2") != fld.reference:
            return None
        if fld.key == "MWV.3" and fld.unit_key is None:
            unit, expected = fields.get("MWV.4"), True
        if "MWV.5" in fields and text is not None and fields["MWV.5"] != "A":
            return Found(text, unit, bad=f"status:{fields['MWV.5'] or 'none'}", unit_expected=expected)
    return Found(text, unit, unit_expected=expected)
