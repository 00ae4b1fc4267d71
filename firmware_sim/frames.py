"""ASCII frames as vendors ship them: Vaisala WXT `0R0,...` and NMEA 0183 sentences. No I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import reduce

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
    ZDA.1 device time of day.
    """
    direction, speed = values.get("wind_dir"), values.get("wind_speed")
    status = "A" if direction is not None and speed is not None else "V"
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


def nmea_field(sentences: Sequence[str], key: str) -> str | None:
    """Look up "<sentence>.<index>" in emitted sentences: what a parser of the profile sees."""
    name, _, index = key.partition(".")
    for sentence in sentences:
        parts = sentence.strip().lstrip("$").split("*")[0].split(",")
        if parts[0][-3:] == name:
            i = int(index)
            return parts[i] if i < len(parts) else None
    return None
