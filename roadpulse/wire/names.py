"""Which names a birth may give: what a time-series store can hold and no line-protocol parser misreads.

A birth's names (measurement, field, device id, tag keys and values) end up as line
protocol text, written once per birth into each series' prefix. A name that the server
reserves or that the escaping cannot make unambiguous would let one gateway's data land
in another's series, vanish as a comment, or be refused: so such a birth is refused whole,
with a reason, before any of its data is decoded. Pure: no I/O.

The rules (docs/protocol.md, *Names*):
- every name is a str of 1 to MAX_NAME characters (an empty tag value means "no such tag");
- no control character (C0, DEL, C1): line protocol has no escape for a newline in a name;
- no backslash: it is the escape character, and a name ending in one (or holding one
  before `,`, `=` or a space) would swallow the separator after it;
- a measurement does not start with `#` (the line would be a comment, stored as nothing);
- a measurement, a field or a tag key does not start with `_` (InfluxDB 2 reserves those:
  `_measurement`, `_field`, `_value`, ...);
- a field or a tag key is not `time` (InfluxDB 1 drops such points: `partial write ... dropped=N`);
- a field does not end in `_q` or `_err`: the collector writes those beside a value field
  (quality, error, `tf_q` time flags; docs/data-model.md), and a field of the same name
  would be written twice in one line, or with two types; nor is it `tf`, whose quality
  field would be the time flags' `tf_q`;
- no name holds a `"`: parsers that track quotes over a whole line (VictoriaMetrics,
  InfluxDB's line scanner in places) would read a string from it.
"""

from __future__ import annotations

import re

MAX_NAME = 256
RESERVED_KEYS = frozenset({"time"})
DERIVED_SUFFIXES = ("_q", "_err")
# A field `tf` would have its quality written as `tf_q`, the time-flags field of every line.
RESERVED_FIELDS = frozenset({"tf"})
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\\]")
# The common case in one regex match: a name that passes every rule of a key (and so of any kind).
_PLAIN_KEY = re.compile(r'[^\x00-\x1f\x7f-\x9f\\"#_][^\x00-\x1f\x7f-\x9f\\"]{0,' + str(MAX_NAME - 1) + "}")


def name_problem(name: object, kind: str) -> str | None:
    """Why `name` cannot be a `kind` ("measurement", "field", "tag key", "tag value"), or None.

    A tag value may be empty (the tag is then left out of the series).
    """
    if type(name) is not str:
        return f"{kind} is {type(name).__name__}, not str"
    if _PLAIN_KEY.fullmatch(name) is not None and name not in RESERVED_KEYS and not (
            kind == "field" and (name.endswith(DERIVED_SUFFIXES) or name in RESERVED_FIELDS)):
        return None
    if not name:
        return None if kind == "tag value" else f"empty {kind}"
    if len(name) > MAX_NAME:
        return f"{kind} longer than {MAX_NAME} characters"
    bad = _FORBIDDEN.search(name)
    if bad is not None:
        char = bad.group()
        what = "a backslash" if char == "\\" else f"control character {ord(char):#04x}"
        return f"{kind} {name[:40]!r} holds {what}"
    if '"' in name:
        return f"{kind} {name[:40]!r} holds a double quote"
    if kind == "measurement" and name[0] == "#":
        return f"measurement {name[:40]!r} starts with '#' (a comment line)"
    if kind != "tag value" and name[0] == "_":
        return f"{kind} {name[:40]!r} starts with '_' (reserved by InfluxDB 2)"
    if kind in ("field", "tag key") and name in RESERVED_KEYS:
        return f"{kind} {name!r} is reserved"
    if kind == "field" and name in RESERVED_FIELDS:
        return f"field {name!r} is reserved (its quality would be the time-flags field tf_q)"
    if kind == "field" and name.endswith(DERIVED_SUFFIXES):
        suffix = "_q" if name.endswith("_q") else "_err"
        return f"field {name[:40]!r} ends in {suffix} (the collector's quality and error fields)"
    return None


def check_name(name: object, kind: str) -> str:
    """`name` if it is a valid `kind`; raises ValueError naming why not."""
    problem = name_problem(name, kind)
    if problem is not None:
        raise ValueError(problem)
    return name  # type: ignore[return-value]  # name_problem proved it is a str


_CONTROL = dict.fromkeys((*range(0x20), *range(0x7F, 0xA0)), "\ufffd")


def printable(text: str) -> str:
    """`text` with every control character replaced by U+FFFD.

    For string values and quality reasons: InfluxDB 1 keeps a newline inside a quoted
    string, but other parsers (VictoriaMetrics, many tools) split lines first, so no
    newline may reach a line, whatever the server.
    """
    return text.translate(_CONTROL)
