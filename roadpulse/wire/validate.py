"""The one validator of protocol v1: bytes in, typed values out, or WireError with a reason.

Decoding validates everything a consumer relies on and raises WireError with a short
machine-readable reason, so a collector can dead-letter the message. The collector's fast
data path reads data envelopes without building Reading objects, but through the same
checks (`data_header`, `check_reading`, `check_quality`): there is one copy of the rules.
"""

from __future__ import annotations

from typing import Any

import msgpack

from roadpulse.wire.names import name_problem
from roadpulse.wire.topics import valid_gateway_id
from roadpulse.wire.types import (
    MAX_DECIMALS,
    MAX_TIME_MS,
    METRIC_TYPES,
    VERSION,
    Birth,
    Command,
    DataBatch,
    Death,
    Message,
    MetricDef,
    Quality,
    Reading,
    TimeFlag,
    WireError,
)


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


DataHeader = tuple[str, str, int, int, list[Any], dict[Any, Any], int]


def data_header(obj: dict[Any, Any]) -> DataHeader:
    """(gateway, boot, seq, base time, flat readings, qualities, time flags) of a data or health
    envelope, every key checked; the readings themselves are checked by `check_reading`."""
    gateway = obj.get("gw")
    if not isinstance(gateway, str):
        raise WireError("missing-key" if gateway is None else "bad-type", "gw")
    if not valid_gateway_id(gateway):
        raise WireError("bad-gateway", gateway[:80])
    boot = obj.get("boot")
    if type(boot) is not str:
        raise WireError("missing-key" if boot is None else "bad-type", "boot")
    if not 1 <= len(boot) <= 64:
        raise WireError("bad-boot", boot[:80])
    for key in ("ts", "seq", "bt"):
        if type(obj.get(key)) is not int:
            raise WireError("missing-key" if key not in obj else "bad-type", key)
    seq: int = obj["seq"]
    if seq < 0:
        raise WireError("bad-seq", str(seq))
    if not -MAX_TIME_MS <= obj["bt"] <= MAX_TIME_MS:
        raise WireError("bad-time", f"bt {obj['bt']} outside the years 1677-2262")
    flat = obj.get("r")
    if type(flat) is not list:
        raise WireError("missing-key" if flat is None else "bad-type", "r")
    if len(flat) % 3:
        raise WireError("bad-readings", f"{len(flat)} items is not a multiple of 3")
    qualities = obj.get("q") or {}
    if not isinstance(qualities, dict):
        raise WireError("bad-type", "q")
    flags = obj.get("tf", 0)
    if type(flags) is not int or not 0 <= flags < 8:
        raise WireError("bad-time-flags", repr(flags)[:40])
    return gateway, boot, seq, obj["bt"], flat, qualities, flags


def check_reading(alias: object, dt: object, value: object) -> None:
    """Raises WireError unless (alias, dt, value) is a valid reading (whatever the birth says)."""
    if type(alias) is not int or alias < 0:
        raise WireError("bad-alias", repr(alias)[:40])
    if type(dt) is not int:
        raise WireError("bad-dt", repr(dt)[:40])
    if value is not None and not isinstance(value, int | float | str):
        raise WireError("bad-value", type(value).__name__)
    if type(value) is float and value - value != 0.0:
        raise WireError("bad-value", "non-finite float")


def check_quality(quality: object) -> tuple[int, str]:
    """(level, reason) of a quality entry `[level, reason]`; raises WireError for anything else."""
    if not (isinstance(quality, list) and len(quality) == 2 and quality[0] in (0, 1, 2)
            and isinstance(quality[1], str)):
        raise WireError("bad-quality", repr(quality)[:40])
    return int(quality[0]), quality[1]


def _decode_data(obj: dict[str, Any], kind: str) -> DataBatch:
    gateway, boot, seq, base, flat, qualities, flags = data_header(obj)
    readings: list[Reading] = []
    now = base
    for index in range(len(flat) // 3):
        alias, dt, value = flat[3 * index : 3 * index + 3]
        check_reading(alias, dt, value)
        now += dt
        q = qualities.get(index)
        if q is None:
            readings.append(Reading(alias, now, value))
            continue
        level, reason = check_quality(q)
        readings.append(Reading(alias, now, value, Quality(level), reason))
    return DataBatch(gateway, boot, seq, obj["ts"], readings, TimeFlag(flags), bool(obj.get("rp", False)), kind)


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


def decode(payload: bytes, *, max_metrics: int | None = None) -> Message:
    """Decode any v1 payload. Raises WireError for anything malformed; never anything else.

    `max_metrics`: a birth with more metrics is refused (`limit-birth-metrics`) before any of
    them is checked, so an oversized birth costs its unpacking only.
    """
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
            metrics = obj.get("metrics")
            if max_metrics is not None and isinstance(metrics, list) and len(metrics) > max_metrics:
                raise WireError("limit-birth-metrics", f"{len(metrics)} metrics > {max_metrics}")
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

