"""VictoriaMetrics as a second real output (issue 15): the v2 write path, end to end through a real
broker and collector, and nothing silently lost although VictoriaMetrics answers 204 to bad lines."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.output.influxdb.writer import WriteTarget
from collector.output.victoriametrics import VictoriaMetricsOutput, line_problem
from roadpulse.services import Mosquitto
from roadpulse.wire import WireError
from tests.collector.conftest import running, wait_for
from tests.collector.test_hostile import BOOT, births, data
from tests.collector.traffic import Publisher, boot_id, collector_toml, make_batch, make_birth
from tests.collector.victoria import VictoriaMetrics


@pytest.mark.parametrize(
    ("line", "ok"),
    [
        ("traffic,device=vds0,gateway=g1,lane=1 speed=61.5 1700000000000", True),
        (r"a\,b\ c,k\=1=v\,2 f\ x=1i,f_q=\"bad:x\" 1", False),  # an escaped quote outside a string
        ('m,k=v f="a \\"q\\" \\\\",f_q="uncertain:x" -5', True),
        ('m f_err="nil" 1', True), ("m f=true 1", True), ("m f=1.5e-2 1", True),
        ("#m f=1 1", False), ("m f=1", False), ("m  f=1 1", False), ("m f=1 1 2", False),
        ('m f="a\nb" 1', False), ("m,k= f=1 1", False), ("m f=\"open 1", False), ("", False),
        ('m,"k"=v f=1 1', False), ("m f\\=1 1", False),
    ],
)
def test_line_problem(line: str, ok: bool) -> None:
    assert (line_problem(line) is None) is ok


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_every_line_the_producer_writes_passes(draw: st.DataObject) -> None:
    """What the VictoriaMetrics output checks never refuses a line of the strict producer."""
    from collector.decode import Decoder, Kind

    decoder = Decoder()
    with contextlib.suppress(WireError):
        decoder.decode("g1", "birth", bytes(msgpack.packb(draw.draw(births("g1")))))
    try:
        decoded = decoder.decode("g1", "data", bytes(msgpack.packb(draw.draw(data("g1")))))
    except WireError:
        return
    if decoded.kind is Kind.LINES:
        assert [line for line in decoded.lines if line_problem(line)] == []


def _output(victoria: VictoriaMetrics) -> VictoriaMetricsOutput:
    return VictoriaMetricsOutput(WriteTarget("http", victoria.host, victoria.port,
                                             "/api/v2/write?org=o&bucket=b&precision=ms",
                                             (("Content-Type", "text/plain"),), False, 5.0))


@pytest.mark.slow
def test_v2_writes_store_every_good_line_and_refuse_the_rest(victoria: VictoriaMetrics) -> None:
    now = int(time.time() * 1000)
    good = [f"traffic,gateway=g1,lane={k % 3} speed={k}.5 {now + k}" for k in range(50)]
    bad = ["#traffic speed=1 1", "traffic,gateway=g1 speed=1"]
    output = _output(victoria)
    try:
        result = asyncio.run(output.write("\n".join([*good[:25], *bad, *good[25:]])))
    finally:
        asyncio.run(output.close())
    assert [(r.reason, r.lines) for r in result.refusals] == [("vm-invalid-line", bad)]
    assert victoria.wait_count(len(good)) == len(good)


@pytest.mark.slow
def test_end_to_end_into_victoriametrics(tmp_path: Path, mosquitto: Mosquitto, victoria: VictoriaMetrics) -> None:
    """Every reading the collector counts as written is in VictoriaMetrics; hostile messages
    in between are dead letters, and nothing is counted written that was not stored."""
    from collector.config import load_collector_config
    from collector.run import Collector

    vm = 'server = "victoriametrics"\napi = "v2"\norg = "roadpulse"\nbucket = "roadpulse"'
    path = collector_toml(tmp_path, mosquitto.url, victoria.url, extra_influx=vm)
    config = load_collector_config(path)
    birth = make_birth("gw-1", boot_id())
    publisher = Publisher(mosquitto.url)
    publisher.birth(birth)
    hostile = bytes(msgpack.packb({"v": 1, "t": "birth", "gw": "evil", "boot": BOOT, "ts": 0, "seq": 0,
                                   "devices": [], "metrics": [[0, "d", "#m", "f\\", "u", "s", {}]]}))

    async def scenario() -> Collector:
        collector = Collector(config)
        async with running(collector):
            publisher.publish("rp/v1/evil/birth", hostile).wait_for_publish(10)
            sent = await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(40)])
            await wait_for(lambda: collector.stats.readings_written >= sent, what="every reading written")
            await wait_for(lambda: collector.stats.dead_letters >= 1, what="the hostile birth dead-lettered")
        return collector

    collector = asyncio.run(scenario())
    publisher.close()
    assert collector.stats.readings_written == 40 * 50
    assert victoria.wait_count(40 * 50) == 40 * 50
    assert collector.stats.readings_rejected == 0
