"""Every crash case of issue 16 through a real broker and a real collector: each is dead-lettered
once, and ingest goes on past the broker's in-flight window (no ack stalls behind a poison message)."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import msgpack
import pytest

from roadpulse.services import Influxd, Mosquitto, count_readings
from tests.collector.conftest import running, wait_for
from tests.collector.test_hostile import BOOT, POISON, T0, _poison_birth
from tests.collector.traffic import Publisher, boot_id, collector_toml, make_batch, make_birth


def _pack(obj: object) -> bytes:
    return bytes(msgpack.packb(obj))


@pytest.mark.slow
def test_poison_messages_never_stall_ingest(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    from collector.config import load_collector_config
    from collector.run import Collector

    path = collector_toml(tmp_path, mosquitto.url, influxd.url)
    # A small in-flight window: a stalled ack would stop deliveries after 20 messages.
    text = path.read_text().replace("session_expiry_s = 3600", "session_expiry_s = 3600\nreceive_maximum = 20")
    path.write_text(text)
    config = load_collector_config(path)
    birth = make_birth("gw-1", boot_id())
    publisher = Publisher(mosquitto.url)
    publisher.birth(birth)
    # Retained poison births, one gateway each (a retained birth replaces the one before it).
    for index, extra in enumerate(POISON):
        payload = _poison_birth(f"bad{index}", extra)
        publisher.publish(f"rp/v1/bad{index}/birth", payload, retain=True).wait_for_publish(10)
    # The injection of issue 16: a field name ending in `\` and a string holding another gateway's line.
    injection = _pack({"v": 1, "t": "birth", "gw": "evil", "boot": BOOT, "ts": T0, "seq": 0, "devices": [],
                       "metrics": [[0, "d", "m", "f\\", "u", "s", {}]]})
    publisher.publish("rp/v1/evil/birth", injection, retain=True).wait_for_publish(10)
    evil_data = _pack({"v": 1, "t": "data", "gw": "evil", "boot": BOOT, "seq": 1, "ts": T0, "bt": T0,
                       "r": [0, 0, "x\ntraffic,gateway=gw-1 speed=1 0\n"]})
    poison_count = len(POISON) + 1

    async def scenario() -> Collector:
        collector = Collector(config)
        async with running(collector):
            await wait_for(lambda: collector.stats.dead_letters >= poison_count, what="poison births dead-lettered")
            for _ in range(3):
                publisher.publish("rp/v1/evil/data", evil_data)
            sent = await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(60)])
            await wait_for(lambda: collector.stats.readings_written >= sent, what="every reading written")
            body = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{collector.http_port}/healthz").read())
            assert json.loads(body)["ok"] is True
            # A message whose ack never settles (what a poison birth did): /healthz turns unhealthy.
            limit = config.collector.unacked_max_age_s
            await wait_for(lambda: collector._ledger.pending == 0, what="the parked evil data dead-lettered")
            collector._ledger.arrive(65000, 1, now=time.monotonic() - limit - 1)  # a ticket left unsettled
            with pytest.raises(urllib.error.HTTPError) as answer:
                await asyncio.to_thread(
                    lambda: urllib.request.urlopen(f"http://127.0.0.1:{collector.http_port}/healthz").read())
            assert answer.value.code == 503
            collector._ledger.new_connection()  # as a reconnect would: the broker redelivers it
        # Reconnect: the retained poison births come again, and are not dead-lettered again.
        collector2 = Collector(config)
        async with running(collector2):
            await wait_for(lambda: collector2.stats.messages_in >= poison_count, what="retained births again")
            await asyncio.sleep(0.5)
        assert collector2.stats.dead_letters_repeated == 0  # a new process: remembered per process only
        return collector

    collector = asyncio.run(scenario())
    publisher.close()
    assert count_readings(influxd.url, "roadpulse") == 60 * 50
    assert collector.stats.decode_errors == 0
    # The evil data never had a birth: parked, then a dead letter; nothing of it reached gw-1's series.
    answer = influxd.query("SELECT count(*) FROM traffic WHERE gateway = 'gw-1'", "roadpulse")
    counts = answer["results"][0]["series"][0]["values"][0][1:]
    assert sum(int(v) for v in counts if v) == 60 * 50


@pytest.mark.slow
def test_retained_garbage_is_dead_lettered_once_per_process(tmp_path: Path, mosquitto: Mosquitto,
                                                            influxd: Influxd) -> None:
    from collector.config import load_collector_config
    from collector.run import Collector

    config = load_collector_config(collector_toml(tmp_path, mosquitto.url, influxd.url))
    publisher = Publisher(mosquitto.url)
    publisher.publish("rp/v1/bad/birth", b"\xc1garbage", retain=True).wait_for_publish(10)

    async def scenario() -> Collector:
        collector = Collector(config)
        async with running(collector):
            await wait_for(lambda: collector.stats.dead_letters >= 1)
            for _ in range(3):  # the broker delivers the retained message again on each reconnect
                collector._link._client.disconnect()  # a dropped connection
                await wait_for(lambda: not collector.stats.mqtt_connected, limit_s=10)
                await wait_for(lambda: collector.stats.mqtt_connected, limit_s=20)
            await wait_for(lambda: collector.stats.dead_letters_repeated >= 3, what="repeats recognised")
        return collector

    collector = asyncio.run(scenario())
    publisher.close()
    assert collector.stats.dead_letters == 1
