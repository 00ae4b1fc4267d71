"""Data for a boot the collector has no birth for: parked, rebirth requested, decoded when the birth comes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from roadpulse.services import Influxd, Mosquitto, count_readings
from roadpulse.wire import Command, Topics, decode, encode_birth
from tests.collector.conftest import running, wait_for
from tests.collector.traffic import Publisher, boot_id, collector_toml, make_batch, make_birth


@pytest.mark.slow
def test_unknown_boot_triggers_rebirth_and_parked_data_is_stored(tmp_path: Path, mosquitto: Mosquitto,
                                                                 influxd: Influxd) -> None:
    from collector.config import load_collector_config
    from collector.run import Collector

    config = load_collector_config(collector_toml(tmp_path, mosquitto.url, influxd.url, park_timeout_s=5.0))
    birth = make_birth("gw-9", boot_id())
    publisher = Publisher(mosquitto.url)
    commands: list[Command] = []

    def on_command(client: object, userdata: object, message: object) -> None:
        command = decode(message.payload)  # type: ignore[attr-defined]
        assert isinstance(command, Command)
        commands.append(command)
        # The agent's answer: its birth again (not retained here, so only the rebirth teaches it).
        publisher.publish(Topics("gw-9").birth, encode_birth(birth))

    publisher.client.message_callback_add(Topics("gw-9").cmd, on_command)
    publisher.client.subscribe(Topics("gw-9").cmd, qos=1)
    collector = Collector(config)

    async def scenario() -> None:
        async with running(collector):
            await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(5)])
            await wait_for(lambda: collector.stats.readings_written >= 250, what="parked data stored")

    asyncio.run(scenario())
    publisher.close()
    assert commands
    assert commands[0].cmd == "rebirth"
    assert "unknown boot" in commands[0].reason
    assert collector.stats.rebirth_requests == 1
    assert collector.stats.dead_letters == 0
    assert count_readings(influxd.url, "roadpulse") == 250


def test_births_survive_a_restart(tmp_path: Path) -> None:
    from collector.births import BirthStore
    from collector.decode import Decoder, Kind
    from roadpulse.wire import encode_data

    store = BirthStore(tmp_path)
    births = [make_birth("gw-1", f"{i:016x}") for i in range(6)]
    for birth in births:
        store.save(birth, encode_birth(birth))
    decoder = Decoder()
    loaded = BirthStore(tmp_path).load()
    assert [b.boot for b in loaded] == [b.boot for b in births[-4:]]
    for birth in loaded:
        decoder.learn(birth)
    result = decoder.decode("gw-1", "data", encode_data(make_batch(births[-1], 0)))
    assert result.kind is Kind.LINES
