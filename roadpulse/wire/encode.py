"""msgpack envelopes of protocol v1: typed values in, bytes out (the agent's side). Pure."""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any

import msgpack

from roadpulse.wire.types import VERSION, Birth, Command, DataBatch, Death, MetricDef, Quality, Value, scale_value

_F32 = struct.Struct(">f")


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
