"""Outages, restarts, crashes and full disks, counted reading by reading at a real broker.

Invariant in every test: the set of readings the broker delivered equals the set the agent
declared taken, minus the evictions it declared. Duplicated messages must share (boot, seq)
and carry identical readings, so a consumer can recognise them.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.run import Agent
from roadpulse.services import Mosquitto
from roadpulse.wire import Reading
from tests.agent_core.helpers import (
    Subscriber,
    fake_factory,
    queued_keys,
    reading_key,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]


def _assert_duplicates_recognisable(sub: Subscriber) -> None:
    by_key: dict[tuple[str, int], list[list[tuple[int, int, object]]]] = defaultdict(list)
    with sub.lock:
        for batch in sub.data:
            by_key[(batch.boot, batch.seq)].append([(r.alias, r.ts_ms, r.value) for r in batch.readings])
    for key, copies in by_key.items():
        assert all(c == copies[0] for c in copies), f"messages {key} differ"


@pytest.fixture
def subscriber(broker: Mosquitto) -> Iterator[Subscriber]:
    sub = Subscriber(broker.host, broker.port)
    sub.client.reconnect_delay_set(0.1, 0.5)
    sub.start()
    yield sub
    sub.stop()


async def _agent_with(agent: Agent, script: object) -> None:
    stop = asyncio.Event()

    async def drive() -> None:
        await asyncio.to_thread(script)  # type: ignore[arg-type]
        stop.set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(agent.run(stop), name="agent")
        tg.create_task(drive(), name="script")


def _keys(agent: Agent, readings: list[Reading]) -> set[str]:
    return {reading_key(agent.topics.gateway, r.alias, r.ts_ms, r.value) for r in readings}


@pytest.mark.parametrize("mode", ["outage", "restart"])
def test_broker_down_then_back(tmp_path: Path, broker: Mosquitto, subscriber: Subscriber, mode: str) -> None:
    path = write_config(tmp_path, broker.url)
    taken: list[Reading] = []
    agent = Agent(load_agent_config(path), path, on_taken=taken.extend, source_factory=fake_factory)

    stamps: dict[str, int] = {}

    def script() -> None:
        time.sleep(1.0)
        stamps["stop"] = time.time_ns() // 1_000_000
        broker.stop()
        stamps["stopped"] = time.time_ns() // 1_000_000
        time.sleep(2.5 if mode == "outage" else 0.1)
        broker.start()
        stamps["started"] = time.time_ns() // 1_000_000
        assert wait_for(lambda: agent.stats.connected and agent.stats.queue_readings < 40, 15)
        time.sleep(1.0)

    asyncio.run(_agent_with(agent, script))
    taken_keys = _keys(agent, taken)
    # What is still queued is persisted and goes out at the next start: not lost.
    expected = taken_keys - queued_keys(agent.data_dir / "queue")
    ok = wait_for(lambda: subscriber.unique_readings() == expected, 10)
    missing = sorted(expected - subscriber.unique_readings())
    assert ok, (len(expected), len(subscriber.unique_readings()), missing[:3], stamps)
    assert agent.stats.readings_evicted == 0
    assert agent.stats.reconnects >= 1
    assert agent.stats.messages_replayed > 0 or mode == "restart"
    _assert_duplicates_recognisable(subscriber)
    # A birth (retained) after every connect; the first death came from the broker... or not at all
    # for a clean broker stop, since a will is only sent when the *client* vanishes.
    assert len({b.boot for b, _ in subscriber.births}) == 1
    assert subscriber.deaths[-1].clean


def _spawn(config: Path, taken: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.agent_core.fake_agent", str(config), str(taken)],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )


def _lines(path: Path) -> set[str]:
    return set(path.read_text().splitlines()) if path.exists() else set()


def test_agent_sigkilled_mid_publish_and_restarted(tmp_path: Path, broker: Mosquitto,
                                                    subscriber: Subscriber) -> None:
    path = write_config(tmp_path, broker.url, interval_s=0.01, max_readings=10)
    taken = tmp_path / "taken.txt"
    for round_ in range(3):
        proc = _spawn(path, taken)
        before = len(_lines(taken))
        try:
            # Killed while it publishes: connected (its birth arrived) and taking readings.
            assert wait_for(lambda r=round_, b=before: len(subscriber.births) > r and len(_lines(taken)) > b + 100,
                            15)
            time.sleep(0.1 + 0.13 * round_)
        finally:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
    proc = _spawn(path, taken)
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0, out.decode()
    expected = _lines(taken) - queued_keys(tmp_path / "data" / "queue")
    # Nothing taken is lost.
    assert wait_for(lambda: expected <= subscriber.unique_readings(), 10), (
        len(expected), len(subscriber.unique_readings()), out.decode()[-2000:])
    # The taken file is written just after each commit's fsync, so a SIGKILL between the two leaves
    # readings in the queue (and later on the wire) that the file never heard of: at most one
    # commit's worth per kill, never anything the agent did not poll.
    unrecorded = subscriber.unique_readings() - expected
    assert len(unrecorded) <= 3 * 200, len(unrecorded)
    gateways_and_aliases = {tuple(json.loads(k)[:2]) for k in unrecorded}
    assert gateways_and_aliases <= {tuple(json.loads(k)[:2]) for k in expected}
    _assert_duplicates_recognisable(subscriber)
    replayed = sum(b.replay for b in subscriber.data)
    duplicates = len(subscriber.message_keys()) - len(set(subscriber.message_keys()))
    print(f"replayed messages {replayed}, duplicate messages {duplicates}")
    boots = {b.boot for b, _ in subscriber.births}
    assert len(boots) == 4
    # The three SIGKILLed sessions ended with their will: an unclean death per boot.
    assert sorted(d.clean for d in subscriber.deaths) == [False, False, False, True]


def test_queue_full_evicts_oldest_with_an_exact_count(tmp_path: Path, broker: Mosquitto,
                                                      subscriber: Subscriber) -> None:
    path = write_config(tmp_path, broker.url, devices=4, interval_s=0.01, max_readings=5,
                        queue_max_bytes=64 * 1024)
    taken: list[Reading] = []
    agent = Agent(load_agent_config(path), path, on_taken=taken.extend, source_factory=fake_factory)
    broker.stop()

    def script() -> None:
        assert wait_for(lambda: agent.stats.readings_evicted > 500, 30)
        broker.start()
        assert wait_for(lambda: agent.stats.connected and agent.stats.queue_readings < 60, 20)
        time.sleep(0.5)

    asyncio.run(_agent_with(agent, script))
    taken_keys = _keys(agent, taken)
    left = queued_keys(agent.data_dir / "queue")
    evicted = agent.stats.readings_evicted
    assert wait_for(lambda: len(subscriber.unique_readings() | left) == len(taken_keys) - evicted, 10), (
        len(subscriber.unique_readings()), len(left), len(taken_keys), evicted)
    received = subscriber.unique_readings() | left
    assert received <= taken_keys
    # The evicted readings are the oldest ones.
    lost = [r for r in taken if reading_key(agent.topics.gateway, r.alias, r.ts_ms, r.value) not in received]
    assert len(lost) == evicted
    assert max(r.ts_ms for r in lost) <= min(
        r.ts_ms for r in taken if reading_key(agent.topics.gateway, r.alias, r.ts_ms, r.value) in received
    ) + 1000


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 192 KiB tmpfs under the test's own folder (we run as root), unmounted in teardown."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=192k", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_disk_under_the_queue_fills_up(tmp_path: Path, tiny_disk: Path, broker: Mosquitto,
                                       subscriber: Subscriber) -> None:
    path = write_config(tmp_path, broker.url, devices=4, interval_s=0.01, max_readings=5,
                        queue_max_bytes=1024 * 1024)
    text = path.read_text().replace('data_dir = "data"', f'data_dir = "{tiny_disk}"')
    path.write_text(text)
    # Someone else already took half of the disk.
    (tiny_disk / "filler").write_bytes(b"\0" * 96 * 1024)
    taken = tmp_path / "taken.txt"
    broker.stop()
    proc = _spawn(path, taken)
    try:
        time.sleep(6.0)
        assert proc.poll() is None, "the agent died on a full disk"
        broker.start()
        time.sleep(4.0)
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    summary = out.decode().strip().splitlines()[-1]
    assert proc.returncode == 0, out.decode()[-3000:]
    stats = dict(item.split("=") for item in summary.split())
    expected = _lines(taken)
    left = queued_keys(tiny_disk / "queue")
    evicted = int(stats["evicted"])
    assert evicted > 0, summary
    assert wait_for(lambda: len(subscriber.unique_readings() | left) == len(expected) - evicted, 10), (
        summary, len(subscriber.unique_readings()), len(left), len(expected))
    assert subscriber.unique_readings() | left <= expected
