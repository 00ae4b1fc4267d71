"""ASCII frames as vendors ship them: Vaisala WXT `0R0,...` and NMEA 0183 sentences. No I/O.

A device writes in the units and layout it is set to (`AsciiSettings`: a WXT set to °F and
knots, an MWV talker alternating relative and true wind, an XDR talker with its attitude
before the weather), from the model's SI values. What a correct decoder reports for each
profile field is worked out from the text as sent, back in SI (firmware_sim.units), so
the ground truth stays in SI whatever the device writes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import reduce

from firmware_sim import units
from firmware_sim.registers import tidy
from firmware_sim.truth import Served
from roadpulse.profiles import FrameField, SerialProfile

Value = int | float | bool | str | None

# Vaisala key -> (format, unit character). '#' replaces the unit when the value is invalid.
VAISALA_FORMAT: dict[str, tuple[str, str]] = {
    "Dn": ("{:03.0f}", "D"),
    "Dm": ("{:03.0f}", "D"),
    "Dx": ("{:03.0f}", "D"),
    "Sn": ("{:.1f}", "M"),
    "Sm": ("{:.1f}", "M"),
    "Sx": ("{:.1f}", "M"),
    "Ta": ("{:.1f}", "C"),
    "Ua": ("{:.1f}", "P"),
    "Pa": ("{:.1f}", "H"),
    "Rc": ("{:.2f}", "M"),
    "Rd": ("{:.0f}", "s"),
    "Ri": ("{:.1f}", "M"),
    "Hc": ("{:.1f}", "M"),
    "Hd": ("{:.0f}", "s"),
    "Hi": ("{:.1f}", "M"),
    "Th": ("{:.1f}", "C"),
    "Vh": ("{:.1f}", "N"),
    "Vs": ("{:.1f}", "V"),
    "Vr": ("{:.3f}", "V"),
}
VAISALA_MESSAGES = {
    "1": ("Dn", "Dm", "Dx", "Sn", "Sm", "Sx"),
    "2": ("Ta", "Ua", "Pa"),
    "3": ("Rc", "Rd", "Ri", "Hc", "Hd", "Hi"),
    "5": ("Th", "Vh", "Vs", "Vr"),
}
# Vaisala keys whose unit the site engineer sets (speed, temperature, pressure unit settings).
VAISALA_QUANTITY = {"Sn": "speed", "Sm": "speed", "Sx": "speed", "Ta": "temperature", "Tp": "temperature",
                    "Th": "temperature", "Pa": "pressure"}
# A wind sensor mounted this many degrees off north: its relative wind angle is the true one minus this.
MOUNTING_HEADING = 40.0
# An XDR talker's own attitude (the pole it sits on leans a little), degrees.
PITCH, HEEL = -1.0, 2.5


@dataclass(frozen=True, slots=True)
class AsciiSettings:
    """How a text device is set up: its unit letters and, for NMEA, its sentence layout."""

    speed: str = "M"
    temperature: str = "C"
    # None: what the device writes by default (Vaisala ASCII hPa, the generic NMEA talker's XDR bar).
    pressure: str | None = None
    # generic: MWV + XDR TEMP/BARO/HUM + ZDA; attitude: the same with PTCH and ROLL first in XDR;
    # vaisala: a WXT in NMEA mode, XDR only, transducers named 0, 1, 2.
    layout: str = "generic"
    # MWV wind: T true, R relative, RT both every interval (R first).
    reference: str = "T"
    # Vaisala: answer with a CRC (polled with a lower-case command).
    crc: bool = False

    def letter(self, quantity: str, *, nmea: bool = False) -> str:
        if quantity == "speed":
            return self.speed
        if quantity == "temperature":
            return self.temperature
        return self.pressure or ("B" if nmea else "H")


DEFAULT_SETTINGS = AsciiSettings()


def vaisala_crc(text: str) -> str:
    """The WXT's three CRC characters: CRC-16 (0xA001 reflected, start 0) in 6-bit groups over 0x40."""
    crc = 0
    for byte in text.encode("ascii"):
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return chr(0x40 | crc >> 12) + chr(0x40 | (crc >> 6) & 0x3F) + chr(0x40 | crc & 0x3F)


