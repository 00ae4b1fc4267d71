"""Every type × every order, from known wire registers, both ways."""

from __future__ import annotations

import math
import struct

import pytest

from agent.codec.registers import (
    DecodeError,
    apply_point,
    decode,
    encode,
    plausible_decodings,
    register_count,
    to_big_endian,
)

# The value 0x11223344 (and 0x1122334455667788) as each order puts it on the wire.
WIRE_32 = {
    "ABCD": [0x1122, 0x3344],
    "CDAB": [0x3344, 0x1122],
    "BADC": [0x2211, 0x4433],
    "DCBA": [0x4433, 0x2211],
}
WIRE_64 = {
    "ABCDEFGH": [0x1122, 0x3344, 0x5566, 0x7788],
    "GHEFCDAB": [0x7788, 0x5566, 0x3344, 0x1122],
    "BADCFEHG": [0x2211, 0x4433, 0x6655, 0x8877],
    "HGFEDCBA": [0x8877, 0x6655, 0x4433, 0x2211],
}
SHORT_FOR_LONG = {"ABCDEFGH": "ABCD", "GHEFCDAB": "CDAB", "BADCFEHG": "BADC", "HGFEDCBA": "DCBA"}


@pytest.mark.parametrize(("order", "wire"), WIRE_32.items())
def test_32_bit_orders_restore_big_endian(order: str, wire: list[int]) -> None:
    assert to_big_endian(wire, order) == bytes.fromhex("11223344")


@pytest.mark.parametrize(("order", "wire"), WIRE_64.items())
def test_64_bit_orders_restore_big_endian(order: str, wire: list[int]) -> None:
    assert to_big_endian(wire, order) == bytes.fromhex("1122334455667788")
    # The 4-letter name of the same swaps means the same on 64-bit values.
    assert to_big_endian(wire, SHORT_FOR_LONG[order]) == bytes.fromhex("1122334455667788")


def _wire(big_endian: bytes, order: str) -> list[int]:
    """Registers as a device with `order` sends them, built independently of the codec."""
    words = [big_endian[i : i + 2] for i in range(0, len(big_endian), 2)]
    swap_bytes = order[0] in "BD" or order[0] in "H"  # BADC.., DCBA.., HGFE..
    swap_words = order.startswith(("CD", "DC", "GH", "HG"))
    if swap_words:
        words.reverse()
    return [int.from_bytes(w[::-1] if swap_bytes else w, "big") for w in words]


VALUES = [
    ("int16", -1234, ">h"), ("uint16", 54321, ">H"),
    ("int32", -123456789, ">i"), ("uint32", 3_000_000_000, ">I"), ("float32", -12.5, ">f"),
    ("int64", -1_234_567_890_123, ">q"), ("uint64", 18_000_000_000_000_000_000, ">Q"),
    ("float64", 1234.5678, ">d"),
]
ALL_ORDERS = [*WIRE_32, *WIRE_64]


@pytest.mark.parametrize("order", ALL_ORDERS)
@pytest.mark.parametrize(("type_", "value", "fmt"), VALUES)
def test_every_type_in_every_order(type_: str, value: float, fmt: str, order: str) -> None:
    wire = _wire(struct.pack(fmt, value), order)
    assert len(wire) == register_count(type_)
    assert decode(wire, type_, order) == value
    assert encode(value, type_, order) == wire


def test_16_bit_values_ignore_word_order_but_honour_byte_swap() -> None:
    assert decode([0x1234], "uint16", "CDAB") == 0x1234
    assert decode([0x1234], "uint16", "BADC") == 0x3412
    assert decode([0x1234], "uint16", "DCBA") == 0x3412
    assert decode([0xFFFE], "int16") == -2


@pytest.mark.parametrize(("bit", "expected"), [(0, True), (1, False), (2, True), (15, True)])
def test_bit_in_register(bit: int, expected: bool) -> None:
    assert decode([0b1000_0000_0000_0101], "bit", bit=bit) is expected


def test_bool_register_is_nonzero() -> None:
    assert decode([0], "bool") is False
    assert decode([7], "bool") is True


@pytest.mark.parametrize(
    ("wire", "order", "text"),
    [
        ([0x4B31, 0x3233, 0x2B34, 0x3030], "ABCD", "K123+400"),
        ([0x314B, 0x3332, 0x342B, 0x3030], "BADC", "K123+400"),
        ([0x4142, 0x4300, 0x0000], "ABCD", "ABC"),
        ([0x4142, 0x2020], "ABCD", "AB"),
    ],
)
def test_strings(wire: list[int], order: str, text: str) -> None:
    assert decode(wire, "string", order) == text
    assert decode(encode(text, "string", order, length=len(wire)), "string", order) == text


@pytest.mark.parametrize(
    ("wire", "type_", "order"),
    [([1], "int32", "ABCD"), ([1, 2, 3], "float64", "ABCD"), ([1, 2], "int32", "XYZW"), ([70000], "uint16", "ABCD")],
)
def test_bad_input_raises_decode_error(wire: list[int], type_: str, order: str) -> None:
    with pytest.raises(DecodeError):
        decode(wire, type_, order)


