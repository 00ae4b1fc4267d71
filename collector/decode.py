"""From an MQTT message to line protocol: birth cache, alias tables and the fast data path.

Data messages are decoded straight from the unpacked msgpack map, not through
roadpulse.wire.decode's Reading objects: per reading the hot loop looks up the alias's
precomputed line prefix and formats only the value and the timestamp. It validates exactly
what roadpulse.wire.decode validates for data (tests hold the two against each other).
Births, deaths and commands are rare and go through roadpulse.wire.decode.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import msgpack

from collector.lineproto import escape_key, escape_string, format_value, series_key
from roadpulse.wire import Birth, Death, WireError, decode
from roadpulse.wire.topics import _GATEWAY_RE

AGENT_MEASUREMENT = "roadpulse_agent"
_QUALITY_NAMES = {1: "uncertain", 2: "bad"}
_TIME_OK = (0, 2)  # none or corrected: stored as good time (docs/protocol.md, time flags)

# alias -> (prefix up to the value `series field=`, type, `series ` for other fields, escaped field key)
Entry = tuple[str, str, str, str]
AliasTable = dict[int, Entry]


def build_table(birth: Birth, *, health: bool = False) -> AliasTable:
    """Each series' line prefix, computed once per birth. Health metrics land in roadpulse_agent."""
    devices = {d.get("id"): d for d in birth.devices}
    table: AliasTable = {}
    for metric in birth.metrics:
        device_tags = devices.get(metric.device, {}).get("tags") or {}
        tags = {str(k): str(v) for k, v in device_tags.items() if isinstance(v, str | int | float)}
        tags.update(metric.tags)
        tags["gateway"] = birth.gateway
        tags["device"] = metric.device
        measurement = metric.measurement
        if health and not measurement.startswith("roadpulse_"):
            measurement = AGENT_MEASUREMENT
        series = series_key(measurement, tags) + " "
        key = escape_key(metric.field)
        table[metric.alias] = (f"{series}{key}=", metric.type, series, key)
    return table


class Kind(enum.Enum):
    LINES = "lines"
    BIRTH = "birth"
    DEATH = "death"
    PARK = "park"  # no birth for this boot or alias yet
    IGNORE = "ignore"


@dataclass(slots=True)
class Decoded:
    kind: Kind
    gateway: str = ""
    boot: str = ""
    seq: int = -1
    lines: list[str] = field(default_factory=list)
    readings: int = 0
    bad_values: int = 0  # readings whose value did not fit the metric's type (stored as _err)
    birth: Birth | None = None
    missing: str = ""  # what was unknown, for a PARK
    health: bool = False  # an agent's own metrics: its seq is separate, and it is not a reading


def _check_header(obj: dict[Any, Any]) -> tuple[str, str, int, int, list[Any], dict[Any, Any], int]:
    gateway = obj.get("gw")
    if not isinstance(gateway, str):
        raise WireError("missing-key" if gateway is None else "bad-type", "gw")
    if not _GATEWAY_RE.match(gateway):
        raise WireError("bad-gateway", gateway[:80])
    boot = obj.get("boot")
    if type(boot) is not str:
        raise WireError("missing-key" if boot is None else "bad-type", "boot")
    if not 1 <= len(boot) <= 64:
        raise WireError("bad-boot", boot[:80])
    for key in ("ts", "seq", "bt"):
        if type(obj.get(key)) is not int:
            raise WireError("missing-key" if key not in obj else "bad-type", key)
    seq: int = obj["seq"]
    if seq < 0:
        raise WireError("bad-seq", str(seq))
    flat = obj.get("r")
    if type(flat) is not list:
        raise WireError("missing-key" if flat is None else "bad-type", "r")
    if len(flat) % 3:
        raise WireError("bad-readings", f"{len(flat)} items is not a multiple of 3")
    qualities = obj.get("q") or {}
    if not isinstance(qualities, dict):
        raise WireError("bad-type", "q")
    flags = obj.get("tf", 0)
    if type(flags) is not int or not 0 <= flags < 8:
        raise WireError("bad-time-flags", repr(flags)[:40])
    return gateway, boot, seq, obj["bt"], flat, qualities, flags