def vaisala_field(key: str, value: Value, settings: AsciiSettings = DEFAULT_SETTINGS) -> str:
    fmt, unit = VAISALA_FORMAT.get(key, ("{:.1f}", ""))
    if value is None:
        # Invalid values keep the field's width; the unit becomes '#'.
        return f"{key}={fmt.format(0)}#"
    if isinstance(value, str):
        return f"{key}={value}{unit}"
    quantity = VAISALA_QUANTITY.get(key)
    if quantity is not None and not isinstance(value, bool):
        letter = settings.letter(quantity)
        if letter != unit:
            return f"{key}={units.written(float(value), quantity, letter)}{letter}"
    return f"{key}={fmt.format(value)}{unit}"


def vaisala_frame(address: str, message: str, fields: Sequence[tuple[str, Value]],
                  settings: AsciiSettings = DEFAULT_SETTINGS) -> str:
    """`0R0,Dn=000#,...,Vs=15.2V` plus CRLF: message 0 is the composite of the others.

    In CRC mode the message id is lower case (`0r0`) and three CRC characters follow the last value.
    """
    body = ",".join(vaisala_field(key, value, settings) for key, value in fields)
    line = f"{address}{'r' if settings.crc else 'R'}{message},{body}"
    return f"{line}{vaisala_crc(line) if settings.crc else ''}\r\n"


def vaisala_texts(line: str) -> dict[str, str]:
    """Each field's text as it stands in a frame, unit character included: `{"Ta": "16.0C", "Dn": "000#"}`."""
    line = line.strip()
    if re.match(r"^[0-9A-Za-z]r", line):
        line = line[:-3]  # CRC mode: the CRC follows the last value
    items = line.split(",")[1:]
    return {key: text for key, sep, text in (item.partition("=") for item in items) if sep}


def vaisala_keys(message: str, profile_keys: Sequence[str]) -> list[str]:
    """Keys a poll answers, in the profile's order; 0 is the composite (every profile key)."""
    if message == "0":
        return list(profile_keys)
    wanted = VAISALA_MESSAGES.get(message, ())
    return [k for k in profile_keys if k in wanted]


def nmea_checksum(body: str) -> str:
    """XOR of the bytes between '$' and '*', two upper-case hex digits."""
    return f"{reduce(lambda a, b: a ^ b, body.encode('ascii'), 0):02X}"


def nmea_sentence(body: str) -> str:
    return f"${body}*{nmea_checksum(body)}\r\n"


def nmea_valid(sentence: str) -> bool:
    line = sentence.strip()
    if not line.startswith("$") or "*" not in line:
        return False
    body, _, check = line[1:].rpartition("*")
    return nmea_checksum(body) == check.upper()


def _num(value: Value, fmt: str) -> str:
    return "" if value is None or isinstance(value, str) else fmt.format(value)


def _in(value: Value, quantity: str, letter: str) -> str:
    """An SI value as the device writes it in `letter`; empty for no value."""
    if value is None or isinstance(value, str | bool):
        return ""
    return units.written(float(value), quantity, letter)


def _mwv(talker: str, values: Mapping[str, Value], reference: str, settings: AsciiSettings) -> str:
    direction, speed = values.get("wind_dir"), values.get("wind_speed")
    if speed is None:
        direction = None
    if reference == "R" and isinstance(direction, int | float):
        direction = (float(direction) - MOUNTING_HEADING) % 360
    status = "A" if speed is not None else "V"
    spoken = _num(speed, "{:05.1f}") if settings.speed == "M" else _in(speed, "speed", settings.speed)
    return f"{talker}MWV,{_num(direction, '{:05.1f}')},{reference},{spoken},{settings.speed},{status}"


