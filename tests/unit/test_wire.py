"""Wire protocol v1: round trips, compactness and the reason for every malformed payload."""

from __future__ import annotations

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from roadpulse.wire import (
    Birth,
    Command,
    DataBatch,
    Death,
    MetricDef,
    Quality,
    Reading,
    TimeFlag,
    Topics,
    WireError,
    decode,
    encode_birth,
    encode_command,
    encode_data,
    encode_death,
    engineering_values,
    parse_topic,
    scale_value,
    unscale_value,
)
from roadpulse.wire.topics import subscriptions

T0 = 1_764_400_000_000
BOOT = "0123456789abcdef"


def _batch(readings: list[Reading], **kw: object) -> DataBatch:
    return DataBatch("gw-k123", BOOT, 7, T0, readings, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [0, 1, 127, 128, -1, -32768, 65535, 2**40, -(2**40), 0.25, 16.0, 0.1, 1e300, -273.15, True, False, "Ant", "", None],
)
def test_value_round_trips_exactly(value: object) -> None:
    batch = _batch([Reading(3, T0, value)])  # type: ignore[arg-type]
    decoded = decode(encode_data(batch))
    assert isinstance(decoded, DataBatch)
    assert decoded.readings[0].value == value
    assert type(decoded.readings[0].value) is type(value)


def test_timestamps_are_deltas_and_may_go_backwards() -> None:
    readings = [Reading(1, T0, 1), Reading(2, T0, 2), Reading(1, T0 + 30_000, 3), Reading(2, T0 - 5, 4)]
    decoded = decode(encode_data(_batch(readings)))
    assert isinstance(decoded, DataBatch)
    assert [r.ts_ms for r in decoded.readings] == [T0, T0, T0 + 30_000, T0 - 5]


def test_quality_flags_and_replay_survive() -> None:
    readings = [Reading(1, T0, None, Quality.BAD, "timeout"), Reading(2, T0, 5, Quality.UNCERTAIN, "stale")]
    batch = _batch(readings, time_flags=TimeFlag.UNSYNCED, replay=True)
    decoded = decode(encode_data(batch))
    assert decoded == batch


def test_detector_station_costs_at_most_8_bytes_per_reading() -> None:
    # 4 lanes x (volume, occupancy %, speed km/h, 3 length classes) every 30 s, 10 polls per message.
    readings = []
    for poll in range(10):
        for lane in range(4):
            base = lane * 6
            values = [12 + lane, 8.5, 92, 10, 2, 0]
            readings += [Reading(base + i, T0 + poll * 30_000, v) for i, v in enumerate(values)]
    payload = encode_data(_batch(readings))
    assert len(payload) / len(readings) <= 8


