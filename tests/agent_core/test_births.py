"""Births of earlier boots kept on disk while the queue holds their records."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.birth import BirthStore
from agent.config import load_agent_config
from agent.queue import MemoryQueue
from agent.run import Agent
from roadpulse.wire import Birth, Reading, decode
from tests.agent_core.helpers import write_config

BOOT_A = "aaaaaaaaaaaaaaaa"
BOOT_B = "bbbbbbbbbbbbbbbb"
BOOT_C = "cccccccccccccccc"


def test_a_birth_survives_reopening_and_names_the_boot_of_its_records(tmp_path: Path) -> None:
    store = BirthStore.open(tmp_path / "births")
    store.save(BOOT_A, 0, b"birth-a")
    store.save(BOOT_B, 10, b"birth-b")
    reopened = BirthStore.open(tmp_path / "births")
    assert reopened.boots == [BOOT_A, BOOT_B]
    assert reopened.load(BOOT_A) == b"birth-a"
    assert [reopened.boot_of(i) for i in (0, 9, 10, 99)] == [BOOT_A, BOOT_A, BOOT_B, BOOT_B]
    assert not list((tmp_path / "births").glob("*.tmp"))


def test_records_older_than_every_stored_birth_have_no_boot(tmp_path: Path) -> None:
    store = BirthStore.open(tmp_path)
    store.save(BOOT_A, 5, b"a")
    assert store.boot_of(4) is None


def test_a_boot_from_the_network_is_only_a_key(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"no")
    store = BirthStore.open(tmp_path / "births")
    store.save(BOOT_A, 0, b"a")
    assert store.load("../secret") is None
    assert store.load("") is None
    with pytest.raises(ValueError, match="boot id"):
        store.save("../x", 1, b"x")


def test_a_torn_temporary_file_is_removed_and_ignored(tmp_path: Path) -> None:
    (tmp_path / f"{7:020d}-{BOOT_A}.msgpack.tmp").write_bytes(b"torn")
    store = BirthStore.open(tmp_path)
    assert store.boots == []
    assert list(tmp_path.iterdir()) == []


def test_a_birth_goes_once_the_queue_holds_no_record_of_its_boot(tmp_path: Path) -> None:
    store = BirthStore.open(tmp_path)
    store.save(BOOT_A, 0, b"a")
    store.save(BOOT_B, 10, b"b")
    store.save(BOOT_C, 20, b"c")
    # C is running (its records start at 20); A's records are 0-9, B's 10-19.
    assert store.prune(oldest_id=3, current_boot=BOOT_C, current_first_id=20) == []
    assert store.prune(oldest_id=10, current_boot=BOOT_C, current_first_id=20) == [BOOT_A]
    assert store.prune(oldest_id=19, current_boot=BOOT_C, current_first_id=20) == []
    assert store.prune(oldest_id=None, current_boot=BOOT_C, current_first_id=20) == [BOOT_B]
    assert BirthStore.open(tmp_path).boots == [BOOT_C]
    assert store.prune(oldest_id=None, current_boot=BOOT_C, current_first_id=20) == []


def test_births_left_from_a_wiped_queue_are_dropped(tmp_path: Path) -> None:
    store = BirthStore.open(tmp_path)
    store.save(BOOT_A, 500, b"a")
    # The queue folder was deleted: ids start at 0 again, so id 500 means nothing now.
    assert store.prune(oldest_id=0, current_boot=BOOT_B, current_first_id=0) == [BOOT_A]


def test_the_agent_stores_its_birth_before_its_first_batch(tmp_path: Path) -> None:
    path = write_config(tmp_path, "mqtt://127.0.0.1:1")
    agent = Agent(load_agent_config(path), path)
    births = BirthStore.open(tmp_path / "births")
    intake = agent.attach(MemoryQueue(max_bytes=1 << 20), births)
    assert agent.outbox is not None
    intake.take([Reading(0, 1_800_000_000_000, 1)])
    assert births.boots == []
    intake.seal_all()
    assert births.boots == [agent.boot]
    stored = decode(births.load(agent.boot) or b"")
    assert isinstance(stored, Birth)
    assert stored.boot == agent.boot
    assert {m.alias for m in stored.metrics} >= {0}
    # This boot's records are never announced with a birth of their own: the retained birth covers them.
    assert agent.outbox.earlier_birth(agent.boot) is None
