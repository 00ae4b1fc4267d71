"""The spool: the agent queue's shared interface tests, plus what only the spool promises."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from collector.spool import Spool, SpoolFullError
from roadpulse.queue import DurableQueue

# The interface suite of the agent's queues (tests/agent_core/test_queue.py), run against the
# spool through this module's `make_queue`. Eviction tests are left out on purpose: the spool
# refuses instead of evicting (test_full_spool_refuses_instead_of_evicting).
from tests.agent_core.test_queue import (  # noqa: F401 - collected by pytest here too
    test_acked_records_are_gone_and_nacked_come_back_oldest_first,
    test_begin_window_splits_live_from_backlog,
    test_only_committed_records_are_handed_out,
)

Factory = Callable[[int], DurableQueue]


@pytest.fixture
def make_queue(tmp_path: Path) -> Iterator[Factory]:
    opened: list[Spool] = []

    def make(max_bytes: int = 1 << 20) -> DurableQueue:
        spool = Spool(tmp_path / f"spool{len(opened)}", max(max_bytes, 1 << 16))
        opened.append(spool)
        return spool

    yield make
    for spool in opened:
        spool.close()


def test_spool_is_a_durable_queue(tmp_path: Path) -> None:
    queue: DurableQueue = Spool(tmp_path, 1 << 20)  # mypy checks the protocol here
    assert queue.next_id == 0


def test_survives_restart_in_order_and_drops_torn_appends(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 20)
    spool.append(b"a", weight=1)
    spool.append(b"b", weight=2)
    assert spool.commit().committed == [0, 1]
    spool.append(b"staged only", weight=1)  # never committed: a crash loses it, and it was never acked
    (tmp_path / ".tmp-0000000000000009-1-0.batch").write_bytes(b"torn")
    reopened = Spool(tmp_path, 1 << 20)
    tx = reopened.begin(10)
    assert [r.payload for r in tx.records] == [b"a", b"b"]
    assert tx.weight == 3
    assert not list(tmp_path.glob(".tmp-*"))
    assert reopened.next_id == 2


def test_full_spool_refuses_instead_of_evicting(tmp_path: Path) -> None:
    spool = Spool(tmp_path, 1 << 16)
    spool.append(b"x" * 40_000, weight=1)
    spool.commit()
    with pytest.raises(SpoolFullError):
        spool.append(b"y" * 40_000, weight=1)
    assert spool.stats().records == 1
    spool.end(spool.begin(1), acked=True)
    spool.append(b"y" * 40_000, weight=1)
    spool.commit()
    assert spool.stats().bytes == 40_000


def test_disk_error_drops_the_staged_batch_for_the_caller_to_keep(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from roadpulse.queue import StorageError

    spool = Spool(tmp_path, 1 << 20)
    spool.append(b"a", weight=1)

    def refuse(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("collector.spool.os.fsync", refuse)
    with pytest.raises(StorageError):
        spool.commit()
    monkeypatch.undo()
    assert spool.stats().records == 0
    assert spool.stats().staged_records == 0
    assert not list(tmp_path.iterdir())
