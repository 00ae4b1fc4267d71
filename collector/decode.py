"""From an MQTT message to line protocol: birth cache, alias tables and the fast data path.

Data messages are decoded straight from the unpacked msgpack map, not through
roadpulse.wire.decode's Reading objects: per reading the hot loop looks up the alias's
precomputed line prefix and formats only the value and the timestamp. It validates exactly
what roadpulse.wire.decode validates for data (tests hold the two against each other).
Births, deaths and commands are rare and go through roadpulse.wire.decode.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from itertools import accumulate, compress, islice, pairwise, repeat
from operator import is_, is_not
from types import NoneType
from typing import Any

import msgpack

from collector.lineproto import FLOAT, INTEGER, STRING, format_value, strict_field_key, strict_series_key, string_text
from roadpulse.wire import Birth, Death, WireError, decode
from roadpulse.wire.names import printable
from roadpulse.wire.validate import check_quality, check_reading, data_header

try:  # the hot loop in C, built at install when a compiler is there (collector/_fastlines.c)
    from collector import _fastlines
except ImportError:  # pragma: no cover - exercised on hosts without a compiler
    _fastlines = None  # type: ignore[assignment]

NATIVE = _fastlines is not None

AGENT_MEASUREMENT = "roadpulse_agent"
_QUALITY_NAMES = {1: "uncertain", 2: "bad"}
_TIME_OK = (0, 2)  # none or corrected: stored as good time (docs/protocol.md, time flags)

# alias -> (prefix up to the value `series field=`, type, `series ` for other fields, escaped field key,
# decimals of a scaled float metric or 0)
Entry = tuple[str, str, str, str, int]
AliasTable = dict[int, Entry]


def build_table(birth: Birth, *, health: bool = False) -> AliasTable:
    """Each series' line prefix, computed once per birth. Health metrics land in roadpulse_agent.

    Metrics of one device mostly share their series (one per lane, say), so each distinct
    series is checked and escaped once: a birth's cost grows with its distinct series.
    """
    devices = {d.get("id"): d for d in birth.devices}
    device_tags: dict[str, dict[str, str]] = {}
    series_of: dict[tuple[str, tuple[tuple[str, str], ...]], str] = {}
    keys: dict[str, str] = {}
    table: AliasTable = {}
    for metric in birth.metrics:
        base = device_tags.get(metric.device)
        if base is None:
            raw = devices.get(metric.device, {}).get("tags") or {}
            base = device_tags[metric.device] = {
                str(k): str(v) for k, v in raw.items() if isinstance(v, str | int | float)}
        tags = {**base, **metric.tags, "gateway": birth.gateway, "device": metric.device}
        measurement = metric.measurement
        if health and not measurement.startswith("roadpulse_"):
            measurement = AGENT_MEASUREMENT
        where = (measurement, tuple(tags.items()))
        series = series_of.get(where)
        if series is None:
            series = series_of[where] = strict_series_key(measurement, tags) + " "
        key = keys.get(metric.field)
        if key is None:
            key = keys[metric.field] = strict_field_key(metric.field)
        decimals = (metric.decimals or 0) if metric.type == FLOAT else 0
        table[metric.alias] = (f"{series}{key}=", metric.type, series, key, decimals)
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
    text: str = ""  # one line per reading, joined by newlines (no trailing one)
    readings: int = 0
    bad_values: int = 0  # readings whose value did not fit the metric's type (stored as _err)
    birth: Birth | None = None
    missing: str = ""  # what was unknown, for a PARK
    health: bool = False  # an agent's own metrics: its seq is separate, and it is not a reading

    @property
    def lines(self) -> list[str]:
        """The lines one by one (tests and tools; the collector passes `text` on whole)."""
        return self.text.split("\n") if self.text else []


def _check_reading(flat: list[Any], index: int, table: AliasTable) -> str | None:
    """Why reading `index` is invalid (a WireError), or the unknown alias (a PARK), or None."""
    alias, dt, value = flat[3 * index : 3 * index + 3]
    check_reading(alias, dt, value)
    if alias not in table:
        return f"unknown alias {alias}"
    return None


_INT_ONLY = {int}


@dataclass(frozen=True, slots=True)
class Forms:
    """Per alias, %-formats of its line: `pieces` of the value, `floats` of a float for a scaled
    metric, `nil` of the escaped reason of a reading without a value; `careful` the slot of a
    line made by `_careful_line` (which ends before the time)."""

    pieces: dict[int, str]
    floats: dict[int, str]
    nil: dict[int, str]
    careful: str


@dataclass(frozen=True, slots=True)
class Templates:
    """Per alias, its line as a %-format, built from the birth's prefixes once.

    Only float and integer metrics get a value template: `%r` writes a float as repr
    (shortest round trip) and an int as str, as `format_value` does for type f; `%di` an int
    for type i; `%de-2` the scaled int of a float metric with 2 decimals (no float is made).
    `expect` is the value type a template takes without a look (float for f, int for i and
    scaled f; None for b and s, which are rare and go the careful way). `timed` forms end in
    ` %d`, the reading's time as an argument; `untimed` forms end before it, for runs of
    readings that share a time (`data_lines` joins the time in as text). `native` is the
    table of the C loop (`collector/_fastlines.c`), indexed by alias, or None without it.
    """

    expect: dict[int, type | None]
    timed: Forms
    untimed: Forms
    native: list[tuple[bytes, int, int, bytes] | None] | None = None


# Kinds of the C loop's table (collector/_fastlines.c).
_NATIVE_KIND = {FLOAT: 0, INTEGER: 1}
_NATIVE_SCALED, _NATIVE_OTHER = 2, 3
# Aliases are small numbers from 0; a table indexed by alias above this is not worth making
# (at the limit, a list of 65,536 slots: ~0.5 MB per table, two per boot, four boots per gateway).
_NATIVE_MAX_ALIAS = 65535


def native_table(table: AliasTable) -> list[tuple[bytes, int, int, bytes] | None] | None:
    """The C loop's table: per alias (prefix, kind, decimals, nil line), as UTF-8 bytes."""
    if not table or min(table) < 0 or max(table) > _NATIVE_MAX_ALIAS:
        return None
    out: list[tuple[bytes, int, int, bytes] | None] = [None] * (max(table) + 1)
    for alias, (prefix, kind, series, key, decimals) in table.items():
        code = _NATIVE_SCALED if kind == FLOAT and decimals else _NATIVE_KIND.get(kind, _NATIVE_OTHER)
        out[alias] = (prefix.encode(), code, decimals, f'{series}{key}_err="nil"'.encode())
    return out


