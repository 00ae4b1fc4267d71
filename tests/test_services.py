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


def _client(broker: Mosquitto, client_id: str, received: list[bytes] | None = None) -> object:
    import paho.mqtt.client as mqtt
    from paho.mqtt.packettypes import PacketTypes
    from paho.mqtt.properties import Properties

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if received is not None:
        client.on_message = lambda _c, _u, msg: received.append(msg.payload)
    props = Properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = 3600
    client.connect(broker.host, broker.port, clean_start=False, properties=props)
    return client


def _pump(client: object, seconds: float) -> None:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        client.loop(0.05)  # type: ignore[attr-defined]


@pytest.mark.slow
def test_shipped_broker_settings_keep_sessions_across_a_restart(mosquitto: Mosquitto) -> None:
    """A persistent subscriber gets QoS 1 messages sent while it was away, even over a broker restart."""
    received: list[bytes] = []
    sub = _client(mosquitto, "keeper", received)
    sub.subscribe("t/#", qos=1)  # type: ignore[attr-defined]
    _pump(sub, 0.3)
    sub.disconnect()  # type: ignore[attr-defined]
    _pump(sub, 0.1)
    pub = _client(mosquitto, "sender")
    _pump(pub, 0.2)
    infos = [pub.publish("t/x", f"m{i}".encode(), qos=1) for i in range(1500)]  # type: ignore[attr-defined]
    _pump(pub, 1.0)
    assert all(i.is_published() for i in infos)
    pub.disconnect()  # type: ignore[attr-defined]
    mosquitto.restart()  # SIGTERM makes mosquitto save its sessions to disk
    sub = _client(mosquitto, "keeper", received)
    _pump(sub, 2.0)
    # More than Mosquitto's default max_queued_messages (1000): none dropped.
    assert sorted(received) == sorted(f"m{i}".encode() for i in range(1500))
