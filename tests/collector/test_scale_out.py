"""Three collectors share the stream through $share; one is SIGKILLed mid-stream; nothing is lost."""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from roadpulse.services import Influxd, Mosquitto, count_readings
from tests.collector.conftest import start_collector_process, stop_collector_process, wait_until
from tests.collector.traffic import Publisher, boot_id, collector_toml, make_batch, make_birth

MESSAGES = 300


@pytest.mark.slow
def test_three_collectors_one_killed_every_reading_stored(tmp_path: Path, mosquitto: Mosquitto,
                                                          influxd: Influxd) -> None:
    births = [make_birth(f"gw-{g}", boot_id()) for g in range(3)]
    publisher = Publisher(mosquitto.url)
    for birth in births:
        publisher.birth(birth)
    configs = [collector_toml(tmp_path, mosquitto.url, influxd.url, client_id=f"c{i}", share_group="collectors")
               for i in range(3)]
    procs = [start_collector_process(cfg, tmp_path / f"c{i}.log") for i, cfg in enumerate(configs)]
    batches = [make_batch(births[s % 3], s // 3) for s in range(MESSAGES)]
    feeder = threading.Thread(target=publisher.data, args=(batches,), kwargs={"pace_s": 0.005}, name="feeder")
    total = MESSAGES * 50

    def count() -> int:
        return count_readings(influxd.url, "roadpulse")

    try:
        wait_until(lambda: all((tmp_path / f"c{i}-data" / "births").exists() for i in range(3)), 15,
                   "collectors up")
        time.sleep(0.5)
        feeder.start()
        wait_until(lambda: count() > 2000, 15, "some data written")
        procs[1].send_signal(signal.SIGKILL)
        procs[1].wait()
        feeder.join()
        # Mosquitto keeps the killed member's in-flight (unacked) messages in its persistent
        # session rather than handing them to the other members; they arrive when it returns.
        time.sleep(3.0)
        stored_without_it = count()
        procs[1] = start_collector_process(configs[1], tmp_path / "c1.log")
        wait_until(lambda: count() >= total, 40, "every reading stored")
    finally:
        for proc in procs:
            stop_collector_process(proc)
        publisher.close()
    print(f"stored while c1 was down: {stored_without_it} of {total}")
    assert count() == total
    assert stored_without_it < total  # the killed member's share really waited for it




@pytest.mark.slow
def test_clean_stop_of_one_member_hands_its_share_to_the_others(tmp_path: Path, mosquitto: Mosquitto,
                                                                influxd: Influxd) -> None:
    """SIGTERM leaves the share before disconnecting, so the rest get everything without it."""
    births = [make_birth(f"gw-{g}", boot_id()) for g in range(2)]
    publisher = Publisher(mosquitto.url)
    for birth in births:
        publisher.birth(birth)
    configs = [collector_toml(tmp_path, mosquitto.url, influxd.url, client_id=f"c{i}", share_group="collectors")
               for i in range(2)]
    procs = [start_collector_process(cfg, tmp_path / f"c{i}.log") for i, cfg in enumerate(configs)]
    batches = [make_batch(births[s % 2], s // 2) for s in range(200)]
    feeder = threading.Thread(target=publisher.data, args=(batches,), kwargs={"pace_s": 0.005}, name="feeder")
    try:
        wait_until(lambda: all((tmp_path / f"c{i}-data" / "births").exists() for i in range(2)), 15, "up")
        time.sleep(0.5)
        feeder.start()
        wait_until(lambda: count_readings(influxd.url, "roadpulse") > 1000, 15, "some data written")
        stop_collector_process(procs[1])
        feeder.join()
        wait_until(lambda: count_readings(influxd.url, "roadpulse") >= 200 * 50, 20, "all stored by c0")
    finally:
        for proc in procs:
            stop_collector_process(proc)
        publisher.close()
    assert count_readings(influxd.url, "roadpulse") == 200 * 50
