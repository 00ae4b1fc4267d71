"""Counting readings in what a collector set aside, independent of how it groups fields into lines.

docs/data-model.md: every reading yields exactly one field whose name does not end in `_q` (its
value or `<field>_err`); quality and time-flag fields end in `_q`. So the readings of a
dead-lettered line are its fields not ending in `_q`, whether a line carries one reading or
several, and our own measurements (`roadpulse_...`) are no readings.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import msgpack

OWN_PREFIX = "roadpulse_"


def _split_unquoted(text: str, sep: str) -> list[str]:
    """Split line protocol at `sep` outside double quotes and not escaped by a backslash."""
    parts: list[str] = []
    current: list[str] = []
    quoted = escaped = False
    for ch in text:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == '"':
            current.append(ch)
            quoted = not quoted
        elif ch == sep and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    return parts


def readings_in_line(line: str) -> int:
    """Readings a line-protocol line carries: its fields not ending in `_q`; 0 for our own metrics."""
    if not line or line.startswith((OWN_PREFIX, "#")):
        return 0
    sections = _split_unquoted(line, " ")
    if len(sections) < 2:
        return 0
    names = [field.split("=", 1)[0] for field in _split_unquoted(sections[1], ",")]
    return sum(1 for name in names if name and not name.endswith("_q"))


def dead_lettered(work: Path) -> int:
    """Readings of data set aside as dead letters by any collector under `work`, each message once."""
    seen: set[tuple[str, str, int]] = set()
    readings = 0
    for folder in work.glob("*-data/deadletters"):
        for file in folder.glob("*.jsonl"):
            for line in file.read_text().splitlines():
                record = json.loads(line)
                if record.get("lines"):
                    readings += sum(readings_in_line(x) for x in record["lines"].split("\n"))
                    continue
                if not str(record.get("topic", "")).endswith("/data") or "payload_b64" not in record:
                    continue
                obj = msgpack.unpackb(base64.b64decode(record["payload_b64"]), raw=False, strict_map_key=False)
                key = (obj.get("gw"), obj.get("boot"), obj.get("seq"))
                if key not in seen:
                    seen.add(key)
                    readings += len(obj.get("r", [])) // 3
    return readings
