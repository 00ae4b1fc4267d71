"""The pipelines a user would otherwise pick, and a subscriber that only counts, as programs.

    python -m bench.baselines {naive,client,count} --mqtt-url URL --prefix P [--influx-url URL --db DB]

Each subscribes to `<prefix>/+/birth` and `<prefix>/+/data` (QoS 1), prints one JSON line
`{"ready": ...}` once its subscriptions are acknowledged, and runs until SIGTERM. They run as
their own processes so that the bench reads their CPU from /proc like the collector's.

- naive: the tutorial pipeline. paho's own loop, each MQTT message decoded and written with
  one HTTP POST to /write (a new connection each, as `requests.post` without a session).
- client: influxdb-client's batching write API (WriteOptions: 5,000 points or 1 s) fed with
  `Point`s. Its writes go to /api/v2/write, which InfluxDB has only from 1.8 on (the "1.8
  compatibility" of token "user:password" and bucket "db/rp"); influxd 1.6.7 answers 404.
  The program tries that first and reports the answer, then keeps the library's batching,
  `Point` serialisation and HTTP pool and only points the finished batch at v1's /write.
- count: counts data messages (persistent session, no decoding), for the broker's limit.
"""

from __future__ import annotations

import argparse
import importlib
import json
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from roadpulse.wire import Birth, DataBatch, decode, engineering_values


def _esc(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


class Pipeline:
    """Births remembered per gateway; subclasses turn each data message into a write."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.births: dict[str, Birth] = {}
        self.messages = 0

    def ready_info(self) -> dict[str, Any]:
        return {}

    def on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        message = decode(bytes(msg.payload))
        if isinstance(message, Birth):
            self.births[message.gateway] = message
        elif isinstance(message, DataBatch):
            birth = self.births.get(message.gateway)
            if birth is not None:
                self.data(engineering_values(message, birth), birth)
            self.messages += 1

    def data(self, batch: DataBatch, birth: Birth) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass


class Naive(Pipeline):
    def data(self, batch: DataBatch, birth: Birth) -> None:
        metrics = {m.alias: m for m in birth.metrics}
        lines = []
        for r in batch.readings:
            m = metrics[r.alias]
            tags = dict(m.tags, gateway=batch.gateway, device=m.device)
            tag_text = ",".join(f"{_esc(k)}={_esc(v)}" for k, v in sorted(tags.items()) if v)
            value = f"{r.value}i" if isinstance(r.value, int) and m.type == "i" else repr(float(r.value or 0))
            lines.append(f"{_esc(m.measurement)},{tag_text} {_esc(m.field)}={value} {r.ts_ms}")
        url = f"{self.args.influx_url}/write?" + urllib.parse.urlencode({"db": self.args.db, "precision": "ms"})
        with urllib.request.urlopen(urllib.request.Request(url, data="\n".join(lines).encode()), timeout=30):
            pass


class Client(Pipeline):
    def __init__(self, args: argparse.Namespace) -> None:
        super().__init__(args)
        # Untyped library: held as Any.
        lib: Any = importlib.import_module("influxdb_client")
        write_api_mod: Any = importlib.import_module("influxdb_client.client.write_api")
        rest: Any = importlib.import_module("influxdb_client.rest")
        InfluxDBClient, Point, WriteOptions = lib.InfluxDBClient, lib.Point, lib.WriteOptions  # noqa: N806
        SYNCHRONOUS, ApiException = write_api_mod.SYNCHRONOUS, rest.ApiException  # noqa: N806
        self.point: Any = Point
        self.ms = lib.WritePrecision.MS
        # The documented 1.8 compatibility: token "username:password", org "-", bucket "db/rp".
        self.client: Any = InfluxDBClient(url=args.influx_url, token=":", org="-")
        try:
            self.client.write_api(write_options=SYNCHRONOUS).write(
                bucket=f"{args.db}/autogen", record=Point("probe").field("v", 1.0))
            self.v2_write = "accepted"
        except ApiException as exc:
            self.v2_write = f"HTTP {exc.status} from /api/v2/write: {str(exc.body or exc.reason).strip()[:80]}"
        self.write_api: Any = self.client.write_api(write_options=WriteOptions(batch_size=5000, flush_interval=1000))
        if self.v2_write != "accepted":
            pool = self.client.api_client.rest_client.pool_manager
            target = f"{args.influx_url}/write?" + urllib.parse.urlencode({"db": args.db, "precision": "ms"})

            def post_v1(_async_req: bool, _bucket: str, _org: str, body: bytes, _precision: str,
                        **_kw: Any) -> None:
                resp = pool.request("POST", target, body=body, headers={"Content-Type": "text/plain"})
                if resp.status >= 300:
                    raise RuntimeError(f"/write answered {resp.status}: {resp.data[:200]!r}")

            self.write_api._post_write = post_v1

    def ready_info(self) -> dict[str, Any]:
        return {"v2_write": self.v2_write}

    def data(self, batch: DataBatch, birth: Birth) -> None:
        metrics = {m.alias: m for m in birth.metrics}
        points = []
        for r in batch.readings:
            m = metrics[r.alias]
            p = self.point(m.measurement).tag("gateway", batch.gateway).tag("device", m.device)
            for k, v in m.tags.items():
                p = p.tag(k, v)
            points.append(p.field(m.field, r.value).time(r.ts_ms, self.ms))
        self.write_api.write(bucket=self.args.db, record=points)

    def close(self) -> None:
        self.write_api.close()
        self.client.close()


class Count(Pipeline):
    """Counts data messages; prints when `--expect` have arrived (monotonic times: one clock per machine)."""

    first = last = 0.0

    def on_message(self, _c: mqtt.Client, _u: Any, msg: mqtt.MQTTMessage) -> None:
        self.messages += 1
        now = time.monotonic()
        if self.messages == 1:
            self.first = now
        self.last = now
        if self.messages == self.args.expect:
            print(json.dumps({"messages": self.messages, "first": self.first, "last": self.last}), flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=["naive", "client", "count"])
    parser.add_argument("--mqtt-url", required=True)
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--influx-url", default="")
    parser.add_argument("--db", default="")
    parser.add_argument("--client-id", default="")
    parser.add_argument("--expect", type=int, default=0, help="count: report when this many have arrived")
    args = parser.parse_args()
    pipeline: Pipeline = {"naive": Naive, "client": Client, "count": Count}[args.kind](args)
    host, port = urllib.parse.urlparse(args.mqtt_url).hostname, urllib.parse.urlparse(args.mqtt_url).port
    persistent = args.kind == "count"
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=args.client_id or f"bench-{args.kind}",
                         clean_session=not persistent)
    subscribed = threading.Event()

    def on_connect(c: mqtt.Client, _u: Any, _f: Any, _rc: Any, _p: Any) -> None:
        topics = [(f"{args.prefix}/+/data", 1)] if persistent else [(f"{args.prefix}/+/birth", 1),
                                                                   (f"{args.prefix}/+/data", 1)]
        c.subscribe(topics)

    def on_subscribe(*_a: Any) -> None:
        if not subscribed.is_set():
            subscribed.set()
            print(json.dumps({"ready": pipeline.ready_info()}), flush=True)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = pipeline.on_message
    client.max_inflight_messages_set(100)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    client.connect(host or "127.0.0.1", port or 1883, keepalive=30)
    client.loop_start()
    stop.wait()
    client.disconnect()
    client.loop_stop()
    pipeline.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
