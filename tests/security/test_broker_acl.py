"""The broker as deployed: TLS, passwords, identity from the certificate, and the roadpulse ACL.

Each claim has a positive control in the same test (the allowed case works), so a refusal
cannot pass for a broken set-up.
"""

from __future__ import annotations

import contextlib
import ssl
import time
from collections.abc import Callable, Iterator

import pytest

from roadpulse.services import Mosquitto

from .conftest import PASSWORDS, Client, Pki, connect

pytestmark = pytest.mark.slow

NOT_AUTHORIZED = 135  # MQTT 5 reason code


def _refused(attempt: Callable[[], Client]) -> str:
    """Why the broker refused: a TLS error, a failed CONNACK or a dropped connection. Fails if accepted."""
    try:
        client = attempt()
    except (ssl.SSLError, OSError) as exc:
        return f"handshake: {exc}"
    try:
        time.sleep(0.3)  # TLS 1.3: a rejected client certificate is reported just after the handshake
        assert not client.accepted, "the broker accepted this client"
        return f"connack: {client.connack}"
    finally:
        client.close()


@contextlib.contextmanager
def clients(*made: Client) -> Iterator[tuple[Client, ...]]:
    try:
        for client in made:
            assert client.accepted, client.connack
        yield made
    finally:
        for client in made:
            client.close()


def gateway(pki: Pki, broker: Mosquitto, name: str, client_id: str = "") -> Client:
    cert, key = pki.path(f"{name}.crt"), pki.path(f"{name}.key")
    return connect(broker.mtls_port, ca=pki.path("ca.crt"), cert=cert, key=key, client_id=client_id)


def collector(pki: Pki, broker: Mosquitto) -> Client:
    return connect(broker.port, ca=pki.path("ca.crt"), username="collector-1", password=PASSWORDS["collector-1"])


def _wait_for(condition: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


def test_unauthenticated_clients_are_refused(pki: Pki, secure_broker: Mosquitto) -> None:
    ca = pki.path("ca.crt")
    print(_refused(lambda: connect(secure_broker.port, ca=ca)))
    print(_refused(lambda: connect(secure_broker.port, ca=ca, username="gw-c", password="wrong")))
    print(_refused(lambda: connect(secure_broker.port, ca=ca, username="nobody", password="x")))
    print(_refused(lambda: connect(secure_broker.mtls_port, ca=ca)))  # no client certificate
    with clients(connect(secure_broker.port, ca=ca, username="gw-c", password=PASSWORDS["gw-c"])):
        pass


def test_a_gateway_publishes_only_as_itself(pki: Pki, secure_broker: Mosquitto) -> None:
    # The client id is the device's choice and means nothing: gw-a calling itself gw-b is still gw-a.
    with clients(collector(pki, secure_broker), gateway(pki, secure_broker, "gw-a", client_id="gw-b")) as (c, a):
        assert c.subscribe("rp/v1/+/data")[0].value < 128
        assert a.publish("rp/v1/gw-a/data", b"mine").value < 128
        assert a.publish("rp/v1/gw-b/data", b"forged").value == NOT_AUTHORIZED
        assert a.publish("rp/v1/gw-b/birth", b"forged").value == NOT_AUTHORIZED
        assert a.publish("rp/v1/gw-a/cmd", b"to myself").value == NOT_AUTHORIZED
        assert a.publish("rp/v1/gw-a/extra", b"outside the layout").value == NOT_AUTHORIZED
        assert _wait_for(lambda: ("rp/v1/gw-a/data", b"mine") in c.messages)
        time.sleep(0.3)
        assert c.messages == [("rp/v1/gw-a/data", b"mine")]


def test_a_password_gateway_has_the_same_limits(pki: Pki, secure_broker: Mosquitto) -> None:
    ca = pki.path("ca.crt")
    with clients(connect(secure_broker.port, ca=ca, username="gw-c", password=PASSWORDS["gw-c"])) as (g,):
        assert g.publish("rp/v1/gw-c/health").value < 128
        assert g.publish("rp/v1/gw-a/health").value == NOT_AUTHORIZED


def test_a_gateway_reads_only_its_own_commands(pki: Pki, secure_broker: Mosquitto) -> None:
    with clients(collector(pki, secure_broker), gateway(pki, secure_broker, "gw-a"),
                 gateway(pki, secure_broker, "gw-b")) as (c, a, b):
        b.subscribe("rp/v1/gw-b/cmd")
        a.subscribe("rp/v1/gw-b/cmd")
        a.subscribe("rp/v1/+/cmd")
        a.subscribe("rp/v1/+/data")  # nor anybody's data
        assert c.publish("rp/v1/gw-b/cmd", b"rebirth").value < 128
        assert b.publish("rp/v1/gw-b/data", b"b's data").value < 128
        assert _wait_for(lambda: ("rp/v1/gw-b/cmd", b"rebirth") in b.messages)
        time.sleep(0.3)
        assert a.messages == []


def test_a_collector_cannot_publish_as_a_gateway(pki: Pki, secure_broker: Mosquitto) -> None:
    with clients(collector(pki, secure_broker)) as (c,):
        assert c.publish("rp/v1/gw-a/data").value == NOT_AUTHORIZED
        assert c.publish("rp/v1/gw-a/cmd").value < 128
        assert c.publish("rp/v1/gw-a/ack").value < 128  # end-to-end confirmations


def test_a_server_signed_by_another_ca_is_refused(pki: Pki, secure_broker: Mosquitto) -> None:
    reason = _refused(lambda: connect(secure_broker.port, ca=pki.path("other-ca.crt"), username="gw-c",
                                      password=PASSWORDS["gw-c"]))
    assert "certificate verify failed" in reason


def test_a_client_certificate_of_another_ca_is_refused(pki: Pki, secure_broker: Mosquitto) -> None:
    print(_refused(lambda: gateway(pki, secure_broker, "gw-foreign")))


def test_an_expired_client_certificate_is_refused(pki: Pki, secure_broker: Mosquitto) -> None:
    print(_refused(lambda: gateway(pki, secure_broker, "gw-expired")))
    with clients(gateway(pki, secure_broker, "gw-a")):
        pass


def test_collectors_scale_out_through_shared_subscriptions_under_the_acl(pki: Pki, secure_broker: Mosquitto) -> None:
    with clients(collector(pki, secure_broker), gateway(pki, secure_broker, "gw-a")) as (c, a):
        assert c.subscribe("$share/collectors/rp/v1/+/data")[0].value < 128
        assert a.publish("rp/v1/gw-a/data", b"shared").value < 128
        assert _wait_for(lambda: ("rp/v1/gw-a/data", b"shared") in c.messages)
