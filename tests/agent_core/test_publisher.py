"""The publisher against a real broker: live records overtake the backlog, replay keeps its rate."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from agent.config import MqttConfig
from agent.publisher import Publisher
from agent.queue import MemoryQueue, Record, Tx
from roadpulse.services import Mosquitto
from roadpulse.wire import DataBatch, Reading, Topics, encode_data
from tests.agent_core.helpers import Subscriber, wait_for

pytestmark = pytest.mark.slow


class QueueOutbox:
    """The publisher's side of the hand-off over a bare queue: records go out as stored."""

    def __init__(self, queue: MemoryQueue, on_acked: Callable[[Record], object]) -> None:
        self.queue = queue
        self.on_acked = on_acked

    @property
    def next_id(self) -> int:
        return self.queue.next_id

    def begin(self, *, start: int = 0, stop: int | None = None) -> Tx:
        return self.queue.begin(1, start=start, stop=stop)

    def end(self, tx: Tx, *, acked: bool) -> None:
        self.queue.end(tx, acked=acked)
        if acked:
            for record in tx.records:
                self.on_acked(record)

    def payload(self, record: Record, *, replay: bool) -> bytes:
        return record.payload

    def birth(self) -> bytes:
        return b"\x80"

    def death(self, clean: bool) -> bytes:
        return b"\x80"

    def boot_of(self, record: Record) -> str | None:
        return None

    def earlier_birth(self, boot: str) -> bytes | None:
        return None


def _payload(seq: int) -> bytes:
    return encode_data(DataBatch("gw-pub", "0" * 16, seq, 0, [Reading(0, 1_800_000_000_000 + seq, seq)]))


def test_live_first_and_rate_limited_replay(tmp_path: Path, mosquitto: Mosquitto) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port).start()
    queue = MemoryQueue(max_bytes=1 << 20)
    for seq in range(40):
        queue.append(_payload(seq))
    queue.commit()
    arrivals: list[tuple[int, float]] = []

    async def main() -> None:
        stop = asyncio.Event()
        publisher = Publisher(
            MqttConfig(url=mosquitto.url, reconnect_max_s=0.5), Topics("gw-pub"),
            QueueOutbox(queue, lambda record: arrivals.append((record.id, time.monotonic()))),
            replay_per_s=10.0,
        )

        async def live() -> None:
            assert await asyncio.to_thread(wait_for, lambda: len(arrivals) >= 12, 5)
            for seq in range(40, 45):
                queue.append(_payload(seq))
            queue.commit()
            publisher.notify()
            await asyncio.to_thread(wait_for, lambda: len(arrivals) == 45, 10)
            stop.set()
            publisher.notify()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(publisher.run(stop), name="publisher")
            tg.create_task(live(), name="live")

    started = time.monotonic()
    asyncio.run(main())
    order = [record_id for record_id, _ in arrivals]
    assert sorted(order) == list(range(45))
    # The five live records went out as soon as they were committed, ahead of the backlog left.
    first_live = min(order.index(i) for i in range(40, 45))
    assert order[first_live : first_live + 5] == [40, 41, 42, 43, 44]
    assert first_live < 20
    # 40 backlog records at 10/s with a burst of 10: about 3 s.
    assert time.monotonic() - started >= 2.8
    assert wait_for(lambda: sub.reading_count() == 45, 5)
    replayed = sum(b.seq < 40 for b in sub.data)
    assert replayed == 40
    sub.stop()


def test_records_stay_queued_while_the_broker_is_down(tmp_path: Path, mosquitto: Mosquitto) -> None:
    queue = MemoryQueue(max_bytes=1 << 20)
    for seq in range(5):
        queue.append(_payload(seq))
    queue.commit()
    mosquitto.stop()
    acked: list[Record] = []

    async def main() -> None:
        stop = asyncio.Event()
        publisher = Publisher(
            MqttConfig(url=mosquitto.url, reconnect_max_s=0.3), Topics("gw-pub"),
            QueueOutbox(queue, acked.append), replay_per_s=100.0,
        )

        async def outage() -> None:
            await asyncio.sleep(1.5)
            assert queue.stats().records == 5
            assert publisher.stats.connects == 0
            await asyncio.to_thread(mosquitto.start)
            await asyncio.to_thread(wait_for, lambda: len(acked) == 5, 10)
            stop.set()
            publisher.notify()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(publisher.run(stop), name="publisher")
            tg.create_task(outage(), name="outage")

    asyncio.run(main())
    assert [r.id for r in acked] == [0, 1, 2, 3, 4]
    assert queue.stats().records == 0
