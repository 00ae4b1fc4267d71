"""Ingest without a broker: tickets, parking, rebirth requests and ack order, with fake messages."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from collector.acks import AckLedger
from collector.births import BirthStore
from collector.deadletter import DeadLetters
from collector.decode import Decoder
from collector.ingest import Batch, Ingest, IngestLimits
from collector.metrics import Stats
from collector.seqtrack import SeqTracker
from roadpulse.wire import Topics, encode_birth, encode_data
from tests.collector.traffic import make_batch, make_birth

TOPICS = Topics("gw-1")


@dataclass
class _Message:
    topic: str
    payload: bytes
    mid: int
    qos: int = 1


class _Harness:
    def __init__(self, tmp_path: Path) -> None:
        self.sealed: list[Batch] = []
        self.rebirths: list[tuple[str, str, str]] = []
        self.stats = Stats()
        self.ledger = AckLedger()
        self.dead = DeadLetters(tmp_path / "dead")
        self.ingest = Ingest("rp/v1", IngestLimits(100_000, 60.0, 1000, park_timeout_s=5.0),
                             decoder=Decoder(), births=BirthStore(tmp_path / "births"), dead=self.dead,
                             seqs=SeqTracker(), ledger=self.ledger, stats=self.stats,
                             request_rebirth=lambda gw, boot, why: self.rebirths.append((gw, boot, why)),
                             seal=self.sealed.append)
        self.mid = 0

    def send(self, topic: str, payload: bytes) -> None:
        self.mid += 1
        self.ingest.on_message(_Message(topic, payload, self.mid))  # type: ignore[arg-type]

    def settle_all(self) -> list[int]:
        self.ingest.seal()
        acked: list[int] = []
        for batch in self.sealed:
            acked += [t.mid for t in self.ledger.settle(batch.tickets)]
        self.sealed.clear()
        return acked


def test_parked_message_holds_later_acks_until_its_birth_comes(tmp_path: Path) -> None:
    h = _Harness(tmp_path)
    birth = make_birth("gw-1", "0123456789abcdef")
    h.send(TOPICS.data, encode_data(make_batch(birth, 0)))  # mid 1: no birth yet → parked
    h.send(TOPICS.data, encode_data(make_batch(birth, 1)))  # mid 2: parked too
    h.send(TOPICS.death, b"\xc1")  # mid 3: garbage → dead letter
    # One request, not one per message, naming the boot whose birth is missing.
    assert h.rebirths == [("gw-1", "0123456789abcdef", "unknown boot 0123456789abcdef")]
    assert h.settle_all() == []  # 3 is durable, but 1 and 2 come first
    h.send(TOPICS.birth, encode_birth(birth))  # mid 4: unparks 1 and 2
    assert h.settle_all() == [1, 2, 3, 4]
    assert h.stats.readings_in == 100
    assert h.stats.dead_letters == 1


def test_parked_message_without_birth_becomes_a_dead_letter(tmp_path: Path) -> None:
    h = _Harness(tmp_path)
    birth = make_birth("gw-1", "0123456789abcdef")
    h.send(TOPICS.data, encode_data(make_batch(birth, 0)))
    h.ingest.tick(now=1e12)  # long after the park timeout
    assert h.settle_all() == [1]
    assert h.dead.by_reason == {"no-birth": 1}


def test_wrong_topic_gateway_is_a_dead_letter(tmp_path: Path) -> None:
    h = _Harness(tmp_path)
    birth = make_birth("gw-1", "0123456789abcdef")
    h.send(TOPICS.birth, encode_birth(birth))
    h.send(Topics("gw-2").data, encode_data(make_batch(birth, 0)))
    h.send("elsewhere/gw-1/data", b"x")
    assert h.settle_all() == [1, 2, 3]
    assert h.dead.by_reason == {"gateway-mismatch": 1, "bad-topic": 1}


def test_batches_seal_at_half_the_receive_window(tmp_path: Path) -> None:
    h = _Harness(tmp_path)
    h.ingest = Ingest("rp/v1", IngestLimits(100_000, 60.0, 3, 5.0), decoder=Decoder(),
                      births=BirthStore(tmp_path / "b2"), dead=h.dead, seqs=SeqTracker(), ledger=h.ledger,
                      stats=h.stats, request_rebirth=lambda gw, boot, why: None, seal=h.sealed.append)
    birth = make_birth("gw-1", "0123456789abcdef")
    h.send(TOPICS.birth, encode_birth(birth))
    for seq in range(5):
        h.send(TOPICS.data, encode_data(make_batch(birth, seq)))
    assert [len(b.tickets) for b in h.sealed] == [3, 3]  # the sixth message is in the open batch
