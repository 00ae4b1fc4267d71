"""At least once, with real mosquitto and influxd: outages, kills, restarts, garbage."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
import time
from pathlib import Path

import pytest

from roadpulse.services import Influxd, Mosquitto, count_readings
from roadpulse.wire import Topics
from tests.collector.conftest import (
    running,
    start_collector_process,
    stop_collector_process,
    wait_for,
    wait_until,
)
from tests.collector.traffic import Publisher, boot_id, collector_toml, make_batch, make_birth

DB = "roadpulse"


def _count(influxd: Influxd) -> int:
    return count_readings(influxd.url, DB)


@pytest.mark.slow
def test_influx_outage_spools_and_replays_everything(tmp_path: Path, mosquitto: Mosquitto,
                                                    influxd: Influxd) -> None:
    from collector.config import load_collector_config
    from collector.run import Collector

    config = load_collector_config(collector_toml(tmp_path, mosquitto.url, influxd.url))
    birth = make_birth("gw-1", boot_id())
    publisher = Publisher(mosquitto.url)
    publisher.birth(birth)
    collector = Collector(config)

    async def scenario() -> None:
        async with running(collector):
            sent = await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(30)])
            await wait_for(lambda: collector.stats.readings_written >= sent, what="first part written")
            await asyncio.to_thread(influxd.stop)
            sent += await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(30, 90)],
                                            pace_s=0.01)
            await wait_for(lambda: collector.stats.readings_spooled >= 60 * 50, what="outage spooled")
            assert collector.stats.spool_depth > 0
            assert not collector.stats.influx_up
            await asyncio.to_thread(influxd.start)
            sent += await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(90, 100)])
            await wait_for(lambda: collector.stats.readings_written >= sent, limit_s=40, what="replayed")
            await wait_for(lambda: collector.stats.spool_depth == 0, what="spool empty")

    asyncio.run(scenario())
    publisher.close()
    assert _count(influxd) == 100 * 50
    assert collector.stats.readings_replayed >= 60 * 50
    assert collector.stats.dead_letters == 0


@pytest.mark.slow
def test_full_spool_stops_acking_and_the_broker_holds(tmp_path: Path, mosquitto: Mosquitto,
                                                     influxd: Influxd) -> None:
    from collector.config import load_collector_config
    from collector.run import Collector

    config = load_collector_config(collector_toml(tmp_path, mosquitto.url, influxd.url, spool_max=1 << 16))
    birth = make_birth("gw-1", boot_id())
    publisher = Publisher(mosquitto.url)
    publisher.birth(birth)
    collector = Collector(config)

    async def scenario() -> None:
        async with running(collector):
            await asyncio.to_thread(influxd.stop)
            sent = await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(400)])
            await wait_for(lambda: collector.stats.spool_full, what="spool full")
            assert collector.stats.acks_pending > 0
            await asyncio.sleep(1.0)
            await asyncio.to_thread(influxd.start)
            await wait_for(lambda: collector.stats.readings_written >= sent, limit_s=60, what="all written")

    asyncio.run(scenario())
    publisher.close()
    assert _count(influxd) == 400 * 50


@pytest.mark.slow
def test_collector_sigkill_mid_stream_loses_nothing(tmp_path: Path, mosquitto: Mosquitto,
                                                   influxd: Influxd) -> None:
    config = collector_toml(tmp_path, mosquitto.url, influxd.url)
    birth = make_birth("gw-1", boot_id())
    publisher = Publisher(mosquitto.url)
    publisher.birth(birth)
    proc = start_collector_process(config, tmp_path / "c1.log")
    feeder = threading.Thread(
        target=publisher.data, args=([make_batch(birth, s) for s in range(300)],), kwargs={"pace_s": 0.005},
        name="feeder")
    try:
        wait_until((tmp_path / "c1-data" / "births").exists, 15, "collector up")
        time.sleep(0.5)
        feeder.start()
        wait_until(lambda: _count(influxd) > 2000, 15, "some data written")
        proc.send_signal(signal.SIGKILL)  # mid-stream: the feeder is still publishing
        proc.wait()
        stored_at_kill = _count(influxd)
        feeder.join()
        assert stored_at_kill < 300 * 50, "the kill came too late to test anything"
        proc = start_collector_process(config, tmp_path / "c1.log")
        wait_until(lambda: _count(influxd) >= 300 * 50, 40, "every reading stored")
    finally:
        stop_collector_process(proc)
        publisher.close()
    assert _count(influxd) == 300 * 50


@pytest.mark.slow
def test_broker_restart_loses_nothing(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    from collector.config import load_collector_config
    from collector.run import Collector

    config = load_collector_config(collector_toml(tmp_path, mosquitto.url, influxd.url))
    birth = make_birth("gw-1", boot_id())
    collector = Collector(config)

    async def scenario() -> None:
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(collector.run(stop), name="collector")
            publisher = Publisher(mosquitto.url)
            await asyncio.to_thread(publisher.birth, birth)
            await wait_for(lambda: collector.stats.mqtt_connected)
            await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(50)])
            publisher.close()
            await asyncio.to_thread(mosquitto.restart)
            await wait_for(lambda: collector._link.connects >= 2, what="collector reconnected")
            publisher = Publisher(mosquitto.url, client_id="test-publisher-2")
            await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(50, 100)])
            publisher.close()
            await wait_for(lambda: _count(influxd) >= 100 * 50, limit_s=30, what="all stored")
            stop.set()

    asyncio.run(scenario())
    assert _count(influxd) == 100 * 50


@pytest.mark.slow
def test_malformed_payloads_go_to_dead_letters_and_valid_data_is_stored(
        tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    import msgpack

    from collector.config import load_collector_config
    from collector.run import Collector

    config = load_collector_config(collector_toml(tmp_path, mosquitto.url, influxd.url, park_timeout_s=1.0))
    birth = make_birth("gw-1", boot_id())
    topics = Topics("gw-1")
    good = make_batch(birth, 0)
    bad_payloads: list[tuple[str, bytes]] = [
        (topics.data, b"\xc1\xc1 not msgpack"),
        (topics.data, msgpack.packb([1, 2, 3])),
        (topics.data, msgpack.packb({"v": 9, "t": "data"})),
        (topics.data, msgpack.packb({"v": 1, "t": "data", "gw": "gw-1", "boot": birth.boot, "seq": 1,
                                     "ts": 1, "bt": 1, "r": [1, 0]})),
        (Topics("gw-2").data, __import__("roadpulse.wire", fromlist=["encode_data"]).encode_data(good)),
        (topics.birth, b"\x93\x01\x02"),
        (topics.data, msgpack.packb({"v": 1, "t": "data", "gw": "gw-1", "boot": "deadbeefdeadbeef",
                                     "seq": 0, "ts": 1, "bt": 1, "r": [1, 0, 1.0]})),  # never born: no-birth
    ]
    collector = Collector(config)

    async def scenario() -> int:
        stop = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(collector.run(stop), name="collector")
            publisher = Publisher(mosquitto.url)
            await asyncio.to_thread(publisher.birth, birth)
            await wait_for(lambda: collector.stats.mqtt_connected)
            from roadpulse.wire import encode_data
            sent = 0
            for seq in range(60):
                batch = make_batch(birth, seq)
                publisher.publish(topics.data, encode_data(batch))
                sent += len(batch.readings)
                topic, payload = bad_payloads[seq % len(bad_payloads)]
                publisher.publish(topic, payload)
            try:
                await wait_for(lambda: collector.stats.readings_written >= sent, what="valid data")
                await wait_for(lambda: collector.stats.dead_letters >= 60, what="dead letters")
            except AssertionError as exc:
                raise AssertionError(f"{exc}; sent {sent}; {collector.stats}") from None
            await asyncio.sleep(0.5)
            publisher.close()
            stop.set()
            return sent

    sent = asyncio.run(scenario())
    assert _count(influxd) == sent
    assert collector.stats.dead_letters == 60
    assert collector.stats.rebirth_requests >= 1
    letters = [json.loads(line) for path in (tmp_path / "c1-data" / "deadletters").glob("*.jsonl")
               for line in path.read_text().splitlines()]
    assert len(letters) == 60
    reasons = {letter["reason"] for letter in letters}
    assert {"not-msgpack", "not-a-map", "bad-version", "bad-readings", "gateway-mismatch",
            "no-birth"} <= reasons
    assert all(letter.get("payload_b64") for letter in letters)
