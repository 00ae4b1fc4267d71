"""Per message: a data envelope's flat readings to line protocol, with the compiled birth.

The format step of the line-protocol format (collector/output/base.py `LineFormat`). It
validates exactly what roadpulse.wire.validate validates for data, through the same checks,
and never decides validity differently in C (collector/_fastlines.c declines, Python decides).
"""

from __future__ import annotations

from itertools import accumulate, compress, islice, pairwise, repeat
from operator import add, is_, is_not, mul, ne, truth
from types import NoneType
from typing import Any

from collector.output.base import UnknownAlias
from collector.output.influxdb.compile import AliasTable, Entry, NativeTable, Templates, templates
from collector.output.influxdb.lineproto import INT64_MAX, INT64_MIN, STRING, format_value, string_text
from roadpulse.wire import WireError
from roadpulse.wire.names import printable
from roadpulse.wire.types import MAX_TIME_MS
from roadpulse.wire.validate import check_quality, check_reading

try:  # the C loop (collector/_fastlines.c); compile.NATIVE says whether it is built
    from collector import _fastlines
except ImportError:  # pragma: no cover - exercised on hosts without a compiler
    _fastlines = None  # type: ignore[assignment]

_QUALITY_NAMES = {1: "uncertain", 2: "bad"}
_TIME_OK = (0, 2)  # none or corrected: stored as good time (docs/protocol.md, time flags)


def _check_reading(flat: list[Any], index: int, table: AliasTable) -> str | None:
    """Why reading `index` is invalid (a WireError), or the unknown alias (a PARK), or None."""
    alias, dt, value = flat[3 * index : 3 * index + 3]
    check_reading(alias, dt, value)
    if alias not in table:
        return f"unknown alias {alias}"
    return None


_INT_ONLY = {int}


def line_groups(dts: list[Any], series: list[int], slots: list[int]) -> list[list[int]]:
    """The readings of each line, in the order the lines are written (docs/data-model.md).

    A run is the readings from one with a nonzero dt (or the first) up to the next such: one
    time. In a run, a reading joins the latest line of its series, unless that line holds its
    slot (series and field) already: then it starts a new line of its series, at the end of
    the run. So a field's readings keep their order, and the last still wins, as with one
    line per reading. collector/_fastlines.c does exactly this.
    """
    groups: list[list[int]] = []
    current: dict[int, int] = {}  # series -> its latest line in this run
    placed: dict[int, int] = {}  # slot -> the line it was last put in (lines of earlier runs never match)
    for index, (dt, number, slot) in enumerate(zip(dts, series, slots, strict=True)):
        if dt and index:
            current = {}
        line = current.get(number)
        if line is None or placed.get(slot) == line:
            line = current[number] = len(groups)
            groups.append([index])
        else:
            groups[line].append(index)
        placed[slot] = line
    return groups


