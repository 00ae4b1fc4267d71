"""End-to-end delivery against a real broker: PUBACK keeps, a confirmation settles, silence resends."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.run import Agent
from roadpulse.services import Mosquitto
from roadpulse.wire.confirm import Confirmation, encode_confirmation, to_ranges
from tests.agent_core.helpers import Subscriber, fake_factory, queued_keys, run_agent_while, wait_for, write_config


@pytest.mark.slow
def test_only_a_confirmation_settles_and_silence_resends_as_replay(tmp_path: Path, mosquitto: Mosquitto) -> None:
    path = write_config(tmp_path, mosquitto.url, devices=1, interval_s=0.1, delivery="end-to-end")
    path.write_text(path.read_text().replace('delivery = "end-to-end"',
                                             'delivery = "end-to-end"\nconfirm_timeout_s = 1.0\n'
                                             "confirm_timeout_max_s = 1.0"))
    agent = Agent(load_agent_config(path), path, source_factory=fake_factory)
    sub = Subscriber(mosquitto.host, mosquitto.port).start()
    seen: dict[str, object] = {}

    def script() -> None:
        assert wait_for(lambda: len(sub.data) >= 5, 10)
        first = sub.data[0]
        # PUBACKed long ago, never confirmed: still queued, and sent again marked as replay.
        assert wait_for(lambda: any(b.seq == first.seq and b.replay for b in list(sub.data)), 5)
        assert agent.stats.readings_confirmed == 0
        # Now confirm every seq the subscriber saw, as a collector would.
        with sub.lock:
            seqs = sorted({b.seq for b in sub.data})
        ack = Confirmation(agent.topics.gateway, 0, {agent.boot: to_ranges(seqs)})
        sub.client.publish(agent.topics.ack, encode_confirmation(ack), qos=1).wait_for_publish(5)
        assert wait_for(lambda: agent.stats.readings_confirmed >= len(seqs) * 3, 5), agent.stats
        # A confirmation for another gateway is refused and counted, not applied.
        other = Confirmation("someone-else", 0, {agent.boot: [(0, 10**6)]})
        before = agent.stats.bad_commands
        sub.client.publish(agent.topics.ack, encode_confirmation(other), qos=1).wait_for_publish(5)
        assert wait_for(lambda: agent.stats.bad_commands == before + 1, 5)
        seen["confirmed_seqs"] = seqs

    try:
        asyncio.run(run_agent_while(agent, script))
    finally:
        sub.stop()
    assert agent.stats.messages_resent >= 1  # counters are copied at refresh: read after the final one
    # What was confirmed is gone from the queue; what came later is still there (nobody confirmed it).
    left = queued_keys(agent.data_dir / "queue")
    assert left, "later batches were never confirmed, so they stay queued"
    confirmed = seen["confirmed_seqs"]
    assert isinstance(confirmed, list)
    assert agent.stats.readings_taken - agent.stats.readings_confirmed == len(left)


@pytest.mark.slow
def test_broker_mode_settles_on_puback(tmp_path: Path, mosquitto: Mosquitto) -> None:
    path = write_config(tmp_path, mosquitto.url, devices=1, interval_s=0.1, delivery="broker")
    agent = Agent(load_agent_config(path), path, source_factory=fake_factory)
    sub = Subscriber(mosquitto.host, mosquitto.port).start()

    def script() -> None:
        assert wait_for(lambda: len(sub.data) >= 5, 10)

    try:
        asyncio.run(run_agent_while(agent, script))
    finally:
        sub.stop()
    assert agent.stats.messages_resent == 0
    assert not queued_keys(agent.data_dir / "queue")
