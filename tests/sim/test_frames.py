"""Byte-exact frames: CRC, exceptions, NMEA checksums, register words for every type and order."""

from __future__ import annotations

import pytest

from agent.sources.modbus.source import decode_register
from firmware_sim import frames, modbus, registers
from roadpulse.profiles import Register


@pytest.mark.parametrize(
    ("frame", "crc"),
    [
        (bytes.fromhex("11 03 00 7C 00 02"), bytes.fromhex("07 43")),  # DOMAIN.md request
        (bytes.fromhex("11 83 02"), bytes.fromhex("C1 34")),  # DOMAIN.md exception response
        (bytes.fromhex("01 04 00 00 00 01"), bytes.fromhex("31 CA")),
    ],
)
def test_crc16_matches_known_frames(frame: bytes, crc: bytes) -> None:
    assert modbus.with_crc(frame)[-2:] == crc
    assert modbus.crc_ok(frame + crc)


@pytest.mark.parametrize(
    "sentence",
    [
        "$IIMWV,271.0,R,000.2,N,A*3B",
        "$YXXDR,A,-64.437,M,N,A,054.454,D,E,C,17.09,C,T-N1052*46",
        "$GPRMC,225446,A,4916.45,N,12311.12,W,000.5,054.7,191194,020.3,E*68",
    ],
)
def test_nmea_checksum_matches_pynmea2_examples(sentence: str) -> None:
    body, _, check = sentence[1:].partition("*")
    assert frames.nmea_checksum(body) == check
    assert frames.nmea_valid(sentence)
    assert not frames.nmea_valid(sentence[:-1] + ("0" if sentence[-1] != "0" else "1"))


def _reg(type_: str, order: str = "ABCD", **kw: object) -> Register:
    return Register.model_validate({"name": "x", "address": 0, "type": type_, "order": order, **kw})


@pytest.mark.parametrize(
    ("type_", "order", "value", "words"),
    [
        ("uint16", "ABCD", 513, [0x0201]),
        ("int16", "ABCD", -2, [0xFFFE]),
        ("uint32", "ABCD", 0x01020304, [0x0102, 0x0304]),
        ("uint32", "CDAB", 0x01020304, [0x0304, 0x0102]),
        ("uint32", "BADC", 0x01020304, [0x0201, 0x0403]),
        ("uint32", "DCBA", 0x01020304, [0x0403, 0x0201]),
        ("int32", "ABCD", -1, [0xFFFF, 0xFFFF]),
        ("float32", "ABCD", 1.0, [0x3F80, 0x0000]),
        ("float32", "CDAB", 1.0, [0x0000, 0x3F80]),
        ("float32", "BADC", 1.0, [0x803F, 0x0000]),
        ("float32", "DCBA", 1.0, [0x0000, 0x803F]),
        ("uint64", "ABCDEFGH", 1, [0, 0, 0, 1]),
        ("uint64", "GHEFCDAB", 1, [1, 0, 0, 0]),
        ("float64", "HGFEDCBA", 1.0, [0, 0, 0, 0xF03F]),
    ],
)
def test_register_words_for_every_type_and_order(type_: str, order: str, value: float, words: list[int]) -> None:
    reg = _reg(type_, order)
    assert registers.encode(value, reg) == words
    assert registers.decode(words, reg) == value


def test_scale_offset_and_invalid_sentinel() -> None:
    temp = _reg("int16", scale=0.1, invalid=[1001])
    assert registers.encode(-12.3, temp) == [(-123) & 0xFFFF]
    assert registers.encode(None, temp) == [1001]
    with pytest.raises(registers.EncodeError):
        registers.encode(99999.0, temp)


@pytest.mark.parametrize(
    ("pdu", "expected"),
    [
        (bytes.fromhex("04 0000 0002"), bytes.fromhex("04 04 0001 0002")),
        (bytes.fromhex("03 0000 0001"), bytes.fromhex("83 02")),  # no holding registers: illegal address
        (bytes.fromhex("04 0000 007E"), bytes.fromhex("84 03")),  # 126 > 125 registers
        (bytes.fromhex("04 0001 0004"), bytes.fromhex("84 02")),  # beyond the block
        (bytes.fromhex("06 0000 0001"), bytes.fromhex("86 01")),  # writes refused
    ],
)
def test_pdu_answers(pdu: bytes, expected: bytes) -> None:
    words = {("input", 0): 1, ("input", 1): 2, ("input", 3): 9}
    assert modbus.answer(pdu, words, {"input": 4})[0] == expected


def test_split_rtu_resynchronises_after_noise_and_waits_for_partial_frames() -> None:
    good = modbus.read_request(2, 4, 0, 3)
    other = modbus.read_request(5, 3, 10, 1)
    requests, tail, dropped = modbus.split_rtu(b"\xaa\x13" + good + other[:5])
    assert [r.unit for r in requests] == [2]
    assert tail == other[:5]
    assert dropped == 2
    requests, tail, _ = modbus.split_rtu(tail + other[5:])
    assert [(r.unit, r.pdu) for r in requests] == [(5, bytes.fromhex("03 000A 0001"))]
    assert tail == b""


def test_vaisala_frame_format() -> None:
    line = frames.vaisala_frame("0", "0", [("Dn", None), ("Sm", 4.0), ("Ta", 16.0), ("Rc", 0.0), ("Rd", 0)])
    assert line == "0R0,Dn=000#,Sm=4.0M,Ta=16.0C,Rc=0.00M,Rd=0s\r\n"


def test_wind_sentences_carry_profile_keys() -> None:
    lines = frames.wind_sentences(
        "WI", {"wind_dir": 271.0, "wind_speed": 0.2, "air_temp": 3.5, "pressure": 1013.2, "rh": 55.0}, 1_772_405_525.5
    )
    assert all(frames.nmea_valid(s) for s in lines)
    assert frames.nmea_field(lines, "MWV.1") == "271.0"
    assert frames.nmea_field(lines, "MWV.3") == "000.2"
    assert frames.nmea_field(lines, "XDR.6") == "1.0132"
    assert frames.nmea_field(lines, "ZDA.1") == "225205.50"
    # Calm air: no angle, the speed is still valid.
    calm = frames.wind_sentences("WI", {"wind_dir": None, "wind_speed": 0.1}, 0)
    assert calm[0].startswith("$WIMWV,,T,000.1,M,A*")
    # No speed (warming up): both empty, status V.
    warming = frames.wind_sentences("WI", {"wind_dir": 90.0, "wind_speed": None}, 0)
    assert warming[0].startswith("$WIMWV,,T,,M,V*")


@pytest.mark.parametrize("order", ["ABCD", "BADC", "CDAB", "DCBA"])
@pytest.mark.parametrize(("type_", "byte", "value"), [
    ("int8", "high", -104), ("int8", "low", 127), ("uint8", "high", 24), ("uint8", "low", 13),
    ("float16", None, -0.509765625), ("float16", None, 1013.0), ("int16", None, -1234), ("uint16", None, 54321),
])
def test_one_register_types_as_the_agent_reads_them(type_: str, byte: str | None, value: float, order: str) -> None:
    reg = Register(name="p", address=0, type=type_, byte=byte, order=order)  # type: ignore[arg-type]
    words = registers.encode(value, reg)
    assert len(words) == 1
    assert decode_register(reg, words, 0).value == value