def templates(table: AliasTable, *, native: bool | None = None) -> Templates:
    """`native`: make the C loop's table too (default: when the C loop is built)."""
    expect: dict[int, type | None] = {}
    pieces: dict[int, str] = {}
    floats: dict[int, str] = {}
    nil: dict[int, str] = {}
    for alias, (prefix, kind, series, key, decimals) in table.items():
        literal = prefix.replace("%", "%%")
        if kind == FLOAT and decimals:
            expect[alias] = int
            pieces[alias] = literal + f"%de-{decimals}"
            floats[alias] = literal + "%r"
        elif kind in (FLOAT, INTEGER):
            expect[alias] = float if kind == FLOAT else int
            pieces[alias] = literal + ("%r" if kind == FLOAT else "%di")
        else:
            expect[alias] = None
        nil[alias] = f'{series}{key}_err='.replace("%", "%%") + '"%s"'
    untimed = Forms(pieces, floats, nil, "%s")

    def timed(forms: dict[int, str]) -> dict[int, str]:
        return {alias: form + " %d" for alias, form in forms.items()}

    return Templates(expect, Forms(timed(pieces), timed(floats), timed(nil), "%s %d"), untimed,
                     native_table(table) if (NATIVE if native is None else native) else None)


# A message's readings share a time in runs (one device poll each); when the runs are this long
# on average, each run's time is formatted once and joined in as text, not formatted per reading.
_MIN_RUN = 8


