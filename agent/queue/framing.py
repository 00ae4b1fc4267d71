"""Record framing for the durable queue: bytes in, frames out. Pure, no I/O.

Every record on disk is one frame:

    magic u16 | kind u8 | flags u8 | length u32 | id u64 | weight u32 | ts_ms u64 | crc32 u32 | payload

The CRC covers the header (without the CRC field) and the payload, so a torn write
(power cut mid-`write`) or a flipped bit on the SD card is detected. The magic lets a
scan resynchronise after a damaged region instead of giving up on the rest of a file.
"""

from __future__ import annotations

import enum
import struct
import zlib
from dataclasses import dataclass

MAGIC = 0x5250  # "RP"
_HEAD = struct.Struct("<HBBIQIQ")
_CRC = struct.Struct("<I")
HEADER_SIZE = _HEAD.size + _CRC.size
# A single record larger than this is corruption, not data (batches are capped at 256 KiB).
MAX_PAYLOAD = 16 * 1024 * 1024


class FrameKind(enum.IntEnum):
    DATA = 1
    # Payload: pairs of u64 (first, last) id ranges that the consumer acknowledged.
    ACK = 2
    # Written first in every segment: `id` is the next record id, so ids never go backwards.
    START = 3


@dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameKind
    id: int
    weight: int
    ts_ms: int
    payload: bytes
    offset: int = 0

    @property
    def size(self) -> int:
        return HEADER_SIZE + len(self.payload)


def encode_frame(kind: FrameKind, record_id: int, payload: bytes = b"", *, weight: int = 0,
                 ts_ms: int = 0) -> bytes:
    head = _HEAD.pack(MAGIC, int(kind), 0, len(payload), record_id, weight, ts_ms)
    crc = zlib.crc32(payload, zlib.crc32(head))
    return head + _CRC.pack(crc) + payload


def encode_ack_ranges(ids: list[int]) -> bytes:
    """Compress acknowledged ids into (first, last) ranges: live acks are mostly consecutive."""
    out = bytearray()
    ordered = sorted(ids)
    i = 0
    while i < len(ordered):
        first = last = ordered[i]
        i += 1
        while i < len(ordered) and ordered[i] == last + 1:
            last = ordered[i]
            i += 1
        out += struct.pack("<QQ", first, last)
    return bytes(out)


def decode_ack_ranges(payload: bytes) -> list[tuple[int, int]]:
    usable = len(payload) - len(payload) % 16
    return [struct.unpack_from("<QQ", payload, i) for i in range(0, usable, 16)]


def parse_frame(buf: bytes | memoryview, pos: int) -> Frame | None:
    if pos + HEADER_SIZE > len(buf):
        return None
    magic, kind, _flags, length, record_id, weight, ts_ms = _HEAD.unpack_from(buf, pos)
    if magic != MAGIC or length > MAX_PAYLOAD or kind not in FrameKind._value2member_map_:
        return None
    end = pos + HEADER_SIZE + length
    if end > len(buf):
        return None
    (crc,) = _CRC.unpack_from(buf, pos + _HEAD.size)
    payload = bytes(buf[pos + HEADER_SIZE : end])
    if zlib.crc32(payload, zlib.crc32(buf[pos : pos + _HEAD.size])) != crc:
        return None
    return Frame(FrameKind(kind), record_id, weight, ts_ms, payload, pos)


@dataclass(frozen=True, slots=True)
class ScanResult:
    frames: list[Frame]
    # Offset after the last good frame: a writer may truncate a torn tail here.
    good_end: int
    damaged_regions: int
    damaged_bytes: int


def scan(buf: bytes | memoryview) -> ScanResult:
    """Every intact frame in `buf`, skipping damaged regions by searching for the next valid frame."""
    frames: list[Frame] = []
    pos = 0
    good_end = 0
    regions = 0
    damaged = 0
    magic = _HEAD.pack(MAGIC, 0, 0, 0, 0, 0, 0)[:2]
    data = bytes(buf)
    while pos < len(data):
        frame = parse_frame(data, pos)
        if frame is not None:
            frames.append(frame)
            pos += frame.size
            good_end = pos
            continue
        # Damaged or torn: look for the next offset that holds a whole valid frame.
        regions += 1
        start = pos
        pos = data.find(magic, pos + 1)
        while pos != -1 and parse_frame(data, pos) is None:
            pos = data.find(magic, pos + 1)
        if pos == -1:
            damaged += len(data) - start
            break
        damaged += pos - start
    return ScanResult(frames, good_end, regions, damaged)
