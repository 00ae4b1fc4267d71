"""End-to-end delivery on the agent: a record leaves the queue only when a collector confirms it."""

from __future__ import annotations

import pytest

from agent.confirmations import ConfirmPolicy, Unconfirmed
from agent.queue import MemoryQueue, Record
from roadpulse.wire import DataBatch, Reading, encode_data
from roadpulse.wire.confirm import Confirmation

BOOT = "0123456789abcdef"


def _setup(n: int, **policy: float) -> tuple[MemoryQueue, Unconfirmed, list[Record]]:
    queue = MemoryQueue(max_bytes=1 << 20)
    for seq in range(n):
        queue.append(encode_data(DataBatch("gw", BOOT, seq, 0, [Reading(1, 0, seq)])), weight=1)
    queue.commit()
    settled: list[Record] = []
    return queue, Unconfirmed(queue, ConfirmPolicy(**policy), on_settled=settled.append), settled  # type: ignore[arg-type]


def _send(queue: MemoryQueue, held: Unconfirmed, now: float, *, puback: bool = True) -> Record:
    tx = queue.begin(1)
    record = tx.records[0]
    held.sending(record, now)
    if held.end(tx, acked=puback) is False:
        queue.end(tx, acked=puback)
    return record


def _ack(*ranges: tuple[int, int], boot: str = BOOT) -> Confirmation:
    return Confirmation("gw", 0, {boot: list(ranges)})


def test_a_puback_only_means_in_flight() -> None:
    queue, held, settled = _setup(3)
    for _ in range(3):
        _send(queue, held, 0.0)
    assert queue.stats().records == 3  # all PUBACKed, none gone
    assert len(held) == 3
    assert held.confirm(_ack((0, 1)), 1.0) == 2
    assert [r.id for r in settled] == [0, 1]
    assert queue.stats().records == 1
    assert held.readings_confirmed == 2


@pytest.mark.parametrize(("confirmation", "left"), [
    (_ack((0, 2)), 0),
    (_ack((1, 1)), 2),
    (_ack((0, 0), (2, 2)), 1),
    (_ack((0, 2), boot="ffffffffffffffff"), 3),  # another boot's seqs
    (_ack((5, 900)), 3),  # seqs we do not hold
    (_ack((0, 10**12)), 0),  # a wide range
])
def test_only_what_is_named_is_settled(confirmation: Confirmation, left: int) -> None:
    queue, held, _ = _setup(3)
    for _ in range(3):
        _send(queue, held, 0.0)
    held.confirm(confirmation, 1.0)
    assert queue.stats().records == left


def test_confirmed_before_its_puback_is_settled_when_the_puback_comes() -> None:
    queue, held, _ = _setup(1)
    tx = queue.begin(1)
    held.sending(tx.records[0], 0.0)
    assert held.confirm(_ack((0, 0)), 0.1) == 1
    assert queue.stats().records == 1
    assert held.end(tx, acked=False)  # even a failed publish: a collector has it
    assert queue.stats().records == 0


def test_timeout_resends_as_replay_and_backs_off_while_nothing_is_confirmed() -> None:
    queue, held, _ = _setup(2, timeout_s=10.0, timeout_max_s=25.0)
    first = _send(queue, held, 0.0)
    assert held.expire(9.9) == 0
    assert held.expire(10.0) == 1  # back in line
    assert held.timeout_s == 20.0  # nothing confirmed at all: wait longer next time
    tx = queue.begin(1)
    again = tx.records[0]
    assert again.id == first.id
    assert held.sent_before(again)
    held.sending(again, 10.0)
    assert held.end(tx, acked=True)
    assert held.resends == 1
    held.expire(30.0)
    assert held.timeout_s == 25.0  # capped
    held.confirm(_ack((1, 1)), 31.0)
    assert held.timeout_s == 10.0  # confirmations arrive: back to the base timeout


def test_a_failed_publish_goes_back_at_once_and_a_reconnect_requeues_the_rest() -> None:
    queue, held, _ = _setup(3)
    _send(queue, held, 0.0, puback=False)
    assert len(held) == 0
    assert len(queue.begin(5).records) == 3  # all three in line again (one was never out)


