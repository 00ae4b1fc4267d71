"""Bytes written to disk per reading by the agent's durable queue.

    python bench/disk_writes.py [--stations N] [--hours H] [--outage-min M] [--dir DIR]
                                [--delivery end-to-end|broker]

Simulated time, real queue: the detector readings of bench/wire_size.py go through the
agent's batcher, encoder and SegmentQueue on a real filesystem, with the shipped
[queue] commit_interval_s (1 s) and one fsync per commit that holds data. While the link
is up every message is acknowledged right after its commit (ACK frames ride on the next
write, without an fsync of their own); during the outage nothing is acknowledged, then
the backlog is replayed. With `--delivery end-to-end` (the agent's default) a PUBACK settles
nothing: the records go through agent.confirmations.Unconfirmed and are settled by one
coalesced confirmation a second later, as a collector sends it (issue #10).

Reports the queue's own count of bytes passed to write(2), fsyncs, and the kernel's
`write_bytes` from /proc/self/io (pages this process dirtied, i.e. what reaches the card
before filesystem journalling; a 4 KiB page is rewritten at every fsync that touches it).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from agent.confirmations import ConfirmPolicy, Unconfirmed
from agent.queue import SegmentQueue
from agent.queue.batcher import Batcher
from bench.wire_size import make_readings
from roadpulse.wire import DataBatch, TimeFlag, encode_data
from roadpulse.wire.confirm import Confirmation


def proc_write_bytes() -> int | None:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("write_bytes:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def run(stations: int, hours: float, outage_min: float, directory: Path,
        delivery: str = "end-to-end") -> dict[str, float]:
    polls_per_station = int(hours * 120)
    polls, metrics = make_readings(stations, polls_per_station)
    # As the agent encodes: decimal-scaled metrics travel as integers.
    decimals = {m.alias: m.decimals for m in metrics if m.decimals is not None}
    queue = SegmentQueue.open(directory, max_bytes=64 * 1024 * 1024)
    batcher = Batcher(200, 16 * 1024, 1.0)
    held = Unconfirmed(queue, ConfirmPolicy(), on_settled=lambda record: None) if delivery == "end-to-end" else None
    sent_last_tick: list[int] = []  # seqs a collector confirms one tick (second) after they were sent
    seq = 0
    readings = 0
    payload_bytes = 0
    outage = (10 * 60.0, 10 * 60.0 + outage_min * 60.0)
    before = proc_write_bytes()
    start = queue.stats()
    for slot in range(polls_per_station):
        now = slot * 30.0
        for i in range(stations):
            batch = polls[slot * stations + i]
            readings += len(batch)
            for sealed in batcher.add(batch, TimeFlag.NONE, 0, now):
                payload = encode_data(DataBatch("gw-bench", "0" * 16, seq, 0, sealed.readings), decimals)
                payload_bytes += len(payload)
                queue.append(payload, weight=len(sealed.readings))
                seq += 1
        # The batch's age limit (1 s) seals it, the next 1-s commit tick writes it.
        sealed_last = batcher.seal()
        if sealed_last:
            payload = encode_data(DataBatch("gw-bench", "0" * 16, seq, 0, sealed_last.readings), decimals)
            payload_bytes += len(payload)
            queue.append(payload, weight=len(sealed_last.readings))
            seq += 1
        queue.commit()
        if not outage[0] <= now < outage[1]:
            tx = queue.begin(10**9)
            if held is None:
                queue.end(tx, acked=True)
            else:
                for record in tx.records:  # sent and PUBACKed: in flight until confirmed
                    one = type(tx)([record])
                    held.sending(record, now)
                    held.end(one, acked=True)
                # The collector's coalesced confirmation of what went out a second ago.
                if sent_last_tick:
                    held.confirm(Confirmation("gw-bench", 0, {"0" * 16: [(min(sent_last_tick),
                                                                          max(sent_last_tick))]}), now + 1)
                sent_last_tick = list(range(seq - len(tx.records), seq)) if tx.records else []
                if len(tx.records) > 1:  # the backlog after the outage: confirmed whole
                    held.confirm(Confirmation("gw-bench", 0, {"0" * 16: [(0, seq - 1)]}), now + 1)
                    sent_last_tick = []
            # ACKs are written at the next tick with something to write: here, the next second.
            queue.commit()
    end = queue.stats()
    after = proc_write_bytes()
    # Only the last tick's records may still wait for their confirmation.
    assert end.records <= stations + 1, f"{end.records} records never settled"
    queue.close()
    return {
        "stations": stations,
        "readings": readings,
        "payload_bytes_per_reading": payload_bytes / readings,
        "bytes_written_per_reading": (end.bytes_written - start.bytes_written) / readings,
        "written_per_payload_byte": (end.bytes_written - start.bytes_written) / payload_bytes,
        "fsyncs_per_hour": (end.fsyncs - start.fsyncs) / hours,
        "fsyncs_per_1000_readings": 1000 * (end.fsyncs - start.fsyncs) / readings,
        "kernel_write_bytes_per_reading": ((after - before) / readings) if after is not None and before is not None
        else float("nan"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, nargs="*", default=[1, 4])
    parser.add_argument("--hours", type=float, default=1.0)
    parser.add_argument("--outage-min", type=float, default=20.0)
    parser.add_argument("--dir", type=Path, default=None,
                        help="a folder on the disk to measure (default: a temporary folder in /var/tmp)")
    parser.add_argument("--delivery", choices=["end-to-end", "broker"], default="end-to-end",
                        help="settle on a collector's confirmation (the default) or on the PUBACK")
    args = parser.parse_args()
    rows = []
    for stations in args.stations:
        base = args.dir or Path(tempfile.mkdtemp(prefix="rp-disk-bench-", dir="/var/tmp"))
        try:
            rows.append(run(stations, args.hours, args.outage_min, base / f"q{stations}", args.delivery))
        finally:
            if args.dir is None:
                shutil.rmtree(base, ignore_errors=True)
    keys = list(rows[0])
    width = max(map(len, keys))
    for key in keys:
        cells = "".join(f"{row[key]:>12.2f}" if isinstance(row[key], float) else f"{row[key]:>12}"
                        for row in rows)
        print(f"{key:<{width}} {cells}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