def _check_reading(flat: list[Any], index: int, table: AliasTable) -> str | None:
    """Why reading `index` is invalid (a WireError), or the unknown alias (a PARK), or None."""
    alias, dt, value = flat[3 * index : 3 * index + 3]
    if type(alias) is not int or alias < 0:
        raise WireError("bad-alias", repr(alias)[:40])
    if type(dt) is not int:
        raise WireError("bad-dt", repr(dt)[:40])
    if value is not None and not isinstance(value, int | float | str):
        raise WireError("bad-value", type(value).__name__)
    if type(value) is float and value - value != 0.0:
        raise WireError("bad-value", "non-finite float")
    if alias not in table:
        return f"unknown alias {alias}"
    return None


_INT_ONLY = {int}


def data_lines(
    flat: list[Any], base: int, qualities: dict[Any, Any], flags: int, table: AliasTable
) -> tuple[list[str], int]:
    """The hot loop. Returns (one line per reading, readings whose value did not fit the type).

    Per reading it formats only the value and the time after the alias's precomputed prefix.
    What the loop does not handle (nil, bool, str, a type mismatch, an unknown alias, a
    non-finite float) and readings with a quality entry are redone afterwards, one by one,
    by `_careful_line`, which also raises WireError for anything invalid, or _Unknown.
    """
    n = len(flat) // 3
    if flags not in _TIME_OK or (
        flat and (set(map(type, flat[0::3])) != _INT_ONLY or set(map(type, flat[1::3])) != _INT_ONLY)
    ):
        return _careful_lines(flat, base, qualities, flags, table)
    out: list[str] = []
    append = out.append
    get = table.get
    now = base
    stamp_at = None
    stamp = ""
    special: list[int] = []
    items = iter(flat)
    for alias, dt, value in zip(items, items, items, strict=True):
        if dt:
            now += dt
        if now != stamp_at:  # readings of one poll share a time: format it once
            stamp_at = now
            stamp = f" {now}"
        entry = get(alias)
        if entry is not None:
            tv = type(value)
            if tv is float:
                if entry[1] == "f" and value - value == 0.0:
                    append(f"{entry[0]}{value!r}{stamp}")
                    continue
            elif tv is int and entry[1] == "i":
                append(f"{entry[0]}{value}i{stamp}")
                continue
        special.append(len(out))
        append("")
    if not special and not qualities:
        return out, 0
    redo = set(special)
    redo.update(i for i in qualities if type(i) is int and 0 <= i < n)
    times = list(accumulate(flat[1::3], initial=base))
    bad_values = 0
    for index in sorted(redo):
        line, bad = _careful_line(flat, index, times[index + 1], qualities=qualities, flags=flags,
                                  table=table)
        out[index] = line
        bad_values += bad
    return out, bad_values


