"""A restart with a changed config while the backlog of the earlier boot is still queued.

The earlier boot's birth was never published (the broker was down all that boot long), and its
aliases mean something else under the new config. The agent sends that birth, not retained,
ahead of the earlier boot's data; the retained birth stays the current boot's.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from agent.birth import BirthStore
from agent.config import load_agent_config
from agent.run import Agent
from roadpulse.services import Mosquitto
from roadpulse.wire import Birth, Command, MetricDef, Reading, encode_command
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


def _keys(agent: Agent, readings: list[Reading]) -> set[str]:
    return {reading_key(agent.topics.gateway, r.alias, r.ts_ms, r.value) for r in readings}


def _meanings(metrics: list[MetricDef]) -> dict[int, tuple[str, str, str]]:
    return {m.alias: (m.device, m.measurement, m.field) for m in metrics}


def _boot_a_offline(tmp_path: Path, broker: Mosquitto) -> tuple[Agent, list[Reading]]:
    """Config A (dev0, dev1), run while the broker is down: everything stays queued under boot A."""
    broker.stop()
    path = write_config(tmp_path, broker.url, devices=2)
    taken: list[Reading] = []
    agent = Agent(load_agent_config(path), path, on_taken=taken.extend, source_factory=fake_factory)
    asyncio.run(run_agent_while(agent, lambda: wait_for(lambda: agent.stats.readings_taken >= 120, 10) and None))
    assert agent.stats.births == 0
    assert queued_keys(agent.data_dir / "queue") == _keys(agent, taken)
    assert BirthStore.open(agent.data_dir / "births").boots == [agent.boot]
    return agent, taken


def _config_b(tmp_path: Path, broker: Mosquitto, *, replay_per_s: int = 200) -> Path:
    """Config B: a device renamed and one added, so alias 0 is another device's and health moves."""
    path = write_config(tmp_path, broker.url, devices=3)
    text = path.read_text().replace('id = "dev0"', 'id = "dev9"')
    text = text.replace("replay_messages_per_s = 200", f"replay_messages_per_s = {replay_per_s}")
    path.write_text(text)
    return path


def test_backlog_of_an_earlier_boot_arrives_after_that_boots_birth(tmp_path: Path, mosquitto: Mosquitto) -> None:
    agent_a, taken_a = _boot_a_offline(tmp_path, mosquitto)
    mosquitto.start()
    sub = Subscriber(mosquitto.host, mosquitto.port, client_id="v5", retain_as_published=True).start()
    path = _config_b(tmp_path, mosquitto)
    taken_b: list[Reading] = []
    agent_b = Agent(load_agent_config(path), path, on_taken=taken_b.extend, source_factory=fake_factory)
    keys_a = _keys(agent_a, taken_a)

    def script() -> None:
        assert wait_for(lambda: keys_a <= sub.unique_readings() and len(taken_b) > 60, 15)
        time.sleep(0.3)

    try:
        asyncio.run(run_agent_while(agent_b, script))
        expected = (keys_a | _keys(agent_b, taken_b)) - queued_keys(agent_b.data_dir / "queue")
        assert wait_for(lambda: sub.unique_readings() == expected, 5)
        with sub.lock:
            births = list(sub.births)
            arrivals = list(sub.arrivals)
            data = list(sub.data)
    finally:
        sub.stop()

    # Boot A's birth, not retained, before any of boot A's data.
    births_a = [(b, retained) for b, retained in births if b.boot == agent_a.boot]
    assert births_a
    assert not any(retained for _, retained in births_a)
    assert arrivals.index(("birth", agent_a.boot)) < arrivals.index(("data", agent_a.boot))
    assert agent_b.stats.earlier_births == 1
    # Boot B's birth went out retained.
    assert any(retained for b, retained in births if b.boot == agent_b.boot)
    # Every reading decodes with the birth of its boot, to what its agent meant by the alias.
    by_boot: dict[str, Birth] = {b.boot: b for b, _ in births}
    meant = {agent_a.boot: _meanings(agent_a.catalog.metrics), agent_b.boot: _meanings(agent_b.catalog.metrics)}
    assert {batch.boot for batch in data} == {agent_a.boot, agent_b.boot}
    for batch in data:
        table = _meanings(by_boot[batch.boot].metrics)
        for reading in batch.readings:
            assert table[reading.alias] == meant[batch.boot][reading.alias]
    # ... which boot B's birth would have got wrong for boot A's readings.
    assert _meanings(by_boot[agent_b.boot].metrics)[0] != meant[agent_a.boot][0]
    # Boot A's records are gone, so is its stored birth.
    assert BirthStore.open(agent_b.data_dir / "births").boots == [agent_b.boot]
    # A collector that starts now learns boot B's birth from the retained message.
    late = Subscriber(mosquitto.host, mosquitto.port, client_id="late").start()
    try:
        assert wait_for(lambda: bool(late.births), 5)
        birth, retained = late.births[0]
        assert retained
        assert birth.boot == agent_b.boot
    finally:
        late.stop()


def test_rebirth_naming_a_boot_gets_that_boots_birth(tmp_path: Path, mosquitto: Mosquitto) -> None:
    agent_a, _ = _boot_a_offline(tmp_path, mosquitto)
    mosquitto.start()
    sub = Subscriber(mosquitto.host, mosquitto.port, client_id="v5", retain_as_published=True).start()
    # Replay at 1 message/s: boot A's records (and so its stored birth) stay while we ask.
    path = _config_b(tmp_path, mosquitto, replay_per_s=1)
    agent_b = Agent(load_agent_config(path), path, source_factory=fake_factory)

    def births_of(boot: str) -> list[bool]:
        with sub.lock:
            return [retained for b, retained in sub.births if b.boot == boot]

    def ask(boot: str) -> None:
        command = Command("rebirth", int(time.time() * 1000), "unknown boot", boot=boot)
        sub.client.publish(agent_b.topics.cmd, encode_command(command), qos=1)

    def script() -> None:
        # Connected, and boot A's birth went out ahead of its first replayed record.
        assert wait_for(lambda: len(births_of(agent_a.boot)) == 1 and len(births_of(agent_b.boot)) == 1, 10)
        ask(agent_a.boot)
        assert wait_for(lambda: len(births_of(agent_a.boot)) == 2, 5)
        ask("0123456789abcdef")  # never stored: the current birth instead
        assert wait_for(lambda: len(births_of(agent_b.boot)) == 2, 5)
        ask(agent_b.boot)
        assert wait_for(lambda: len(births_of(agent_b.boot)) == 3, 5)

    try:
        asyncio.run(run_agent_while(agent_b, script))
    finally:
        sub.stop()
    assert births_of(agent_a.boot) == [False, False]
    assert births_of(agent_b.boot) == [True, True, True]
    assert agent_b.stats.rebirths == 3
    # Boot A's backlog was not through yet: its birth is still stored for the next start.
    assert agent_a.boot in BirthStore.open(agent_b.data_dir / "births").boots
