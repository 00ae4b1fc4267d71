"""A gateway restarts with a changed config while its earlier boot's backlog is still queued.

Whole pipeline, real broker and database: every reading of both boots ends up in InfluxDB,
decoded with the aliases of its own boot, and nothing goes to the dead letters, even when
the collector has lost its cache of births.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path

import pytest

from agent.config import load_agent_config
from agent.run import Agent
from collector.config import load_collector_config
from collector.run import Collector
from roadpulse.demo import InfluxTarget, _collector_toml
from roadpulse.services import Influxd, Mosquitto, count_readings
from roadpulse.wire import Reading
from tests.agent_core.helpers import fake_factory, wait_for, write_config

pytestmark = pytest.mark.slow


async def _agent_until(agent: Agent, readings: int) -> None:
    stop = asyncio.Event()

    async def drive() -> None:
        await asyncio.to_thread(wait_for, lambda: agent.stats.readings_taken >= readings, 15)
        stop.set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(agent.run(stop), name="agent")
        tg.create_task(drive(), name="drive")


def _fields(influxd: Influxd) -> dict[str, set[str]]:
    body = influxd.query("SHOW FIELD KEYS", "roadpulse")
    return {s["name"]: {v[0] for v in s["values"]} for s in body["results"][0].get("series", [])}


@pytest.mark.parametrize("lose_birth_cache", [False, True], ids=["cache-kept", "cache-lost"])
def test_backlog_of_an_earlier_boot_is_stored_with_its_own_aliases(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd, lose_birth_cache: bool
) -> None:
    collector_path = tmp_path / "collector.toml"
    collector_path.write_text(_collector_toml(tmp_path, mosquitto.url, InfluxTarget(influxd.url, "v1", "roadpulse")))

    # Boot A: two devices, broker down the whole time, so its birth is never published.
    mosquitto.stop()
    a_dir = tmp_path / "gw"
    path_a = write_config(a_dir, mosquitto.url, devices=2)
    taken: list[Reading] = []
    asyncio.run(_agent_until(Agent(load_agent_config(path_a), path_a, on_taken=taken.extend,
                                   source_factory=fake_factory), 60))
    taken_a = len(taken)

    mosquitto.start()
    if lose_birth_cache:
        shutil.rmtree(tmp_path / "collector", ignore_errors=True)

    # Boot B: a renamed device and an added one, so boot A's aliases mean other things now.
    path_b = write_config(a_dir, mosquitto.url, devices=3)
    path_b.write_text(path_b.read_text().replace('id = "dev0"', 'id = "dev9"'))
    agent_b = Agent(load_agent_config(path_b), path_b, on_taken=taken.extend, source_factory=fake_factory)
    collector = Collector(load_collector_config(collector_path))

    async def pipeline() -> None:
        stop_agent, stop_collector = asyncio.Event(), asyncio.Event()

        async def drive() -> None:
            await asyncio.to_thread(wait_for, lambda: agent_b.stats.readings_taken >= 90, 15)
            stop_agent.set()
            await asyncio.to_thread(
                wait_for, lambda: count_readings(influxd.url, "roadpulse") >= len(taken), 20, 0.2)
            stop_collector.set()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(collector.run(stop_collector), name="collector")
            tg.create_task(agent_b.run(stop_agent), name="agent")
            tg.create_task(drive(), name="drive")

    asyncio.run(asyncio.wait_for(pipeline(), 60))

    assert taken_a >= 60
    assert count_readings(influxd.url, "roadpulse") == len(taken)
    assert collector.stats.dead_letters == 0
    # dev0 existed only under boot A; dev9 only under boot B: both were decoded with their own birth.
    devices = influxd.query('SHOW TAG VALUES FROM "traffic" WITH KEY = "device"', "roadpulse")
    assert {v[1] for v in devices["results"][0]["series"][0]["values"]} == {"dev0", "dev1", "dev2", "dev9"}
    assert "volume" in _fields(influxd)["traffic"]