def data_lines(
    flat: list[Any], base: int, qualities: dict[Any, Any], flags: int, table: AliasTable, *,
    compiled: Templates | None = None,
) -> tuple[str, int]:
    """The hot path. Returns (the message's lines joined by newlines, readings whose value did not fit).

    No Python code runs per ordinary reading: the message's format string is the join of
    its aliases' templates (`templates`) and one `%` formats them all. A reading's time is
    the `%d` that ends its timed template, the running times (`accumulate`) interleaved with
    the values as arguments by slice assignment; or, when readings share times in long runs
    (the readings of one poll: dt = 0), its run's time formatted once and joined in as text
    between untimed templates, and the values alone are the arguments. Checks
    are done in C over the whole message: sets of types, one list comparison of the values'
    types with the types the templates expect, one sum for non-finite floats. Only the
    readings that differ (nil, a float for an integer metric, bool, str, an unknown alias)
    and those with a quality entry are looked at one by one; what is neither an int for a
    float metric, a float for a scaled one, nor a plain nil is made by `_careful_line`,
    which also raises WireError for anything invalid, or _Unknown.
    """
    n = len(flat) // 3
    if not n:
        return "", 0
    if compiled is not None and compiled.native is not None and flags in _TIME_OK:
        done = _native_lines(flat, base, qualities, flags, table, native=compiled.native)
        if done is not None:
            return done
    aliases, dts, values = flat[0::3], flat[1::3], flat[2::3]
    if flags not in _TIME_OK or set(map(type, aliases)) != _INT_ONLY or set(map(type, dts)) != _INT_ONLY:
        return _careful_lines(flat, base, qualities, flags, table)
    compiled = compiled if compiled is not None else templates(table)
    types = list(map(type, values))
    expected = list(map(compiled.expect.get, aliases))
    try:
        total = sum(filter(None, values))  # nils (and zeros, which change no sum) left out
    except TypeError:  # a str or worse among the values: only floats can be non-finite
        total = sum(compress(values, map(is_, types, repeat(float))))
    if total - total != 0.0:  # a nan or an inf (or an overflow, which the careful path clears)
        return _careful_lines(flat, base, qualities, flags, table)
    dts[0] += base
    times = list(accumulate(dts))
    # Runs of one time (dt = 0) long enough? Then each run's time is joined in as text. (The
    # last reading's dt first: it is 0 in a message of polls, and a look at it is cheaper than a count.)
    runs = dts[-1] == 0 and n >= _MIN_RUN and (n - dts.count(0)) * _MIN_RUN <= n
    forms = compiled.untimed if runs else compiled.timed
    pieces: list[str | None] = list(map(forms.pieces.get, aliases))
    if runs:
        args: list[Any] = values
        step = 1
    else:
        args = [None] * (2 * n)
        args[0::2] = values
        args[1::2] = times
        step = 2
    bad_values = 0
    if types != expected or qualities:
        odd = set(compress(range(n), map(is_not, types, expected)))
        if qualities:
            odd.update(_quality_indices(qualities, n))
        for index in sorted(odd):
            kind = types[index]
            if index not in qualities:
                if kind is int and expected[index] is float:
                    continue  # an int for a float metric: `%r` writes it as str() would
                if kind is float and expected[index] is int:
                    plain = forms.floats.get(aliases[index])
                    if plain is not None:  # a float for a scaled metric: taken as is
                        pieces[index] = plain
                        continue
            nil = forms.nil.get(aliases[index]) if kind is NoneType else None
            if nil is not None:
                pieces[index] = nil
                args[step * index] = _nil_reason(qualities.get(index))
                continue
            line, bad = _careful_line(flat, index, qualities=qualities, flags=flags, table=table)
            pieces[index] = forms.careful
            args[step * index] = line
            bad_values += bad
    if not runs:
        return "\n".join(pieces) % tuple(args), bad_values  # type: ignore[arg-type]
    # Where each run starts (a nonzero dt; the first reading starts one) and the end.
    starts = [0, *compress(range(1, n), islice(dts, 1, None)), n]
    text = "\n".join([
        f" {times[start]}\n".join(pieces[start:end]) + f" {times[start]}"  # type: ignore[arg-type]
        for start, end in pairwise(starts)
    ])
    return text % tuple(args), bad_values


