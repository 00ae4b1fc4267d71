"""The collector's output boundary: a line format (compile per birth, format per message) and
an output that writes batches of it (`connect`, `write`, `close`, after Telegraf's).

Everything above this boundary (ingest, batching, the sink's spool, acks and dead-letter
policy) knows a batch only as text of line protocol (a line per series and time, holding
the readings of one poll: docs/data-model.md), and a write's outcome only as
the typed errors of collector/output/errors.py and the refusals `write` returns.
Everything below it is one package per database: collector/output/influxdb (v1 and v2
APIs, partial writes, line protocol and the C loop) and collector/output/victoriametrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from roadpulse.wire import Birth


class UnknownAlias(Exception):  # noqa: N818 - a signal to park the message, not a failure
    """Data refers to an alias this boot's birth does not define (the message is parked)."""


class LineFormat(Protocol):
    """How readings become text: `compile` once per birth (names checked and escaped there),
    `format` once per message (only values and times: nothing in it can inject a line)."""

    def compile(self, birth: Birth, *, health: bool = False) -> Any:
        """The birth made ready for `format`; raises ValueError for a name it cannot write."""
        ...

    def format(self, compiled: Any, flat: list[Any], base: int, qualities: dict[Any, Any],
               flags: int) -> tuple[str, int]:
        """(a line per series and time joined by newlines, readings whose value did not fit its type).
        Raises WireError for an invalid reading, UnknownAlias for an alias the birth lacks."""
        ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """Lines the database refused, with why (`influx-rejected`, `influx-partial`, ...)."""

    reason: str
    detail: str
    lines: list[str]


@dataclass(slots=True)
class WriteResult:
    """What a write settled: the refused lines (the rest is stored), and the seconds of each
    request the database answered (a batch may take several: split after a 413 or a partial write)."""

    refusals: list[Refusal] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)


class Output(Protocol):
    """One database. `write` raises WriteRejected (nothing stored, dead-letter the batch),
    WriteThrottled or WriteRetryable (nothing settled, keep the batch); otherwise every line
    is stored or in the result's refusals."""

    async def connect(self) -> None: ...

    async def write(self, batch: str | bytes) -> WriteResult:
        """`batch`: the lines as text, or as a body the spool kept (gzip or plain)."""
        ...

    async def close(self) -> None: ...
