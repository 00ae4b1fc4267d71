"""The agent against a real Mosquitto, counting readings at the broker."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.run import Agent
from roadpulse.services import Mosquitto
from roadpulse.wire import Command, Reading, encode_command
from tests.agent_core.helpers import (
    Subscriber,
    fake_factory,
    queued_keys,
    reading_key,
    run_agent_while,
    wait_for,
    write_config,
)

pytestmark = pytest.mark.slow


def test_poll_queue_publish_with_birth_rebirth_health_and_clean_death(tmp_path: Path,
                                                                       mosquitto: Mosquitto) -> None:
    sub = Subscriber(mosquitto.host, mosquitto.port).start()
    path = write_config(tmp_path, mosquitto.url)
    taken: list[Reading] = []
    agent = Agent(load_agent_config(path), path, on_taken=taken.extend, source_factory=fake_factory)

    def script() -> None:
        time.sleep(1.0)
        command = encode_command(Command("rebirth", int(time.time() * 1000), "unknown alias 3"))
        sub.client.publish(agent.topics.cmd, command, qos=1)
        assert wait_for(lambda: len(sub.births) >= 2, 5)
        time.sleep(0.5)

    try:
        asyncio.run(run_agent_while(agent, script))
        gw = agent.topics.gateway
        expected = {reading_key(gw, r.alias, r.ts_ms, r.value) for r in taken}
        expected -= queued_keys(agent.data_dir / "queue")
        assert len(taken) > 50
        assert wait_for(lambda: sub.unique_readings() == expected, 5)
        assert agent.stats.readings_taken == len(taken)
        assert agent.stats.readings_acked == len(expected)
        births = [b for b, _retained in sub.births]
        assert [b.boot for b in births] == [agent.boot, agent.boot]
        assert births[1].seq >= births[0].seq
        assert agent.stats.rebirths == 1
        assert [d.clean for d in sub.deaths] == [True]
        seqs = sorted(seq for boot, seq in sub.message_keys() if boot == agent.boot)
        assert seqs == list(range(len(seqs)))
        assert sub.health, "health envelopes published"
        assert sub.undecodable == 0
        assert agent.stats.queue_readings == 0
    finally:
        sub.stop()


def test_retained_birth_reaches_a_late_subscriber(tmp_path: Path, mosquitto: Mosquitto) -> None:
    path = write_config(tmp_path, mosquitto.url)
    agent = Agent(load_agent_config(path), path, source_factory=fake_factory)
    late: list[Subscriber] = []

    def script() -> None:
        assert wait_for(lambda: agent.stats.births >= 1, 5)
        late.append(Subscriber(mosquitto.host, mosquitto.port, client_id="late").start())
        assert wait_for(lambda: bool(late[0].births), 5)

    asyncio.run(run_agent_while(agent, script))
    birth, retained = late[0].births[0]
    assert retained
    assert birth.boot == agent.boot
    late[0].stop()