def _native_lines(
    flat: list[Any], base: int, qualities: dict[Any, Any], flags: int, table: AliasTable, *,
    native: list[tuple[bytes, int, int, bytes] | None],
) -> tuple[str, int] | None:
    """The C loop's text, or None when it declines (then the Python path decides).

    Readings with a quality entry are made here, the careful way, and handed to the C loop
    as finished pieces. Any doubt (an error, an unknown alias) is left to the Python path,
    so which error a bad message gets never depends on which loop ran.
    """
    overrides: list[tuple[int, str]] | None = None
    bad_values = 0
    if qualities:
        n = len(flat) // 3
        overrides = []
        try:
            for index in _quality_indices(qualities, n):
                alias = flat[3 * index]
                entry = table.get(alias) if type(alias) is int else None
                if entry is not None and flat[3 * index + 2] is None:  # the common one: why a value is missing
                    overrides.append((index, f'{entry[2]}{entry[3]}_err="{_nil_reason(qualities[index])}"'))
                    continue
                line, bad = _careful_line(flat, index, qualities=qualities, flags=flags, table=table)
                overrides.append((index, line))
                bad_values += bad
        except (WireError, _Unknown):
            return None
    assert _fastlines is not None
    text = _fastlines.lines(flat, base, native, overrides)
    return None if text is None else (text, bad_values)


def _quality_indices(qualities: dict[Any, Any], n: int) -> list[int]:
    """The readings that have a quality entry, sorted: those `qualities.get(index)` finds, as
    roadpulse.wire.decode and `_careful_line` look them up. A msgpack map may have bool or
    float keys, and True == 1 == 1.0 for a dict."""
    return sorted({int(i) for i in qualities if type(i) in (int, bool, float) and 0 <= i < n and i == int(i)})


def _nil_reason(quality: object) -> str:
    """The escaped `_err` text of a reading without a value, as `_with_flags` writes it."""
    if quality is None:
        return "nil"
    return string_text(check_quality(quality)[1] or "nil")


