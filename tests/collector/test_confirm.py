"""The collector's confirmations: coalesced per gateway, only for what is durable, dead letters too."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import msgpack
import paho.mqtt.client as paho
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from collector.acks import Ticket
from collector.confirm import Coalescer, Confirmer
from roadpulse.services import Influxd, Mosquitto
from roadpulse.wire import DataBatch, Reading, encode_data
from roadpulse.wire.confirm import Confirmation, decode_confirmation
from tests.collector.conftest import running, wait_for
from tests.collector.traffic import Publisher, boot_id, collector_toml, make_batch, make_birth

if TYPE_CHECKING:
    from collector.run import Collector

BOOT = "0123456789abcdef"


@pytest.mark.parametrize(("adds", "times", "expected"), [
    # one gateway, in order: one range, sent at once
    ([("g", BOOT, s) for s in range(5)], [0.0], [[("g", {BOOT: [(0, 4)]})]]),
    # out of order with a hole, two boots
    ([("g", BOOT, 3), ("g", BOOT, 1), ("g", "b2", 0), ("g", BOOT, 2)], [0.0],
     [[("g", {BOOT: [(1, 3)], "b2": [(0, 0)]})]]),
    # two gateways: one confirmation each
    ([("a", BOOT, 0), ("b", BOOT, 0)], [0.0], [[("a", {BOOT: [(0, 0)]}), ("b", {BOOT: [(0, 0)]})]]),
    # nothing pending, nothing sent
    ([], [0.0], [[]]),
])
def test_coalescer(adds: list[tuple[str, str, int]], times: list[float],
                   expected: list[list[tuple[str, dict[str, list[tuple[int, int]]]]]]) -> None:
    c = Coalescer(1.0)
    for add in adds:
        c.add(*add)
    for now, want in zip(times, expected, strict=True):
        assert [(x.gateway, x.acks) for x in c.due(now, 0)] == want


def test_at_most_one_per_gateway_per_interval() -> None:
    c = Coalescer(1.0)
    c.add("g", BOOT, 0)
    assert len(c.due(10.0, 0)) == 1
    c.add("g", BOOT, 1)
    c.add("h", BOOT, 7)
    assert [x.gateway for x in c.due(10.5, 0)] == ["h"]  # g waits for its interval
    assert c.pending == 1
    [late] = c.due(11.0, 0)
    assert late.acks == {BOOT: [(1, 1)]}
    c.put_back(late)  # not sent: goes out with the next, at once
    assert c.due(11.1, 0)[0].acks == {BOOT: [(1, 1)]}


def _data(seq: int, gw: str = "g") -> bytes:
    return encode_data(DataBatch(gw, BOOT, seq, 0, [Reading(1, 0, 1.0)]))


def test_confirmer_confirms_only_settled_tickets_and_counts_duplicates() -> None:
    sent: list[tuple[str, bytes]] = []
    up = [False]
    conf = Confirmer("rp/v1", lambda t, p: sent.append((t, p)), lambda: up[0])
    tickets = [Ticket(i, 1, 0) for i in range(4)]
    conf.note(tickets[0], "g", BOOT, 0)
    conf.note(tickets[1], "g", BOOT, 1, duplicate=True)
    conf.note(tickets[2], "g", BOOT, 1, duplicate=True)
    conf.note_dead(tickets[3], "rp/v1/g/data", _data(2))
    conf.settled(tickets[:1])
    assert conf.flush(0.0) == 0
    assert not sent
    up[0] = True
    assert conf.flush(0.0) == 1
    topic, payload = sent[-1]
    assert topic == "rp/v1/g/ack"
    assert decode_confirmation(payload).acks == {BOOT: [(0, 0)]}  # only what was settled
    conf.settled(tickets[1:])
    conf.flush(5.0)
    assert decode_confirmation(sent[-1][1]).acks == {BOOT: [(1, 2)]}
    assert conf.duplicates == {"g": 2}
    assert conf.seqs_confirmed == 3
    lines = conf.metrics_lines("c1", 1)
    assert "gateway=g duplicates=2i" in lines
    assert "seqs_confirmed=3i" in lines


@pytest.mark.parametrize(("topic", "payload"), [
    ("rp/v1/g/birth", _data(2)),  # not data
    ("rp/v1/other/data", _data(2)),  # names another gateway than its topic
    ("rp/v1/g/data", b"\xc1garbage"),  # names nothing
    ("rp/v1/g/data", msgpack.packb({"v": 1, "t": "data", "gw": "g", "boot": BOOT})),  # no seq
    ("elsewhere/g/data", _data(2)),
])
def test_dead_letters_that_do_not_name_themselves_are_not_confirmed(topic: str, payload: bytes) -> None:
    sent: list[tuple[str, bytes]] = []
    conf = Confirmer("rp/v1", lambda t, p: sent.append((t, p)), lambda: True)
    ticket = Ticket(1, 1, 0)
    conf.note_dead(ticket, topic, payload)
    conf.settled([ticket])
    assert conf.flush(0.0) == 0
    assert not sent


@pytest.mark.slow
def test_collector_confirms_written_spooled_and_dead_lettered(tmp_path: Path, mosquitto: Mosquitto,
                                                             influxd: Influxd) -> None:
    """Real broker and InfluxDB: every seq is confirmed once durable, however it became durable."""
    from collector.config import load_collector_config
    from collector.run import Collector

    config = load_collector_config(collector_toml(tmp_path, mosquitto.url, influxd.url, park_timeout_s=1.0))
    birth = make_birth("gw-1", boot_id())
    orphan = make_birth("gw-1", boot_id())  # data of a boot whose birth never comes: dead letters
    publisher = Publisher(mosquitto.url)
    publisher.birth(birth)
    got: list[Confirmation] = []
    host, port = mosquitto.url.split("://")[1].split(":")
    listener = paho.Client(CallbackAPIVersion.VERSION2, client_id="gw-1-listener", protocol=paho.MQTTv5)
    listener.on_message = lambda c, u, m: got.append(decode_confirmation(m.payload))
    listener.connect(host, int(port))
    listener.subscribe("rp/v1/gw-1/ack", qos=1)
    listener.loop_start()

    def confirmed(boot: str) -> set[int]:
        return {s for c in list(got) for first, last in c.acks.get(boot, []) for s in range(first, last + 1)}

    async def scenario() -> Collector:
        collector = Collector(config)
        async with running(collector):
            await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(20)])
            await wait_for(lambda: confirmed(birth.boot) == set(range(20)), what="written confirmed")
            assert influxd.proc is not None
            influxd.proc.send_signal(signal.SIGSTOP)  # hung: writes time out, batches go to the spool
            try:
                await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(20, 30)])
                await wait_for(lambda: confirmed(birth.boot) == set(range(30)), what="spooled confirmed")
                assert collector.stats.readings_spooled > 0
            finally:
                influxd.proc.send_signal(signal.SIGCONT)
            await asyncio.to_thread(publisher.data, [make_batch(orphan, s) for s in range(3)])
            await wait_for(lambda: confirmed(orphan.boot) == {0, 1, 2}, what="dead letters confirmed")
            # A resend is a duplicate: counted per gateway, confirmed again.
            await asyncio.to_thread(publisher.data, [make_batch(birth, 5)])
            await wait_for(lambda: collector.confirmer.duplicates.get("gw-1") == 1, what="duplicate counted")
        return collector

    collector = asyncio.run(scenario())
    publisher.close()
    listener.loop_stop()
    listener.disconnect()
    assert collector.stats.dead_letters >= 3
    # Coalesced: far fewer confirmations than messages.
    assert len(got) < 34, len(got)
