"""Load mode: many virtual gateways publish protocol v1 straight to MQTT, bypassing field buses.

For collector benchmarks (e.g. 1,000 gateways × 50 sensors). Each gateway
publishes its retained birth first, then data batches at a fixed rate, QoS 1,
and a clean death at the end. The report says exactly what was sent and what
the broker acknowledged; `--out` writes every message with its readings.

paho-mqtt runs on our event loop through its socket callbacks (reader/writer
registration), so there are no network threads.
"""

from __future__ import annotations

import asyncio
import hashlib
import heapq
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from firmware_sim import noise
from roadpulse.wire import Birth, DataBatch, Death, MetricDef, Reading, Topics, encode_birth, encode_data, encode_death

ACK_WAIT_S = 15.0


class LoadError(Exception):
    """The broker could not be reached or refused the connection."""


@dataclass(frozen=True, slots=True)
class LoadPlan:
    mqtt_url: str = "mqtt://127.0.0.1:1883"
    gateways: int = 10
    sensors: int = 50
    rate: float = 1.0  # data messages per second per gateway
    duration_s: float = 10.0
    connections: int = 0  # 0: one per gateway, at most 64
    seed: int = 0
    prefix: str = "rp/v1"
    gateway_prefix: str = "loadgw"


@dataclass(slots=True)
class _Gateway:
    id: str
    boot: str
    topics: Topics
    metrics: list[MetricDef]
    seq: int = 0
    births: int = 0
    readings: int = 0


@dataclass(slots=True)
class _Link:
    """One MQTT connection driven by the event loop; carries one or more gateways."""

    client: mqtt.Client
    connected: asyncio.Future[int]
    pending: dict[int, tuple[str, str, int]] = field(default_factory=dict)
    acked: list[tuple[str, str, int]] = field(default_factory=list)
    # Set whenever nothing is waiting for a PUBACK.
    settled: asyncio.Event = field(default_factory=asyncio.Event)


def metrics_of(gateway: str, sensors: int) -> list[MetricDef]:
    """Ten sensors per virtual device, like a detector station's lanes and classes."""
    return [
        MetricDef(
            alias=j,
            device=f"{gateway}-dev{j // 10}",
            measurement="loadtest",
            field=f"s{j % 10}",
            unit="",
            type="f",
            tags={},
        )
        for j in range(sensors)
    ]


def value_of(seed: int, gateway: str, seq: int, alias: int) -> float:
    """Deterministic reading values, so a consumer can recompute them."""
    return round(100 * noise.unit(seed, gateway, seq, alias), 2)


def _attach(loop: asyncio.AbstractEventLoop, client: mqtt.Client) -> None:
    def on_open(c: mqtt.Client, _u: Any, sock: Any) -> None:
        loop.add_reader(sock, c.loop_read)

    def on_close(c: mqtt.Client, _u: Any, sock: Any) -> None:
        loop.remove_reader(sock)
        loop.remove_writer(sock)

    def on_register_write(c: mqtt.Client, _u: Any, sock: Any) -> None:
        loop.add_writer(sock, c.loop_write)

    def on_unregister_write(c: mqtt.Client, _u: Any, sock: Any) -> None:
        loop.remove_writer(sock)

    client.on_socket_open = on_open
    client.on_socket_close = on_close
    client.on_socket_register_write = on_register_write
    client.on_socket_unregister_write = on_unregister_write


async def _keepalive(links: list[_Link]) -> None:
    while True:
        for link in links:
            link.client.loop_misc()
        await asyncio.sleep(0.5)


