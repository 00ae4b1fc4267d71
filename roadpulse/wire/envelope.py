"""msgpack envelopes of protocol v1: typed values in, bytes out, and back.

Decoding validates everything a consumer relies on and raises WireError with a
short machine-readable reason, so a collector can dead-letter the message.
"""

from __future__ import annotations

import dataclasses
import enum
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from roadpulse.wire.names import name_problem
from roadpulse.wire.topics import valid_gateway_id

VERSION = 1
Value = int | float | bool | str | None


class WireError(ValueError):
    """A payload that is not valid protocol v1. `reason` is a short code for counters and dead letters."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class Quality(enum.IntEnum):
    GOOD = 0
    UNCERTAIN = 1
    BAD = 2


class TimeFlag(enum.IntFlag):
    NONE = 0
    UNSYNCED = 1
    CORRECTED = 2
    SUSPECT = 4


@dataclass(frozen=True, slots=True)
class Reading:
    """One sensor value at one instant, referring to a metric by alias."""

    alias: int
    ts_ms: int
    value: Value
    quality: Quality = Quality.GOOD
    reason: str = ""


@dataclass(frozen=True, slots=True)
class MetricDef:
    """What an alias means. `type` is fixed for the metric's life: f, i, b or s.

    `decimals` (type f only, 0-9): an int n on the wire means n x 10**-decimals (a float
    is taken as is). None: no scaling, an int is the value itself.
    """

    alias: int
    device: str
    measurement: str
    field: str
    unit: str
    type: str
    tags: dict[str, str] = dataclasses.field(default_factory=dict)
    decimals: int | None = None

    def __post_init__(self) -> None:
        if self.decimals is not None and not (
            type(self.decimals) is int and 0 <= self.decimals <= MAX_DECIMALS and self.type == "f"
        ):
            raise ValueError(f"alias {self.alias}: decimals {self.decimals!r} (0-{MAX_DECIMALS}, type f only)")


@dataclass(frozen=True, slots=True)
class DataBatch:
    gateway: str
    boot: str
    seq: int
    ts_ms: int
    readings: list[Reading]
    time_flags: TimeFlag = TimeFlag.NONE
    replay: bool = False
    kind: str = "data"


@dataclass(frozen=True, slots=True)
class Birth:
    gateway: str
    boot: str
    seq: int
    ts_ms: int
    agent_version: str
    config_hash: str
    devices: list[dict[str, Any]]
    metrics: list[MetricDef]
    time_flags: TimeFlag = TimeFlag.NONE


@dataclass(frozen=True, slots=True)
class Death:
    gateway: str
    boot: str
    ts_ms: int
    clean: bool


@dataclass(frozen=True, slots=True)
class Command:
    cmd: str
    ts_ms: int
    reason: str = ""
    # rebirth: the boot whose birth is wanted ("" = the current one). Absent in older commands.
    boot: str = ""


Message = DataBatch | Birth | Death | Command
METRIC_TYPES = frozenset("fibs")
MAX_DECIMALS = 9
_F32 = struct.Struct(">f")
# Scaled ints stay below 2**53, so every one is exact as a float too (tools, JSON, InfluxDB).
_SCALED_LIMIT = 2**53


def scale_value(value: Value, decimals: int) -> Value:
    """The wire value of `value` for a metric with `decimals`: the int n with n x 10**-decimals
    == value when there is one (exactly, as Python floats compare), else the value unchanged."""
    factor: int = 10**decimals
    if type(value) is float:
        product = value * factor
        if not -_SCALED_LIMIT < product < _SCALED_LIMIT:  # also nan and inf
            return value
        n = round(product)
        return n if abs(n) < _SCALED_LIMIT and n / factor == value else value
    if type(value) is int:
        n = value * factor
        # Too large to scale: sent as a float, which is what the collector would write anyway.
        return n if abs(n) < _SCALED_LIMIT else float(value)
    return value


def unscale_value(value: Value, decimals: int | None) -> Value:
    """The engineering value of a wire value for a metric with `decimals` (the inverse of scale_value)."""
    if decimals is not None and type(value) is int:
        factor: int = 10**decimals
        return value / factor
    return value


def engineering_values(batch: DataBatch, birth: Birth) -> DataBatch:
    """`batch` (as decoded) with every scaled int turned into the value it stands for, by `birth`'s metrics.

    For tools and tests; the collector writes scaled ints without converting them.
    """
    decimals = {m.alias: m.decimals for m in birth.metrics if m.type == "f" and m.decimals is not None}
    if not decimals:
        return batch
    readings = [
        dataclasses.replace(r, value=unscale_value(r.value, decimals[r.alias]))
        if r.alias in decimals and type(r.value) is int else r
        for r in batch.readings
    ]
    return dataclasses.replace(batch, readings=readings)


def _compact_value(value: Value) -> Value:
    # msgpack writes Python floats as float64 (9 bytes); most sensor values survive float32 (5 bytes).
    if isinstance(value, float) and math.isfinite(value):
        try:
            narrowed: float = _F32.unpack(_F32.pack(value))[0]
        except OverflowError:
            return value
        if narrowed == value:
            return _F32Value(value)
    return value


class _F32Value(float):
    """Marker type: pack as msgpack float32."""


def _default(obj: object) -> object:
    raise TypeError(f"cannot encode {type(obj).__name__}")


def _pack(obj: dict[str, Any]) -> bytes:
    packer = msgpack.Packer(use_single_float=False, default=_default)
    return _pack_with_f32(packer, obj)


def _pack_with_f32(packer: msgpack.Packer, obj: dict[str, Any]) -> bytes:
    # msgpack-python has no per-value float32 switch, so the flat reading list is packed by hand.
    readings = obj.pop("r", None)
    if readings is None:
        return bytes(packer.pack(obj))
    out = bytearray(packer.pack_map_header(len(obj) + 1))
    for key, value in obj.items():
        out += packer.pack(key)
        out += packer.pack(value)
    out += packer.pack("r")
    out += packer.pack_array_header(len(readings))
    f32 = msgpack.Packer(use_single_float=True)
    for item in readings:
        out += f32.pack(item) if isinstance(item, _F32Value) else packer.pack(item)
    return bytes(out)


def encode_data(batch: DataBatch, decimals: Mapping[int, int] | None = None) -> bytes:
    """`decimals` maps aliases of type-f metrics whose birth declares decimals to them: their
    values are sent as scaled ints where exact (`scale_value`). Without it, values go as they are
    (which is also right for a batch decoded from the wire, whose values are wire values)."""
    flat: list[Value] = []
    qualities: dict[int, list[int | str]] = {}
    base = batch.readings[0].ts_ms if batch.readings else batch.ts_ms
    previous = base
    scaled = decimals or {}
    for index, reading in enumerate(batch.readings):
        flat.append(reading.alias)
        flat.append(reading.ts_ms - previous)
        value = reading.value
        d = scaled.get(reading.alias) if scaled else None
        if d is not None:
            value = scale_value(value, d)
        flat.append(_compact_value(value))
        previous = reading.ts_ms
        if reading.quality != Quality.GOOD:
            qualities[index] = [int(reading.quality), reading.reason]
    obj: dict[str, Any] = {
        "v": VERSION,
        "t": batch.kind,
        "gw": batch.gateway,
        "boot": batch.boot,
        "seq": batch.seq,
        "ts": batch.ts_ms,
        "bt": base,
    }
    if qualities:
        obj["q"] = qualities
    if batch.time_flags:
        obj["tf"] = int(batch.time_flags)
    if batch.replay:
        obj["rp"] = True
    obj["r"] = flat
    return _pack(obj)


def encode_birth(birth: Birth) -> bytes:
    obj: dict[str, Any] = {
        "v": VERSION,
        "t": "birth",
        "gw": birth.gateway,
        "boot": birth.boot,
        "seq": birth.seq,
        "ts": birth.ts_ms,
        "agent": birth.agent_version,
        "cfg": birth.config_hash,
        "tf": int(birth.time_flags),
        "devices": birth.devices,
        "metrics": [_metric_row(m) for m in birth.metrics],
    }
    return _pack(obj)


def _metric_row(m: MetricDef) -> list[Any]:
    row: list[Any] = [m.alias, m.device, m.measurement, m.field, m.unit, m.type, m.tags]
    if m.decimals is not None:  # the 8th element only when set: 7-element births stay byte-identical
        row.append(m.decimals)
    return row


def encode_death(death: Death) -> bytes:
    return _pack(
        {"v": VERSION, "t": "death", "gw": death.gateway, "boot": death.boot, "ts": death.ts_ms,
         "clean": death.clean}
    )


def encode_command(command: Command) -> bytes:
    obj: dict[str, Any] = {"v": VERSION, "t": "cmd", "cmd": command.cmd, "reason": command.reason,
                           "ts": command.ts_ms}
    if command.boot:
        obj["boot"] = command.boot
    return _pack(obj)


# ---- decoding -------------------------------------------------------------------------------


def _need(obj: dict[str, Any], key: str, kind: type | tuple[type, ...]) -> Any:
    if key not in obj:
        raise WireError("missing-key", key)
    value = obj[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise WireError("bad-type", f"{key} is {type(value).__name__}")
    return value


def _header(obj: dict[str, Any]) -> tuple[str, str, int]:
    gateway = _need(obj, "gw", str)
    if not valid_gateway_id(gateway):
        raise WireError("bad-gateway", gateway[:80])
    boot = _need(obj, "boot", str)
    if not 1 <= len(boot) <= 64:
        raise WireError("bad-boot", boot[:80])
    ts = _need(obj, "ts", int)
    return gateway, boot, ts


def _decode_data(obj: dict[str, Any], kind: str) -> DataBatch:
    gateway, boot, ts = _header(obj)
    seq = _need(obj, "seq", int)
    if seq < 0:
        raise WireError("bad-seq", str(seq))
    base = _need(obj, "bt", int)
    flat = _need(obj, "r", list)
    if len(flat) % 3:
        raise WireError("bad-readings", f"{len(flat)} items is not a multiple of 3")
    qualities = obj.get("q") or {}
    if not isinstance(qualities, dict):
        raise WireError("bad-type", "q")
    readings: list[Reading] = []
    now = base
    for index in range(len(flat) // 3):
        alias, dt, value = flat[3 * index : 3 * index + 3]
        if not isinstance(alias, int) or isinstance(alias, bool) or alias < 0:
            raise WireError("bad-alias", repr(alias)[:40])
        if not isinstance(dt, int) or isinstance(dt, bool):
            raise WireError("bad-dt", repr(dt)[:40])
        if value is not None and not isinstance(value, int | float | bool | str):
            raise WireError("bad-value", type(value).__name__)
        if isinstance(value, float) and not math.isfinite(value):
            raise WireError("bad-value", "non-finite float")
        now += dt
        q = qualities.get(index)
        if q is None:
            readings.append(Reading(alias, now, value))
            continue
        if not (isinstance(q, list) and len(q) == 2 and q[0] in (0, 1, 2) and isinstance(q[1], str)):
            raise WireError("bad-quality", repr(q)[:40])
        readings.append(Reading(alias, now, value, Quality(q[0]), q[1]))
    flags = obj.get("tf", 0)
    if not isinstance(flags, int) or not 0 <= flags < 8:
        raise WireError("bad-time-flags", repr(flags)[:40])
    return DataBatch(gateway, boot, seq, ts, readings, TimeFlag(flags), bool(obj.get("rp", False)), kind)


def _decode_birth(obj: dict[str, Any]) -> Birth:
    gateway, boot, ts = _header(obj)
    seq = _need(obj, "seq", int)
    devices = [_device(raw) for raw in _need(obj, "devices", list)]
    metrics: list[MetricDef] = []
    seen: set[int] = set()
    for raw in _need(obj, "metrics", list):
        if not (isinstance(raw, list) and len(raw) in (7, 8)):
            raise WireError("bad-metric", repr(raw)[:80])
        alias, device, measurement, fieldname, unit, mtype, tags = raw[:7]
        decimals = raw[7] if len(raw) == 8 else None
        if type(alias) is not int or alias < 0 or alias in seen:
            raise WireError("bad-metric", f"alias {alias!r}"[:80])
        if not all(isinstance(x, str) and x for x in (device, measurement, fieldname)):
            raise WireError("bad-metric", f"alias {alias}: empty name")
        if mtype not in METRIC_TYPES or not isinstance(unit, str):
            raise WireError("bad-metric", f"alias {alias}: type {mtype!r}"[:80])
        if not isinstance(tags, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
        ):
            raise WireError("bad-metric", f"alias {alias}: tags")
        if decimals is not None and (
            type(decimals) is not int or not 0 <= decimals <= MAX_DECIMALS or mtype != "f"
        ):
            raise WireError("bad-metric", f"alias {alias}: decimals {decimals!r}"[:80])
        problem = (name_problem(measurement, "measurement") or name_problem(fieldname, "field")
                   or name_problem(device, "tag value") or _tags_problem(tags))
        if problem is not None:
            raise WireError("bad-name", f"alias {alias}: {problem}"[:160])
        seen.add(alias)
        metrics.append(MetricDef(alias, device, measurement, fieldname, unit, mtype, dict(tags), decimals))
    flags = obj.get("tf", 0)
    return Birth(
        gateway, boot, seq, ts, str(obj.get("agent", "")), str(obj.get("cfg", "")),
        devices, metrics,
        TimeFlag(flags if isinstance(flags, int) and 0 <= flags < 8 else 0),
    )


def _device(raw: object) -> dict[str, Any]:
    """A birth's device entry: a map whose `id` is a str and whose `tags`, if any, map tag keys
    to scalars (written as text). Anything else refuses the birth: the collector reads both."""
    if not isinstance(raw, dict):
        raise WireError("bad-device", f"device entry is {type(raw).__name__}")
    device_id = raw.get("id")
    problem = name_problem(device_id, "tag value")
    if problem is not None or not device_id:
        raise WireError("bad-device", problem or "empty id")
    tags = raw.get("tags")
    if tags is None:
        return raw
    if not isinstance(tags, dict):
        raise WireError("bad-device", f"device {device_id}: tags is {type(tags).__name__}")
    for key, value in tags.items():
        if type(value) not in (str, int, float, bool):
            raise WireError("bad-device", f"device {device_id}: tag {str(key)[:40]!r} is {type(value).__name__}")
        problem = name_problem(key, "tag key") or name_problem(str(value), "tag value")
        if problem is not None:
            raise WireError("bad-name", f"device {device_id}: {problem}"[:160])
    return raw


def _tags_problem(tags: dict[Any, Any]) -> str | None:
    for key, value in tags.items():
        problem = name_problem(key, "tag key") or name_problem(value, "tag value")
        if problem is not None:
            return problem
    return None


def _decode_command(obj: dict[str, Any]) -> Command:
    boot = obj.get("boot", "")
    if not isinstance(boot, str):
        raise WireError("bad-type", f"boot is {type(boot).__name__}")
    if len(boot) > 64:
        raise WireError("bad-boot", boot[:80])
    return Command(_need(obj, "cmd", str), _need(obj, "ts", int), str(obj.get("reason", "")), boot)


def decode(payload: bytes) -> Message:
    """Decode any v1 payload. Raises WireError for anything malformed; never anything else."""
    try:
        obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    except Exception as exc:  # msgpack raises several unrelated types for garbage
        raise WireError("not-msgpack", type(exc).__name__) from None
    if not isinstance(obj, dict):
        raise WireError("not-a-map", type(obj).__name__)
    version = obj.get("v")
    if version != VERSION:
        raise WireError("bad-version", repr(version)[:20])
    kind = obj.get("t")
    try:
        if kind in ("data", "health"):
            return _decode_data(obj, kind)
        if kind == "birth":
            return _decode_birth(obj)
        if kind == "death":
            gateway, boot, ts = _header(obj)
            return Death(gateway, boot, ts, bool(obj.get("clean", False)))
        if kind == "cmd":
            return _decode_command(obj)
    except WireError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise WireError("invalid", str(exc)[:80]) from None
    raise WireError("bad-kind", repr(kind)[:20])


def flat_size(readings: Sequence[Reading]) -> int:
    """Bytes the readings take inside a data envelope, for wire-size benchmarks."""
    batch = DataBatch("g", "0" * 16, 0, 0, list(readings))
    return len(encode_data(batch)) - len(encode_data(DataBatch("g", "0" * 16, 0, 0, [])))
