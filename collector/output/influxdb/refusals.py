"""Writing a batch when InfluxDB refuses part of it: which lines end refused, which stored.

Kept apart from the sink (which decides spool, dead letters and acks) because it is the one
place that turns InfluxDB's answers into a list of refused lines, and it is tested on its
own against a real influxd (tests/collector/test_partial.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from collector.body import body_text
from collector.output.base import Refusal
from collector.output.errors import WriteRejected, WriteTooLarge
from collector.output.influxdb.partial import partial_answer
from collector.output.influxdb.writer import InfluxWriter

__all__ = ["Refusal", "write_resolving"]


async def write_resolving(writer: InfluxWriter, lines: str | list[str] | None, refusals: list[Refusal],
                          on_write: Callable[[float], None], *, body: bytes | None = None) -> None:
    """Write `lines` (the text of a batch, or a list of its lines; or `body`, the encoded
    lines as spooled: split only when InfluxDB refuses, as batches are); what InfluxDB refuses is
    added to `refusals`, for the caller to dead-letter once the whole batch has settled
    (a later error spools the batch whole, and then none of it may be a dead letter yet).
    `on_write` gets the seconds of each write InfluxDB answered.

    413: written in halves. A partial write: the lines an exact answer names are refused
    and the rest is stored; after an answer that is not exact (a type conflict, which may
    hide other refusals), the unnamed lines and the named ones are written again apart
    (points are idempotent) until each answer is exact. Raises WriteRejected when InfluxDB
    refuses and names no line, WriteThrottled / WriteRetryable as they come.
    """
    started = time.perf_counter()
    try:
        if body is not None:
            await writer.write(body)
        else:
            await writer.write_lines(lines if isinstance(lines, str) else "\n".join(lines or []))
    except WriteTooLarge as exc:
        lines = _split(lines, body)
        if len(lines) <= 1:
            raise WriteRejected(f"single line too large: {exc}") from None
        half = len(lines) // 2
        await _write_apart(writer, [lines[:half], lines[half:]], refusals, on_write)
        return
    except WriteRejected as exc:
        lines = _split(lines, body)
        answer = partial_answer(lines, exc.error) if exc.error else None
        if answer is None or (not answer.exact and len(lines) == 1):
            raise
        on_write(time.perf_counter() - started)
        if answer.exact:
            if answer.refused:
                refusals.append(Refusal("influx-partial", exc.error, [lines[i] for i in answer.refused]))
            return
        named = set(answer.refused)
        rest = [line for i, line in enumerate(lines) if i not in named]
        picked = [lines[i] for i in answer.refused]
        half = len(lines) // 2
        await _write_apart(writer, [rest, picked] if rest else [lines[:half], lines[half:]], refusals, on_write)
        return
    on_write(time.perf_counter() - started)


async def _write_apart(writer: InfluxWriter, parts: list[list[str]], refusals: list[Refusal],
                       on_write: Callable[[float], None]) -> None:
    for part in parts:
        try:
            await write_resolving(writer, part, refusals, on_write)
        except WriteRejected as rejected:  # this part only: the others may be stored
            refusals.append(Refusal("influx-rejected", str(rejected), part))


def _split(lines: str | list[str] | None, body: bytes | None) -> list[str]:
    if isinstance(lines, list):
        return lines
    return (lines if lines is not None else body_text(body or b"")).split("\n")
