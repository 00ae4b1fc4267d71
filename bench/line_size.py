"""Line protocol per reading, data model v2 (one line per series and time) against v1 (one line per reading).

    python bench/line_size.py [--stations N] [--polls N]

The readings are those of bench/wire_size.py (the shipped detector profile, 28 points per
30-s poll, through the agent's batcher and encoder). They are decoded by the collector's own
decoder, which writes v2; v1 is the same readings each written as its own line (the
collector's careful path reading by reading, as before v2). Reported per reading: lines,
bytes of text, and bytes after gzip level 1 (what the collector posts, collector/body.py).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import msgpack

from bench.wire_size import T0, make_readings, roadpulse_messages
from collector.body import encode_body
from collector.decode import Decoder, Kind
from collector.output.influxdb import LINE_PROTOCOL
from collector.output.influxdb.format import _careful_line
from roadpulse.wire import Birth, encode_birth


def _one_line_per_reading(payload: bytes, table: dict[int, object]) -> str:
    """The v1 text of a data message: every reading its own line, in message order."""
    message = msgpack.unpackb(payload, raw=False, strict_map_key=False)
    flat, now, qualities = message["r"], message["bt"], message.get("q", {})
    out = []
    for index in range(len(flat) // 3):
        now += flat[3 * index + 1]
        line, _ = _careful_line(flat, index, qualities=qualities, table=table)  # type: ignore[arg-type]
        out.append(f"{line} {now}")
    return "\n".join(out)


def report(stations: int, polls: int) -> dict[str, float]:
    polls_readings, metrics = make_readings(stations, polls)
    decimals = {m.alias: m.decimals for m in metrics if m.decimals is not None}
    messages = roadpulse_messages(polls_readings, 200, 16 * 1024, stations, decimals)
    devices = sorted({m.device for m in metrics})
    birth = Birth("gw-bench", "0123456789abcdef", 0, T0, "0.1.0", "abcdefabcdef",
                  [{"id": d, "profile": "vds_modbus", "driver": "modbus",
                    "tags": {"site": f"S{d}", "road": "G60", "direction": "N", "kp": "103.5"}} for d in devices],
                  metrics)
    decoder = Decoder()
    decoder.decode("gw-bench", "birth", encode_birth(birth))
    table = LINE_PROTOCOL.compile(birth).table
    v2, v1 = [], []
    readings = 0
    for payload in messages:
        decoded = decoder.decode("gw-bench", "data", payload)
        assert decoded.kind is Kind.LINES
        readings += decoded.readings
        v2.append(decoded.text)
        v1.append(_one_line_per_reading(payload, table))
    v1_text, v2_text = "\n".join(v1).encode(), "\n".join(v2).encode()
    return {
        "readings": readings,
        "v1_lines_per_reading": (v1_text.count(b"\n") + 1) / readings,
        "v2_lines_per_reading": (v2_text.count(b"\n") + 1) / readings,
        "v1_B_per_reading": len(v1_text) / readings,
        "v2_B_per_reading": len(v2_text) / readings,
        "v1_gzip1_B_per_reading": len(encode_body("\n".join(v1), True)) / readings,
        "v2_gzip1_B_per_reading": len(encode_body("\n".join(v2), True)) / readings,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--polls", type=int, default=120, help="30-s polls per station (120 = 1 hour)")
    parser.add_argument("--stations", type=int, nargs="*", default=[1, 4])
    args = parser.parse_args()
    rows = [report(s, args.polls) for s in args.stations]
    width = max(map(len, rows[0]))
    print(f"{'stations':<{width}} " + "".join(f"{s:>12}" for s in args.stations))
    for key in rows[0]:
        print(f"{key:<{width}} " + "".join(f"{row[key]:>12.2f}" if isinstance(row[key], float)
                                          else f"{row[key]:>12}" for row in rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
