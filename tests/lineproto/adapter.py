"""The one place the line-protocol tests and the fuzz touch the collector's decoder.

`decode_for_test(topic, payload, births, native=...)` runs a message through the collector's
decoding the way its ingest does (collector/ingest.py, `_process`): births first, in order,
on their own topics, then the message. When the collector's decoder moves or changes shape,
only this file changes.

Contract:
- `topic` is a full MQTT topic (prefix `rp/v1` unless `prefix` says otherwise); one that is
  not ours is a dead letter `bad-topic`, as in ingest.
- `births` are (topic, payload) pairs, each decoded before the message; a birth the decoder
  refuses is dead-lettered and teaches nothing (its reason is in `Outcome.births`).
- The result is `Lines` (the text the collector would write for the message, and the number
  of readings it accepted), `DeadLetter` (its reason), `Parked` (no birth known for its boot
  or alias yet) or `Control` (a birth or a death, nothing to write).
- `native`: True runs the C loop (collector._fastlines) where the decoder would, False forces
  the Python path. Both must give the same outcome.
- Only the collector's "dead letter" error is caught. Any other exception escapes, on purpose:
  the tests and the fuzz count it as a bug (issue #16: no exception escapes message handling).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import collector.output.influxdb.compile as decode_module
from collector.decode import Decoder, Kind
from roadpulse.wire import WireError
from roadpulse.wire.topics import parse_topic

PREFIX = "rp/v1"


@dataclass(frozen=True, slots=True)
class Lines:
    text: str  # line protocol, a line per series and time, joined by newlines
    readings: int  # readings the collector accepted from the message (each must be one field of a point)
    gateway: str  # the gateway of the message's topic


@dataclass(frozen=True, slots=True)
class DeadLetter:
    reason: str


@dataclass(frozen=True, slots=True)
class Parked:
    missing: str


@dataclass(frozen=True, slots=True)
class Control:
    kind: str  # "birth" or "death"


@dataclass(frozen=True, slots=True)
class Outcome:
    message: Lines | DeadLetter | Parked | Control
    births: list[str | None] = field(default_factory=list)  # per birth: its dead-letter reason, or None
    # CPU seconds each decode took, the births' then the message's (the fuzz's time bound per
    # message; CPU time, so that other work on a shared machine does not count)
    seconds: list[float] = field(default_factory=list, compare=False)


def topic_of(gateway: str, kind: str, prefix: str = PREFIX) -> str:
    return f"{prefix}/{gateway}/{kind}"


@contextmanager
def _loop(native: bool) -> Iterator[None]:
    """Which loop the decoder's alias tables are compiled for, while births are learnt."""
    saved = decode_module.NATIVE
    decode_module.NATIVE = saved and native
    try:
        yield
    finally:
        decode_module.NATIVE = saved


def decode_for_test(topic: str, payload: bytes, births: Sequence[tuple[str, bytes]] = (), *,
                    native: bool = True, prefix: str = PREFIX) -> Outcome:
    decoder = Decoder()
    seconds: list[float] = []
    with _loop(native):
        reasons = [_reason(_timed(decoder, t, p, prefix, seconds)) for t, p in births]
        return Outcome(_timed(decoder, topic, payload, prefix, seconds), reasons, seconds)


def _timed(decoder: Decoder, topic: str, payload: bytes, prefix: str,
           seconds: list[float]) -> Lines | DeadLetter | Parked | Control:
    start = time.thread_time()
    try:
        return _one(decoder, topic, payload, prefix)
    finally:
        seconds.append(time.thread_time() - start)


def _reason(result: Lines | DeadLetter | Parked | Control) -> str | None:
    return result.reason if isinstance(result, DeadLetter) else None


def _one(decoder: Decoder, topic: str, payload: bytes, prefix: str) -> Lines | DeadLetter | Parked | Control:
    where = parse_topic(topic, prefix)
    if where is None:
        return DeadLetter("bad-topic")
    gateway, kind = where
    try:
        decoded = decoder.decode(gateway, kind, payload)
    except WireError as exc:
        return DeadLetter(exc.reason)
    if decoded.kind is Kind.LINES:
        return Lines(decoded.text, decoded.readings, gateway)
    if decoded.kind is Kind.PARK:
        return Parked(decoded.missing)
    return Control(decoded.kind.value)
