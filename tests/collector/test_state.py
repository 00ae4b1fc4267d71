"""Pure state: sequence ranges, the ack ledger, error classification, config examples."""

from __future__ import annotations

from pathlib import Path

import pytest

from collector.acks import AckLedger
from collector.output.errors import (
    RETRY_AFTER_CAP_S,
    WriteRejected,
    WriteRetryable,
    WriteThrottled,
    WriteTooLarge,
    parse_retry_after,
)
from collector.output.influxdb.writer import classify
from collector.seqtrack import SeqRanges, SeqTracker

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("arrivals", "duplicates", "gaps_after_grace"),
    [
        ([0, 1, 2, 3], 0, 0),
        ([0, 1, 1, 2], 1, 0),
        ([0, 2], 0, 1),
        ([0, 5], 0, 4),
        ([0, 5, 3, 1], 0, 2),  # late arrivals fill the hole
        ([0, 5, 1, 2, 3, 4], 0, 0),
        ([3, 0, 1, 2, 0, 3], 2, 0),
        ([10, 12, 11, 12, 10], 2, 0),
    ],
)
def test_seq_ranges(arrivals: list[int], duplicates: int, gaps_after_grace: int) -> None:
    ranges = SeqRanges()
    dups = sum(ranges.add(seq, now=0.0) for seq in arrivals)
    assert dups == duplicates
    assert ranges.expire(now=1.0, grace_s=5.0) == 0  # within the grace period: no gap yet
    assert ranges.expire(now=10.0, grace_s=5.0) == gaps_after_grace


def test_tracker_new_boot_closes_the_old_one_and_keeps_it_for_replays() -> None:
    tracker = SeqTracker(grace_s=60)
    for seq in (0, 1, 3):
        tracker.observe("g", "boot-a", seq, 0)
    tracker.observe("g", "boot-b", 0, 1)
    assert tracker.gaps == 1  # seq 2 of boot-a can no longer come live
    assert tracker.observe("g", "boot-a", 1, 2)  # a replay of the old boot is still checked
    assert tracker.duplicates == 1
    tracker.death("g", "boot-b")
    assert tracker.gaps == 1


def test_shared_subscription_members_do_not_count_each_others_messages_as_gaps() -> None:
    tracker = SeqTracker(grace_s=1, count_gaps=False)
    for seq in (0, 3, 6, 3):
        tracker.observe("g", "b", seq, 0)
    tracker.expire(10)
    tracker.observe("g", "b2", 0, 11)
    assert tracker.gaps == 0
    assert tracker.duplicates == 1


def test_ack_ledger_releases_in_arrival_order() -> None:
    ledger = AckLedger()
    tickets = [ledger.arrive(mid, 1) for mid in range(1, 6)]
    assert ledger.settle([tickets[1], tickets[2]]) == []
    assert [t.mid for t in ledger.settle([tickets[0]])] == [1, 2, 3]
    ledger.new_connection()  # 4 and 5 will be redelivered on the new connection
    assert ledger.settle([tickets[3], tickets[4]]) == []
    assert ledger.pending == 0


@pytest.mark.parametrize(
    ("status", "retry_after", "body", "expected"),
    [
        (204, None, "", None),
        (400, None, "unable to parse", WriteRejected),
        (400, None, "partial write: field type conflict", WriteRejected),
        (422, None, "", WriteRejected),
        (413, None, "", WriteTooLarge),
        (429, "2", "", WriteThrottled),
        (503, None, "", WriteThrottled),
        (500, None, "", WriteRetryable),
        (502, None, "", WriteRetryable),
        (401, None, "", WriteRetryable),
        (404, None, "", WriteRetryable),
    ],
)
def test_classify(status: int, retry_after: str | None, body: str, expected: type | None) -> None:
    error = classify(status, retry_after, body)
    if expected is None:
        assert error is None
    else:
        assert type(error) is expected


def test_retry_after() -> None:
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("100000") == RETRY_AFTER_CAP_S
    assert parse_retry_after(None, default=1.5) == 1.5
    assert parse_retry_after("garbage", default=1.0) == 1.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == 10.0
    throttled = classify(429, "7", "")
    assert isinstance(throttled, WriteThrottled)
    assert throttled.retry_after == 7.0


def test_example_config_loads() -> None:
    from collector.config import load_collector_config

    config = load_collector_config(ROOT / "config" / "collector.example.toml")
    assert config.mqtt.port == 1883
    assert config.influx.api == "v1"
    assert config.collector.data_dir.is_absolute()


def test_config_errors_name_the_key(tmp_path: Path) -> None:
    from collector.config import load_collector_config
    from roadpulse.configfile import ConfigError

    path = tmp_path / "c.toml"
    path.write_text('[collector]\nclient_id="c"\ndata_dir="d"\n[mqtt]\nurl="mqtt://h:1"\n'
                    '[influx]\nurl="http://h"\napi="v2"\nbogus=1\n')
    with pytest.raises(ConfigError) as caught:
        load_collector_config(path)
    keys = {key for key, _ in caught.value.problems}
    assert "influx.bogus" in keys


def test_health_messages_skip_seq_accounting(tmp_path: Path) -> None:
    """Health seq counts health messages only: same numbers as data must not look like duplicates."""
    from collector.births import BirthStore
    from collector.deadletter import DeadLetters
    from collector.decode import Decoder
    from collector.ingest import Batch, Ingest, IngestLimits
    from collector.metrics import Stats
    from roadpulse.wire import DataBatch, Reading, Topics, encode_birth, encode_data
    from tests.collector.traffic import make_batch, make_birth

    class _Message:
        def __init__(self, topic: str, payload: bytes, mid: int) -> None:
            self.topic, self.payload, self.mid, self.qos = topic, payload, mid, 1

    birth = make_birth("gw-1", "0123456789abcdef")
    sealed: list[Batch] = []
    stats = Stats()
    ingest = Ingest("rp/v1", IngestLimits(1000, 10.0, 50, 5.0), decoder=Decoder(),
                    births=BirthStore(tmp_path / "b"), dead=DeadLetters(tmp_path / "d"), seqs=SeqTracker(),
                    ledger=AckLedger(), stats=stats, request_rebirth=lambda gw, boot, why: None, seal=sealed.append)
    topics = Topics("gw-1")
    ingest.on_message(_Message(topics.birth, encode_birth(birth), 1))  # type: ignore[arg-type]
    for seq in range(3):
        ingest.on_message(_Message(topics.data, encode_data(make_batch(birth, seq)), 2 + seq))  # type: ignore[arg-type]
        health = DataBatch("gw-1", birth.boot, seq, 0, [Reading(0, 5, 1)], kind="health")
        ingest.on_message(_Message(topics.health, encode_data(health), 10 + seq))  # type: ignore[arg-type]
    ingest.seal()
    assert stats.duplicates == 0
    assert stats.health_in == 3
    assert stats.readings_in == 150
    assert sealed[0].readings == 150
    assert len(sealed[0].tickets) == 7
