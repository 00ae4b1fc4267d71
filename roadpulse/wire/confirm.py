"""End-to-end confirmations (issue #10): collector -> agent, on `{prefix}/{gw}/ack`. Pure.

A PUBACK only says the broker has a message; a broker that restarts empty, a shared
subscription that strands a dead member's share, or a failover loses what it held. So the
collector confirms what it made durable (written to InfluxDB, appended to its fsynced spool,
or set aside as a dead letter) by `(boot, seq)`, and the agent keeps every record until it is
confirmed. The envelope:

    {v:1, t:"ack", gw, ts, acks:{"<boot>": [first, last, first, last, ...]}}

`acks` maps each boot to inclusive seq ranges, flat, sorted and disjoint: a coalesced second
of a gateway's traffic is usually one range, so a confirmation costs ~60 bytes. The topic is
new and only agents that know it subscribe, so this is an addition within v1: an older agent
never sees a confirmation, and an older collector never sends one (the agent's `delivery =
"broker"` mode is for it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import msgpack

from roadpulse.wire.topics import _GATEWAY_RE
from roadpulse.wire.types import VERSION, WireError

# Bounds against a hostile or broken peer: a real confirmation has a few boots and ranges.
MAX_BOOTS = 64
MAX_RANGES = 4096
MAX_BOOT_LEN = 64

Ranges = list[tuple[int, int]]


def to_ranges(seqs: Iterable[int]) -> Ranges:
    """Sorted, disjoint, inclusive ranges covering exactly `seqs`."""
    out: Ranges = []
    for seq in sorted(set(seqs)):
        if out and seq == out[-1][1] + 1:
            out[-1] = (out[-1][0], seq)
        else:
            out.append((seq, seq))
    return out


def merge_ranges(a: Ranges, b: Ranges) -> Ranges:
    """The union of two range lists, normalised (sorted, disjoint, adjacent ranges joined)."""
    out: Ranges = []
    for first, last in sorted(a + b):
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def count(ranges: Ranges) -> int:
    return sum(last - first + 1 for first, last in ranges)


@dataclass(frozen=True, slots=True)
class Confirmation:
    """What one collector made durable for one gateway: seq ranges per boot."""

    gateway: str
    ts_ms: int
    acks: dict[str, Ranges] = field(default_factory=dict)

    def contains(self, boot: str, seq: int) -> bool:
        return any(first <= seq <= last for first, last in self.acks.get(boot, ()))

    def seqs(self) -> int:
        return sum(count(r) for r in self.acks.values())


def encode_confirmation(confirmation: Confirmation) -> bytes:
    acks: dict[str, list[int]] = {}
    for boot, ranges in confirmation.acks.items():
        flat: list[int] = []
        for first, last in merge_ranges(list(ranges), []):
            flat += (first, last)
        if flat:
            acks[boot] = flat
    obj = {"v": VERSION, "t": "ack", "gw": confirmation.gateway, "ts": confirmation.ts_ms, "acks": acks}
    packed: bytes = msgpack.packb(obj, use_bin_type=True)
    return packed


def _ranges(boot: str, flat: Any) -> Ranges:
    if not isinstance(flat, list) or len(flat) % 2 or not flat:
        raise WireError("bad-ack", f"boot {boot!r}: ranges must be a non-empty flat list of pairs")
    if len(flat) // 2 > MAX_RANGES:
        raise WireError("bad-ack", f"boot {boot!r}: more than {MAX_RANGES} ranges")
    out: Ranges = []
    for i in range(0, len(flat), 2):
        first, last = flat[i], flat[i + 1]
        if type(first) is not int or type(last) is not int or not 0 <= first <= last:
            raise WireError("bad-ack", f"boot {boot!r}: range {first!r}..{last!r}")
        if out and first <= out[-1][1]:
            raise WireError("bad-ack", f"boot {boot!r}: ranges not sorted and disjoint at {first}")
        out.append((first, last))
    return out


def decode_confirmation(payload: bytes) -> Confirmation:
    """Decode and validate; WireError with reason `msgpack`, `not-map`, `version`, `not-ack` or `bad-ack`."""
    try:
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except (ValueError, msgpack.UnpackException) as exc:
        raise WireError("msgpack", str(exc)) from None
    if not isinstance(obj, dict):
        raise WireError("not-map")
    if obj.get("v") != VERSION:
        raise WireError("version", repr(obj.get("v")))
    if obj.get("t") != "ack":
        raise WireError("not-ack", repr(obj.get("t")))
    gateway, ts, acks = obj.get("gw"), obj.get("ts"), obj.get("acks")
    if not isinstance(gateway, str) or not _GATEWAY_RE.match(gateway):
        raise WireError("bad-ack", f"gw {gateway!r}")
    if type(ts) is not int:
        raise WireError("bad-ack", f"ts {ts!r}")
    if not isinstance(acks, Mapping) or len(acks) > MAX_BOOTS:
        raise WireError("bad-ack", f"acks must be a map of at most {MAX_BOOTS} boots")
    out: dict[str, Ranges] = {}
    for boot, flat in acks.items():
        if not isinstance(boot, str) or not 0 < len(boot) <= MAX_BOOT_LEN:
            raise WireError("bad-ack", f"boot {boot!r}")
        out[boot] = _ranges(boot, flat)
    return Confirmation(gateway, ts, out)


def peek_data_id(payload: bytes) -> tuple[str, str, int] | None:
    """(gw, boot, seq) of a v1 data payload, read from its header without decoding readings.

    For a collector confirming a message it dead-letters: the readings may be unreadable,
    but what names the message usually is not. None when that much is not there either.
    """
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False)
    unpacker.feed(payload)
    found: dict[str, Any] = {}
    try:
        n = unpacker.read_map_header()
        for _ in range(n):
            key = unpacker.unpack()
            if key in ("v", "t", "gw", "boot", "seq"):
                found[key] = unpacker.unpack()
            else:
                unpacker.skip()
    except (msgpack.OutOfData, msgpack.UnpackException, ValueError, TypeError):
        pass
    gateway, boot, seq = found.get("gw"), found.get("boot"), found.get("seq")
    if (found.get("v") != VERSION or found.get("t") != "data" or not isinstance(gateway, str)
            or not isinstance(boot, str) or not 0 < len(boot) <= MAX_BOOT_LEN or type(seq) is not int or seq < 0):
        return None
    return gateway, boot, seq
