"""A private mosquitto with TLS, a password file and the roadpulse ACL; certificates made per test run."""

from __future__ import annotations

import datetime as dt
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from roadpulse.provision.acl import broker_acl, password_line
from roadpulse.provision.certs import KeyPair, issue, make_ca
from roadpulse.services import BrokerSecurity, Mosquitto

PASSWORDS = {"gw-c": "gw-c-password-7f3a", "collector-1": "collector-password-91bd"}


@dataclass
class Pki:
    folder: Path
    ca: KeyPair
    other_ca: KeyPair

    def path(self, name: str) -> Path:
        return self.folder / name

    def write(self, name: str, pair: KeyPair) -> tuple[Path, Path]:
        cert, key = self.folder / f"{name}.crt", self.folder / f"{name}.key"
        cert.write_bytes(pair.cert_pem)
        key.write_bytes(pair.key_pem)
        key.chmod(0o600)
        return cert, key

    def client(self, name: str, **kwargs: Any) -> tuple[Path, Path]:
        return self.write(name, issue(self.ca, name, **kwargs))


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    pki = Pki(folder, make_ca("roadpulse test operator CA"), make_ca("somebody else's CA"))
    (folder / "ca.crt").write_bytes(pki.ca.cert_pem)
    (folder / "other-ca.crt").write_bytes(pki.other_ca.cert_pem)
    pki.write("broker", issue(pki.ca, "broker", server_names=["127.0.0.1", "localhost"]))
    for gateway in ("gw-a", "gw-b"):
        pki.client(gateway)
    past = dt.datetime.now(dt.UTC) - dt.timedelta(days=30)
    pki.client("gw-expired", not_before=past, not_after=past + dt.timedelta(days=1))
    pki.write("gw-foreign", issue(pki.other_ca, "gw-a"))  # right name, wrong signer
    return pki


@pytest.fixture(scope="module")
def secure_broker(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    folder = tmp_path_factory.mktemp("secure-broker")
    passwords = folder / "passwords"
    passwords.write_text("".join(password_line(u, p) + "\n" for u, p in PASSWORDS.items()))
    acl = folder / "acl"
    acl.write_text(broker_acl(["collector-1"]))
    broker = Mosquitto(folder, security=BrokerSecurity(pki.path("ca.crt"), pki.path("broker.crt"),
                                                       pki.path("broker.key"), passwords, acl))
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@dataclass
class Client:
    """A paho MQTT 5 client that records what it gets: CONNACK, PUBACK reason codes, messages."""

    paho: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    connack: Any = None
    pubacks: dict[int, Any] = field(default_factory=dict)
    subacks: dict[int, list[Any]] = field(default_factory=dict)
    messages: list[tuple[str, bytes]] = field(default_factory=list)
    acked: threading.Condition = field(default_factory=threading.Condition)

    @property
    def accepted(self) -> bool:
        """CONNACK success and still connected (a refused TLS 1.3 client certificate drops it just after)."""
        return self.connack is not None and not self.connack.is_failure and self.paho.is_connected()

    def publish(self, topic: str, payload: bytes = b"x", timeout: float = 5.0) -> Any:
        """QoS 1; the PUBACK's reason code (MQTT 5 tells a refused publish apart)."""
        info = self.paho.publish(topic, payload, qos=1)
        with self.acked:
            self.acked.wait_for(lambda: info.mid in self.pubacks, timeout)
        return self.pubacks.get(info.mid)

    def subscribe(self, topic: str, timeout: float = 5.0) -> list[Any]:
        _, mid = self.paho.subscribe(topic, qos=1)
        with self.acked:
            self.acked.wait_for(lambda: mid in self.subacks, timeout)
        return self.subacks.get(mid, [])

    def close(self) -> None:
        self.paho.disconnect()
        self.paho.loop_stop()


def connect(port: int, *, ca: Path | None, cert: Path | None = None, key: Path | None = None,
            username: str | None = None, password: str | None = None, client_id: str = "",
            timeout: float = 5.0) -> Client:
    """Connect over TLS (server certificate checked against `ca`). Raises ssl/OS errors of the handshake."""
    paho = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    client = Client(paho)
    context = ssl.create_default_context(cafile=str(ca) if ca else None)
    if cert and key:
        context.load_cert_chain(str(cert), str(key))
    paho.tls_set_context(context)
    if username:
        paho.username_pw_set(username, password)

    def on_connect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        client.connack = reason
        client.connected.set()

    def on_publish(_c: Any, _u: Any, mid: int, reason: Any, _p: Any) -> None:
        with client.acked:
            client.pubacks[mid] = reason
            client.acked.notify_all()

    def on_subscribe(_c: Any, _u: Any, mid: int, reasons: list[Any], _p: Any) -> None:
        with client.acked:
            client.subacks[mid] = reasons
            client.acked.notify_all()

    def on_disconnect(_c: Any, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if client.connack is None:
            client.connack = reason
        client.connected.set()

    paho.on_connect = on_connect
    paho.on_publish = on_publish
    paho.on_subscribe = on_subscribe
    paho.on_disconnect = on_disconnect
    paho.on_message = lambda _c, _u, msg: client.messages.append((msg.topic, msg.payload))
    paho.connect("127.0.0.1", port, keepalive=30)
    paho.loop_start()
    client.connected.wait(timeout)
    return client
