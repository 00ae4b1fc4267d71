"""Bounds on what one message can cost (issue 16): each refuses with a `limit-...` dead letter
and is counted, and no message at the bounds blocks the event loop for long."""

from __future__ import annotations

import asyncio
import gc
import time
from pathlib import Path
from typing import Any

import msgpack
import pytest

from collector.acks import AckLedger
from collector.births import BirthStore
from collector.deadletter import DeadLetters
from collector.decode import DecodeLimits, Decoder
from collector.ingest import Batch, Ingest, IngestLimits
from collector.metrics import Stats
from collector.seqtrack import SeqTracker
from roadpulse.wire import WireError

BOOT = "0123456789abcdef"
T0 = 1_700_000_000_000
LIMITS = DecodeLimits()


def _pack(obj: object) -> bytes:
    return bytes(msgpack.packb(obj))


def _birth(gateway: str, metrics: int, *, boot: str = BOOT, unique: bool = True) -> bytes:
    """The costliest birth of its size: every metric its own series (tags differ per metric)."""
    rows = [[a, "d", "m", f"f{a % 7}", "u", "fibs"[a % 4], {"k": f"v{a}" if unique else "v", "k2": f"w{a}"}]
            for a in range(metrics)]
    return _pack({"v": 1, "t": "birth", "gw": gateway, "boot": boot, "ts": T0, "seq": 0,
                  "devices": [{"id": "d", "tags": {"site": "S1"}}], "metrics": rows})


def _data(gateway: str, readings: int, value: Any, *, reasons: bool, aliases: int) -> bytes:
    flat: list[Any] = []
    for i in range(readings):
        flat += [i % aliases, 1, value]
    obj: dict[str, Any] = {"v": 1, "t": "data", "gw": gateway, "boot": BOOT, "seq": 1, "ts": T0, "bt": T0, "r": flat}
    if reasons:
        obj["q"] = {i: [2, "sensor timeout, retried 3 times"] for i in range(readings)}
    return _pack(obj)


@pytest.mark.parametrize(
    ("limits", "topic_kind", "payload", "reason"),
    [
        (DecodeLimits(birth_max_bytes=2048), "birth", _birth("g1", 200), "limit-birth-bytes"),
        (DecodeLimits(birth_max_metrics=10), "birth", _birth("g1", 11), "limit-birth-metrics"),
        (DecodeLimits(message_max_readings=10), "data", _data("g1", 11, 1.5, reasons=False, aliases=4),
         "limit-readings"),
    ],
)
def test_each_bound_refuses_with_a_reason(limits: DecodeLimits, topic_kind: str, payload: bytes,
                                          reason: str) -> None:
    decoder = Decoder(limits)
    if topic_kind == "data":
        decoder.decode("g1", "birth", _birth("g1", 4))
    with pytest.raises(WireError) as info:
        decoder.decode("g1", topic_kind, payload)
    assert info.value.reason == reason


def test_known_gateways_and_births_per_gateway_are_bounded() -> None:
    decoder = Decoder(DecodeLimits(max_gateways=3, births_per_gateway=2))
    for gateway in ("g1", "g2", "g3"):
        decoder.decode(gateway, "birth", _birth(gateway, 2))
    with pytest.raises(WireError, match="limit-gateways"):
        decoder.decode("g4", "birth", _birth("g4", 2))
    for boot in ("b1", "b2", "b3"):  # a known gateway's new boots are fine; the oldest is forgotten
        decoder.decode("g1", "birth", _birth("g1", 2, boot=boot))
    assert decoder.births_evicted == 2
    assert not decoder.known("g1", BOOT)
    assert decoder.known("g1", "b3")


def test_metrics_of_all_kept_births_are_bounded() -> None:
    decoder = Decoder(DecodeLimits(max_known_metrics=10, births_per_gateway=1))
    decoder.decode("g1", "birth", _birth("g1", 6))
    decoder.decode("g1", "birth", _birth("g1", 6))  # the same boot again replaces, not adds
    with pytest.raises(WireError, match="limit-known-metrics"):
        decoder.decode("g2", "birth", _birth("g2", 5))
    decoder.decode("g2", "birth", _birth("g2", 4))
    for boot in ("b1", "b2"):  # g1's older boot is forgotten, and its metrics with it
        decoder.decode("g1", "birth", _birth("g1", 3, boot=boot))
    assert decoder.known("g2", BOOT)
    assert decoder.known("g1", "b2")
    with pytest.raises(WireError, match="limit-known-metrics"):
        decoder.decode("g3", "birth", _birth("g3", 4))
    decoder.decode("g3", "birth", _birth("g3", 3))


