"""The VictoriaMetrics output: line protocol over its InfluxDB write API (`/api/v2/write`, `/write`).

VictoriaMetrics (1.79, Debian's) answers 204 to a batch with unparseable lines and only logs
them, so a refused line would count as written and be lost without a trace. This output
therefore sends only lines that pass `line_problem` (the rules the strict producer in
collector/output/influxdb follows, checked again here because a spooled batch may come from
another version) and returns the others as refusals, which the sink dead-letters.
Each field becomes a series `<measurement>_<field>` labelled with the line's tags (a string
field is stored as 0); a cluster takes the same lines at vminsert's
`/insert/<account>/influx/api/v2/write` (docs/scaling.md).
"""

from __future__ import annotations

import re

from collector.body import body_text
from collector.output.base import Refusal, WriteResult
from collector.output.influxdb.refusals import write_resolving
from collector.output.influxdb.writer import InfluxWriter, WriteTarget

# `series fields time`: escapes (`\x`) anywhere but in strings, where only `\"` and `\\`
# occur; a series starts with neither `#` nor a space; a time is an integer.
_NAME = r'(?:[^\\\s,="]|\\[, =])+'
_MEASUREMENT = r'(?:[^\\\s,="#]|\\[, =])(?:[^\\\s,="]|\\[, =])*'
_TAGS = rf"(?:,{_NAME}={_NAME})*"
_VALUE = r'(?:"(?:[^"\\]|\\["\\])*"|-?[0-9][0-9.e+\-]*i?|true|false)'
_LINE = re.compile(rf"{_MEASUREMENT}{_TAGS} {_NAME}={_VALUE}(?:,{_NAME}={_VALUE})* -?[0-9]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def line_problem(line: str) -> str | None:
    """Why `line` is not one well-formed point of the line protocol we write, or None."""
    if _CONTROL.search(line):
        return "control character"
    if _LINE.fullmatch(line) is None:
        return "not a line of the strict producer"
    return None


class VictoriaMetricsOutput:
    """One VictoriaMetrics single node or vminsert, over one keep-alive connection."""

    def __init__(self, target: WriteTarget) -> None:
        self._target = target
        self._writer = InfluxWriter(target)

    async def connect(self) -> None:
        """Nothing to open ahead: the connection is made by the first write."""

    async def write(self, batch: str | bytes) -> WriteResult:
        text = body_text(batch) if isinstance(batch, bytes) else batch
        lines = text.split("\n")
        bad = [line for line in lines if line_problem(line) is not None]
        result = WriteResult()
        if bad:
            result.refusals.append(Refusal("vm-invalid-line", line_problem(bad[0]) or "", bad))
            lines = [line for line in lines if line_problem(line) is None]
            if not lines:
                return result
        await write_resolving(self._writer, lines if bad else text, result.refusals, result.seconds.append)
        return result

    async def close(self) -> None:
        self._writer.close()


__all__ = ["VictoriaMetricsOutput", "line_problem"]