def data_lines(
    flat: list[Any], base: int, qualities: dict[Any, Any], flags: int, table: AliasTable, *,
    compiled: Templates | None = None,
) -> tuple[str, int]:
    """The hot path. Returns (the message's lines joined by newlines, readings whose value did not fit).

    One line per series and time, holding the fields of all its readings (`line_groups`).
    No Python code runs per ordinary reading but the grouping: the message's format string
    is the join of its aliases' templates (`templates`, a head form starting each line, tail
    forms continuing it, each line's time joined in as text) and one `%` formats all the
    values. Checks are done in C over the whole message: sets of types, one list comparison
    of the values' types with the types the templates expect, one sum for non-finite floats.
    Only the readings that differ (nil, a float for an integer metric, bool, str, an unknown
    alias) and those with a quality entry are looked at one by one; what is neither an int
    for a float metric, a float for a scaled one, nor a plain nil is made by `_careful_line`,
    which also raises WireError for anything invalid, or UnknownAlias.
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
    # msgpack carries uint64, which no InfluxDB field holds: the careful path makes those bad
    # values. (Reached only where the C loop declined or is not built, so off the usual path.)
    ints = list(compress(values, map(is_, types, repeat(int))))
    if ints and (max(ints) > INT64_MAX or min(ints) < INT64_MIN):
        return _careful_lines(flat, base, qualities, flags, table)
    dts[0] += base  # (line_groups looks at no first dt)
    times = list(accumulate(dts))
    if min(times) < -MAX_TIME_MS or max(times) > MAX_TIME_MS:  # the careful path names the reading
        return _careful_lines(flat, base, qualities, flags, table)
    # Every reading its own time (no dt of 0 after the first): no line holds two readings.
    alone = dts.count(0) == (dts[0] == 0)
    head, tail = compiled.head, compiled.tail
    heads: list[str | None] = list(map(head.pieces.get, aliases))
    # (alone: no tails needed; the one list, and each head is set after its tail below)
    tails: list[str | None] = heads if alone else list(map(tail.pieces.get, aliases))
    args: list[Any] = values
    careful: set[int] = set()  # readings whose line is made the careful way (in the format, no argument)
    bad_values = 0
    if types != expected or qualities:
        odd = set(compress(range(n), map(is_not, types, expected)))
        if qualities:
            odd.update(_quality_indices(qualities, n))
        for index in sorted(odd):
            kind = types[index]
            alias = aliases[index]
            if index not in qualities:
                if kind is int and expected[index] is float:
                    continue  # an int for a float metric: `%r` writes it as str() would
                if kind is float and expected[index] is int:
                    plain = head.floats.get(alias)
                    if plain is not None:  # a float for a scaled metric: taken as is
                        tails[index], heads[index] = tail.floats[alias], plain
                        continue
            nil = head.nil.get(alias) if kind is NoneType else None
            if nil is not None:
                tails[index], heads[index] = tail.nil[alias], nil
                args[index] = _nil_reason(qualities.get(index))
                continue
            line, bad = _careful_line(flat, index, qualities=qualities, table=table)  # or raises
            careful.add(index)
            tails[index] = "," + line[len(table[alias][2]):].replace("%", "%%")
            heads[index] = line.replace("%", "%%")
            bad_values += bad
    if careful:
        args = [arg for k, arg in enumerate(args) if k not in careful]
    if alone:
        return _one_per_line(heads, args, times, careful), bad_values
    series: list[int] = list(map(compiled.series.get, aliases))  # type: ignore[arg-type]
    slots: list[int] = list(map(compiled.slot.get, aliases))  # type: ignore[arg-type]
    # Each reading's (run, series) and (run, slot) as ints (no tuple per reading); a reading
    # starts a line, if each line is a stretch of one series at one time, where the first changes.
    width = len(compiled.slot)  # more than any series or slot number
    runs = list(accumulate([1, *map(truth, islice(dts, 1, None))]))
    keys = list(map(add, map(mul, runs, repeat(width)), series))
    starts = [True, *map(ne, islice(keys, 1, None), keys)]
    heads_at = list(compress(range(n), starts))
    # No series twice in a run (then each series has one stretch in it), no slot twice in a run.
    if len(set(compress(keys, starts))) == len(heads_at) and \
            len(set(map(add, map(mul, runs, repeat(width)), slots))) == n:
        # The usual case, and what line_groups gives for it: no series comes back in a run (a
        # poll's readings of a series are next to each other) and no field twice in a stretch.
        if len(heads_at) == n:
            return _one_per_line(heads, args, times, careful), bad_values
        text = "\n".join([
            heads[start] + "".join(tails[start + 1 : end]) + f" {times[start]}"  # type: ignore[arg-type,operator]
            for start, end in pairwise([*heads_at, n])
        ])
        return text % tuple(args), bad_values
    groups = line_groups(dts, series, slots)
    text = "\n".join([
        heads[group[0]] + "".join([tails[k] for k in group[1:]]) + f" {times[group[0]]}"  # type: ignore[operator,misc]
        for group in groups
    ])
    if careful:  # the arguments of the others, in the order of the lines
        kept = [k for k in range(n) if k not in careful]
        where = dict(zip(kept, args, strict=True))
        return text % tuple([where[k] for group in groups for k in group if k in where]), bad_values
    return text % tuple([args[k] for group in groups for k in group]), bad_values


def _one_per_line(heads: list[str | None], args: list[Any], times: list[int], careful: set[int]) -> str:
    """Each reading its own line: the value and the time as the arguments of one `%`."""
    form = " %d\n".join(heads) + " %d"  # type: ignore[arg-type]
    if not careful:
        timed: list[Any] = [None] * (2 * len(heads))
        timed[0::2] = args
        timed[1::2] = times
        return form % tuple(timed)
    values = iter(args)  # (a careful reading's line is in the form already: a time, no value)
    return form % tuple([x for k, time in enumerate(times) for x in
                         ((time,) if k in careful else (next(values), time))])


def _native_lines(
    flat: list[Any], base: int, qualities: dict[Any, Any], flags: int, table: AliasTable, *,
    native: NativeTable,
) -> tuple[str, int] | None:
    """The C loop's text, or None when it declines (then the Python path decides).

    Readings with a quality entry are made here, the careful way, and handed to the C loop
    as finished pieces (a whole line up to the time: the C loop continues a line with what
    follows its series). Any doubt (an error, an unknown alias) is left to the Python path,
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
                line, bad = _careful_line(flat, index, qualities=qualities, table=table)
                overrides.append((index, line))
                bad_values += bad
        except (WireError, UnknownAlias):
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
    """The escaped `_err` text of a reading without a value, as `_with_quality` writes it."""
    if quality is None:
        return "nil"
    return string_text(check_quality(quality)[1] or "nil")