def test_one_poll_of_a_detector_station_costs_at_most_8_bytes_per_reading_with_scaled_ints() -> None:
    # One message per 30-s poll, as the agent's batcher seals it: 24 lane values + 4 station values.
    # Occupancy (register x 0.01, not float32-exact) goes as a scaled int, not a 9-byte float64.
    readings = []
    for lane in range(4):
        values = [12 + lane, 5.57 + lane, 92, 10, 2, 0]
        readings += [Reading(lane * 6 + i, T0, v) for i, v in enumerate(values)]
    readings += [Reading(24 + i, T0, v) for i, v in enumerate([30, 1_000_017, T0 // 1000, 3_600_000])]
    decimals = {lane * 6 + 1: 2 for lane in range(4)}
    unscaled = encode_data(_batch(readings))
    payload = encode_data(_batch(readings), decimals)
    assert len(payload) == len(unscaled) - 4 * (9 - 3)  # float64 -> uint16
    # MQTT 3.1.1 PUBLISH, QoS 1: fixed header (2), topic length (2), topic, packet id (2).
    mqtt = 2 + 2 + len(Topics("gw-k123").data) + 2
    assert (len(unscaled) + mqtt) / len(readings) > 8
    assert (len(payload) + mqtt) / len(readings) <= 8
    birth = Birth("gw-k123", BOOT, 0, T0, "0.1.0", "abc", [],
                  [MetricDef(a, "d", "traffic", f"x{a}", "", "f" if a in decimals else "i", {}, decimals.get(a))
                   for a in range(28)])
    decoded = decode(payload)
    assert isinstance(decoded, DataBatch)
    assert [r.value for r in decoded.readings][1] == 557
    assert engineering_values(decoded, birth).readings == readings


@pytest.mark.parametrize(
    ("value", "decimals", "wire"),
    [(5.57, 2, 557), (-40.1, 1, -401), (0.0, 2, 0), (-0.0, 2, 0), (12, 2, 1200), (5.571, 2, 5.571),
     (1e300, 2, 1e300), (2**60, 1, float(2**60)), (True, 2, True), (None, 2, None), ("x", 2, "x"),
     (123456.789, 3, 123456789), (2**53 / 10, 1, 2**53 / 10)],
)
def test_scale_value(value: object, decimals: int, wire: object) -> None:
    scaled = scale_value(value, decimals)  # type: ignore[arg-type]
    assert scaled == wire
    assert type(scaled) is type(wire)


@given(st.floats(allow_nan=False, allow_infinity=False) | st.integers(-(2**60), 2**60), st.integers(0, 9))
def test_scaled_values_come_back_exactly(value: float, decimals: int) -> None:
    """Whatever goes on the wire, the engineering value comes back equal (as Python floats compare)."""
    wire = scale_value(value, decimals)
    assert type(wire) in (int, float)
    assert unscale_value(wire, decimals) == value or (type(value) is int and wire == float(value))
    assert type(wire) is float or abs(wire) < 2**53


@given(st.integers(-(10**14), 10**14), st.integers(1, 6))
def test_values_with_few_decimals_are_sent_as_ints(n: int, decimals: int) -> None:
    assert scale_value(n / 10**decimals, decimals) == n


def test_birth_with_decimals_round_trips_and_without_stays_seven_elements() -> None:
    plain = MetricDef(0, "vds-1", "traffic", "volume", "veh", "i", {"lane": "1"})
    scaled = MetricDef(1, "vds-1", "traffic", "occupancy", "%", "f", {"lane": "1"}, 2)
    birth = Birth("gw-k123", BOOT, 0, T0, "0.1.0", "abc123", [], [plain, scaled])
    assert decode(encode_birth(birth)) == birth
    rows = msgpack.unpackb(encode_birth(birth))["metrics"]
    assert [len(r) for r in rows] == [7, 8]
    assert rows[1][7] == 2
    with pytest.raises(ValueError, match="decimals"):
        MetricDef(2, "d", "m", "x", "", "i", {}, 2)
    with pytest.raises(ValueError, match="decimals"):
        MetricDef(2, "d", "m", "x", "", "f", {}, 10)


def test_a_float_for_a_scaled_metric_is_taken_as_is() -> None:
    birth = Birth("gw-k123", BOOT, 0, T0, "0.1.0", "abc", [], [MetricDef(0, "d", "m", "x", "", "f", {}, 2)])
    readings = [Reading(0, T0, 5.571), Reading(0, T0, 5.57), Reading(0, T0, None, Quality.BAD, "timeout")]
    decoded = decode(encode_data(_batch(readings), {0: 2}))
    assert isinstance(decoded, DataBatch)
    assert [r.value for r in decoded.readings] == [5.571, 557, None]
    assert engineering_values(decoded, birth).readings == readings


@given(
    st.lists(
        st.tuples(
            st.integers(0, 5000),
            st.integers(-(10**6), 10**6),
            st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1), st.floats(allow_nan=False, allow_infinity=False),
                      st.booleans(), st.text(max_size=20)),
        ),
        max_size=50,
    )
)
def test_any_batch_round_trips(items: list[tuple[int, int, object]]) -> None:
    readings = [Reading(a, T0 + dt, v) for a, dt, v in items]  # type: ignore[arg-type]
    decoded = decode(encode_data(_batch(readings)))
    assert isinstance(decoded, DataBatch)
    assert decoded.readings == readings


def test_birth_death_command_round_trip() -> None:
    birth = Birth("gw-k123", BOOT, 0, T0, "0.1.0", "abc123", [{"id": "vds-1", "profile": "vds"}],
                  [MetricDef(0, "vds-1", "traffic", "volume", "veh", "i", {"lane": "1"})])
    assert decode(encode_birth(birth)) == birth
    death = Death("gw-k123", BOOT, T0, clean=True)
    assert decode(encode_death(death)) == death
    command = Command("rebirth", T0, "unknown alias 3")
    assert decode(encode_command(command)) == command


def test_rebirth_command_may_name_a_boot() -> None:
    command = Command("rebirth", T0, "unknown boot", boot=BOOT)
    assert decode(encode_command(command)) == command
    # Without a boot the key is left out, so the payload is what older agents and collectors know.
    assert "boot" not in msgpack.unpackb(encode_command(Command("rebirth", T0, "x")))


def test_command_without_boot_from_an_older_collector_decodes() -> None:
    old = _pack({"v": 1, "t": "cmd", "cmd": "rebirth", "reason": "unknown alias 3", "ts": T0})
    assert decode(old) == Command("rebirth", T0, "unknown alias 3", boot="")


def _pack(obj: object) -> bytes:
    return bytes(msgpack.packb(obj))


def _birth_with_metric(metric: list[object]) -> bytes:
    return _pack({"v": 1, "t": "birth", "gw": "g", "boot": BOOT, "ts": 0, "seq": 0, "devices": [],
                  "metrics": [metric]})


GOOD = {"v": 1, "t": "data", "gw": "gw-1", "boot": BOOT, "seq": 1, "ts": T0, "bt": T0, "r": [0, 0, 1]}


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (b"", "not-msgpack"),
        (b"\xc1", "not-msgpack"),
        (b"{json: 1}", "not-msgpack"),
        (b"\x05", "not-a-map"),
        (_pack([1, 2]), "not-a-map"),
        (_pack({**GOOD, "v": 2}), "bad-version"),
        (_pack({**GOOD, "t": "nope"}), "bad-kind"),
        (_pack({k: v for k, v in GOOD.items() if k != "gw"}), "missing-key"),
        (_pack({**GOOD, "gw": "a/b"}), "bad-gateway"),
        (_pack({**GOOD, "seq": "1"}), "bad-type"),
        (_pack({**GOOD, "seq": -1}), "bad-seq"),
        (_pack({**GOOD, "r": [0, 0]}), "bad-readings"),
        (_pack({**GOOD, "r": [-1, 0, 1]}), "bad-alias"),
        (_pack({**GOOD, "r": [0, 0.5, 1]}), "bad-dt"),
        (_pack({**GOOD, "r": [0, 0, [1]]}), "bad-value"),
        (_pack({**GOOD, "q": {0: [7, "x"]}}), "bad-quality"),
        (_pack({**GOOD, "tf": 99}), "bad-time-flags"),
        (_pack({"v": 1, "t": "birth", "gw": "g", "boot": BOOT, "ts": 0, "seq": 0, "devices": [],
                "metrics": [[0, "d", "m", "f", "u", "x", {}]]}), "bad-metric"),
        (_birth_with_metric([0, "d", "m", "f", "u", "f", {}, 10]), "bad-metric"),
        (_birth_with_metric([0, "d", "m", "f", "u", "f", {}, -1]), "bad-metric"),
        (_birth_with_metric([0, "d", "m", "f", "u", "f", {}, 2.0]), "bad-metric"),
        (_birth_with_metric([0, "d", "m", "f", "u", "f", {}, True]), "bad-metric"),
        (_birth_with_metric([0, "d", "m", "f", "u", "i", {}, 2]), "bad-metric"),
        (_birth_with_metric([0, "d", "m", "f", "u", "f", {}, 2, "more"]), "bad-metric"),
        (_pack({"v": 1, "t": "cmd", "cmd": "rebirth", "ts": T0, "boot": 7}), "bad-type"),
        (_pack({"v": 1, "t": "cmd", "cmd": "rebirth", "ts": T0, "boot": "b" * 65}), "bad-boot"),
    ],
)
def test_malformed_payloads_have_a_reason(payload: bytes, reason: str) -> None:
    with pytest.raises(WireError) as info:
        decode(payload)
    assert info.value.reason == reason


