"""sim → agent → mosquitto → collector → influxd, all real, checked reading by reading.

Every reading the agent took must be in InfluxDB exactly once, with its value,
its tags and its own timestamp; and the simulator must have served that value.
"""

from __future__ import annotations

import asyncio
import json
import math
from pathlib import Path
from typing import Any

import pytest

from roadpulse.services import Influxd, Mosquitto, count_readings
from roadpulse.wire import MetricDef, Quality, Reading

SCENARIO = Path(__file__).resolve().parent.parent / "config" / "scenarios" / "demo.toml"


def _agent_toml(work: Path, endpoints: list[Any], mqtt_url: str) -> str:
    from roadpulse.demo import _agent_toml as build

    return build(work, endpoints, mqtt_url, 1.0)


def _collector_toml(work: Path, mqtt_url: str, influx_url: str) -> str:
    from roadpulse.demo import InfluxTarget
    from roadpulse.demo import _collector_toml as build

    return build(work, mqtt_url, InfluxTarget(influx_url, "v1", "roadpulse"))


Key = tuple[str, frozenset[tuple[str, str]], str, int]


def _stored_points(influxd: Influxd, metrics: list[MetricDef]) -> dict[Key, Any]:
    """(measurement, tag set, field, ts) -> value, for every stored field of our measurements."""
    stored: dict[Key, Any] = {}
    for measurement in sorted({m.measurement for m in metrics}):
        tag_body = influxd.query(f'SHOW TAG KEYS FROM "{measurement}"', "roadpulse")
        tag_keys = {v[0] for v in tag_body["results"][0]["series"][0]["values"]}
        body = influxd.query(f'SELECT * FROM "{measurement}"', "roadpulse")
        for series in body["results"][0].get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                tags = frozenset((k, v) for k, v in row.items() if k in tag_keys and v is not None)
                for column, value in row.items():
                    if value is None or column == "time" or column in tag_keys or column.endswith("_q"):
                        continue
                    key = (measurement, tags, column, int(row["time"]))
                    assert key not in stored, f"stored twice: {key}"
                    stored[key] = value
    return stored


def _field_of(metric: MetricDef, reading: Reading) -> str:
    return metric.field if reading.value is not None else f"{metric.field}_err"


@pytest.mark.slow
def test_every_reading_arrives_once_with_value_tags_and_time(
    tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd
) -> None:
    from agent.config import load_agent_config
    from agent.run import Agent
    from collector.config import load_collector_config
    from collector.run import Collector
    from firmware_sim.runner import Simulator, load_scenario

    taken: list[Reading] = []

    async def scenario() -> Agent:
        async with Simulator(load_scenario(SCENARIO), truth_path=tmp_path / "truth.jsonl") as sim:
            agent_path = tmp_path / "agent.toml"
            agent_path.write_text(_agent_toml(tmp_path, sim.endpoints, mosquitto.url))
            collector_path = tmp_path / "collector.toml"
            collector_path.write_text(_collector_toml(tmp_path, mosquitto.url, influxd.url))
            agent = Agent(load_agent_config(agent_path), agent_path, on_taken=taken.extend)
            collector = Collector(load_collector_config(collector_path))
            stop_agent, stop_collector = asyncio.Event(), asyncio.Event()

            async def drive() -> None:
                await asyncio.sleep(5.5)
                stop_agent.set()
                for _ in range(100):
                    if count_readings(influxd.url, "roadpulse") >= len(taken):
                        break
                    await asyncio.sleep(0.2)
                stop_collector.set()

            async with asyncio.TaskGroup() as tg:
                tg.create_task(agent.run(stop_agent), name="test.agent")
                tg.create_task(collector.run(stop_collector), name="test.collector")
                tg.create_task(drive(), name="test.drive")
            return agent

    agent = asyncio.run(asyncio.wait_for(scenario(), 90))
    metrics = {m.alias: m for m in agent.catalog.metrics}
    devices = {m.device for m in metrics.values()}
    assert len(devices) >= 2, "the demo scenario has a Modbus TCP and a serial device"
    assert len(taken) >= 4 * len(metrics), f"only {len(taken)} readings taken"
    good = [r for r in taken if r.quality == Quality.GOOD]
    assert len(good) >= 0.9 * len(taken), "the demo scenario injects no faults"

    stored = _stored_points(influxd, list(metrics.values()))
    assert len(stored) == len(taken), "every reading once, nothing extra"
    for reading in taken:
        metric = metrics[reading.alias]
        tags = frozenset({**metric.tags, "gateway": "demo-gw-1", "device": metric.device}.items())
        key = (metric.measurement, tags, _field_of(metric, reading), reading.ts_ms)
        assert key in stored, f"missing {key}"
        value = stored[key]
        if reading.value is None:
            assert value == reading.reason, key
        elif isinstance(reading.value, float):
            assert math.isclose(value, reading.value, rel_tol=1e-6), key
        else:
            assert value == reading.value, key
    assert count_readings(influxd.url, "roadpulse") == len(taken)

    # The values came from the simulator: each good value is one the simulator served for that point.
    served: dict[tuple[str, str], list[Any]] = {}
    for line in (tmp_path / "truth.jsonl").read_text().splitlines():
        row = json.loads(line)
        served.setdefault((row["device_id"], row["point"]), []).append(row["value"])
    point_of = {
        alias: (entry.device.id, name) for entry in agent.catalog.devices for name, alias in entry.aliases.items()
    }
    checked = 0
    for reading in good:
        candidates = served.get(point_of[reading.alias], [])
        assert any(_same(reading.value, v) for v in candidates), (point_of[reading.alias], reading.value, candidates)
        checked += 1
    assert checked == len(good)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return b is not None and a is not None and math.isclose(float(a), float(b), rel_tol=1e-4, abs_tol=1e-6)
    return bool(a == b)
