"""Vaisala WXT ASCII lines: `key=value<unit>` items, `#` for invalid, and the CRC of CRC mode.

A WXT polled with a lower-case command (`0r0` instead of `0R0`) answers in CRC mode: the
line's own message id is lower case (`0r1,Dn=236D,...`) and three CRC characters follow the
last value, before CR LF. The CRC (WXT530 user guide M211840EN, "CRC-16 computation" and
"Encoding CRC as ASCII characters"): start at 0; for each character from the address up to
the CRC, XOR it in, then 8 times shift right one bit, XOR-ing 0xA001 in after each shift that
dropped a 1 (CRC-16/ARC). The 16 bits go out as 0x40 | crc >> 12, 0x40 | (crc >> 6) & 0x3F,
0x40 | crc & 0x3F.
"""

from __future__ import annotations

import re

from agent.codec.errors import FrameError
from agent.codec.nmea import Fields, Found
from roadpulse.profiles import FrameField

# `0r0,` `0r1,` `0r,` `ar5,`: a data message id in CRC mode (the address is one character).
_CRC_MODE = re.compile(r"^[0-9A-Za-z]r[0-9]?,")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


def vaisala_crc(text: str) -> str:
    """The three CRC characters of `text` (address up to the last data character)."""
    crc = 0
    for byte in text.encode("ascii"):
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return "".join(chr(0x40 | part) for part in (crc >> 12, (crc >> 6) & 0x3F, crc & 0x3F))


def strip_crc(text: str) -> str:
    """The line without its CRC when it is in CRC mode; raises FrameError('checksum') when the CRC is wrong."""
    if not _CRC_MODE.match(text):
        return text
    if len(text) < 4:
        raise FrameError("checksum", "no CRC")
    data, given = text[:-3], text[-3:]
    expected = vaisala_crc(data)
    if given != expected:
        raise FrameError("checksum", f"CRC {given!r} != {expected!r}")
    return data


def parse_keyvalue(text: str) -> Fields:
    """Comma-separated `key=value` items (Vaisala: `0R0,Dn=000#,Ta=16.0C`); `#` marks invalid.

    Items without `=` (the Vaisala address and command `0R0`) are skipped. A CRC-mode line
    (`0r0,...`) has its CRC checked and removed first.
    """
    items = [item.strip() for item in strip_crc(text).split(",")]
    fields: Fields = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            continue
        fields[key] = None if value.endswith("#") else value
    if not fields:
        raise FrameError("parse", "no key=value items")
    return fields


def find_keyvalue(fields: Fields, fld: FrameField) -> Found | None:
    """The field's value and unit letter (`16.0C` is 16.0 in `C`), or None when the line lacks the key."""
    if fld.key not in fields:
        return None
    text = fields[fld.key]
    if text is None or fld.type in ("str", "bool"):
        return Found(text)
    number = _NUMBER.match(text)
    rest = text[number.end():] if number else ""
    if number is None or len(rest) > 1 or (rest and not rest.isalpha()):
        return Found(text)  # not a number with one unit letter: a broken field, reported `parse`
    return Found(number.group(0), rest or None, unit_expected=True)
