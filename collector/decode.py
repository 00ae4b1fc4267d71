"""From an MQTT message to lines: the collector's decoder, and the entry point fuzzers drive.

`Decoder.decode(topic_gateway, topic_kind, payload)` is the whole contract: given a message
(its topic's gateway and kind, its payload bytes) and the births seen so far, it returns the
message's lines (`Kind.LINES`), a birth or death it learnt from, a message to park (no birth
yet), or raises WireError with a reason (a dead letter). No I/O. Births, deaths and commands
are validated by roadpulse.wire; data goes straight from the unpacked msgpack map to text
through the output's line format (compile once per birth, format once per message).
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass
from typing import Any

import msgpack

from collector.output.base import LineFormat, UnknownAlias
from collector.output.influxdb import LINE_PROTOCOL
from roadpulse.wire import Birth, Death, WireError, decode
from roadpulse.wire.validate import check_quality, check_reading, data_header


class Kind(enum.Enum):
    LINES = "lines"
    BIRTH = "birth"
    DEATH = "death"
    PARK = "park"  # no birth for this boot or alias yet
    IGNORE = "ignore"


@dataclass(slots=True)
class Decoded:
    kind: Kind
    gateway: str = ""
    boot: str = ""
    seq: int = -1
    text: str = ""  # a line per series and time (docs/data-model.md), joined by newlines (no trailing one)
    readings: int = 0
    bad_values: int = 0  # readings whose value did not fit the metric's type (stored as _err)
    birth: Birth | None = None
    missing: str = ""  # what was unknown, for a PARK
    health: bool = False  # an agent's own metrics: its seq is separate, and it is not a reading

    @property
    def lines(self) -> list[str]:
        """The lines one by one (tests and tools; the collector passes `text` on whole)."""
        return self.text.split("\n") if self.text else []


@dataclass(frozen=True, slots=True)
class DecodeLimits:
    """Bounds on what one gateway can make the collector hold or spend (collector config [limits])."""

    birth_max_bytes: int = 128 * 1024
    birth_max_metrics: int = 1000
    births_per_gateway: int = 4
    message_max_readings: int = 5_000
    max_gateways: int = 10_000
    # Metrics of every birth kept, all gateways together: the decoder's memory (~1.5 KB per
    # metric of its own series), whatever the number of gateways or boots.
    max_known_metrics: int = 1_000_000


class _Tables:
    """One boot's compiled birth: for data at once, for health messages when first needed
    (most aliases never appear in a health message, and a birth's cost is its compile)."""

    __slots__ = ("_health", "birth", "data", "format")

    def __init__(self, birth: Birth, line_format: LineFormat) -> None:
        self.birth = birth
        self.format = line_format
        self.data = line_format.compile(birth)
        self._health: object | None = None

    def health(self) -> object:
        if self._health is None:
            self._health = self.format.compile(self.birth, health=True)
        return self._health


class Decoder:
    """Turns payloads into Decoded results. Keeps alias tables per (gateway, boot); no I/O.

    The caller persists births (BirthStore) and feeds them back with `learn` at start-up.
    """

    def __init__(self, limits: DecodeLimits | None = None, *, boots_per_gateway: int | None = None,
                 line_format: LineFormat = LINE_PROTOCOL) -> None:
        """`line_format`: the compile and format steps of the outputs' format (line protocol)."""
        self._format = line_format
        limits = limits or DecodeLimits()
        if boots_per_gateway is not None:
            limits = dataclasses.replace(limits, births_per_gateway=boots_per_gateway)
        self.limits = limits
        # (gateway, boot) -> data table and its templates; the health table, made on first use
        self._tables: dict[tuple[str, str], _Tables] = {}
        self._order: dict[str, list[str]] = {}
        self.births_evicted = 0  # births forgotten because a gateway had more than births_per_gateway
        self._known_metrics = 0  # metrics of the births in _tables

    def learn(self, birth: Birth) -> None:
        """Raises WireError (`limit-...`) for a birth beyond a bound; nothing is learnt then."""
        limits = self.limits
        if len(birth.metrics) > limits.birth_max_metrics:
            raise WireError("limit-birth-metrics", f"{len(birth.metrics)} metrics > {limits.birth_max_metrics}")
        if birth.gateway not in self._order and len(self._order) >= limits.max_gateways:
            raise WireError("limit-gateways", f"{len(self._order)} gateways known already")
        key = (birth.gateway, birth.boot)
        boots = self._order.get(birth.gateway, [])
        leaving = [key] if key in self._tables else []
        if not leaving and len(boots) >= limits.births_per_gateway:  # its oldest boot will be forgotten
            leaving = [(birth.gateway, boot) for boot in boots[: len(boots) - limits.births_per_gateway + 1]]
        known = self._known_metrics - sum(len(self._tables[k].birth.metrics) for k in leaving if k in self._tables)
        if known + len(birth.metrics) > limits.max_known_metrics:
            raise WireError("limit-known-metrics", f"{known} metrics known already")
        try:
            compiled = _Tables(birth, self._format)
        except ValueError as exc:  # a name the format cannot write (births are checked before: a bug if so)
            raise WireError("bad-name", str(exc)[:160]) from None
        old = self._tables.get(key)
        self._known_metrics -= len(old.birth.metrics) if old else 0
        self._tables[key] = compiled
        self._known_metrics += len(birth.metrics)
        boots = self._order.setdefault(birth.gateway, [])
        if birth.boot in boots:
            boots.remove(birth.boot)
        boots.append(birth.boot)
        # Replays of earlier boots still need their births, but not forever.
        while len(boots) > limits.births_per_gateway:
            evicted = self._tables.pop((birth.gateway, boots.pop(0)), None)
            self._known_metrics -= len(evicted.birth.metrics) if evicted else 0
            self.births_evicted += 1

    def known(self, gateway: str, boot: str) -> bool:
        return (gateway, boot) in self._tables

    def decode(self, topic_gateway: str, topic_kind: str, payload: bytes) -> Decoded:
        """Raises WireError (with .reason) for anything that must go to the dead letters."""
        if topic_kind in ("data", "health"):
            return self._data(topic_gateway, topic_kind, payload)
        if topic_kind == "birth" and len(payload) > self.limits.birth_max_bytes:
            raise WireError("limit-birth-bytes", f"{len(payload)} bytes > {self.limits.birth_max_bytes}")
        message = decode(payload, max_metrics=self.limits.birth_max_metrics)
        if isinstance(message, Birth):
            self._check_gateway(topic_gateway, message.gateway)
            if topic_kind != "birth":
                raise WireError("kind-mismatch", f"birth on {topic_kind} topic")
            self.learn(message)
            return Decoded(Kind.BIRTH, message.gateway, message.boot, birth=message)
        if isinstance(message, Death):
            self._check_gateway(topic_gateway, message.gateway)
            return Decoded(Kind.DEATH, message.gateway, message.boot)
        raise WireError("kind-mismatch", f"{type(message).__name__} on {topic_kind} topic")

    @staticmethod
    def _check_gateway(topic_gateway: str, gateway: str) -> None:
        if topic_gateway != gateway:
            raise WireError("gateway-mismatch", f"topic {topic_gateway}, payload {gateway}"[:120])

    def _data(self, topic_gateway: str, topic_kind: str, payload: bytes) -> Decoded:
        try:
            obj = msgpack.unpackb(payload, raw=False, strict_map_key=False)
        except Exception as exc:  # msgpack raises several unrelated types for garbage
            raise WireError("not-msgpack", type(exc).__name__) from None
        if type(obj) is not dict:
            raise WireError("not-a-map", type(obj).__name__)
        if obj.get("v") != 1 or type(obj.get("v")) is not int:
            raise WireError("bad-version", repr(obj.get("v"))[:20])
        kind = obj.get("t")
        if kind not in ("data", "health"):
            raise WireError("kind-mismatch" if kind in ("birth", "death", "cmd") else "bad-kind",
                            repr(kind)[:20])
        if kind != topic_kind:
            raise WireError("kind-mismatch", f"{kind} on {topic_kind} topic")
        gateway, boot, seq, base, flat, qualities, flags = data_header(obj)
        self._check_gateway(topic_gateway, gateway)
        if len(flat) > 3 * self.limits.message_max_readings:
            raise WireError("limit-readings", f"{len(flat) // 3} readings > {self.limits.message_max_readings}")
        tables = self._tables.get((gateway, boot))
        if tables is None:
            self._validate_all(flat, qualities)
            return Decoded(Kind.PARK, gateway, boot, seq, missing=f"unknown boot {boot}",
                           health=kind == "health")
        compiled = tables.health() if kind == "health" else tables.data
        try:
            text, bad = self._format.format(compiled, flat, base, qualities, flags)
        except UnknownAlias as exc:
            self._validate_all(flat, qualities)
            return Decoded(Kind.PARK, gateway, boot, seq, missing=str(exc), health=kind == "health")
        return Decoded(Kind.LINES, gateway, boot, seq, text, len(flat) // 3, bad, health=kind == "health")

    @staticmethod
    def _validate_all(flat: list[Any], qualities: dict[Any, Any]) -> None:
        """A message we park must be valid apart from the missing birth, or it is a dead letter now."""
        for index in range(len(flat) // 3):
            check_reading(*flat[3 * index : 3 * index + 3])
        for index, quality in qualities.items():
            if type(index) is not int or not 0 <= index < len(flat) // 3:
                continue
            check_quality(quality)
