"""Per message: a data envelope's flat readings to line protocol, with the compiled birth.

The format step of the line-protocol format (collector/output/base.py `LineFormat`). It
validates exactly what roadpulse.wire.validate validates for data, through the same checks,
and never decides validity differently in C (collector/_fastlines.c declines, Python decides).
"""

from __future__ import annotations

from itertools import accumulate, compress, islice, pairwise, repeat
from operator import is_, is_not
from types import NoneType
from typing import Any

from collector.output.base import UnknownAlias
from collector.output.influxdb.compile import AliasTable, Entry, Templates, templates
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
    dts[0] += base
    times = list(accumulate(dts))
    if min(times) < -MAX_TIME_MS or max(times) > MAX_TIME_MS:  # the careful path names the reading
        return _careful_lines(flat, base, qualities, flags, table)
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
        if not -MAX_TIME_MS <= now <= MAX_TIME_MS:
            raise WireError("bad-time", f"reading {index} at {now} ms, outside the years 1677-2262")
        line, bad = _careful_line(flat, index, qualities=qualities, flags=flags, table=table)
        out.append(f"{line} {now}")
        bad_values += bad
    return "\n".join(out), bad_values


def _careful_line(flat: list[Any], index: int, *, qualities: dict[Any, Any], flags: int,
                  table: AliasTable) -> tuple[str, int]:
    """Reading `index`'s line up to its time (the caller adds ` time`), and 1 if its value did not fit."""
    unknown = _check_reading(flat, index, table)
    if unknown is not None:
        raise UnknownAlias(unknown)
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