def _careful_lines(
    flat: list[Any], base: int, qualities: dict[Any, Any], flags: int, table: AliasTable
) -> tuple[list[str], int]:
    out: list[str] = []
    bad_values = 0
    now = base
    for index in range(len(flat) // 3):
        _check_reading(flat, index, table)
        now += flat[3 * index + 1]
        line, bad = _careful_line(flat, index, now, qualities=qualities, flags=flags, table=table)
        out.append(line)
        bad_values += bad
    return out, bad_values


def _careful_line(flat: list[Any], index: int, now: int, *, qualities: dict[Any, Any], flags: int,
                  table: AliasTable) -> tuple[str, int]:
    unknown = _check_reading(flat, index, table)
    if unknown is not None:
        raise _Unknown(unknown)
    alias, _, value = flat[3 * index : 3 * index + 3]
    entry = table[alias]
    quality = qualities.get(index)
    if value is None:
        return _with_flags(entry, "", now, quality, flags=flags), 0
    try:
        text = format_value(value, entry[1])
    except ValueError:
        return _with_flags(entry, "", now, None, flags=flags, error=f"bad-type:{type(value).__name__}"), 1
    return _with_flags(entry, text, now, quality, flags=flags), 0


class _Unknown(Exception):  # noqa: N818 - internal signal, never escapes this module
    """Data refers to an alias this boot's birth does not define."""


def _with_flags(entry: Entry, text: str, now: int, quality: object, *, flags: int, error: str = "") -> str:
    extra = ""
    if quality is not None:
        if not (isinstance(quality, list) and len(quality) == 2 and quality[0] in (0, 1, 2)
                and isinstance(quality[1], str)):
            raise WireError("bad-quality", repr(quality)[:40])
        level, reason = quality
        if level and text:
            extra = f',{entry[3]}_q="{_QUALITY_NAMES[level]}:{escape_string(reason)}"'
    else:
        reason = ""
    if flags not in _TIME_OK:
        extra += f",tf_q={flags}i"
    if text == "":  # nil: the reading has no value, only why
        why = escape_string(error or reason or "nil")
        return f'{entry[2]}{entry[3]}_err="{why}"{extra} {now}'
    return f"{entry[0]}{text}{extra} {now}"


class Decoder:
    """Turns payloads into Decoded results. Keeps alias tables per (gateway, boot); no I/O.

    The caller persists births (BirthStore) and feeds them back with `learn` at start-up.
    """

    def __init__(self, boots_per_gateway: int = 4) -> None:
        self._tables: dict[tuple[str, str], tuple[AliasTable, AliasTable]] = {}
        self._order: dict[str, list[str]] = {}
        self._keep = boots_per_gateway

    def learn(self, birth: Birth) -> None:
        key = (birth.gateway, birth.boot)
        self._tables[key] = (build_table(birth), build_table(birth, health=True))
        boots = self._order.setdefault(birth.gateway, [])
        if birth.boot in boots:
            boots.remove(birth.boot)
        boots.append(birth.boot)
        # Replays of earlier boots still need their births, but not forever.
        while len(boots) > self._keep:
            self._tables.pop((birth.gateway, boots.pop(0)), None)

    def known(self, gateway: str, boot: str) -> bool:
        return (gateway, boot) in self._tables

    def decode(self, topic_gateway: str, topic_kind: str, payload: bytes) -> Decoded:
        """Raises WireError (with .reason) for anything that must go to the dead letters."""
        if topic_kind in ("data", "health"):
            return self._data(topic_gateway, topic_kind, payload)
        message = decode(payload)
        if isinstance(message, Birth):
            self._check_gateway(topic_gateway, message.gateway)
            if topic_kind != "birth":
                raise WireError("kind-mismatch", f"birth on {topic_kind} topic")
            self.learn(message)
            return Decoded(Kind.BIRTH, message.gateway, message.boot, birth=message)
        if isinstance(message, Death):
            self._check_gateway(topic_gateway, message.gateway)
            return Decoded(Kind.DEATH, message.gateway, message.boot)
        raise WireError("kind-mismatch", f"{type(message).__name__} on {topic_kind} topic")

    @staticmethod
    def _check_gateway(topic_gateway: str, gateway: str) -> None:
        if topic_gateway != gateway:
            raise WireError("gateway-mismatch", f"topic {topic_gateway}, payload {gateway}"[:120])

    def _data(self, topic_gateway: str, topic_kind: str, payload: bytes) -> Decoded:
        try:
            obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack raises several unrelated types for garbage
            raise WireError("not-msgpack", type(exc).__name__) from None
        if type(obj) is not dict:
            raise WireError("not-a-map", type(obj).__name__)
        if obj.get("v") != 1 or type(obj.get("v")) is not int:
            raise WireError("bad-version", repr(obj.get("v"))[:20])
        kind = obj.get("t")
        if kind not in ("data", "health"):
            raise WireError("kind-mismatch" if kind in ("birth", "death", "cmd") else "bad-kind",
                            repr(kind)[:20])
        if kind != topic_kind:
            raise WireError("kind-mismatch", f"{kind} on {topic_kind} topic")
        gateway, boot, seq, base, flat, qualities, flags = _check_header(obj)
        self._check_gateway(topic_gateway, gateway)
        tables = self._tables.get((gateway, boot))
        if tables is None:
            self._validate_all(flat, qualities)
            return Decoded(Kind.PARK, gateway, boot, seq, missing=f"unknown boot {boot}",
                           health=kind == "health")
        table = tables[1] if kind == "health" else tables[0]
        try:
            lines, bad = data_lines(flat, base, qualities, flags, table)
        except _Unknown as exc:
            self._validate_all(flat, qualities)
            return Decoded(Kind.PARK, gateway, boot, seq, missing=str(exc), health=kind == "health")
        return Decoded(Kind.LINES, gateway, boot, seq, lines, len(flat) // 3, bad, health=kind == "health")

    @staticmethod
    def _validate_all(flat: list[Any], qualities: dict[Any, Any]) -> None:
        """A message we park must be valid apart from the missing birth, or it is a dead letter now."""
        for index in range(len(flat) // 3):
            _check_reading(flat, index, {})
        for index, quality in qualities.items():
            if type(index) is not int or not 0 <= index < len(flat) // 3:
                continue
            if not (isinstance(quality, list) and len(quality) == 2 and quality[0] in (0, 1, 2)
                    and isinstance(quality[1], str)):
                raise WireError("bad-quality", repr(quality)[:40])
