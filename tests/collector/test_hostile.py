"""Hostile births and data (issue 16): one reading gives exactly one field (its value or `_err`)
of a point in its own gateway's series, or the message is a dead letter with a reason; no
message leaves its ack unsettled."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import collector.output.influxdb.compile as decode_module
from collector.acks import AckLedger
from collector.births import BirthStore
from collector.deadletter import DeadLetters
from collector.decode import Decoder, Kind
from collector.ingest import Batch, Ingest, IngestLimits
from collector.metrics import Stats
from collector.seqtrack import SeqTracker
from roadpulse.wire import WireError
from tests.collector.lpcheck import Point, parse_line

BOOT = "0123456789abcdef"
T0 = 1_700_000_000_000
HOSTILE = [*'ab\\,= "#_\n\r\t\x00', "time", "m", "x"]

names = st.one_of(st.sampled_from(["traffic", "speed", "lane", "G15", "km/h"]),
                  st.lists(st.sampled_from(HOSTILE), max_size=5).map("".join))
values = st.one_of(st.none(), st.booleans(), st.integers(-(2**63), 2**63 - 1),
                   st.floats(allow_nan=True, allow_infinity=True), names, st.text(max_size=8))
metric_types = st.sampled_from("fibs")


def _pack(obj: object) -> bytes:
    return bytes(msgpack.packb(obj))


@st.composite
def births(draw: st.DrawFn, gateway: str) -> dict[str, Any]:
    n = draw(st.integers(1, 4))
    metrics = [[alias, draw(names), draw(names), draw(names), "u", draw(metric_types),
                draw(st.dictionaries(names, names, max_size=2))] for alias in range(n)]
    tag_values = st.one_of(names, st.integers(-(2**63), 2**63 - 1))
    devices = [{"id": draw(names), "tags": draw(st.dictionaries(names, tag_values, max_size=2))}]
    return {"v": 1, "t": "birth", "gw": gateway, "boot": BOOT, "ts": T0, "seq": 0, "devices": devices,
            "metrics": metrics}


@st.composite
def data(draw: st.DrawFn, gateway: str) -> dict[str, Any]:
    n = draw(st.integers(1, 12))
    flat: list[Any] = []
    for _ in range(n):
        flat += [draw(st.integers(0, 4)), draw(st.integers(-3, 3)), draw(values)]
    qualities = draw(st.dictionaries(st.integers(0, n - 1),
                                     st.tuples(st.sampled_from([1, 2]), names).map(list), max_size=3))
    obj = {"v": 1, "t": "data", "gw": gateway, "boot": BOOT, "seq": 1, "ts": T0, "bt": T0, "r": flat}
    if qualities:
        obj["q"] = qualities
    return obj


def _readings_of(point: Point) -> int:
    """A line holds one reading per field not ending in `_q` (docs/data-model.md)."""
    return sum(not key.endswith("_q") for key in point.fields)


def _points(decoder: Decoder, gateway: str, payload: bytes) -> tuple[int, list[str]] | None:
    try:
        decoded = decoder.decode(gateway, "data", payload)
    except WireError:
        return None
    if decoded.kind is not Kind.LINES:
        return None
    return decoded.readings, decoded.lines


@pytest.mark.parametrize("native", [True, False], ids=["c-loop", "python"])
@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_one_reading_one_point_in_its_own_series_or_a_dead_letter(native: bool, draw: st.DataObject) -> None:
    if native and not decode_module.NATIVE:
        pytest.skip("collector._fastlines is not built")
    saved = decode_module.NATIVE
    decode_module.NATIVE = native
    try:
        decoder = Decoder()
        for gateway in ("g1", "g2"):
            with contextlib.suppress(WireError):  # refused with a reason (tests/unit/test_wire_names.py)
                decoder.decode(gateway, "birth", _pack(draw.draw(births(gateway))))
        for gateway in ("g1", "g2"):
            result = _points(decoder, gateway, _pack(draw.draw(data(gateway))))
            if result is None:
                continue
            readings, lines = result
            points = [parse_line(line) for line in lines]
            assert sum(_readings_of(point) for point in points) == readings
            assert all(point.tags["gateway"] == gateway for point in points)
    finally:
        decode_module.NATIVE = saved


INJECTIONS = [
    # A field name ending in a backslash, and a string value that holds a line of another gateway.
    ({"metrics": [[0, "d", "m", "f\\", "u", "s", {}]]}, [0, 0, 'x\nm,gateway=g2 f=1 0\n']),
    # A measurement that ends in an escape, and a quality reason with a newline.
    ({"metrics": [[0, "d", 'm\\ ="', "f", "u", "f", {}]]}, [0, 0, 1.5]),
    ({"metrics": [[0, "d", "#m", "f", "u", "f", {}]]}, [0, 0, 1.5]),
    ({"metrics": [[0, "d", "m", "f", "u", "f", {"k\\": "v"}]]}, [0, 0, 1.5]),
]


@pytest.mark.parametrize(("birth", "flat"), INJECTIONS)
def test_known_injections_are_refused_at_birth(birth: dict[str, Any], flat: list[Any]) -> None:
    decoder = Decoder()
    with pytest.raises(WireError, match="bad-name"):
        decoder.decode("g1", "birth", _pack({"v": 1, "t": "birth", "gw": "g1", "boot": BOOT, "ts": T0,
                                              "seq": 0, "devices": [], **birth}))
    data_msg = {"v": 1, "t": "data", "gw": "g1", "boot": BOOT, "seq": 1, "ts": T0, "bt": T0, "r": flat}
    assert decoder.decode("g1", "data", _pack(data_msg)).kind is Kind.PARK  # no birth: parked, not written


@pytest.mark.parametrize("native", [True, False], ids=["c-loop", "python"])
def test_string_values_and_reasons_cannot_end_a_line(native: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_module, "NATIVE", native and decode_module.NATIVE)
    decoder = Decoder()
    decoder.decode("g1", "birth", _pack({"v": 1, "t": "birth", "gw": "g1", "boot": BOOT, "ts": T0, "seq": 0,
                                         "devices": [], "metrics": [[0, "d", "m", "s", "u", "s", {}],
                                                                    [1, "d", "m", "v", "u", "f", {}]]}))
    flat = [0, 0, 'a"\\\nm,gateway=g2 s="x" 0\n', 1, 0, None, 1, 0, 2.5]
    msg = {"v": 1, "t": "data", "gw": "g1", "boot": BOOT, "seq": 1, "ts": T0, "bt": T0, "r": flat,
           "q": {1: [2, "cut\nm,gateway=g2 v=1 0"], 2: [1, "odd\r\n#"]}}
    decoded = decoder.decode("g1", "data", _pack(msg))
    points = [parse_line(line) for line in decoded.lines]
    assert [sorted(p.fields) for p in points] == [["s", "v_err"], ["v", "v_q"]]  # v twice: a second line
    assert all(p.tags["gateway"] == "g1" for p in points)
    assert points[0].fields["s"] == '"a\\"\\\\\ufffdm,gateway=g2 s=\\"x\\" 0\ufffd"'


POISON = [
    {"devices": [{"id": "d", "tags": "abc"}]},
    {"devices": [{"id": ["d"], "tags": {}}]},
    {"devices": [{"id": "d", "tags": {"k": {"x": 1}}}]},
    {"metrics": [[0, "d", "m", "f\\", "u", "s", {}]]},
    {"metrics": [[{}, "d", "m", "f", "u", "s", {}]]},
]


def _poison_birth(gateway: str, extra: dict[str, Any]) -> bytes:
    obj = {"v": 1, "t": "birth", "gw": gateway, "boot": BOOT, "ts": T0, "seq": 0, "devices": [],
           "metrics": [[0, "d", "m", "f", "u", "f", {}]], **extra}
    return _pack(obj)


def _ingest(tmp_path: Path, sealed: list[Batch], ledger: AckLedger, stats: Stats) -> Ingest:
    limits = IngestLimits(batch_max_lines=1000, batch_max_age_s=1.0, batch_max_messages=1000, park_timeout_s=5.0)
    return Ingest("rp/v1", limits, decoder=Decoder(), births=BirthStore(tmp_path / "births"),
                  dead=DeadLetters(tmp_path / "dead"), seqs=SeqTracker(grace_s=30.0), ledger=ledger,
                  stats=stats, request_rebirth=lambda *_: None, seal=sealed.append)


def test_every_poison_message_settles_its_ticket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sealed: list[Batch] = []
    ledger, stats = AckLedger(), Stats()
    ingest = _ingest(tmp_path, sealed, ledger, stats)
    for mid, extra in enumerate(POISON, start=1):
        ingest.on_publish(b"rp/v1/g1/birth", 1, mid, _poison_birth("g1", extra))
    # A bug in the decoder (simulated) is a dead letter too, not an exception out of the callback.
    monkeypatch.setattr(Decoder, "learn", lambda self, birth: 1 / 0)
    ingest.on_publish(b"rp/v1/g1/birth", 1, 99, _poison_birth("g1", {}))
    ingest.seal()
    tickets = [t for batch in sealed for t in batch.tickets]
    assert len(tickets) == len(POISON) + 1
    assert [t.mid for t in ledger.settle(tickets)] == [*range(1, len(POISON) + 1), 99]
    assert stats.dead_letters == len(POISON) + 1
    assert stats.decode_errors == 1
    assert ledger.pending == 0


def test_a_bad_birth_seen_again_is_dead_lettered_once(tmp_path: Path) -> None:
    sealed: list[Batch] = []
    ledger, stats = AckLedger(), Stats()
    ingest = _ingest(tmp_path, sealed, ledger, stats)
    payload = _poison_birth("g1", POISON[0])
    for mid in range(1, 4):  # the retained birth again after each reconnect
        ingest.on_publish(b"rp/v1/g1/birth", 1, mid, payload, retain=True)
    ingest.on_publish(b"rp/v1/g2/birth", 1, 4, _poison_birth("g2", POISON[0]), retain=True)
    ingest.on_publish(b"rp/v1/g1/birth", 1, 5, payload)  # published anew, not retained: a new dead letter
    ingest.seal()
    assert stats.dead_letters == 3
    assert stats.dead_letters_repeated == 2
    assert len(ledger.settle([t for batch in sealed for t in batch.tickets])) == 5


def test_the_oldest_unacked_message_has_an_age() -> None:
    ledger = AckLedger()
    assert ledger.oldest_age(100.0) == 0.0
    first = ledger.arrive(1, 1, now=10.0)
    ledger.arrive(2, 1, now=50.0)
    assert ledger.oldest_age(100.0) == 90.0
    ledger.settle([first])
    assert ledger.oldest_age(100.0) == 50.0
