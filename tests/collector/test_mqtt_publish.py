"""Our lean PUBLISH parsing agrees with paho's own decoder, properties or not."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt._packet import decode_publish
from paho.mqtt.enums import MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

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
