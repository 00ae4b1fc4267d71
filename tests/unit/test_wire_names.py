"""Births may only name what a store can hold and no line-protocol parser misreads (roadpulse.wire.names)."""

from __future__ import annotations

import msgpack
import pytest

from roadpulse.wire import WireError, decode, validate_gateway_id
from roadpulse.wire.names import MAX_NAME, name_problem, printable
from roadpulse.wire.topics import parse_topic

BOOT = "0123456789abcdef"


@pytest.mark.parametrize(
    ("name", "kind", "ok"),
    [
        ("traffic", "measurement", True), ("speed", "field", True), ("lane", "tag key", True),
        ("G15 N", "tag value", True), ("a,b=c d", "measurement", True), ("", "tag value", True),
        ("km/h", "tag value", True), ("_x", "tag value", True), ("#3", "tag value", True),
        ("km/h \"x\"", "tag value", False),
        ("f\"", "field", False), ("m\"", "measurement", False), ("k\"", "tag key", False),
        ("time", "measurement", True), ("time", "tag value", True), ("x" * MAX_NAME, "field", True),
        ("", "measurement", False), ("", "field", False), ("", "tag key", False),
        ("time", "field", False), ("time", "tag key", False),
        ("tf_q", "field", False), ("tf", "field", False), ("tf", "tag key", True),
        ("speed_q", "field", False), ("speed_err", "field", False),
        ("speed_q", "tag key", True), ("x_err", "measurement", True), ("quality", "field", True),
        ("#m", "measurement", False), ("_m", "measurement", False), ("_f", "field", False),
        ("_k", "tag key", False),
        ("m\\", "measurement", False), ("f\\", "field", False), ("k\\", "tag key", False),
        ("v\\", "tag value", False), ("a\\,b", "tag value", False),
        ("m\n", "measurement", False), ("f\rx", "field", False), ("k\tk", "tag key", False),
        ("v\x00", "tag value", False), ("v\x7f", "tag value", False), ("v\x85", "tag value", False),
        ("x" * (MAX_NAME + 1), "field", False), (7, "tag value", False), (None, "field", False),
    ],
)
def test_name_rules(name: object, kind: str, ok: bool) -> None:
    assert (name_problem(name, kind) is None) is ok


def test_printable_replaces_every_control_character() -> None:
    assert printable("a\nb\r\x00\x7f\x9fc\t") == "a\ufffdb\ufffd\ufffd\ufffd\ufffdc\ufffd"
    assert printable('quote " and \\ stay') == 'quote " and \\ stay'


def _birth(devices: object = (), metric: object = None, gateway: str = "g1") -> bytes:
    row = metric if metric is not None else [0, "d", "m", "f", "u", "f", {}]
    return bytes(msgpack.packb({"v": 1, "t": "birth", "gw": gateway, "boot": BOOT, "ts": 0, "seq": 0,
                                "devices": list(devices) if isinstance(devices, tuple) else devices,
                                "metrics": [row]}))


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        # The poison births of issue 16: each once crashed the collector's MQTT callback.
        (_birth([{"id": "d", "tags": "abc"}]), "bad-device"),
        (_birth([{"id": ["d"], "tags": {}}]), "bad-device"),
        (_birth([{"id": {"x": 1}}]), "bad-device"),
        (_birth([{"tags": {}}]), "bad-device"),
        (_birth(["d"]), "bad-device"),
        (_birth([{"id": "d", "tags": {"site": [1]}}]), "bad-device"),
        (_birth([{"id": "d", "tags": {"time": "x"}}]), "bad-name"),
        (_birth([{"id": "d", "tags": {"site": "a\\"}}]), "bad-name"),
        (_birth([{"id": "d", "tags": {1: "x"}}]), "bad-name"),
        (_birth([{"id": "d\n"}]), "bad-device"),
        # Injection through names: a trailing backslash, a comment line, reserved keys, newlines.
        (_birth(metric=[0, "d", "m", "f\\", "u", "s", {}]), "bad-name"),
        (_birth(metric=[0, "d", "m\\ =\"", "f", "u", "f", {}]), "bad-name"),
        (_birth(metric=[0, "d", "#m", "f", "u", "f", {}]), "bad-name"),
        (_birth(metric=[0, "d", "_m", "f", "u", "f", {}]), "bad-name"),
        (_birth(metric=[0, "d", "m", "time", "u", "f", {}]), "bad-name"),
        (_birth(metric=[0, "d", "m", "_value", "u", "f", {}]), "bad-name"),
        (_birth(metric=[0, "d", "m", "f", "u", "f", {"time": "1"}]), "bad-name"),
        (_birth(metric=[0, "d", "m", "f", "u", "f", {"k": "v\nm2 f=1 0"}]), "bad-name"),
        (_birth(metric=[0, "d\\", "m", "f", "u", "f", {}]), "bad-name"),
        (_birth(metric=[0, "d", "m\n", "f", "u", "f", {}]), "bad-name"),
        (_birth(metric=[[0], "d", "m", "f", "u", "f", {}]), "bad-metric"),
        (_birth(metric=[True, "d", "m", "f", "u", "f", {}]), "bad-metric"),
        (_birth(gateway="g1\n"), "bad-gateway"),
    ],
)
def test_poison_births_are_refused_with_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as info:
        decode(payload)
    assert info.value.reason == reason
    assert info.value.detail or reason == "bad-gateway"


def test_a_good_birth_with_every_kind_of_name_decodes() -> None:
    birth = decode(_birth([{"id": "d", "tags": {"site": "S 1", "kp": 12.5, "lanes": 3, "on": True}}],
                          [0, "d", "traffic", "speed", "km/h", "f", {"lane": "1"}]))
    assert birth.devices[0]["tags"]["kp"] == 12.5  # type: ignore[union-attr]


@pytest.mark.parametrize("gateway", ["g1\n", "g1\r", "\ng1", "g 1", "g/1", "", "g" * 65])
def test_gateway_ids_match_whole(gateway: str) -> None:
    with pytest.raises(ValueError, match="gateway id"):
        validate_gateway_id(gateway)
    assert parse_topic(f"rp/v1/{gateway}/data") is None
