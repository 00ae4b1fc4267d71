"""The private-service fixtures really start and stop real processes."""

from __future__ import annotations

import urllib.request

import pytest

from roadpulse.services import Influxd, Mosquitto, count_readings, pid_alive


@pytest.mark.slow
def test_private_services_answer_and_stop(mosquitto: Mosquitto, influxd: Influxd) -> None:
    assert mosquitto.running
    assert influxd.running
    body = (
        b"traffic,device=a volume=3i 1700000000000\n"
        b'traffic,device=b speed=3.5,speed_q="uncertain" 1700000000000'
    )
    req = urllib.request.Request(f"{influxd.url}/write?db=roadpulse&precision=ms", data=body, method="POST")
    with urllib.request.urlopen(req) as resp:
        assert resp.status == 204
    # Two readings: the quality field does not count as one.
    assert count_readings(influxd.url, "roadpulse") == 2
    pid = influxd.pid
    assert pid is not None
    influxd.stop()
    assert not pid_alive(pid)