def _ingest(tmp_path: Path, stats: Stats, limits: DecodeLimits = LIMITS) -> Ingest:
    sealed: list[Batch] = []
    bounds = IngestLimits(batch_max_lines=100_000, batch_max_age_s=1.0, batch_max_messages=1000, park_timeout_s=5.0)
    return Ingest("rp/v1", bounds, decoder=Decoder(limits), births=BirthStore(tmp_path / "births"),
                  dead=DeadLetters(tmp_path / "dead"), seqs=SeqTracker(grace_s=30.0), ledger=AckLedger(),
                  stats=stats, request_rebirth=lambda *_: None, seal=sealed.append)


def test_a_bound_hit_is_a_counted_dead_letter(tmp_path: Path) -> None:
    stats = Stats()
    ingest = _ingest(tmp_path, stats, DecodeLimits(birth_max_metrics=5))
    ingest.on_publish(b"rp/v1/g1/birth", 1, 1, _birth("g1", 6))
    assert (stats.limits_hit, stats.dead_letters) == (1, 1)


def _worst_cases() -> list[tuple[str, bytes]]:
    """Messages at (and beyond) the default bounds, the costliest of each kind we know."""
    metrics = LIMITS.birth_max_metrics
    birth = _birth("g1", metrics)
    assert len(birth) <= LIMITS.birth_max_bytes
    n = LIMITS.message_max_readings
    return [
        ("rp/v1/g1/birth", birth),
        ("rp/v1/g2/birth", _birth("g2", 20 * metrics)),  # far over the byte bound: refused unread
        ("rp/v1/g1/data", _data("g1", n, None, reasons=True, aliases=metrics)),  # every reading nil, with why
        ("rp/v1/g1/data", _data("g1", n, 2.5, reasons=True, aliases=metrics)),  # every value with a quality
        ("rp/v1/g1/data", _data("g1", n, "a string value\n", reasons=False, aliases=metrics)),
        ("rp/v1/g1/data", _data("g1", n, 1.5, reasons=False, aliases=metrics)),
        ("rp/v1/g1/data", _data("g1", 5 * n, 1.5, reasons=False, aliases=metrics)),  # over the readings bound
        ("rp/v1/g1/birth", _birth("g1", metrics, boot="fedcba9876543210")),  # a second boot of the same size
    ]


# The target is ~50 ms per message (the costliest cases here take 10-70 ms of CPU on a
# heavily loaded 2-core machine, and the loop lag reached 0.64 s with the test suite running
# beside it). Shared CI machines stretch wall time, so the loop-lag bound has a wide margin
# and the CPU time of each message (less sensitive to load) a narrower one. Unbounded, the
# costs of issue 16 were 1.2 s per birth on an idle machine; a 20x birth here is refused unread.
LAG_BOUND_S = 1.0
CPU_BOUND_S = 0.15


def test_no_message_at_the_bounds_blocks_the_event_loop(tmp_path: Path) -> None:
    stats = Stats()
    ingest = _ingest(tmp_path, stats)
    cases = _worst_cases()
    lags: list[float] = []
    cpu: list[float] = []

    async def probe(done: asyncio.Event) -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(0.005)
            lags.append(time.perf_counter() - before - 0.005)

    async def feed(done: asyncio.Event) -> None:
        for mid, (topic, payload) in enumerate(cases, start=1):
            await asyncio.sleep(0.02)  # the probe's turn between messages
            # The message's own cost: a full collection of the test session's heap (thousands of
            # tests' objects) landing inside one message took 176 ms in one CI run, which is the
            # suite's heap, not the message. Collected here, between messages, instead.
            gc.collect()
            gc.disable()
            try:
                started = time.thread_time()
                ingest.on_publish(topic.encode(), 1, mid, payload)
                cpu.append(time.thread_time() - started)
            finally:
                gc.enable()
        done.set()

    async def main() -> None:
        done = asyncio.Event()
        async with asyncio.TaskGroup() as tg:
            tg.create_task(probe(done), name="lag-probe")
            tg.create_task(feed(done), name="feed")

    asyncio.run(main())
    assert stats.limits_hit == 2  # the oversized birth and the oversized message
    assert stats.births == 2
    assert stats.readings_in == 4 * LIMITS.message_max_readings
    print(f"max loop lag {max(lags) * 1000:.1f} ms, cpu per message (ms) {[round(c * 1000, 1) for c in cpu]}")
    assert max(lags) < LAG_BOUND_S, f"loop blocked {max(lags) * 1000:.0f} ms; cpu per message {cpu}"
    assert max(cpu) < CPU_BOUND_S, f"cpu per message {cpu}"