def _weather_quadruplets(values: Mapping[str, Value], settings: AsciiSettings) -> str:
    t, p = settings.letter("temperature", nmea=True), settings.letter("pressure", nmea=True)
    temp = _num(values.get("air_temp"), "{:.1f}") if t == "C" else _in(values.get("air_temp"), "temperature", t)
    pressure = values.get("pressure")
    bar = None if pressure is None or isinstance(pressure, str) else float(pressure) / 1000
    press = _num(bar, "{:.4f}") if p == "B" else _in(pressure, "pressure", p)
    return f"C,{temp},{t},TEMP,P,{press},{p},BARO,H,{_num(values.get('rh'), '{:.1f}')},P,HUM"


def _vaisala_xdr(talker: str, values: Mapping[str, Value], settings: AsciiSettings) -> list[str]:
    """A WXT in NMEA mode with the XDR wind formatter (WXT530 user guide): transducers 0, 1, 2."""
    s, t, p = settings.speed, settings.temperature, settings.pressure or "H"
    v = values.get
    wind = (f"{talker}XDR,A,{_num(v('wind_dir_min'), '{:.0f}')},D,0,A,{_num(v('wind_dir'), '{:.0f}')},D,1,"
            f"A,{_num(v('wind_dir_max'), '{:.0f}')},D,2,S,{_in(v('wind_speed_min'), 'speed', s)},{s},0,"
            f"S,{_in(v('wind_speed'), 'speed', s)},{s},1,S,{_in(v('wind_speed_max'), 'speed', s)},{s},2")
    internal = v("air_temp")
    internal = None if not isinstance(internal, int | float) else float(internal) + 0.7
    ptu = (f"{talker}XDR,C,{_in(v('air_temp'), 'temperature', t)},{t},0,C,{_in(internal, 'temperature', t)},{t},1,"
           f"H,{_num(v('rh'), '{:.1f}')},P,0,P,{_in(v('pressure'), 'pressure', p)},{p},0")
    rain = (f"{talker}XDR,V,{_num(v('rain_accum'), '{:.2f}')},M,0,Z,{_num(v('rain_duration'), '{:.0f}')},s,0,"
            f"R,{_num(v('precip_rate'), '{:.1f}')},M,0")
    supervisor = (f"{talker}XDR,C,{_in(v('heater_temp'), 'temperature', t)},{t},2,"
                  f"U,{_num(v('supply_voltage'), '{:.1f}')},N,0,U,{_num(v('supply_voltage'), '{:.1f}')},V,1,"
                  f"U,{_num(v('ref_voltage'), '{:.3f}')},V,2")
    return [nmea_sentence(line) for line in (wind, ptu, rain, supervisor)]


def wind_sentences(talker: str, values: Mapping[str, Value], clock: float,
                   settings: AsciiSettings = DEFAULT_SETTINGS) -> list[str]:
    """One interval's sentences in the device's layout (by default MWV, XDR and ZDA).

    In the generic layout: MWV.1 angle, MWV.3 speed; XDR quadruplets TEMP, BARO (bar) and HUM;
    ZDA.1 device time of day. An empty field means no value. MWV's status is V
    only when there is no speed (then the angle is empty too): in calm air the
    angle alone is empty and the speed stays valid, status A.
    """
    if settings.layout == "vaisala":
        return _vaisala_xdr(talker, values, settings)
    references = ["R", "T"] if settings.reference == "RT" else [settings.reference]
    lines = [_mwv(talker, values, ref, settings) for ref in references]
    attitude = f"A,{PITCH:.1f},D,PTCH,A,{HEEL:.1f},D,ROLL," if settings.layout == "attitude" else ""
    lines.append(f"{talker}XDR,{attitude}{_weather_quadruplets(values, settings)}")
    stamp = datetime.fromtimestamp(clock, UTC)
    lines.append(f"{talker}ZDA,{stamp:%H%M%S}.{int(stamp.microsecond / 1e4):02d},{stamp:%d,%m,%Y},00,00")
    return [nmea_sentence(line) for line in lines]


def nmea_texts(sentence: str) -> dict[str, str]:
    """Each field's text keyed "<sentence>.<index>" as profiles name them: `{"MWV.1": "271.0", ...}`."""
    parts = sentence.strip().lstrip("$").split("*")[0].split(",")
    name = parts[0][-3:]
    return {f"{name}.{i}": text for i, text in enumerate(parts[1:], start=1)}


