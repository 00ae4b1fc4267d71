"""Hostile births and data for the collector's decoder, and the judge of what it made of them.

`hostile_case(rng)` makes one case: a gateway's births (hostile names, tags, devices, huge
ones, unhashable ids), sometimes a victim gateway's birth, and one data or health message
(hostile values, quality reasons with newlines, odd types). `judge(case, outcome)` lists
what is wrong with the outcome, by the property of issue #16: one reading gives exactly one
field (its value or `_err`) of a point, under its own gateway's tags and its own metric, in
strict line protocol (a line holds the readings of one series and time); or the
message is dead-lettered with a reason, or parked. Used by the Hypothesis tests
(test_decoder_properties.py) and the fuzz command (fuzz.py), so both check the same things.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import msgpack

from tests.lineproto.adapter import DeadLetter, Lines, Outcome, Parked, topic_of
from tests.lineproto.strict_parser import Point, parse

T0 = 1_700_000_000_000
VICTIM = "victim"
AGENT_MEASUREMENT = "roadpulse_agent"  # docs/data-model.md: health metrics land here

# Names the escaping must survive (legal, but each needs care) and names a birth check must
# refuse (InfluxDB cannot store them, or reads them otherwise): the injections of #16 among them.
_TRICKY_NAMES = [
    "a,b", "a b", "a=b", "é", '"', "%s", "%d", "{}", "gateway", "device", "x_q", "tf_q", "tf", "1", "-", "'",
    "m,gateway=victim", "m gateway=victim", "a\"b", " ", ",", "=", "x" * 300, "日本", "a#", "#a,b",
]
_ILLEGAL_NAMES = [
    "x\\", "m\\ =\"", "#m", "_m", "time", "a\nb", "\n", "", "\x00", "\x7f", "\x85", "\u2028", "a\\,b", "a\\",
    "\\", "\t", "a\rb", "a\\\\", "#", "_",
]
_HOSTILE_NAMES = _TRICKY_NAMES + _ILLEGAL_NAMES
_PLAIN_NAMES = ["traffic", "weather", "speed", "volume", "lane", "site", "air_temp", "m", "f", "d1", "vds-1"]
_INJECT = f"\nm,device=d,gateway={VICTIM} v=666 {T0}\n"
_HOSTILE_TEXT = [
    _INJECT, f'"{_INJECT}"', "\\", '"', '\\"', "a\nb", "# c", "\r\n", "\x00", "é" * 3, "", "x" * 300, "%s%d",
    f'\\"{_INJECT}', "\u2028", "\x1b[31m",
]


def _name(rng: random.Random, hostile: float) -> Any:
    roll = rng.random()
    if roll < hostile:
        return rng.choice(_TRICKY_NAMES if rng.random() < 0.7 else _ILLEGAL_NAMES)
    if roll < hostile * 1.15:  # a name made of hostile pieces
        return "".join(rng.choice([*_HOSTILE_NAMES, *_PLAIN_NAMES]) for _ in range(rng.randint(1, 3)))
    if roll < hostile * 1.2:
        return rng.choice([None, 1, 1.5, ["x"], {"a": 1}, b"raw", True, "x" * 2000])
    return rng.choice(_PLAIN_NAMES)


def _tags(rng: random.Random, hostile: float) -> Any:
    if rng.random() < hostile * 0.1:
        return rng.choice(["abc", ["a", "b"], 1, None, {"k": ["v"]}, {"k": None}, {"k": 1.5}])
    return {_hashable(_name(rng, hostile)): _name(rng, hostile) for _ in range(rng.randint(0, 3))}


def _hashable(key: Any) -> Any:
    """A map key: an array key (a tuple here) makes msgpack's unpacker fail, which is a case too."""
    return tuple(key) if isinstance(key, list) else tuple(key.items()) if isinstance(key, dict) else key


