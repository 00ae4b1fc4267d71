"""Request planning: coalesce a device's points into the fewest Modbus reads.

Fewer requests matter on RS-485: at 9600 baud every request costs a turnaround
and the bus pause, so reading a few unused registers in between is cheaper than
a second request. A read never exceeds the protocol limits (125 registers,
2000 bits) and never reads through a gap larger than `max_gap`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

Kind = Literal["holding", "input", "coil", "discrete"]

MAX_REGISTERS = 125
MAX_BITS = 2000
FUNCTION_CODES: dict[Kind, int] = {"coil": 1, "discrete": 2, "holding": 3, "input": 4}


@dataclass(frozen=True, slots=True)
class Span:
    """What one point needs: `count` units (registers or bits) of `kind` from `address`."""

    kind: Kind
    address: int
    count: int


@dataclass(frozen=True, slots=True)
class ReadBlock:
    """One request. `points` are indexes into the planned spans that this read serves."""

    kind: Kind
    address: int
    count: int
    points: tuple[int, ...]

    @property
    def function_code(self) -> int:
        return FUNCTION_CODES[self.kind]

    def offset_of(self, span: Span) -> int:
        return span.address - self.address


class PlanError(ValueError):
    """A point that no single read can fetch (too long, past address 65535)."""


def limit_of(kind: str) -> int:
    return MAX_BITS if kind in ("coil", "discrete") else MAX_REGISTERS


def plan_reads(spans: Sequence[Span], max_gap: int, *, max_registers: int = MAX_REGISTERS) -> list[ReadBlock]:
    """Group spans into reads, per kind, in address order.

    Greedy is optimal here: with spans sorted by start, extending the current read
    whenever the gap and the size limit allow never needs more reads than any
    other grouping. Overlapping spans (a bit and the register holding it) share.
    """
    for span in spans:
        limit = limit_of(span.kind) if span.kind in ("coil", "discrete") else max_registers
        if span.count > limit:
            raise PlanError(f"{span.count} units at {span.address} exceed one read ({limit})")
        if span.address + span.count > 65536:
            raise PlanError(f"address {span.address}+{span.count} runs past 65535")
    blocks: list[ReadBlock] = []
    for kind in FUNCTION_CODES:
        limit = limit_of(kind) if kind in ("coil", "discrete") else max_registers
        order = sorted((i for i, s in enumerate(spans) if s.kind == kind), key=lambda i: spans[i].address)
        start = end = -1
        members: list[int] = []
        for index in order:
            span = spans[index]
            span_end = span.address + span.count
            fits = bool(members) and span.address - end <= max_gap and max(end, span_end) - start <= limit
            if fits:
                end = max(end, span_end)
                members.append(index)
                continue
            if members:
                blocks.append(ReadBlock(kind, start, end - start, tuple(members)))
            start, end, members = span.address, span_end, [index]
        if members:
            blocks.append(ReadBlock(kind, start, end - start, tuple(members)))
    return blocks
