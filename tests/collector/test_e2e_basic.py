"""The minimal path with real services: subscribe, decode with birth, write, ack."""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest

from roadpulse.services import Influxd, Mosquitto, count_readings
from tests.collector.conftest import running, wait_for
from tests.collector.traffic import Publisher, boot_id, collector_toml, make_batch, make_birth


@pytest.mark.slow
def test_birth_then_data_lands_in_influx(tmp_path: Path, mosquitto: Mosquitto, influxd: Influxd) -> None:
    from collector.config import load_collector_config
    from collector.run import Collector

    config = load_collector_config(collector_toml(tmp_path, mosquitto.url, influxd.url))
    birth = make_birth("gw-1", boot_id())
    publisher = Publisher(mosquitto.url)
    publisher.birth(birth)

    async def scenario() -> Collector:
        collector = Collector(config)
        async with running(collector):
            sent = await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(40)])
            await wait_for(lambda: collector.stats.readings_written >= sent)
            assert collector.http_port
            body = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{collector.http_port}/metrics").read())
            assert b"roadpulse_collector_readings_written_total" in body
            # One latency observation per write so far (more writes may follow the fetch).
            counts = [line for line in body.decode().splitlines()
                      if line.startswith("roadpulse_collector_write_seconds_count{")]
            assert len(counts) == 1
            assert 1 <= int(counts[0].rsplit(" ", 1)[1]) <= collector.stats.batches_written
            assert b"roadpulse_collector_batch_lines_bucket{" in body
            health = await asyncio.to_thread(
                lambda: urllib.request.urlopen(f"http://127.0.0.1:{collector.http_port}/healthz").read())
            assert json.loads(health)["ok"] is True
            await asyncio.sleep(1.2)  # one self-metrics interval
        return collector

    collector = asyncio.run(scenario())
    publisher.close()
    assert count_readings(influxd.url, "roadpulse") == 40 * 50
    own = influxd.query("SELECT last(readings_written) FROM roadpulse_collector", "roadpulse")
    assert own["results"][0]["series"][0]["values"][0][1] > 0
    assert collector.stats.dead_letters == 0
    assert collector.stats.messages_in >= 41
