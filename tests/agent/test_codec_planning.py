"""Read coalescing: fewest requests within the protocol limits and the allowed gap."""

from __future__ import annotations

import pytest

from agent.codec.planning import PlanError, Span, plan_reads


def _blocks(spans: list[Span], max_gap: int) -> list[tuple[str, int, int, tuple[int, ...]]]:
    return [(b.kind, b.address, b.count, b.points) for b in plan_reads(spans, max_gap)]


@pytest.mark.parametrize(
    ("spans", "max_gap", "expected"),
    [
        # adjacent registers: one read
        ([Span("holding", 0, 1), Span("holding", 1, 2), Span("holding", 3, 1)], 0,
         [("holding", 0, 4, (0, 1, 2))]),
        # a gap of 5 is read through with max_gap 8, not with 4
        ([Span("holding", 0, 1), Span("holding", 6, 1)], 8, [("holding", 0, 7, (0, 1))]),
        ([Span("holding", 0, 1), Span("holding", 6, 1)], 4,
         [("holding", 0, 1, (0,)), ("holding", 6, 1, (1,))]),
        # kinds never mix, config order does not matter
        ([Span("input", 10, 2), Span("holding", 10, 2), Span("input", 12, 1)], 0,
         [("holding", 10, 2, (1,)), ("input", 10, 3, (0, 2))]),
        # overlapping spans (a bit and its register) share a read
        ([Span("holding", 5, 1), Span("holding", 5, 1), Span("holding", 4, 2)], 0,
         [("holding", 4, 2, (2, 0, 1))]),
        # 125-register limit splits
        ([Span("holding", 0, 100), Span("holding", 100, 30)], 0,
         [("holding", 0, 100, (0,)), ("holding", 100, 30, (1,))]),
        ([Span("holding", 0, 100), Span("holding", 100, 25)], 0, [("holding", 0, 125, (0, 1))]),
        # coils coalesce up to 2000 bits
        ([Span("coil", 0, 1), Span("coil", 1999, 1)], 2000, [("coil", 0, 2000, (0, 1))]),
        ([Span("coil", 0, 1), Span("coil", 2000, 1)], 2000, [("coil", 0, 1, (0,)), ("coil", 2000, 1, (1,))]),
        ([], 8, []),
    ],
)
def test_plan(spans: list[Span], max_gap: int, expected: list[tuple[str, int, int, tuple[int, ...]]]) -> None:
    assert _blocks(spans, max_gap) == expected


def test_every_point_is_served_exactly_once() -> None:
    spans = [Span("holding", a, 2) for a in range(0, 600, 7)]
    blocks = plan_reads(spans, 8)
    served = sorted(i for b in blocks for i in b.points)
    assert served == list(range(len(spans)))
    for block in blocks:
        assert block.count <= 125
        for i in block.points:
            assert block.address <= spans[i].address
            assert spans[i].address + spans[i].count <= block.address + block.count


@pytest.mark.parametrize("span", [Span("holding", 0, 126), Span("holding", 65535, 2)])
def test_impossible_points_raise(span: Span) -> None:
    with pytest.raises(PlanError):
        plan_reads([span], 0)