def test_topics() -> None:
    topics = Topics("gw-k123")
    assert topics.data == "rp/v1/gw-k123/data"
    assert parse_topic(topics.birth) == ("gw-k123", "birth")
    assert parse_topic("rp/v1/gw-k123/data/extra") is None
    assert parse_topic("other/gw/data") is None
    with pytest.raises(ValueError, match="gateway id"):
        Topics("gw/+")
    shared = subscriptions(share_group="collectors")
    assert "$share/collectors/rp/v1/+/data" in shared
    assert "rp/v1/+/birth" in shared  # births reach every collector


def test_shipped_profiles_declare_decimals_the_codec_keeps() -> None:
    """Every register the catalogue scales gives, through the agent's codec, values sent as exact ints."""
    import random

    from agent.catalog import metric_decimals
    from agent.codec.registers import apply_point
    from roadpulse.profiles import PROFILES_DIR, ModbusProfile, load_profile

    rng = random.Random(3)
    scaled = {}
    for path in sorted(PROFILES_DIR.glob("*.toml")):
        profile = load_profile(path.stem, [PROFILES_DIR])
        if not isinstance(profile, ModbusProfile):
            continue
        for reg in profile.registers:
            d = metric_decimals(profile, reg.name)
            if d is None:
                continue
            scaled[f"{profile.name}.{reg.name}"] = d
            top = 2**31 if reg.type.endswith(("32", "64")) else 2**16
            raws = [0, 1, top - 1, *(rng.randrange(top) for _ in range(300))]
            if not reg.type.startswith("u"):
                raws += [-r for r in raws]
            for raw in raws:
                value = apply_point(raw, scale=reg.scale, offset=reg.offset).value
                assert scale_value(value, d) == raw + round(reg.offset * 10**d), (reg.name, raw, value)
    assert scaled["vds_modbus.lane1_occupancy"] == 2
    assert "vds_modbus.lane1_volume" not in scaled


def test_a_scaled_batch_decoded_and_encoded_again_keeps_its_wire_values() -> None:
    """The agent re-encodes queued batches for replay from their decoded form, without decimals."""
    readings = [Reading(0, T0, 5.57), Reading(1, T0, 12), Reading(0, T0 + 30_000, 5.571)]
    payload = encode_data(_batch(readings), {0: 2})
    decoded = decode(payload)
    assert isinstance(decoded, DataBatch)
    assert encode_data(decoded) == payload
