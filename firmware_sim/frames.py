"""ASCII frames as vendors ship them: Vaisala WXT `0R0,...` and NMEA 0183 sentences. No I/O."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import reduce

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


def vaisala_field(key: str, value: Value) -> str:
    fmt, unit = VAISALA_FORMAT.get(key, ("{:.1f}", ""))
    if value is None:
        # Invalid values keep the field's width; the unit becomes '#'.
        return f"{key}={fmt.format(0)}#"
    if isinstance(value, str):
        return f"{key}={value}{unit}"
    return f"{key}={fmt.format(value)}{unit}"


def vaisala_frame(address: str, message: str, fields: Sequence[tuple[str, Value]]) -> str:
    """`0R0,Dn=000#,...,Vs=15.2V` plus CRLF: message 0 is the composite of the others."""
    body = ",".join(vaisala_field(key, value) for key, value in fields)
    return f"{address}R{message},{body}\r\n"


def vaisala_texts(line: str) -> dict[str, str]:
    """Each field's text as it stands in a frame, unit character included: `{"Ta": "16.0C", "Dn": "000#"}`."""
    items = line.strip().split(",")[1:]
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


def wind_sentences(talker: str, values: Mapping[str, Value], clock: float) -> list[str]:
    """MWV (wind), XDR (temperature, pressure in bar, humidity) and ZDA (device clock) sentences.

    Field indexes the profile uses, counted from 1 after the sentence name:
    MWV.1 angle, MWV.3 speed (m/s); XDR.2 temperature, XDR.6 pressure, XDR.10 humidity;
    ZDA.1 device time of day. An empty field means no value. MWV's status is V
    only when there is no speed (then the angle is empty too): in calm air the
    angle alone is empty and the speed stays valid, status A.
    """
    direction, speed = values.get("wind_dir"), values.get("wind_speed")
    if speed is None:
        direction = None
    status = "A" if speed is not None else "V"
    mwv = f"{talker}MWV,{_num(direction, '{:05.1f}')},T,{_num(speed, '{:05.1f}')},M,{status}"
    pressure = values.get("pressure")
    bar = None if pressure is None or isinstance(pressure, str) else float(pressure) / 1000
    xdr = (
        f"{talker}XDR,C,{_num(values.get('air_temp'), '{:.1f}')},C,TEMP,"
        f"P,{_num(bar, '{:.4f}')},B,BARO,H,{_num(values.get('rh'), '{:.1f}')},P,HUM"
    )
    stamp = datetime.fromtimestamp(clock, UTC)
    zda = f"{talker}ZDA,{stamp:%H%M%S}.{int(stamp.microsecond / 1e4):02d},{stamp:%d,%m,%Y},00,00"
    return [nmea_sentence(mwv), nmea_sentence(xdr), nmea_sentence(zda)]


def nmea_texts(sentence: str) -> dict[str, str]:
    """Each field's text keyed "<sentence>.<index>" as profiles name them: `{"MWV.1": "271.0", ...}`."""
    parts = sentence.strip().lstrip("$").split("*")[0].split(",")
    name = parts[0][-3:]
    return {f"{name}.{i}": text for i, text in enumerate(parts[1:], start=1)}


def nmea_field(sentences: Sequence[str], key: str) -> str | None:
    """Look up "<sentence>.<index>" in emitted sentences: what a parser of the profile sees."""
    name = key.partition(".")[0]
    for sentence in sentences:
        if sentence.strip().lstrip("$").split(",")[0][-3:] == name:
            return nmea_texts(sentence).get(key)
    return None


def field_value(text: str, fld: FrameField) -> Value:
    """What a correct decoder reports for one field's text as sent.

    The unit character goes (`16.0C` is 16.0), scale and offset apply, and a
    Vaisala `#` mark, an empty NMEA field or a profile sentinel mean no value.
    """
    if not text or text.endswith("#"):
        return None
    if fld.type == "str":
        return text
    if fld.type == "bool":
        return text.lower() in ("1", "true", "on", "yes", "a")
    number = float(text[:-1] if text[-1].isalpha() else text)
    if number in fld.invalid or not math.isfinite(number):
        return None
    if fld.type == "int" and fld.scale == 1.0 and fld.offset == 0.0:
        return int(number)
    scaled = tidy(number * fld.scale + fld.offset)
    return round(scaled) if fld.type == "int" else scaled


def served(fld: FrameField, text: str) -> Served:
    """(point, text as sent, decoded value) for the truth file."""
    return (fld.name, text, field_value(text, fld))


def vaisala_answer(
    profile: SerialProfile, values: Mapping[str, Value], address: str, message: str
) -> tuple[str, list[Served]]:
    """The answer to `<address>R<message>` and the points it carries, as sent."""
    keys = vaisala_keys(message, [f.key for f in profile.fields])
    by_key = {f.key: f for f in profile.fields}
    line = vaisala_frame(address, message, [(k, values.get(by_key[k].name)) for k in keys])
    texts = vaisala_texts(line)
    return line, [served(by_key[k], texts[k]) for k in keys]


def nmea_answer(profile: SerialProfile, values: Mapping[str, Value], clock: float) -> list[tuple[str, list[Served]]]:
    """One interval's sentences, each with the profile points it carries, as sent."""
    out = []
    for line in wind_sentences("WI", values, clock):
        texts = nmea_texts(line)
        out.append((line, [served(f, texts[f.key]) for f in profile.fields if f.key in texts]))
    return out
