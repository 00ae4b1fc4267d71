"""The fault matrix as a test: every cell must show sent = stored + evicted + dead-lettered, queue empty."""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.harness import HEADER, run_cell
from tests.faults.matrix import CELLS


@pytest.mark.slow
@pytest.mark.parametrize("cell", list(CELLS))
def test_cell(cell: str) -> None:
    fault, options = CELLS[cell]
    result = asyncio.run(run_cell(cell, fault, **options))
    print(HEADER)
    print(result.row(), result.note)
    assert result.sent > 0
    assert result.queued == 0, "the agent's queue drained"
    assert result.sent == result.stored + result.evicted + result.dead
    assert result.evicted == 0, "no limit was reached"
    assert result.dead == 0, "nothing in these cells is undecodable"