def test_requeue_all_after_a_reconnect() -> None:
    queue, held, _ = _setup(3)
    for _ in range(3):
        _send(queue, held, 0.0)
    assert not queue.begin(1)
    assert held.requeue_all() == 3
    assert [r.id for r in queue.begin(5).records] == [0, 1, 2]


def test_the_window_bounds_what_is_out() -> None:
    queue, held, _ = _setup(3, window=2)
    _send(queue, held, 0.0)
    assert held.can_send()
    _send(queue, held, 0.0)
    assert not held.can_send()
    held.confirm(_ack((0, 0)), 1.0)
    assert held.can_send()


def test_evicted_while_unconfirmed_counts_as_evicted_until_confirmed() -> None:
    queue = MemoryQueue(max_bytes=300)
    held = Unconfirmed(queue, ConfirmPolicy(), on_settled=lambda r: None)
    payloads = [encode_data(DataBatch("gw", BOOT, seq, 0, [Reading(1, 0, "x" * 40)])) for seq in range(6)]
    queue.append(payloads[0], weight=5)
    queue.commit()
    _send(queue, held, 0.0)
    for p in payloads[1:]:
        queue.append(p, weight=5)
    queue.commit()  # the bound evicts the oldest, unconfirmed record like an unsent one
    assert queue.stats().evicted_weight >= 5
    before = queue.stats().evicted_weight
    held.confirm(_ack((0, 0)), 1.0)  # it was stored after all: not a loss
    assert queue.stats().evicted_weight == before - 5


@pytest.mark.parametrize("release", ["reconnect", "timeout"])
def test_evicted_after_going_back_in_line_is_no_loss_when_confirmed_late(release: str) -> None:
    # Sent, stored by a collector, put back in line (a reconnect, or no confirmation in time),
    # evicted before its resend: the late confirmation takes it off the eviction count.
    queue = MemoryQueue(max_bytes=300)
    held = Unconfirmed(queue, ConfirmPolicy(timeout_s=1.0), on_settled=lambda r: None)
    payloads = [encode_data(DataBatch("gw", BOOT, seq, 0, [Reading(1, 0, "x" * 40)])) for seq in range(6)]
    queue.append(payloads[0], weight=5)
    queue.commit()
    _send(queue, held, 0.0)
    assert (held.requeue_all() if release == "reconnect" else held.expire(2.0)) == 1
    for p in payloads[1:]:
        queue.append(p, weight=5)
    queue.commit()  # the bound evicts the oldest record, back in line and not sent again
    assert queue.stats().evicted_weight >= 5
    before = queue.stats().evicted_weight
    held.confirm(_ack((0, 0)), 3.0)
    assert queue.stats().evicted_weight == before - 5


def test_warns_once_when_nothing_is_ever_confirmed(caplog: pytest.LogCaptureFixture) -> None:
    queue, held, _ = _setup(2, warn_s=60.0, timeout_s=1000.0)
    _send(queue, held, 0.0)
    held.expire(59.0)
    held.expire(61.0)
    held.expire(120.0)
    assert [r.message for r in caplog.records].count(
        'no end-to-end confirmation for a long time: is the collector older than confirmations? '
        'Then set [publish] delivery = "broker"') == 1


def test_a_collector_that_is_behind_gets_no_resends_but_a_hole_does() -> None:
    queue, held, _ = _setup(4, timeout_s=10.0)
    for _ in range(4):
        _send(queue, held, 0.0)
    held.confirm(_ack((0, 0)), 9.0)  # behind, but confirming in order
    assert held.expire(10.0) == 0  # seqs 1-3 are late, yet above everything confirmed: no resend
    held.confirm(_ack((3, 3)), 12.0)  # 3 confirmed by another share member: 1 and 2 are holes
    assert held.expire(12.0) == 2
    assert held.timeout_s == 10.0  # confirmations flow: no backoff
    assert [r.id for r in queue.begin(5).records] == [1, 2]