@dataclass(slots=True)
class Case:
    gateway: str
    topic: str
    payload: bytes
    births: list[tuple[str, bytes]]
    birth_rows: list[tuple[str, str, dict[int, list[Any]]]]  # per birth: gateway, boot, alias -> row
    message: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def hostile_case(rng: random.Random) -> Case:
    hostile = rng.choice([0.0, 0.02, 0.05, 0.1, 0.2, 0.5])
    gateway = "gw-1" if rng.random() < 0.85 else rng.choice(["g.x_y-1", "g1\n", "gw/1", "gw+", "", "é", "g" * 65])
    boot = "b1" if rng.random() < 0.9 else rng.choice(["", "x" * 65, "b\n", "b 2"])
    births: list[tuple[str, bytes]] = []
    rows_of: list[tuple[str, str, dict[int, list[Any]]]] = []
    if rng.random() < 0.3:  # a victim gateway with an ordinary birth, whose series an injection would hit
        victim = _birth_dict(random.Random(1), VICTIM, "b1", 0.0, 3)
        births.append((topic_of(VICTIM, "birth"), msgpack.packb(victim)))
        rows_of.append((VICTIM, "b1", {}))
    metrics = rng.choice([1, 3, 8, 20]) if rng.random() > 0.003 else rng.choice([2000, 20000])
    birth = _birth_dict(rng, gateway, boot, hostile, metrics)
    births.append((topic_of(gateway, "birth"), _pack(rng, birth)))
    rows_of.append((gateway, boot, _rows(birth)))
    kind = "health" if rng.random() < 0.1 else "data"
    message = _data_dict(rng, gateway, boot, kind, birth, hostile=hostile)
    topic = topic_of(gateway if rng.random() > 0.02 else "other", kind)
    return Case(gateway, topic, _pack(rng, message), births, rows_of, message)


def _pack(rng: random.Random, obj: dict[str, Any]) -> bytes:
    payload: bytes = msgpack.packb(obj)
    if rng.random() < 0.01:  # cut short or garbled
        return payload[: rng.randint(0, len(payload))] + rng.choice([b"", b"\xc1", b"\xff" * 3])
    return payload


def _birth_dict(rng: random.Random, gateway: str, boot: str, hostile: float, metrics: int) -> dict[str, Any]:
    devices: list[Any] = []
    for index in range(rng.randint(1, 3)):
        device_id: Any = f"d{index}" if rng.random() > hostile else _name(rng, hostile)
        devices.append({"id": device_id, "tags": _tags(rng, hostile)})
    if rng.random() < hostile * 0.05:
        devices.append(rng.choice(["junk", None, [1], {"id": ["unhashable"]}, {"tags": {}}]))
    ids = [d.get("id") if isinstance(d, dict) else None for d in devices]
    rows: list[Any] = []
    for alias in range(metrics):
        kind = rng.choice("ffffiibs")
        row: list[Any] = [alias, rng.choice(ids) if rng.random() > hostile * 0.2 else _name(rng, hostile),
                          _name(rng, hostile), _name(rng, hostile), "u", kind, _tags(rng, hostile)]
        if kind == "f" and rng.random() < 0.3:
            row.append(rng.choice([1, 2, 9]))
        rows.append(row)
    if rows and rng.random() < hostile * 0.1:
        rows.append(list(rows[0]))  # a duplicate alias
    return {"v": 1, "t": "birth", "gw": gateway, "boot": boot, "seq": 0, "ts": T0, "agent": "0.1.0",
            "cfg": "abcdefabcdef", "tf": 0, "devices": devices, "metrics": rows}


def _rows(birth: dict[str, Any]) -> dict[int, list[Any]]:
    return {row[0]: row for row in birth["metrics"] if isinstance(row, list) and row and type(row[0]) is int}


_I64 = 2**63


def _value(rng: random.Random, kind: str, hostile: float) -> Any:
    if rng.random() < hostile * 0.3:
        return rng.choice([None, True, 2**64 - 1, -(2**63), float("nan"), float("inf"), 1e308, -0.0, 5e-324,
                           rng.choice(_HOSTILE_TEXT), [1], {"a": 1}, b"raw", 1.5, 7])
    if kind == "f":
        return rng.choice([rng.uniform(-1e6, 1e6), rng.randint(-1000, 1000), round(rng.uniform(0, 100), 2)])
    if kind == "i":
        return rng.choice([rng.randint(-1000, 1000), rng.randint(-_I64, _I64 - 1), 3.0])
    if kind == "b":
        return rng.choice([True, False, 0, 1])
    return rng.choice(["ok", "a b,c=d", 'q"q', "back\\slash", *_HOSTILE_TEXT])


