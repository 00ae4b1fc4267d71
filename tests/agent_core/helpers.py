"""Test helpers: a tiny profile and config, a fake Source, and a broker-side counting subscriber."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import paho.mqtt.client as mqtt

from agent.catalog import DeviceEntry
from agent.run import Agent
from agent.sources.base import SourceReading
from roadpulse.wire import Birth, DataBatch, Death, WireError, decode

PROFILE = """
driver = "modbus"
name = "test_vds"
measurement = "traffic"
[[registers]]
name = "volume"
address = 0
unit = "veh"
[[registers]]
name = "occupancy"
address = 1
scale = 0.5
unit = "%"
[[registers]]
name = "speed"
address = 2
unit = "km/h"
"""


def write_config(directory: Path, url: str, *, devices: int = 2, interval_s: float = 0.05,
                 gateway: str = "gw-test", queue_max_bytes: int = 4 * 1024 * 1024,
                 max_readings: int = 30, extra: str = "", delivery: str = "broker") -> Path:
    """`delivery`: "broker" by default, since these tests' consumer is a bare subscriber that never confirms."""
    (directory / "profiles").mkdir(parents=True, exist_ok=True)
    (directory / "profiles" / "test_vds.toml").write_text(PROFILE)
    lines = [
        "[agent]", f'gateway_id = "{gateway}"', 'data_dir = "data"', "health_interval_s = 0.5",
        "[mqtt]", f'url = "{url}"', "reconnect_max_s = 0.5", "keepalive_s = 5",
        "[publish]", f"max_readings = {max_readings}", "max_age_s = 0.1", "replay_messages_per_s = 200",
        f'delivery = "{delivery}"',
        "[queue]", f"max_bytes = {queue_max_bytes}", "commit_interval_s = 0.1",
    ]
    for i in range(devices):
        lines += ["[[devices]]", f'id = "dev{i}"', 'profile = "test_vds"', f"interval_s = {interval_s}",
                  'tcp = { host = "127.0.0.1", port = 1502 }']
    path = directory / "agent.toml"
    path.write_text("\n".join(lines) + "\n" + extra)
    return path


@dataclass
class FakeSource:
    """Counts up: every reading of one device is distinct, so the broker-side count is exact."""

    entry: DeviceEntry
    polls: int = 0

    async def connect(self) -> None:
        return None

    async def read(self) -> list[SourceReading]:
        self.polls += 1
        ts = time.time_ns() // 1_000_000
        return [SourceReading(name, self.polls if name != "occupancy" else self.polls * 0.5, ts)
                for name in self.entry.aliases]

    async def close(self) -> None:
        return None


def fake_factory(entry: DeviceEntry) -> FakeSource:
    return FakeSource(entry)


def reading_key(gateway: str, alias: int, ts_ms: int, value: object) -> str:
    return json.dumps([gateway, alias, ts_ms, value])


@dataclass
class Subscriber:
    """A paho subscriber with a persistent session, connected before the agent starts.

    With `retain_as_published` (MQTT 5) a retained message forwarded live keeps its retain flag,
    so a test sees whether the agent published it retained.
    """

    host: str
    port: int
    client_id: str = "test-counter"
    data: list[DataBatch] = field(default_factory=list)
    health: list[DataBatch] = field(default_factory=list)
    births: list[tuple[Birth, bool]] = field(default_factory=list)
    deaths: list[Death] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    undecodable: int = 0
    retain_as_published: bool = False
    # (t, boot) of every decoded message in arrival order.
    arrivals: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.retain_as_published:
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                      protocol=mqtt.MQTTv5)
            options = mqtt.SubscribeOptions(qos=1, retainAsPublished=True)
            self.client.on_connect = lambda c, *_: c.subscribe("rp/v1/#", options=options)
        else:
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                                      clean_session=False)
            self.client.on_connect = lambda c, *_: c.subscribe("rp/v1/#", qos=1)
        self.client.on_message = self._on_message

    def start(self) -> Subscriber:
        self.client.connect(self.host, self.port, keepalive=5)
        self.client.loop_start()
        wait_for(self.client.is_connected, 5)
        time.sleep(0.2)
        return self

    def stop(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()

    def _on_message(self, _c: object, _u: object, msg: mqtt.MQTTMessage) -> None:
        try:
            decoded = decode(msg.payload)
        except WireError:
            self.undecodable += 1
            return
        with self.lock:
            if isinstance(decoded, DataBatch):
                self.arrivals.append((decoded.kind, decoded.boot))
            elif isinstance(decoded, Birth | Death):
                self.arrivals.append(("birth" if isinstance(decoded, Birth) else "death", decoded.boot))
            if isinstance(decoded, DataBatch):
                (self.health if decoded.kind == "health" else self.data).append(decoded)
            elif isinstance(decoded, Birth):
                self.births.append((decoded, bool(msg.retain)))
            elif isinstance(decoded, Death):
                self.deaths.append(decoded)

    def unique_readings(self) -> set[str]:
        with self.lock:
            return {reading_key(b.gateway, r.alias, r.ts_ms, r.value) for b in self.data for r in b.readings}

    def message_keys(self) -> list[tuple[str, int]]:
        with self.lock:
            return [(b.boot, b.seq) for b in self.data]

    def reading_count(self) -> int:
        with self.lock:
            return sum(len(b.readings) for b in self.data)


def wait_for(condition: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(interval)
    return condition()


def queued_keys(queue_dir: Path) -> set[str]:
    """Readings still in an agent's queue after it stopped: persisted, to be sent at its next start."""
    from agent.queue import SegmentQueue

    queue = SegmentQueue.open(queue_dir, max_bytes=1 << 30)
    try:
        keys: set[str] = set()
        for record in queue.begin(10**9).records:
            batch = decode(record.payload)
            assert isinstance(batch, DataBatch)
            keys.update(reading_key(batch.gateway, r.alias, r.ts_ms, r.value) for r in batch.readings)
        return keys
    finally:
        queue.close()


async def run_agent_while(agent: Agent, script: Callable[[], None]) -> None:
    """Run the agent until `script` (in a thread) returns, then stop it cleanly."""
    stop = asyncio.Event()

    async def drive() -> None:
        await asyncio.to_thread(script)
        stop.set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(agent.run(stop), name="agent")
        tg.create_task(drive(), name="script")
