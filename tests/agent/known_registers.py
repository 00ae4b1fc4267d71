"""Known register contents for the all_types test profile, built without agent.codec.

Wire words come from struct and explicit swaps, so a decoding bug cannot cancel
itself out in the fixture.
"""

from __future__ import annotations

import struct
from pathlib import Path

from roadpulse.profiles import ModbusProfile, load_profile

PROFILES = Path(__file__).parent / "profiles"

TYPE_VALUES: dict[str, tuple[float, str]] = {
    "int16": (-1234, ">h"), "uint16": (54321, ">H"),
    "int32": (-123456789, ">i"), "uint32": (3_000_000_000, ">I"), "float32": (-12.5, ">f"),
    "int64": (-1_234_567_890_123, ">q"), "uint64": (18_000_000_000_000_000_000, ">Q"),
    "float64": (1234.5678, ">d"),
}
# Raw contents of the other points, and what they decode to.
OTHER_WORDS: dict[str, list[int]] = {
    "text": [0x4B31, 0x3233, 0x2B34, 0x3030],          # "K123+400"
    "text_swapped": [0x314B, 0x3332, 0x342B, 0x3030],  # "K123+400", bytes swapped
    "status_bit3": [0b1000],
    "door_open": [1],
    "temp": [0xFF9C],  # -100 -> -10.0 degC
    "humidity": [65535],  # invalid sentinel
    # Telegraf's modbus test words: 0x18 0x0D (UINT8L 13, UINT8H 24), 0x98 0x8D (INT8L -115, INT8H -104),
    # 0xB8 0x14 (FLOAT16 -0.509765625), and the same bytes swapped for byte order BA.
    "uint8_low": [0x180D], "uint8_high": [0x180D], "int8_low": [0x988D], "int8_high": [0x988D],
    "int8_high_BADC": [0x8D98], "float16_ABCD": [0xB814], "float16_BADC": [0x14B8],
}
OTHER_VALUES: dict[str, object] = {
    "text": "K123+400", "text_swapped": "K123+400", "status_bit3": True, "door_open": True,
    "temp": -10.0, "humidity": None, "relay": True, "alarm": True, "flow_in": 42,
    "uint8_low": 13, "uint8_high": 24, "int8_low": -115, "int8_high": -104, "int8_high_BADC": -104,
    "float16_ABCD": -0.509765625, "float16_BADC": -0.509765625,
}


def wire_words(big_endian: bytes, order: str) -> list[int]:
    words = [big_endian[i : i + 2] for i in range(0, len(big_endian), 2)]
    if order.startswith(("CD", "DC", "GH", "HG")):
        words.reverse()
    swap = order[0] in "BDH"
    return [int.from_bytes(w[::-1] if swap else w, "big") for w in words]


def all_types_profile() -> ModbusProfile:
    profile = load_profile("all_types", [PROFILES])
    assert isinstance(profile, ModbusProfile)
    return profile


def expected_values() -> dict[str, object]:
    out: dict[str, object] = dict(OTHER_VALUES)
    for reg in all_types_profile().registers:
        if reg.name not in out:
            out[reg.name] = TYPE_VALUES[reg.type][0]
    return out


def holding_image() -> list[int]:
    """Holding registers 0..n of a device that matches all_types."""
    image: dict[int, int] = {}
    for reg in all_types_profile().registers:
        if reg.kind != "holding":
            continue
        if reg.name in OTHER_WORDS:
            words = OTHER_WORDS[reg.name]
        else:
            value, fmt = TYPE_VALUES[reg.type]
            words = wire_words(struct.pack(fmt, value), reg.order)
        for i, word in enumerate(words):
            image[reg.address + i] = word
    return [image.get(a, 0) for a in range(max(image) + 1)]


COILS = [False, False, True, False]
DISCRETE = [False, True, False]
INPUTS = [0] * 10 + [42]
