"""Run a scenario through the whole pipeline (simulator -> agent -> MQTT -> collector -> InfluxDB),
as `roadpulse demo` does, with health and self-metrics every second so a short run has them."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from agent.config import load_agent_config
from agent.run import Agent
from collector.config import load_collector_config
from collector.run import Collector
from firmware_sim.runner import Simulator, load_scenario
from roadpulse.demo import InfluxTarget, _agent_toml, _collector_toml


@dataclass
class Run:
    sent: int = 0
    # Wall-clock ms: polling started, polling stopped (agent asked to stop), collector stopped.
    started_ms: int = 0
    agent_stopped_ms: int = 0
    ended_ms: int = 0
    marks: dict[str, int] = field(default_factory=dict)


def now_ms() -> int:
    return int(time.time() * 1000)


async def run(scenario: Path, work: Path, mqtt_url: str, influx_url: str, db: str, *, seconds: float,
              during: Callable[[Run], Awaitable[None]] | None = None, linger_s: float = 4.0,
              agent_mqtt_url: str | None = None, agent_sections: Mapping[str, str] | None = None) -> Run:
    """Poll for `seconds`, stop the agent (its death is sent), keep the collector `linger_s` longer.

    `agent_mqtt_url`: the agent's broker, when it is not the collector's (a proxy in between);
    `agent_sections`: section name -> extra lines of the agent's config (`{"queue": "max_bytes = 65536"}`)."""
    result = Run()
    async with Simulator(load_scenario(scenario), truth_path=work / "truth.jsonl") as sim:
        agent_toml = _agent_toml(work, sim.endpoints, agent_mqtt_url or mqtt_url, 1.0).replace(
            "[agent]\n", "[agent]\nhealth_interval_s = 1.0\n", 1)
        for section, lines in (agent_sections or {}).items():
            header = f"[{section}]\n"
            agent_toml = (agent_toml.replace(header, f"{header}{lines}\n", 1) if header in agent_toml
                          else f"{agent_toml}\n{header}{lines}\n")
        collector_toml = _collector_toml(work, mqtt_url, InfluxTarget(influx_url, "v1", db)).replace(
            "[collector]\n", "[collector]\nself_metrics_interval_s = 1.0\n", 1)
        (work / "agent.toml").write_text(agent_toml)
        (work / "collector.toml").write_text(collector_toml)

        def taken(readings: list[object]) -> None:
            result.sent += len(readings)

        agent = Agent(load_agent_config(work / "agent.toml"), work / "agent.toml", on_taken=taken)
        collector = Collector(load_collector_config(work / "collector.toml"))
        stop_agent, stop_collector = asyncio.Event(), asyncio.Event()

        async def drive() -> None:
            result.started_ms = now_ms()
            if during is not None:
                await during(result)
            remaining = seconds - (now_ms() - result.started_ms) / 1000
            await asyncio.sleep(max(0.0, remaining))
            result.agent_stopped_ms = now_ms()
            stop_agent.set()
            await asyncio.sleep(linger_s)
            stop_collector.set()

        async with asyncio.TaskGroup() as tg:
            tg.create_task(agent.run(stop_agent), name="live.agent")
            tg.create_task(collector.run(stop_collector), name="live.collector")
            tg.create_task(drive(), name="live.drive")
        result.ended_ms = now_ms()
    return result