def _careful_lines(
    flat: list[Any], base: int, qualities: dict[Any, Any], flags: int, table: AliasTable
) -> tuple[str, int]:
    """Reading by reading, every check in order (the first invalid reading names the error),
    then the readings joined into lines as `line_groups` says."""
    pieces: list[str] = []
    times: list[int] = []
    bad_values = 0
    now = base
    for index in range(len(flat) // 3):
        _check_reading(flat, index, table)
        now += flat[3 * index + 1]
        if not -MAX_TIME_MS <= now <= MAX_TIME_MS:
            raise WireError("bad-time", f"reading {index} at {now} ms, outside the years 1677-2262")
        line, bad = _careful_line(flat, index, qualities=qualities, table=table)
        pieces.append(line)
        times.append(now)
        bad_values += bad
    if not pieces:
        return "", 0
    entries = [table[alias] for alias in flat[0::3]]
    groups = line_groups(flat[1::3], [entry[5] for entry in entries], [entry[6] for entry in entries])
    time_flags = "" if flags in _TIME_OK else f",tf_q={flags}i"  # once per line
    return "\n".join([
        pieces[group[0]] + "".join(["," + pieces[k][len(entries[k][2]):] for k in group[1:]])
        + f"{time_flags} {times[group[0]]}"
        for group in groups
    ]), bad_values


def _careful_line(flat: list[Any], index: int, *, qualities: dict[Any, Any],
                  table: AliasTable) -> tuple[str, int]:
    """Reading `index` alone as a line up to its time flags and time (the caller adds those,
    once per line), and 1 if its value did not fit."""
    unknown = _check_reading(flat, index, table)
    if unknown is not None:
        raise UnknownAlias(unknown)
    alias, _, value = flat[3 * index : 3 * index + 3]
    entry = table[alias]
    quality = qualities.get(index)
    if value is None:
        return _with_quality(entry, "", quality), 0
    if type(value) is str and entry[1] == STRING:
        value = printable(value)  # no control character, so no newline, reaches a line
    try:
        text = format_value(value, entry[1], entry[4])
    except ValueError:
        return _with_quality(entry, "", None, error=f"bad-type:{type(value).__name__}"), 1
    return _with_quality(entry, text, quality), 0


def _with_quality(entry: Entry, text: str, quality: object, *, error: str = "") -> str:
    extra = ""
    if quality is not None:
        level, reason = check_quality(quality)
        if level and text:
            extra = f',{entry[3]}_q="{_QUALITY_NAMES[level]}:{string_text(reason)}"'
    else:
        reason = ""
    if text == "":  # nil: the reading has no value, only why
        why = string_text(error or reason or "nil")
        return f'{entry[2]}{entry[3]}_err="{why}"{extra}'
    return f"{entry[0]}{text}{extra}"
