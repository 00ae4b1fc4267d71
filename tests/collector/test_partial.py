"""Partial writes: only the lines InfluxDB refused go to the dead letters, the rest count as stored."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import urllib.parse
from pathlib import Path

import pytest

from collector.config import CollectorConfig
from collector.output.influxdb.partial import Answer, error_text, partial_answer, readings_in
from collector.output.influxdb.refusals import Refusal, write_resolving
from collector.output.influxdb.writer import InfluxWriter, WriteTarget
from collector.run import Collector
from roadpulse.services import Influxd, Mosquitto, count_readings, influx_query
from roadpulse.wire import Birth, DataBatch, MetricDef
from tests.collector.conftest import running, wait_for
from tests.collector.lpcheck import parse_line
from tests.collector.traffic import T0, Publisher, boot_id, collector_toml, make_batch, make_birth

# Answers of InfluxDB 1.6.7 to these batches, recorded from a real influxd (HTTP 400 bodies).
CONFLICT = ('{"error":"partial write: field type conflict: input field \\"x\\" on measurement \\"m\\" is type '
            'float, already exists as type integer dropped=2"}\n')
PARSE = ('{"error":"partial write: unable to parse \'bad line here\': invalid field format\\nunable to parse '
         '\'m,t=a x= 3000\': missing field value dropped=0"}\n')
RESERVED_FIELD = ('{"error":"partial write: invalid field name: input field \\"time\\" on measurement \\"m\\" '
                  'is invalid dropped=2"}\n')
RESERVED_TAG = ('{"error":"partial write: invalid tag key: input tag \\"time\\" on measurement \\"n\\" '
                'is invalid dropped=2"}\n')
GARBAGE = '{"error":"unable to parse \'garbage only\': invalid field format"}\n'


@pytest.mark.parametrize(
    ("lines", "body", "answer"),
    [
        # a conflict names one field of one shard: never exact unless it covers the whole write
        (["m,t=a x=1.5 2000", "m,t=b x=2i 2000", "m,t=c x=\"s\" 2000", "n,t=a x=1.5 2000"], CONFLICT,
         Answer([0], exact=False)),
        (["m,t=a x=1.5 2000", "m,t=b x=2i 2000", "m,t=c x=2.5 2000", "n,t=a x=1.5 2000"], CONFLICT,
         Answer([0, 2], exact=False)),
        (["m,t=a x=1.5 2000", "m,t=c x=2.5 2000"], CONFLICT, Answer([0, 1], exact=True)),
        (["m,t=a x=1.5 2000", "m,t=c x=2.5 2000", "m,t=d x=3.5 2000"], CONFLICT, Answer([0, 1, 2], exact=False)),
        # parse failures are named only when every parsed point was stored: exact
        (["m,t=a x=3i 3000", "bad line here", "m,t=a x= 3000", "m,t=b x=4i 3000"], PARSE, Answer([1, 2], exact=True)),
        (["bad line here", "m x=1i 1", "bad line here", "m,t=a x= 3000"], PARSE, Answer([0, 2, 3], exact=True)),
        # a reserved key: every line with one dropped, the first named; exact when dropped counts them
        (["m,k=v time=1 1", "m,k=v f=1 2", "m,k=v time=2 3"], RESERVED_FIELD, Answer([0, 2], exact=True)),
        (["m,k=v time=1 1", "n,time=x f=1 2", "m f=1 3"], RESERVED_TAG, Answer([0, 1], exact=True)),
        (["m,k=v time=1 1", "m f=1 3"], RESERVED_TAG, Answer([0], exact=False)),  # dropped=2: one more hidden
        (["m f=1 3"], RESERVED_FIELD, None),  # names no line of ours
        (["garbage only"], GARBAGE, None),  # not partial: nothing was stored
        (["m,t=a x=3i 3000", "m,t=a x= 3000"], PARSE, None),  # names a line the batch does not hold
        (["m,t=b x=2i 2000"], CONFLICT, None),  # names no line of ours
        # refusals InfluxDB does not name by line
        (["m x=1i 1"], '{"error":"partial write: points beyond retention policy dropped=1"}', None),
        (["m x=1i 1"], '{"error":"partial write: max-values-per-tag limit exceeded (100000/100000): '
                       'measurement=\\"m\\" tag=\\"t\\" value=\\"v\\" dropped=1"}', None),
        # v2's JSON key
        (["bad line here", "m x=1i 1"], '{"code":"invalid","message":"partial write: unable to parse '
                                        '\'bad line here\': invalid field format"}', Answer([0], exact=True)),
    ],
)
def test_what_influx_answers_say(lines: list[str], body: str, answer: Answer | None) -> None:
    assert partial_answer(lines, error_text(body)) == answer


def test_conflicts_read_escaped_names_and_quoted_fields() -> None:
    error = ('partial write: field type conflict: input field "speed kmh" on measurement "traffic,x" is type '
             'integer, already exists as type float dropped=2')
    lines = [
        r'traffic\,x,lane=1 speed\ kmh=57i 1',  # refused
        r'traffic\,x,lane=1,note=a"b speed\ kmh=57i,other="a, b=1i c" 2',  # refused: '"' in a tag, ',' in a string
        r'traffic\,x,lane=1 speed\ kmh=57.5 3',  # the right type: stored
        r'traffic,lane=1 speed\ kmh=57i 4',  # another measurement
        r'traffic\,x,lane=1 other="speed\ kmh=1i" 5',  # the name only inside a string value
    ]
    assert partial_answer(lines, error) == Answer([0, 1], exact=False)


def test_error_text_of_odd_bodies() -> None:
    assert error_text("plain text\n") == "plain text"
    assert error_text("[1, 2]") == "[1, 2]"
    assert error_text('{"error": 5}') == '{"error": 5}'


@pytest.mark.parametrize(
    ("line", "readings"),
    [
        ("m,t=a x=1.5 5", 1),
        ("m,t=a x=1i,y=2.5,tf_q=4i 5", 2),  # no strings, no escapes: the quick way
        ('m,t=a x=1.5,x_q="bad:a,b=c",y_err="q\\" z=1,w=2" 5', 2),  # commas, spaces, quotes in strings
        ('m,t=a\\ b,u=x\\,y=1 x=1i,y=2.5,y_q="uncertain:stale",tf_q=4i 5', 2),  # escapes in the series
        ('m,t=a x_err="nil",y=1,z=true,s="x\\\\" 5', 4),  # a string ending in an escaped backslash
        ("garbage", 1),  # unreadable: counted as one, as before
    ],
)
def test_readings_in_a_refused_line(line: str, readings: int) -> None:
    assert readings_in(line) == readings


def _retyped(birth: Birth, boot: str) -> Birth:
    """The same series, but speed declared an integer: a profile change InfluxDB refuses (type conflict)."""
    metrics = [MetricDef(m.alias, m.device, m.measurement, m.field, m.unit, "i", m.tags) if m.type == "f" else m
               for m in birth.metrics]
    return dataclasses.replace(birth, boot=boot, metrics=metrics)


@pytest.mark.slow
def test_type_conflict_dead_letters_only_the_refused_readings(tmp_path: Path, mosquitto: Mosquitto,
                                                              influxd: Influxd) -> None:
    from collector.config import load_collector_config

    config = load_collector_config(collector_toml(tmp_path, mosquitto.url, influxd.url))
    first = make_birth("gw-1", boot_id(), metrics=10)
    second = _retyped(first, boot_id())
    # Second boot's batches a minute later than the first's, in the same shard.
    first_batches = [make_batch(first, s, 50) for s in range(4)]
    second_batches = [make_batch(second, s, 50, t0=T0 + 60_000) for s in range(4)]
    speeds = sum(1 for b in second_batches for r in b.readings if r.alias % 2 and r.value is not None)
    assert speeds > 0
    publisher = Publisher(mosquitto.url)

    collector = asyncio.run(_first_then_retyped(config, publisher, (first, first_batches), (second, second_batches)))
    publisher.close()
    stats = collector.stats
    assert stats.readings_rejected == speeds
    assert stats.readings_written == 8 * 50 - speeds
    letters = [json.loads(line) for path in sorted((tmp_path / "c1-data" / "deadletters").glob("*.jsonl"))
               for line in path.read_text().splitlines()]
    assert {letter["reason"] for letter in letters} == {"influx-partial"}
    refused = [line for letter in letters for line in letter["lines"].split("\n")]
    assert len(refused) == speeds
    assert all(" speed=" in line and line.split(" ")[1].endswith("i") for line in refused)
    # What the second boot sent besides its integer speeds is in InfluxDB.
    after = f"time >= {(T0 + 60_000) * 1_000_000}"
    volume = influxd.query(f"SELECT count(volume) FROM traffic WHERE {after}", "roadpulse")
    speed_err = influxd.query(f"SELECT count(speed_err) FROM traffic WHERE {after}", "roadpulse")
    sent_volume = sum(1 for b in second_batches for r in b.readings if r.alias % 2 == 0)
    sent_nil = sum(1 for b in second_batches for r in b.readings if r.value is None)
    assert volume["results"][0]["series"][0]["values"][0][1] == sent_volume
    if sent_nil:
        assert speed_err["results"][0]["series"][0]["values"][0][1] == sent_nil


@pytest.mark.slow
def test_a_refused_line_dead_letters_every_reading_in_it(tmp_path: Path, mosquitto: Mosquitto,
                                                         influxd: Influxd) -> None:
    """A line holds a lane's whole poll: InfluxDB refuses the point whole when one field
    conflicts, so every reading in the line is a dead letter, counted one by one, and
    sent = stored + dead-lettered."""
    from collector.config import load_collector_config

    config = load_collector_config(collector_toml(tmp_path, mosquitto.url, influxd.url))
    first = make_birth("gw-1", boot_id(), metrics=10, per_series=5)
    second = _retyped(first, boot_id())
    first_batches = [make_batch(first, s, 50, per_poll=5) for s in range(4)]
    second_batches = [make_batch(second, s, 50, per_poll=5, t0=T0 + 60_000) for s in range(4)]
    publisher = Publisher(mosquitto.url)

    collector = asyncio.run(_first_then_retyped(config, publisher, (first, first_batches), (second, second_batches)))
    publisher.close()
    stats = collector.stats
    letters = [json.loads(line) for path in sorted((tmp_path / "c1-data" / "deadletters").glob("*.jsonl"))
               for line in path.read_text().splitlines()]
    refused = [parse_line(line) for letter in letters for line in letter["lines"].split("\n")]
    in_refused = [sum(not key.endswith("_q") for key in point.fields) for point in refused]
    assert refused
    assert all(n > 1 for n in in_refused), "each refused line holds several readings"
    assert stats.readings_rejected == sum(in_refused)
    assert stats.readings_written + stats.readings_rejected == 8 * 50
    assert count_readings(influxd.url, "roadpulse") == stats.readings_written


WEEK_MS = 7 * 24 * 3600 * 1000  # autogen's shard group duration


def _writer(influxd: Influxd, db: str) -> InfluxWriter:
    url = urllib.parse.urlsplit(influxd.url)
    return InfluxWriter(WriteTarget("http", url.hostname or "127.0.0.1", url.port or 8086,
                                    f"/write?db={db}&precision=ms", (("Content-Type", "text/plain"),), False, 5.0))


def _stored(influxd: Influxd, db: str) -> set[str]:
    """Every point of measurement m, as the line that wrote it (`m field=value time`)."""
    answer = influxd.query("SELECT * FROM m", db)
    series = answer["results"][0].get("series") or []
    out: set[str] = set()
    for row in series[0]["values"] if series else []:
        fields = dict(zip(series[0]["columns"], row, strict=True))
        for key in ("x", "y"):
            if fields.get(key) is not None:
                value = fields[key]
                text = (f'"{value}"' if isinstance(value, str)
                        else f"{value}i" if isinstance(value, int) else repr(value))
                out.add(f"m {key}={text} {fields['time']}")
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    ("seed", "batch", "refused", "retention"),
    [
        # the conflict answer hides the unparseable line: found by writing the rest again
        (["m x=1i 1000"], ["m x=1.5 2000", "bad line here", "m x=2i 3000"], {0, 1}, ""),
        # one shard's conflict named; a line of the same field in the next shard was stored
        (["m x=1i 1000", "m y=1.5 1000"], ["m x=1.5 2000", 'm y="s" 3000', f"m x=2.5 {1000 + WEEK_MS}"],
         {0, 1}, ""),
        # the conflict answer hides a point beyond the retention policy (kept whole, with its part)
        (["m x=1i {now}"], ["m x=1.5 {now1}", "m x=2i {old}", "m x=3i {now2}"], {0, 1, 2}, "1h"),
        # a reserved key and a type conflict in one batch
        (["m x=1i 1000"], ["m x=1.5 2000", "m time=1i 2000", "m x=3i 4000"], {0, 1}, ""),
    ],
    ids=["parse-hidden", "two-shards", "retention-hidden", "reserved-and-conflict"],
)
def test_every_line_ends_stored_or_refused(influxd: Influxd, seed: list[str], batch: list[str],
                                           refused: set[int], retention: str) -> None:
    """Against a real influxd: what write_resolving reports refused was not stored (unless kept
    whole as a precaution), and every line is stored or refused, never neither."""
    import time

    db = "t"
    influx_query(influxd.url, f'CREATE DATABASE "{db}"' + (f" WITH DURATION {retention}" if retention else ""),
                 method="POST")
    now = int(time.time() * 1000)
    times = {"now": now, "now1": now + 1, "now2": now + 2, "old": now - 5 * 3600 * 1000}
    seed, batch = [line.format(**times) for line in seed], [line.format(**times) for line in batch]
    writer = _writer(influxd, db)
    refusals: list[Refusal] = []
    writes: list[float] = []
    try:
        asyncio.run(write_resolving(writer, seed, [], writes.append))
        writes.clear()
        asyncio.run(write_resolving(writer, batch, refusals, writes.append))
    finally:
        writer.close()
    stored = _stored(influxd, db) - set(seed)
    dead = {line for refusal in refusals for line in refusal.lines}
    assert dead == {batch[i] for i in refused}
    for index, line in enumerate(batch):
        assert line in stored or line in dead, f"line {index} neither stored nor refused: {line}"
    exact = {line for refusal in refusals if refusal.reason == "influx-partial" for line in refusal.lines}
    assert not exact & stored  # what an exact answer refused is really not in InfluxDB
    assert len(writes) >= 2  # the first answer was not taken at its word


@pytest.mark.slow
def test_reserved_keys_refuse_only_their_lines(influxd: Influxd) -> None:
    """`partial write: invalid field name ... dropped=N` (issue 16): the lines with a `time` key
    are refused, every other line was stored and is not a dead letter."""
    db = "r"
    influx_query(influxd.url, f'CREATE DATABASE "{db}"', method="POST")
    batch = ["m x=1i 1000", "m time=1i 2000", "m,time=a x=2i 3000", "m x=3i 4000", "n,time=b y=1i 5000"]
    writer = _writer(influxd, db)
    refusals: list[Refusal] = []
    try:
        asyncio.run(write_resolving(writer, batch, refusals, lambda _: None))
    finally:
        writer.close()
    assert [(r.reason, r.lines) for r in refusals] == [("influx-partial", [batch[1], batch[2], batch[4]])]
    assert _stored(influxd, db) == {"m x=1i 1000", "m x=3i 4000"}


async def _first_then_retyped(config: CollectorConfig, publisher: Publisher, first: tuple[Birth, list[DataBatch]],
                              second: tuple[Birth, list[DataBatch]]) -> Collector:
    """The first boot's batches stored, then the retyped boot's sent until every reading is settled
    (written or refused); returns the collector."""
    collector = Collector(config)
    async with running(collector):
        publisher.birth(first[0])
        total = await asyncio.to_thread(publisher.data, first[1])
        await wait_for(lambda: collector.stats.readings_written >= total, what="first boot stored")
        publisher.birth(second[0])
        total += await asyncio.to_thread(publisher.data, second[1])
        stats = collector.stats
        await wait_for(lambda: stats.readings_written + stats.readings_rejected >= total, what="all settled")
    return collector
