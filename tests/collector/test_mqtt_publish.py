"""Our lean PUBLISH parsing and batched PUBACKs agree with paho's own decoder and encoder."""

from __future__ import annotations

import struct
from itertools import accumulate

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt._packet import decode_publish
from paho.mqtt.client import MQTTv5
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.exception import MalformedPacket
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from collector.leanclient import LeanClient, puback_packets
from collector.mqtt import split_publish


def _packet(topic: bytes, qos: int, mid: int, payload: bytes, props: Properties | None) -> bytes:
    body = struct.pack("!H", len(topic)) + topic
    if qos:
        body += struct.pack("!H", mid)
    body += props.pack() if props is not None else b"\x00"
    return body + payload


_USER_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=200)


@settings(max_examples=200, deadline=None)
@given(topic=st.binary(min_size=1, max_size=80), qos=st.sampled_from([0, 1]), mid=st.integers(1, 65535),
       payload=st.binary(max_size=600), with_props=st.booleans(), user=_USER_TEXT)
def test_split_publish_matches_paho(topic: bytes, qos: int, mid: int, *, payload: bytes, with_props: bool,
                                    user: str) -> None:
    props = None
    if with_props:
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        props.UserProperty = ("k", user)
        props.MessageExpiryInterval = 60
    header = 0x30 | (qos << 1)
    packet = _packet(topic, qos, mid if qos else 0, payload, props)
    reference = decode_publish(header, packet, MQTTProtocolVersion.MQTTv5)
    assert split_publish(header, packet) == (reference.topic, reference.qos, reference.mid, reference.payload)


def test_truncated_packet_is_an_error() -> None:
    with pytest.raises(IndexError):
        split_publish(0x32, b"\x00\x05abc")


def _framed(header: int, body: bytes) -> bytes:
    """A whole MQTT packet: fixed header byte, remaining length (variable byte integer), body."""
    length, out = len(body), bytearray([header])
    while True:
        byte, length = length & 0x7F, length >> 7
        out.append(byte | (0x80 if length else 0))
        if not length:
            return bytes(out) + body


def _lean_client(buffer: bytes) -> tuple[LeanClient, list[tuple[bytes, int, int, bytes]]]:
    got: list[tuple[bytes, int, int, bytes]] = []
    client = LeanClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=MQTTv5, manual_ack=True)
    client.publish_handler = lambda *args: got.append(args)
    client._rbuf, client._rpos = buffer, 0
    return client, got


@settings(max_examples=100, deadline=None)
@given(messages=st.lists(st.tuples(st.binary(min_size=1, max_size=40), st.sampled_from([0, 1]),
                                   st.integers(1, 65535), st.binary(max_size=300), st.booleans()),
                         min_size=1, max_size=8),
       cut=st.integers(0, 40))
def test_publishes_in_buffer_hands_over_whole_packets_only(
        messages: list[tuple[bytes, int, int, bytes, bool]], cut: int) -> None:
    """Back-to-back PUBLISHes parsed in place: each complete one handed over as paho would decode it;
    a packet cut by the end of the buffer, and anything after a non-PUBLISH, is left for paho."""
    packets, expected = [], []
    for topic, qos, mid, payload, with_props in messages:
        props = None
        if with_props:
            props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
            props.MessageExpiryInterval = 60
        body = _packet(topic, qos, mid if qos else 0, payload, props)
        header = 0x30 | (qos << 1)
        packets.append(_framed(header, body))
        reference = decode_publish(header, body, MQTTProtocolVersion.MQTTv5)
        expected.append((reference.topic, reference.qos, reference.mid, reference.payload))
    whole = b"".join(packets)
    client, got = _lean_client(whole)
    assert client._publishes_in_buffer(client.publish_handler) == len(messages)  # type: ignore[arg-type]
    assert got == expected
    assert not client.buffered

    truncated = whole[: max(0, len(whole) - 1 - cut)]
    complete = sum(1 for end in accumulate(map(len, packets)) if end <= len(truncated))
    client, got = _lean_client(truncated)
    client._publishes_in_buffer(client.publish_handler)  # type: ignore[arg-type]
    assert got == expected[:complete]
    assert client._rpos == sum(map(len, packets[:complete]))  # the cut packet stays for paho

    pingresp = bytes([0xD0, 0x00])
    client, got = _lean_client(packets[0] + pingresp + whole)
    assert client._publishes_in_buffer(client.publish_handler) == 1  # type: ignore[arg-type]
    assert client._rbuf[client._rpos :].startswith(pingresp)


def test_acks_in_one_write_are_paho_pubacks_back_to_back() -> None:
    sent: list[bytes] = []
    client = LeanClient(CallbackAPIVersion.VERSION2, client_id="t", protocol=MQTTv5, manual_ack=True)
    client._packet_queue = lambda command, packet, mid, qos, info=None: sent.append(bytes(packet))  # type: ignore[method-assign]
    for mid in (1, 300, 65535):
        client.ack(mid, 1)
    one_by_one = b"".join(sent)
    sent.clear()
    client.ack_many([1, 300, 65535])
    assert sent == [one_by_one] == [puback_packets([1, 300, 65535])]


def test_a_malformed_publish_is_a_protocol_error_but_handler_errors_are_not_swallowed() -> None:
    client, got = _lean_client(_framed(0x32, b"\x00\x09abc\x00\x01\x00"))  # topic longer than the packet
    with pytest.raises(MalformedPacket):
        client._publishes_in_buffer(client.publish_handler)  # type: ignore[arg-type]
    assert got == []

    def broken(*_: object) -> None:
        raise ValueError("a bug in the handler")

    client, _ = _lean_client(_framed(0x32, _packet(b"t", 1, 7, b"x", None)))
    with pytest.raises(ValueError, match="a bug in the handler"):
        client._publishes_in_buffer(broken)
