"""Framing and the three ASCII parsers, with the frames real devices send (DOMAIN.md)."""

from __future__ import annotations

import pytest

from agent.codec.frames import (
    FrameError,
    Framer,
    frame_parser,
    nmea_checksum,
    parse_keyvalue,
    parse_nmea,
)
from roadpulse.profiles import FrameField, Framing

WXT = (
    "0R0,Dn=000#,Dm=106#,Dx=182#,Sn=1.1#,Sm=4.0#,Sx=6.6#,Ta=16.0C,Ua=50.0P,Pa=1018.1H,Rc=0.00M,"
    "Rd=0s,Ri=0.0M,Hc=0.0M,Hd=0s,Hi=0.0M,Rp=0.0M,Hp=0.0M,Th=15.6C,Vh=0.0N,Vs=15.2V,Vr=3.498V,Id=Ant"
)


def test_delimiter_framing_across_chunks() -> None:
    framer = Framer(Framing(delimiter="\r\n"))
    assert framer.feed(b"abc\r") == []
    assert framer.feed(b"\ndef\r\nghi") == [b"abc", b"def"]
    assert framer.feed(b"\r\n") == [b"ghi"]
    assert framer.counters["frames"] == 3


def test_overlong_frame_is_dropped_until_the_next_delimiter() -> None:
    framer = Framer(Framing(delimiter="\n", max_length=8))
    assert framer.feed(b"0123456789abcdef") == []
    assert framer.feed(b"xyz\nok\n") == [b"ok"]
    assert framer.counters["overlong"] == 1


def test_fixed_length_framing() -> None:
    framer = Framer(Framing(mode="fixed", length=4))
    assert framer.feed(b"abcdefg") == [b"abcd"]
    assert framer.feed(b"h") == [b"efgh"]


def test_vaisala_keyvalue_marks_hash_invalid() -> None:
    fields = parse_keyvalue(WXT)
    assert fields["Dn"] is None
    assert fields["Ta"] == "16.0C"
    assert fields["Id"] == "Ant"


@pytest.mark.parametrize(
    "sentence",
    [
        "$IIMWV,271.0,R,000.2,N,A*3B",
        "$YXXDR,A,-64.437,M,N,A,054.454,D,E,C,17.09,C,T-N1052*46",
        "$GPRMC,225446,A,4916.45,N,12311.12,W,000.5,054.7,191194,020.3,E*68",
    ],
)
def test_nmea_checksums_of_real_sentences(sentence: str) -> None:
    body, _, given = sentence[1:].partition("*")
    assert nmea_checksum(body) == int(given, 16)
    assert parse_nmea(sentence)


def test_nmea_fields_are_keyed_by_type_and_index() -> None:
    fields = parse_nmea("$IIMWV,271.0,R,000.2,N,A*3B")
    assert fields["MWV.1"] == "271.0"
    assert fields["MWV.3"] == "000.2"


@pytest.mark.parametrize(
    ("text", "reason"),
    [("$IIMWV,271.0,R,000.2,N,A*3C", "checksum"), ("$IIMWV,271.0,R,000.2,N,A", "checksum"),
     ("garbage", "garbage"), ("$IIMWV,271.0*zz", "checksum")],
)
def test_bad_nmea(text: str, reason: str) -> None:
    with pytest.raises(FrameError) as info:
        parse_nmea(text)
    assert info.value.reason == reason


def _fields(*specs: tuple[str, str, str]) -> list[FrameField]:
    return [FrameField(name=n, key=k, type=t) for n, k, t in specs]  # type: ignore[arg-type]


def test_keyvalue_parser_gives_values_units_stripped() -> None:
    parser = frame_parser("keyvalue", _fields(("air_temp", "Ta", "float"), ("wind_dir", "Dn", "float"),
                                              ("ident", "Id", "str")), None)
    values = parser.parse(WXT.encode())
    assert values["air_temp"].value == 16.0
    assert (values["wind_dir"].value, values["wind_dir"].reason) == (None, "invalid")
    assert values["ident"].value == "Ant"


def test_broken_vaisala_field_is_bad_and_the_rest_survives() -> None:
    parser = frame_parser("keyvalue", _fields(("wind_dir", "Dn", "float"), ("wind_avg", "Sm", "float")), None)
    values = parser.parse(b"0R1,Dn=0m=032D,Sm=4.0M")
    assert values["wind_dir"].reason == "parse"
    assert values["wind_avg"].value == 4.0
    assert parser.counters["partial"] == 1


def test_regex_parser_with_scale_and_invalid() -> None:
    fields = [FrameField(name="flow", key="flow", type="int"),
              FrameField(name="speed", key="speed", scale=0.1, invalid=[9999])]
    parser = frame_parser("regex", fields, r"L(?P<lane>\d) F=(?P<flow>\d+) V=(?P<speed>\d+)")
    values = parser.parse(b"L1 F=12 V=853")
    assert values["flow"].value == 12
    assert values["speed"].value == pytest.approx(85.3)
    assert parser.parse(b"L1 F=12 V=9999")["speed"].reason == "invalid"


def test_number_too_large_for_a_float_is_invalid_not_infinity() -> None:
    parser = frame_parser("keyvalue", _fields(("air_temp", "Ta", "float"), ("rh", "Ua", "float")), None)
    values = parser.parse(b"0R2,Ta=1e999C,Ua=-1e999P")
    assert {(v.value, v.reason) for v in values.values()} == {(None, "invalid")}


@pytest.mark.parametrize(
    ("frame", "counter"),
    [(b"\xff\xfe\x00junk", "garbage"), (b"$IIMWV,271.0,R,000.2,N,A*00", "checksum"), (b"$GPGGA,1*4B", "unmatched")],
)
def test_unusable_frames_are_counted_and_skipped(frame: bytes, counter: str) -> None:
    parser = frame_parser("nmea", _fields(("wind_speed", "MWV.3", "float")), None)
    assert parser.parse(frame) == {}
    assert sum(parser.counters.values()) == 1
    assert parser.counters[counter] == 1


def test_empty_nmea_field_is_invalid_not_a_parse_error() -> None:
    body = "WIMWV,,R,,N,V"
    sentence = f"${body}*{nmea_checksum(body):02X}".encode()
    parser = frame_parser("nmea", _fields(("wind_dir", "MWV.1", "float"), ("wind_speed", "MWV.3", "float")), None)
    values = parser.parse(sentence)
    assert {name: (v.value, v.reason) for name, v in values.items()} == {
        "wind_dir": (None, "invalid"),
        "wind_speed": (None, "invalid"),
    }
