"""Per birth, once: each alias's series text and %-templates, and the C loop's table.

Each alias also gets the number of its series and of its (series, field) slot in the birth:
the formatter joins the readings of one series at one time into one line (docs/data-model.md),
and starts a new line when a slot comes round again (two aliases may name the same series
and field). The compile step of the line-protocol format (collector/output/base.py `LineFormat`): every
name passes the strict producer here (lineproto.strict_series_key / strict_field_key), so
the per-message step (format.py, and the C loop) only ever joins checked text and numbers.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from collector.output.influxdb.lineproto import FLOAT, INTEGER, strict_field_key, strict_series_key
from roadpulse.wire import Birth

try:  # the hot loop in C, built at install when a compiler is there (collector/_fastlines.c)
    from collector import _fastlines
except ImportError:  # pragma: no cover - exercised on hosts without a compiler
    _fastlines = None  # type: ignore[assignment]

NATIVE = _fastlines is not None

AGENT_MEASUREMENT = "roadpulse_agent"

# alias -> (prefix up to the value `series field=`, type, `series ` for other fields, escaped field key,
# decimals of a scaled float metric or 0, series number, slot number: both from 0, per birth)
Entry = tuple[str, str, str, str, int, int, int]
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
    series_ids: dict[str, int] = {}
    slots: dict[tuple[int, str], int] = {}
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
        number = series_ids.setdefault(series, len(series_ids))  # by text: tags in any order, one series
        slot = slots.setdefault((number, key), len(slots))
        table[metric.alias] = (f"{series}{key}=", metric.type, series, key, decimals, number, slot)
    return table


@dataclass(frozen=True, slots=True)
class Forms:
    """Per alias, %-formats of its part of a line (ending before the time): `pieces` of the
    value, `floats` of a float for a scaled metric, `nil` of the escaped reason of a reading
    without a value. `head` forms start the line with the series; `tail` forms continue it
    (`,field=...`)."""

    pieces: dict[int, str]
    floats: dict[int, str]
    nil: dict[int, str]


# The C loop's table: per alias (prefix, nil, meta) or None, meta the native int32s kind,
# decimals, series, series length in UTF-8 bytes, slot (read in C without a call); with the
# numbers of series and of slots in the birth.
NativeEntry = tuple[bytes, bytes, bytes]
_META = struct.Struct("=5i")
NativeTable = tuple[list[NativeEntry | None], int, int]


@dataclass(frozen=True, slots=True)
class Templates:
    """Per alias, its part of a line as %-formats, built from the birth's prefixes once.

    Only float and integer metrics get a value template: `%r` writes a float as repr
    (shortest round trip) and an int as str, as `format_value` does for type f; `%di` an int
    for type i; `%de-2` the scaled int of a float metric with 2 decimals (no float is made).
    `expect` is the value type a template takes without a look (float for f, int for i and
    scaled f; None for b and s, which are rare and go the careful way). `series` and `slot`
    map an alias to its numbers (grouping into lines). `native` is the table of the C loop
    (`collector/_fastlines.c`), or None without it.
    """

    expect: dict[int, type | None]
    head: Forms
    tail: Forms
    series: dict[int, int]
    slot: dict[int, int]
    native: NativeTable | None = None


# Kinds of the C loop's table (collector/_fastlines.c).
_NATIVE_KIND = {FLOAT: 0, INTEGER: 1}
_NATIVE_SCALED, _NATIVE_OTHER = 2, 3
# Aliases are small numbers from 0; a table indexed by alias above this is not worth making
# (at the limit, a list of 65,536 slots: ~0.5 MB per table, two per boot, four boots per gateway).
_NATIVE_MAX_ALIAS = 65535


def native_table(table: AliasTable) -> NativeTable | None:
    """The C loop's table, indexed by alias: its strings as UTF-8 bytes."""
    if not table or min(table) < 0 or max(table) > _NATIVE_MAX_ALIAS:
        return None
    if max(table) > 4 * len(table) + 1024:  # sparse aliases: not a list of mostly empty slots
        return None
    out: list[NativeEntry | None] = [None] * (max(table) + 1)
    series_count = slot_count = 0
    for alias, (prefix, kind, series, key, decimals, number, slot) in table.items():
        code = _NATIVE_SCALED if kind == FLOAT and decimals else _NATIVE_KIND.get(kind, _NATIVE_OTHER)
        out[alias] = (prefix.encode(), f'{series}{key}_err="nil"'.encode(),
                      _META.pack(code, decimals, number, len(series.encode()), slot))
        series_count = max(series_count, number + 1)
        slot_count = max(slot_count, slot + 1)
    return out, series_count, slot_count


def templates(table: AliasTable, *, native: bool | None = None) -> Templates:
    """`native`: make the C loop's table too (default: when the C loop is built)."""
    expect: dict[int, type | None] = {}
    head, tail = Forms({}, {}, {}), Forms({}, {}, {})
    for alias, (prefix, kind, series, key, decimals, _, _) in table.items():
        for forms, start in ((head, series), (tail, ",")):
            literal = (start + prefix[len(series):]).replace("%", "%%")
            if kind == FLOAT and decimals:
                forms.pieces[alias] = literal + f"%de-{decimals}"
                forms.floats[alias] = literal + "%r"
            elif kind in (FLOAT, INTEGER):
                forms.pieces[alias] = literal + ("%r" if kind == FLOAT else "%di")
            forms.nil[alias] = f'{start}{key}_err='.replace("%", "%%") + '"%s"'
        if kind == FLOAT and decimals:
            expect[alias] = int
        elif kind in (FLOAT, INTEGER):
            expect[alias] = float if kind == FLOAT else int
        else:
            expect[alias] = None
    return Templates(expect, head, tail, {alias: entry[5] for alias, entry in table.items()},
                     {alias: entry[6] for alias, entry in table.items()},
                     native_table(table) if (NATIVE if native is None else native) else None)


@dataclass(frozen=True, slots=True)
class CompiledBirth:
    """A birth compiled for line protocol: each alias's entry and its templates."""

    table: AliasTable
    templates: Templates