def _careful_lines(
    flat: list[Any], base: int, qualities: dict[Any, Any], flags: int, table: AliasTable
) -> tuple[str, int]:
    out: list[str] = []
    bad_values = 0
    now = base
    for index in range(len(flat) // 3):
        _check_reading(flat, index, table)
        now += flat[3 * index + 1]
        line, bad = _careful_line(flat, index, qualities=qualities, flags=flags, table=table)
        out.append(f"{line} {now}")
        bad_values += bad
    return "\n".join(out), bad_values


def _careful_line(flat: list[Any], index: int, *, qualities: dict[Any, Any], flags: int,
                  table: AliasTable) -> tuple[str, int]:
    """Reading `index`'s line up to its time (the caller adds ` time`), and 1 if its value did not fit."""
    unknown = _check_reading(flat, index, table)
    if unknown is not None:
        raise _Unknown(unknown)
    alias, _, value = flat[3 * index : 3 * index + 3]
    entry = table[alias]
    quality = qualities.get(index)
    if value is None:
        return _with_flags(entry, "", quality, flags=flags), 0
    if type(value) is str and entry[1] == STRING:
        value = printable(value)  # no control character, so no newline, reaches a line
    try:
        text = format_value(value, entry[1], entry[4])
    except ValueError:
        return _with_flags(entry, "", None, flags=flags, error=f"bad-type:{type(value).__name__}"), 1
    return _with_flags(entry, text, quality, flags=flags), 0


class _Unknown(Exception):  # noqa: N818 - internal signal, never escapes this module
    """Data refers to an alias this boot's birth does not define."""


def _with_flags(entry: Entry, text: str, quality: object, *, flags: int, error: str = "") -> str:
    extra = ""
    if quality is not None:
        level, reason = check_quality(quality)
        if level and text:
            extra = f',{entry[3]}_q="{_QUALITY_NAMES[level]}:{string_text(reason)}"'
    else:
        reason = ""
    if flags not in _TIME_OK:
        extra += f",tf_q={flags}i"
    if text == "":  # nil: the reading has no value, only why
        why = string_text(error or reason or "nil")
        return f'{entry[2]}{entry[3]}_err="{why}"{extra}'
    return f"{entry[0]}{text}{extra}"


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on what one gateway can make the collector hold or spend (collector config [limits])."""

    birth_max_bytes: int = 256 * 1024
    birth_max_metrics: int = 2000
    births_per_gateway: int = 4
    message_max_readings: int = 10_000
    max_gateways: int = 10_000


class _Tables:
    """One boot's compiled birth: the data table at once, the health table when first needed
    (most aliases never appear in a health message, and a birth's cost is its tables)."""

    __slots__ = ("_health", "birth", "compiled", "table")

    def __init__(self, birth: Birth, table: AliasTable, compiled: Templates) -> None:
        self.birth = birth
        self.table = table
        self.compiled = compiled
        self._health: tuple[AliasTable, Templates] | None = None

    def health(self) -> tuple[AliasTable, Templates]:
        if self._health is None:
            table = build_table(self.birth, health=True)
            self._health = (table, templates(table))
        return self._health


class Decoder:
    """Turns payloads into Decoded results. Keeps alias tables per (gateway, boot); no I/O.

    The caller persists births (BirthStore) and feeds them back with `learn` at start-up.
    """

    def __init__(self, limits: DecodeLimits | None = None, *, boots_per_gateway: int | None = None) -> None:
        limits = limits or DecodeLimits()
        if boots_per_gateway is not None:
            limits = dataclasses.replace(limits, births_per_gateway=boots_per_gateway)
        self.limits = limits
        # (gateway, boot) -> data table and its templates; the health table, made on first use
        self._tables: dict[tuple[str, str], _Tables] = {}
        self._order: dict[str, list[str]] = {}
        self.births_evicted = 0  # births forgotten because a gateway had more than births_per_gateway

    def learn(self, birth: Birth) -> None:
        """Raises WireError (`limit-...`) for a birth beyond a bound; nothing is learnt then."""
        limits = self.limits
        if len(birth.metrics) > limits.birth_max_metrics:
            raise WireError("limit-birth-metrics", f"{len(birth.metrics)} metrics > {limits.birth_max_metrics}")
        if birth.gateway not in self._order and len(self._order) >= limits.max_gateways:
            raise WireError("limit-gateways", f"{len(self._order)} gateways known already")
        key = (birth.gateway, birth.boot)
        table = build_table(birth)
        self._tables[key] = _Tables(birth, table, templates(table))
        boots = self._order.setdefault(birth.gateway, [])
        if birth.boot in boots:
            boots.remove(birth.boot)
        boots.append(birth.boot)
        # Replays of earlier boots still need their births, but not forever.
        while len(boots) > limits.births_per_gateway:
            self._tables.pop((birth.gateway, boots.pop(0)), None)
            self.births_evicted += 1

    def known(self, gateway: str, boot: str) -> bool:
        return (gateway, boot) in self._tables

    def decode(self, topic_gateway: str, topic_kind: str, payload: bytes) -> Decoded:
        """Raises WireError (with .reason) for anything that must go to the dead letters."""
        if topic_kind in ("data", "health"):
            return self._data(topic_gateway, topic_kind, payload)
        if topic_kind == "birth" and len(payload) > self.limits.birth_max_bytes:
            raise WireError("limit-birth-bytes", f"{len(payload)} bytes > {self.limits.birth_max_bytes}")
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
        gateway, boot, seq, base, flat, qualities, flags = data_header(obj)
        self._check_gateway(topic_gateway, gateway)
        if len(flat) > 3 * self.limits.message_max_readings:
            raise WireError("limit-readings", f"{len(flat) // 3} readings > {self.limits.message_max_readings}")
        tables = self._tables.get((gateway, boot))
        if tables is None:
            self._validate_all(flat, qualities)
            return Decoded(Kind.PARK, gateway, boot, seq, missing=f"unknown boot {boot}",
                           health=kind == "health")
        table, compiled = tables.health() if kind == "health" else (tables.table, tables.compiled)
        try:
            text, bad = data_lines(flat, base, qualities, flags, table, compiled=compiled)
        except _Unknown as exc:
            self._validate_all(flat, qualities)
            return Decoded(Kind.PARK, gateway, boot, seq, missing=str(exc), health=kind == "health")
        return Decoded(Kind.LINES, gateway, boot, seq, text, len(flat) // 3, bad, health=kind == "health")

    @staticmethod
    def _validate_all(flat: list[Any], qualities: dict[Any, Any]) -> None:
        """A message we park must be valid apart from the missing birth, or it is a dead letter now."""
        for index in range(len(flat) // 3):
            _check_reading(flat, index, {})
        for index, quality in qualities.items():
            if type(index) is not int or not 0 <= index < len(flat) // 3:
                continue
            check_quality(quality)