@pytest.mark.parametrize(
    ("raw", "kwargs", "value", "reason"),
    [
        (215, {"scale": 0.1}, 21.5, ""),
        (17, {"scale": 0.1}, 1.7, ""),
        (215, {}, 215, ""),
        (32767, {"scale": 0.1, "invalid": [32767]}, None, "invalid"),
        (65535, {"invalid": [65535]}, None, "invalid"),
        (100, {"scale": 2.0, "offset": -40.0}, 160.0, ""),
        (math.nan, {}, None, "invalid"),
        (True, {"scale": 10.0}, True, ""),
        ("K1+200", {}, "K1+200", ""),
    ],
)
def test_apply_point(raw: float, kwargs: dict[str, object], value: object, reason: str) -> None:
    result = apply_point(raw, **kwargs)  # type: ignore[arg-type]
    assert result.reason == reason
    if isinstance(value, float) and math.isfinite(value):
        assert result.value == value  # exact: no scaling noise
    else:
        assert result.value == value
    if value == 215:
        assert isinstance(result.value, int)


def test_plausible_decodings_show_every_width_and_order() -> None:
    rows = plausible_decodings([*encode(-12.5, "float32", "CDAB"), 0, 0])
    assert ("float32", "CDAB", -12.5) in rows
    kinds = {(t, o) for t, o, _ in rows}
    assert ("float64", "HGFEDCBA") in kinds
    assert ("uint16", "BADC") in kinds


# 8-bit halves and half floats, from Telegraf's modbus tests (plugins/inputs/modbus/
# configuration_register_test.go): the two bytes as written to the server, the type and byte order
# Telegraf names, what it reads. Telegraf's AB/BA are our ABCD/BADC (and CDAB/DCBA on one register).
TELEGRAF_16 = [
    # (wire bytes, type, byte, Telegraf byte order, value)
    (b"\x18\x0d", "uint8", "low", "AB", 13),
    (b"\x18\x0d", "uint8", "high", "AB", 24),
    (b"\x98\x8d", "int8", "low", "AB", -115),
    (b"\x98\x8d", "int8", "high", "AB", -104),
    (b"\x98\xf8", "int8", "low", "AB", -8),
    (b"\xfd\x8d", "int8", "high", "AB", -3),
    (b"\xb8\x14", "float16", None, "AB", -0.509765625),
    (b"\x14\xb8", "float16", None, "BA", -0.509765625),
]
SAME_SWAPS = {"AB": ("ABCD", "CDAB", "ABCDEFGH", "GHEFCDAB"), "BA": ("BADC", "DCBA", "BADCFEHG", "HGFEDCBA")}


@pytest.mark.parametrize(("wire", "type_", "byte", "telegraf_order", "value"), TELEGRAF_16)
def test_8_and_16_bit_types_match_telegraf(wire: bytes, type_: str, byte: str | None, telegraf_order: str,
                                           value: float) -> None:
    register = int.from_bytes(wire, "big")
    for order in SAME_SWAPS[telegraf_order]:
        assert decode([register], type_, order, byte=byte) == value, order
        assert register_count(type_) == 1


@pytest.mark.parametrize("order", ALL_ORDERS)
@pytest.mark.parametrize(("type_", "byte", "value"), [
    ("uint8", "high", 0), ("uint8", "high", 255), ("uint8", "low", 200), ("int8", "high", -128), ("int8", "low", 127),
    ("int8", "low", -1),
])
def test_8_bit_types_in_every_order(type_: str, byte: str, value: int, order: str) -> None:
    # The byte sits where the order puts it: high first on the wire unless the order swaps bytes.
    part = value & 0xFF
    swapped = order[0] in "BDH"
    first_on_wire = (byte == "high") != swapped
    wire = [part << 8 if first_on_wire else part]
    assert decode(wire, type_, order, byte=byte) == value
    assert encode(value, type_, order, byte=byte) == wire
    # The other byte is not this value's.
    assert decode([wire[0] | (0x5A if first_on_wire else 0x5A00)], type_, order, byte=byte) == value


@pytest.mark.parametrize("order", ALL_ORDERS)
@pytest.mark.parametrize("value", [0.0, -0.509765625, 65504.0, 6.103515625e-05, -2.0, 1.0 / 3.0])
def test_float16_in_every_order(value: float, order: str) -> None:
    wire = _wire(struct.pack(">e", value), order)
    assert decode(wire, "float16", order) == struct.unpack(">e", struct.pack(">e", value))[0]
    assert encode(decode(wire, "float16", order), "float16", order) == wire


def test_float16_nan_and_infinity_are_invalid() -> None:
    for word in (0x7C00, 0xFC00, 0x7E00):
        assert apply_point(decode([word], "float16")).reason == "invalid"


def test_8_bit_types_need_their_byte() -> None:
    with pytest.raises(DecodeError):
        decode([0x1234], "uint8")
    with pytest.raises(DecodeError):
        encode(300, "uint8", byte="low")


def test_plausible_decodings_show_both_bytes_and_half_floats() -> None:
    rows = plausible_decodings([0x988D, 0xB814])
    assert ("int8", "high", -104) in rows
    assert ("int8", "low", -115) in rows
    assert ("uint8", "high", 0x98) in rows
    assert ("uint8", "low", 0x8D) in rows
    assert ("float16", "BADC", struct.unpack(">e", b"\x8d\x98")[0]) in rows
