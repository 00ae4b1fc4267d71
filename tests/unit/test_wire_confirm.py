"""End-to-end confirmations on the wire: round trips, ranges, and the reason for every bad one."""

from __future__ import annotations

import msgpack
import pytest

from roadpulse.wire import DataBatch, Reading, Topics, encode_data
from roadpulse.wire.confirm import (
    MAX_RANGES,
    Confirmation,
    decode_confirmation,
    encode_confirmation,
    merge_ranges,
    peek_data_id,
    to_ranges,
)

BOOT = "0123456789abcdef"
T0 = 1_764_400_000_000


@pytest.mark.parametrize(("seqs", "ranges"), [
    ([], []),
    ([5], [(5, 5)]),
    ([3, 1, 2], [(1, 3)]),
    ([0, 1, 2, 4, 5, 9], [(0, 2), (4, 5), (9, 9)]),
    ([7, 7, 7], [(7, 7)]),
])
def test_to_ranges(seqs: list[int], ranges: list[tuple[int, int]]) -> None:
    assert to_ranges(seqs) == ranges


@pytest.mark.parametrize(("a", "b", "merged"), [
    ([(0, 2)], [(3, 4)], [(0, 4)]),
    ([(0, 2)], [(4, 4)], [(0, 2), (4, 4)]),
    ([(5, 9)], [(0, 6)], [(0, 9)]),
    ([], [(1, 1)], [(1, 1)]),
    ([(0, 0), (2, 2)], [(1, 1)], [(0, 2)]),
])
def test_merge_ranges(a: list[tuple[int, int]], b: list[tuple[int, int]], merged: list[tuple[int, int]]) -> None:
    assert merge_ranges(a, b) == merged


def test_round_trip_and_size() -> None:
    c = Confirmation("gw-1", T0, {BOOT: [(0, 41), (43, 50)], "fedcba9876543210": [(7, 7)]})
    payload = encode_confirmation(c)
    assert decode_confirmation(payload) == c
    assert c.contains(BOOT, 43)
    assert not c.contains(BOOT, 42)
    assert not c.contains("other", 0)
    assert c.seqs() == 42 + 8 + 1
    one = encode_confirmation(Confirmation("gw-1", T0, {BOOT: [(1000, 1030)]}))
    assert len(one) <= 64, len(one)  # a coalesced second of one gateway


def test_encode_normalises_and_drops_empty_boots() -> None:
    payload = encode_confirmation(Confirmation("gw-1", T0, {BOOT: [(4, 5), (0, 3)], "aa": []}))
    assert decode_confirmation(payload).acks == {BOOT: [(0, 5)]}


def _raw(**overrides: object) -> bytes:
    obj: dict[str, object] = {"v": 1, "t": "ack", "gw": "gw-1", "ts": T0, "acks": {BOOT: [0, 3]}}
    obj.update(overrides)
    obj = {k: v for k, v in obj.items() if v is not ...}
    return msgpack.packb(obj)


@pytest.mark.parametrize(("payload", "reason"), [
    (b"\xc1", "msgpack"),
    (msgpack.packb([1, 2]), "not-map"),
    (_raw(v=2), "version"),
    (_raw(t="data"), "not-ack"),
    (_raw(gw="a/b"), "bad-ack"),
    (_raw(gw=...), "bad-ack"),
    (_raw(ts="now"), "bad-ack"),
    (_raw(acks=[0, 1]), "bad-ack"),
    (_raw(acks={BOOT: [0]}), "bad-ack"),
    (_raw(acks={BOOT: []}), "bad-ack"),
    (_raw(acks={BOOT: [3, 1]}), "bad-ack"),
    (_raw(acks={BOOT: [-1, 1]}), "bad-ack"),
    (_raw(acks={BOOT: [0, 5, 5, 6]}), "bad-ack"),
    (_raw(acks={BOOT: [0, 1.5]}), "bad-ack"),
    (_raw(acks={BOOT: [True, 1]}), "bad-ack"),
    (_raw(acks={"": [0, 1]}), "bad-ack"),
    (_raw(acks={"x" * 65: [0, 1]}), "bad-ack"),
    (_raw(acks={str(i): [0, 0] for i in range(65)}), "bad-ack"),
    (_raw(acks={BOOT: [v for i in range(MAX_RANGES + 1) for v in (2 * i, 2 * i)]}), "bad-ack"),
])
def test_bad_confirmations_name_their_reason(payload: bytes, reason: str) -> None:
    from roadpulse.wire import WireError

    with pytest.raises(WireError) as err:
        decode_confirmation(payload)
    assert err.value.reason == reason


def test_unknown_keys_are_ignored() -> None:
    assert decode_confirmation(_raw(extra="later")).acks == {BOOT: [(0, 3)]}


@pytest.mark.parametrize(("payload", "found"), [
    (encode_data(DataBatch("gw-1", BOOT, 42, T0, [Reading(1, T0, 2.5)])), ("gw-1", BOOT, 42)),
    (encode_data(DataBatch("gw-1", BOOT, 3, T0, [Reading(1, T0, 1)], kind="health")), None),
    (msgpack.packb({"v": 1, "t": "data", "gw": "gw-1", "boot": BOOT, "seq": 9, "r": "garbage"}), ("gw-1", BOOT, 9)),
    (msgpack.packb({"v": 1, "t": "data", "gw": "gw-1", "boot": BOOT}), None),
    (msgpack.packb({"v": 1, "t": "data", "gw": "gw-1", "boot": BOOT, "seq": -1}), None),
    (msgpack.packb({"v": 2, "t": "data", "gw": "gw-1", "boot": BOOT, "seq": 1}), None),
    (b"\x85\xa1v\x01", None),  # truncated
    (b"", None),
    (b"\xc1\xc1", None),
])
def test_peek_data_id(payload: bytes, found: tuple[str, str, int] | None) -> None:
    assert peek_data_id(payload) == found


def test_ack_topic() -> None:
    assert Topics("gw-1").ack == "rp/v1/gw-1/ack"