def _data_dict(rng: random.Random, gateway: str, boot: str, kind: str, birth: dict[str, Any], *,
               hostile: float) -> dict[str, Any]:
    rows = _rows(birth)
    aliases = list(rows) or [0]
    flat: list[Any] = []
    qualities: dict[Any, Any] = {}
    for index in range(rng.choice([0, 1, 5, 20, 60]) if rng.random() > 0.002 else 5000):
        alias: Any = rng.choice(aliases)
        if rng.random() < hostile * 0.05:
            alias = rng.choice([len(aliases) + 5, -1, True, "1", 1.0])
        row = rows.get(alias) if type(alias) is int else None
        metric_kind = row[5] if row is not None and len(row) > 5 and isinstance(row[5], str) else "f"
        flat += [alias, rng.choice([0, 0, 0, 1, 1000, -5]), _value(rng, metric_kind, hostile)]
        if rng.random() < 0.1 + hostile * 0.3:
            reason = rng.choice(["stale", "timeout", *_HOSTILE_TEXT])
            qualities[index] = rng.choice([[1, reason], [2, reason], [0, reason]]) \
                if rng.random() > hostile * 0.1 else rng.choice([[3, "x"], "junk", [1], [1, 2]])
    message: dict[str, Any] = {"v": 1, "t": kind, "gw": gateway, "boot": boot, "seq": rng.randint(0, 10**6),
                               "ts": T0, "bt": T0, "r": flat}
    if qualities:
        message["q"] = qualities
    if rng.random() < 0.2:
        message["tf"] = rng.choice([1, 2, 4, 5, 9, -1])
    if rng.random() < hostile * 0.05:
        message[rng.choice(["r", "bt", "seq", "q"])] = rng.choice([None, "x", [1, 2], {"a": 1}, 2**64 - 1])
    return message


# ---- the judge --------------------------------------------------------------------------------

PROBLEMS = ("injection", "wrong-point", "missing-points", "invalid-line", "comment-line", "influxd-500",
            "no-reason", "loop-mismatch")


def readings_of(point: Point) -> int:
    """Readings a point holds: its fields not ending in `_q` (docs/data-model.md, the counting rule)."""
    return sum(not key.endswith("_q") for key in point.fields)


def judge(case: Case, outcome: Outcome) -> list[str]:
    """What is wrong with `outcome` for `case` (names from PROBLEMS; empty: nothing)."""
    result = outcome.message
    if isinstance(result, DeadLetter):
        return [] if result.reason else ["no-reason"]
    if not isinstance(result, Lines):
        return []
    problems: list[str] = []
    lines = result.text.split("\n") if result.text else []
    if any(line.lstrip(" \t\x00").startswith("#") for line in lines):
        problems.append("comment-line")
    strict = parse(result.text, strict=True, conflicts=False)
    points = strict.points
    if not strict.ok:
        problems.append("invalid-line")
        lenient = parse(result.text, conflicts=False)  # what influxd would store
        points = lenient.points
        if lenient.engine_errors:
            problems.append("influxd-500")  # not stored, and a writer retries a 5xx: a stall
    readings = sum(map(readings_of, points))
    if readings > result.readings or any(p.tags.get("gateway") != result.gateway for p in points):
        problems.append("injection")
    elif readings < result.readings:
        problems.append("missing-points")
    elif strict.ok and not _are_its_readings(case, outcome, points):
        problems.append("wrong-point")
    return problems


def _are_its_readings(case: Case, outcome: Outcome, points: list[Point]) -> bool:
    """The points hold exactly the message's readings: per reading, its metric's measurement,
    device and field (its value or `_err`) once; besides those only their quality fields and
    the time flags (docs/data-model.md). A line may hold several readings of one series."""
    boot = case.message.get("boot")
    rows: dict[int, list[Any]] | None = None
    for (gateway, birth_boot, birth_rows), reason in zip(case.birth_rows, outcome.births, strict=True):
        if reason is None and gateway == case.gateway and birth_boot == boot:
            rows = birth_rows  # the last accepted birth of the boot wins
    if not rows:
        return False
    health = case.message.get("t") == "health"
    expected: Counter[tuple[str, str, str]] = Counter()
    for alias in case.message["r"][0::3]:
        row = rows.get(alias)
        if row is None:
            return False
        _, device, measurement, name = row[:4]
        if health and not measurement.startswith("roadpulse_"):
            measurement = AGENT_MEASUREMENT
        expected[(measurement, device, name)] += 1
    found: Counter[tuple[str, str, str]] = Counter()
    for point in points:
        counted = {key[: -len("_err")] if key.endswith("_err") else key for key in point.fields
                   if not key.endswith("_q")}
        if any(key != "tf_q" and key[: -len("_q")] not in point.fields for key in point.fields if key.endswith("_q")):
            return False  # a quality field without its value beside it
        if len(counted) != readings_of(point):
            return False  # a value and an `_err` of one field in one point
        found.update((point.measurement, point.tags.get("device", ""), name) for name in counted)
    return found == expected


def same_outcome(a: Outcome, b: Outcome) -> bool:
    return a == b or (isinstance(a.message, Parked) and isinstance(b.message, Parked) and a.births == b.births)
