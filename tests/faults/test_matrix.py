"""The fault matrix as a test: every cell must show sent = stored + evicted + dead-lettered, queue empty.

Evicted and dead-lettered must be above 0 in the cells built to reach those limits and 0 in the
others; cells whose fault shows only in a log or counter must show it (matrix.problems).
"""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.harness import HEADER, run_cell
from tests.faults.matrix import CELLS, problems, skipped


@pytest.mark.slow
@pytest.mark.parametrize("cell", list(CELLS))
def test_cell(cell: str) -> None:
    if (reason := skipped(cell)) is not None:
        pytest.skip(reason)
    fault, options = CELLS[cell]
    result = asyncio.run(run_cell(cell, fault, **options))
    print(HEADER)
    print(result.row(), result.note)
    assert problems(cell, result) == []