def _connect(plan: LoadPlan, index: int, loop: asyncio.AbstractEventLoop, will: _Gateway | None) -> _Link:
    url = urlparse(plan.mqtt_url)
    if url.scheme != "mqtt" or not url.hostname:
        raise LoadError(f"unsupported MQTT URL {plan.mqtt_url!r}: use mqtt://host:port")
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"firmware-sim-load-{plan.seed}-{index}")
    client.max_inflight_messages_set(100)
    link = _Link(client, loop.create_future())

    def on_connect(_c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if not link.connected.done():
            link.connected.set_result(int(reason.value) if hasattr(reason, "value") else int(reason))

    def on_publish(_c: mqtt.Client, _u: Any, mid: int, _reason: Any, _p: Any) -> None:
        sent = link.pending.pop(mid, None)
        if sent is not None:
            link.acked.append(sent)
        if not link.pending:
            link.settled.set()

    client.on_connect = on_connect
    client.on_publish = on_publish
    if will is not None:
        death = Death(will.id, will.boot, int(time.time() * 1000), clean=False)
        client.will_set(will.topics.death, encode_death(death), qos=1)
    _attach(loop, client)
    try:
        client.connect(url.hostname, url.port or 1883, keepalive=30)
    except OSError as exc:
        raise LoadError(f"cannot connect to {plan.mqtt_url}: {exc}") from None
    return link


def _publish(link: _Link, topic: str, payload: bytes, retain: bool, record: tuple[str, str, int]) -> None:
    info = link.client.publish(topic, payload, qos=1, retain=retain)
    link.pending[info.mid] = record
    link.settled.clear()


async def run_load(plan: LoadPlan, out: Path | None = None) -> dict[str, Any]:
    """Publish for `plan.duration_s` and return the report of what was sent and acknowledged."""
    loop = asyncio.get_running_loop()
    gateways = []
    for g in range(plan.gateways):
        gid = f"{plan.gateway_prefix}-{g:05d}"
        boot = hashlib.sha256(f"{plan.seed}:{gid}:boot".encode()).hexdigest()[:16]
        gateways.append(_Gateway(gid, boot, Topics(gid, plan.prefix), metrics_of(gid, plan.sensors)))
    n_links = plan.connections or min(plan.gateways, 64)
    n_links = max(1, min(n_links, plan.gateways))
    links = [_connect(plan, i, loop, gateways[i] if n_links == plan.gateways else None) for i in range(n_links)]
    sink: IO[str] | None = out.open("w", encoding="utf-8") if out is not None else None
    sent = 0
    elapsed = 0.0
    try:
        for link in links:
            try:
                code = await asyncio.wait_for(link.connected, 10.0)
            except TimeoutError:
                raise LoadError(f"no CONNACK from {plan.mqtt_url} within 10 s") from None
            if code != 0:
                raise LoadError(f"broker refused the connection: reason {code}")
        async with asyncio.TaskGroup() as group:
            keepalive = group.create_task(_keepalive(links), name="load.keepalive")
            began = time.monotonic()
            sent = await _publish_all(plan, gateways, links, sink)
            # Wall time actually spent publishing: above duration_s when the publisher could not keep up.
            elapsed = time.monotonic() - began
            await _wait_acks(links)
            keepalive.cancel()
    finally:
        for link in links:
            link.client.disconnect()
        if sink is not None:
            sink.close()
    acked = [a for link in links for a in link.acked]
    unacked = [list(p) for link in links for p in link.pending.values()]
    return {
        "mqtt_url": plan.mqtt_url,
        "gateways": plan.gateways,
        "sensors": plan.sensors,
        "rate": plan.rate,
        "duration_s": plan.duration_s,
        "connections": n_links,
        "seed": plan.seed,
        "messages_sent": sent,
        "messages_acked": len(acked),
        "births": sum(g.births for g in gateways),
        "data_messages": sum(g.seq for g in gateways),
        "readings_sent": sum(g.readings for g in gateways),
        "publish_elapsed_s": round(elapsed, 3),
        "readings_per_s": round(sum(g.readings for g in gateways) / max(elapsed, 1e-9)),
        "unacked": unacked[:100],
        "per_gateway": {g.id: {"boot": g.boot, "data_messages": g.seq, "readings": g.readings} for g in gateways},
    }


async def _publish_all(plan: LoadPlan, gateways: list[_Gateway], links: list[_Link], sink: IO[str] | None) -> int:
    sent = 0
    start = time.monotonic()
    now_ms = int(time.time() * 1000)
    for i, gw in enumerate(gateways):
        birth = Birth(
            gw.id,
            gw.boot,
            0,
            now_ms,
            "firmware_sim-load",
            "load",
            [
                {"id": f"{gw.id}-dev{d}", "profile": "load", "driver": "load", "tags": {}}
                for d in range((plan.sensors + 9) // 10)
            ],
            gw.metrics,
        )
        _publish(links[i % len(links)], gw.topics.birth, encode_birth(birth), True, (gw.id, "birth", 0))
        gw.births += 1
        sent += 1
        if sink is not None:
            metrics = [[m.alias, m.device, m.measurement, m.field] for m in gw.metrics]
            sink.write(
                json.dumps({"gateway": gw.id, "kind": "birth", "boot": gw.boot, "seq": 0, "metrics": metrics}) + "\n"
            )
    period = 1 / plan.rate
    # Spread gateways over the period so the broker sees a steady stream, not bursts.
    due = [(start + period * i / len(gateways), i) for i in range(len(gateways))]
    heapq.heapify(due)
    while due:
        at, i = due[0]
        if at - start >= plan.duration_s:
            break
        delay = at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        elif sent % 32 == 0:
            # Behind schedule: still let the loop write the sockets and read PUBACKs, or
            # everything would pile up in paho's queue until the schedule ends.
            await asyncio.sleep(0)
        heapq.heapreplace(due, (at + period, i))
        gw = gateways[i]
        ts_ms = int(time.time() * 1000)
        readings = [Reading(m.alias, ts_ms, value_of(plan.seed, gw.id, gw.seq, m.alias)) for m in gw.metrics]
        batch = DataBatch(gw.id, gw.boot, gw.seq, ts_ms, readings)
        _publish(links[i % len(links)], gw.topics.data, encode_data(batch), False, (gw.id, "data", gw.seq))
        if sink is not None:
            sink.write(
                json.dumps(
                    {
                        "gateway": gw.id,
                        "kind": "data",
                        "boot": gw.boot,
                        "seq": gw.seq,
                        "ts_ms": ts_ms,
                        "readings": [[r.alias, r.value] for r in readings],
                    }
                )
                + "\n"
            )
        gw.seq += 1
        gw.readings += len(readings)
        sent += 1
    for i, gw in enumerate(gateways):
        death = Death(gw.id, gw.boot, int(time.time() * 1000), clean=True)
        _publish(links[i % len(links)], gw.topics.death, encode_death(death), False, (gw.id, "death", gw.seq))
        sent += 1
    return sent


async def _wait_acks(links: list[_Link]) -> None:
    try:
        async with asyncio.timeout(ACK_WAIT_S):
            for link in links:
                if link.pending:
                    await link.settled.wait()
    except TimeoutError:
        pass  # the report lists what stayed unacknowledged
