"""A small reader of the line protocol the collector writes, for tests: each line's series,
its tags (unescaped), its fields and its time, or an AssertionError saying why it is not one
well-formed point. Stricter than InfluxDB on purpose: no comment lines, no blank lines."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Point:
    measurement: str
    tags: dict[str, str]
    fields: dict[str, str]  # key -> value text as written
    ts: int


def _need(condition: bool, why: str) -> None:
    if not condition:
        raise AssertionError(why)


def _unescape(text: str) -> str:
    out, i = [], 0
    while i < len(text):
        if text[i] == "\\" and i + 1 < len(text) and text[i + 1] in ", =":
            out.append(text[i + 1])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _split(text: str, sep: str, *, quotes: bool = False) -> list[str]:
    parts, start, i, quoted = [], 0, 0, False
    while i < len(text):
        char = text[i]
        if char == "\\" and not quoted:
            i += 2
            continue
        if quotes and char == "\\" and quoted:
            i += 2
            continue
        if quotes and char == '"':
            quoted = not quoted
        elif char == sep and not quoted:
            parts.append(text[start:i])
            start = i + 1
        i += 1
    _need(not quoted, f"unclosed quote: {text!r}")
    parts.append(text[start:])
    return parts


def parse_line(line: str) -> Point:
    _need(line and not line.startswith("#"), f"comment or empty line: {line!r}")
    _need(not any(ord(c) < 0x20 or 0x7F <= ord(c) < 0xA0 for c in line), f"control character: {line!r}")
    # The series part holds no quotes of its own meaning: re-split it without quote rules.
    series_end = len(_split(line, " ")[0])
    series, rest = line[:series_end], line[series_end + 1:]
    sections = _split(rest, " ", quotes=True)
    _need(len(sections) == 2, f"not `series fields time`: {line!r}")
    fields_text, ts = sections
    _need(ts.lstrip("-").isdigit(), f"bad time {ts!r} in {line!r}")
    head, *pairs = _split(series, ",")
    _need(head and not head.endswith("\\"), f"bad measurement in {line!r}")
    tags: dict[str, str] = {}
    for pair in pairs:
        key_value = _split(pair, "=")
        _need(len(key_value) == 2 and all(key_value), f"bad tag {pair!r} in {line!r}")
        key = _unescape(key_value[0])
        _need(key not in tags, f"tag {key!r} twice in {line!r}")
        tags[key] = _unescape(key_value[1])
    fields: dict[str, str] = {}
    for pair in _split(fields_text, ",", quotes=True):
        key, sep, value = pair.partition("=") if "\\" not in pair.split("=")[0] else _partition(pair)
        _need(sep and key and value, f"bad field {pair!r} in {line!r}")
        fields[_unescape(key)] = value
    return Point(_unescape(head), tags, fields, int(ts))


def _partition(pair: str) -> tuple[str, str, str]:
    parts = _split(pair, "=")
    return parts[0], "=", "=".join(parts[1:])
