"""The agent's health carries its end-to-end delivery counters, so operators see confirmations stall."""

from __future__ import annotations

from pathlib import Path

from agent.config import load_agent_config
from agent.health import ProcessSampler
from agent.queue import MemoryQueue
from agent.run import Agent
from roadpulse.wire import Birth, DataBatch, Reading, decode
from roadpulse.wire.confirm import Confirmation
from tests.agent_core.helpers import write_config


def _health(agent: Agent, tmp_path: Path) -> dict[str, int | float | str | None]:
    assert agent.outbox is not None
    birth = decode(agent.outbox.birth())
    assert isinstance(birth, Birth)
    names = {m.alias: m for m in birth.metrics}
    health = decode(agent.health_payload(ProcessSampler(tmp_path)))
    assert isinstance(health, DataBatch)
    return {names[r.alias].field: r.value for r in health.readings if names[r.alias].device == "agent"}


def _publish(agent: Agent) -> None:
    """What the publisher does with one record: make its payload, send it, the broker PUBACKs."""
    assert agent.outbox is not None
    tx = agent.outbox.begin()
    agent.outbox.payload(tx.records[0], replay=False)
    agent.outbox.end(tx, acked=True)


def test_health_reports_confirmed_resent_and_held(tmp_path: Path) -> None:
    path = write_config(tmp_path, "mqtt://127.0.0.1:1", delivery="end-to-end")
    agent = Agent(load_agent_config(path), path)
    intake = agent.attach(MemoryQueue(max_bytes=1 << 20))
    outbox = agent.outbox
    assert outbox is not None
    for n in range(3):  # three sealed batches: seqs 0, 1, 2
        intake.take([Reading(0, 1_800_000_000_000 + n, n), Reading(1, 1_800_000_000_000 + n, n)])
        intake.seal_all()
        intake.commit()
    for _ in range(3):
        _publish(agent)  # PUBACKed: in flight, held until confirmed
    assert outbox.requeue_all() == 3  # a reconnect: all go back in line
    for _ in range(3):
        _publish(agent)  # sent again: three resends
    outbox.confirm(Confirmation(agent.topics.gateway, 0, {agent.boot: [(0, 1)]}))

    fields = _health(agent, tmp_path)
    assert fields["readings_confirmed"] == 4
    assert fields["messages_resent"] == 3
    assert fields["confirmations"] == 1
    assert fields["unconfirmed_messages"] == 1
    assert fields["queue_readings"] == 2


def test_delivery_counters_are_zero_with_broker_delivery(tmp_path: Path) -> None:
    path = write_config(tmp_path, "mqtt://127.0.0.1:1", delivery="broker")
    agent = Agent(load_agent_config(path), path)
    intake = agent.attach(MemoryQueue(max_bytes=1 << 20))
    intake.take([Reading(0, 1_800_000_000_000, 1)])
    intake.seal_all()
    intake.commit()
    assert agent.outbox is not None
    _publish(agent)  # settled on the PUBACK
    fields = _health(agent, tmp_path)
    assert (fields["readings_confirmed"], fields["messages_resent"], fields["unconfirmed_messages"]) == (0, 0, 0)
    assert fields["queue_readings"] == 0