def nmea_field(sentences: Sequence[str], key: str) -> str | None:
    """Look up "<sentence>.<index>" in emitted sentences, by position."""
    name = key.partition(".")[0]
    for sentence in sentences:
        if sentence.strip().lstrip("$").split(",")[0][-3:] == name:
            return nmea_texts(sentence).get(key)
    return None


def nmea_reading(sentence: str, fld: FrameField) -> tuple[str, str | None] | None:
    """(text, unit letter) of a profile field in one sentence, found by meaning; None if it is not there.

    XDR by transducer type and name; MWV by reference (the unit is MWV.4); other keys by position.
    """
    texts = nmea_texts(sentence)
    kind = sentence.strip().lstrip("$").split(",")[0][-3:]
    if fld.key == "XDR":
        if kind != "XDR":
            return None
        fields = [texts[f"XDR.{i}"] for i in range(1, len(texts) + 1)]
        for i in range(0, len(fields), 4):
            quad = [*fields[i : i + 4], "", "", ""][:4]
            if quad[0] == fld.transducer and quad[3] == (fld.transducer_name or ""):
                return quad[1], quad[2] or None
        return None
    if fld.key not in texts:
        return None
    if kind == "MWV" and fld.reference is not None and texts.get("MWV.2") != fld.reference:
        return None
    unit = texts.get("MWV.4") if fld.key == "MWV.3" else None
    return texts[fld.key], unit


def _to_profile_unit(number: float, letter: str | None, fld: FrameField) -> float:
    """A number the device wrote in `letter`, in the profile field's SI unit."""
    quantity = units.SI_UNITS.get(fld.unit)
    if quantity is None or letter is None or letter not in units.QUANTITIES[quantity]:
        return number
    return units.to_si(str(number), quantity, letter)


def field_value(text: str, fld: FrameField, letter: str | None = None) -> Value:
    """What a correct decoder reports for one field's text as sent.

    The unit character goes (`16.0C` is 16.0), scale and offset apply, a value written in another
    unit comes back to the profile's SI unit, and a Vaisala `#` mark, an empty NMEA field or a
    profile sentinel mean no value.
    """
    if not text or text.endswith("#"):
        return None
    if fld.type == "str":
        return text
    if fld.type == "bool":
        return text.lower() in ("1", "true", "on", "yes", "a")
    if text[-1].isalpha():
        text, letter = text[:-1], letter or text[-1]
    number = float(text)
    if number in fld.invalid or not math.isfinite(number):
        return None
    converted = _to_profile_unit(number * fld.scale + fld.offset, letter, fld)
    if fld.type == "int" and fld.scale == 1.0 and fld.offset == 0.0 and converted == number:
        return int(number)
    scaled = tidy(converted)
    return round(scaled) if fld.type == "int" else scaled


def served(fld: FrameField, text: str, letter: str | None = None) -> Served:
    """(point, text as sent, decoded value) for the truth file."""
    return (fld.name, text, field_value(text, fld, letter))


def vaisala_answer(
    profile: SerialProfile, values: Mapping[str, Value], address: str, message: str,
    settings: AsciiSettings = DEFAULT_SETTINGS,
) -> tuple[str, list[Served]]:
    """The answer to `<address>R<message>` and the points it carries, as sent."""
    keys = vaisala_keys(message, [f.key for f in profile.fields])
    by_key = {f.key: f for f in profile.fields}
    line = vaisala_frame(address, message, [(k, values.get(by_key[k].name)) for k in keys], settings)
    texts = vaisala_texts(line)
    return line, [served(by_key[k], texts[k]) for k in keys]


def nmea_answer(profile: SerialProfile, values: Mapping[str, Value], clock: float,
                settings: AsciiSettings = DEFAULT_SETTINGS) -> list[tuple[str, list[Served]]]:
    """One interval's sentences, each with the profile points it carries, as sent."""
    out = []
    for line in wind_sentences("WI", values, clock, settings):
        points = []
        for fld in profile.fields:
            found = nmea_reading(line, fld)
            if found is not None:
                points.append(served(fld, found[0], found[1]))
        out.append((line, points))
    return out
