"""The outbox hands the publisher stored bytes: a replay gains only its mark, readings untouched."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import msgpack
import pytest

import agent.outbox as outbox_module
from agent.config import load_agent_config
from agent.outbox import mark_replayed
from agent.queue import MemoryQueue
from agent.run import Agent
from roadpulse.wire import DataBatch, Death, Quality, Reading, TimeFlag, WireError, decode, encode_data, encode_death
from tests.agent_core.helpers import write_config

BATCHES = [
    DataBatch("gw-1", "0" * 16, 0, 1_800_000_000_000, [Reading(0, 1_800_000_000_000, 1)]),
    DataBatch("gw-1", "ab" * 8, 7, 1_800_000_000_500,
              [Reading(3, 1_800_000_000_000, 2.5), Reading(4, 1_800_000_000_010, None, Quality.BAD, "timeout"),
               Reading(5, 1_800_000_000_010, "r"), Reading(6, 1_800_000_000_020, True)],
              time_flags=TimeFlag.UNSYNCED | TimeFlag.SUSPECT),
    # A gateway id and a string value that spell the key "r" must not confuse the splice.
    DataBatch("r", "1" * 16, 255, 1_800_000_000_000, [Reading(1, 1_800_000_000_000, "r")] * 40),
]


@pytest.mark.parametrize("batch", BATCHES)
def test_a_replay_mark_decodes_as_the_re_encoded_batch(batch: DataBatch) -> None:
    stored = encode_data(batch)
    marked = mark_replayed(stored)
    assert decode(marked) == dataclasses.replace(decode(stored), replay=True)  # type: ignore[type-var]
    assert decode(marked) == decode(encode_data(dataclasses.replace(batch, replay=True)))
    # Only the map header (one more key) changed, and the mark went in: every other byte is as stored.
    mark = msgpack.packb("rp") + msgpack.packb(True)
    at = marked.rindex(mark)
    assert marked[0] == stored[0] + 1  # a fixmap header counts its keys
    assert marked[1:at] + marked[at + len(mark):] == stored[1:]
    assert mark_replayed(marked) == marked


@pytest.mark.parametrize("payload", [
    b"\x80", b"\xc1", b"", msgpack.packb({"v": 2, "t": "data", "r": []}),
    encode_death(Death("gw-1", "0" * 16, 1, True)),
])
def test_what_is_no_v1_data_batch_is_refused_as_decoding_would(payload: bytes) -> None:
    with pytest.raises(WireError):
        mark_replayed(payload)


def test_replays_are_not_decoded_unless_the_clock_was_corrected(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, "mqtt://127.0.0.1:1")
    agent = Agent(load_agent_config(path), path)
    intake = agent.attach(MemoryQueue(max_bytes=1 << 20))
    intake.take([Reading(0, 1_800_000_000_000, 1)])
    intake.seal_all()
    intake.commit()
    assert agent.outbox is not None
    [record] = agent.outbox.begin().records

    def no_decoding(payload: bytes) -> object:
        raise AssertionError("decoded a record that did not change")

    monkeypatch.setattr(outbox_module, "decode", no_decoding)
    assert agent.outbox.payload(record, replay=False) is record.payload
    assert agent.outbox.payload(record, replay=True) == mark_replayed(record.payload)
