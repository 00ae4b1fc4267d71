"""Byte-exact framing: what a torn write or a flipped bit looks like, and that scanning survives it."""

from __future__ import annotations

import pytest

from agent.queue.framing import (
    HEADER_SIZE,
    FrameKind,
    decode_ack_ranges,
    encode_ack_ranges,
    encode_frame,
    parse_frame,
    scan,
)

A = encode_frame(FrameKind.DATA, 7, b"hello", weight=3, ts_ms=1000)
B = encode_frame(FrameKind.DATA, 8, b"world!", weight=2, ts_ms=2000)
C = encode_frame(FrameKind.ACK, 0, encode_ack_ranges([7, 8]))


def test_frame_layout() -> None:
    assert len(A) == HEADER_SIZE + 5
    assert A[:2] == b"\x50\x52"
    frame = parse_frame(A, 0)
    assert frame is not None
    assert (frame.kind, frame.id, frame.weight, frame.ts_ms, frame.payload) == (FrameKind.DATA, 7, 3, 1000,
                                                                                b"hello")


def _flip(buf: bytes, index: int) -> bytes:
    return buf[:index] + bytes([buf[index] ^ 0x01]) + buf[index + 1 :]


@pytest.mark.parametrize(
    ("name", "buf", "ids", "good_end", "regions"),
    [
        ("clean", A + B + C, [7, 8, 0], len(A + B + C), 0),
        ("empty", b"", [], 0, 0),
        ("torn header", A + B[:10], [7], len(A), 1),
        ("torn payload", A + B[:-1], [7], len(A), 1),
        ("flipped payload bit", A + _flip(B, len(B) - 1) + C, [7, 0], len(A + B + C), 1),
        ("flipped header bit", _flip(A, 5) + B, [8], len(A + B), 1),
        ("zeros after power cut", A + b"\0" * 4096, [7], len(A), 1),
        ("garbage between", A + b"\x50\x52garbage" + B, [7, 8], len(A) + 9 + len(B), 1),
        ("huge length", A + b"\x50\x52\x01\x00\xff\xff\xff\x7f" + b"\0" * 30, [7], len(A), 1),
    ],
)
def test_scan(name: str, buf: bytes, ids: list[int], good_end: int, regions: int) -> None:
    result = scan(buf)
    assert [f.id for f in result.frames] == ids, name
    assert result.good_end == good_end, name
    assert result.damaged_regions == regions, name


@pytest.mark.parametrize(
    ("ids", "ranges"),
    [([], []), ([5], [(5, 5)]), ([3, 1, 2], [(1, 3)]), ([1, 2, 4, 5, 9], [(1, 2), (4, 5), (9, 9)])],
)
def test_ack_ranges(ids: list[int], ranges: list[tuple[int, int]]) -> None:
    assert decode_ack_ranges(encode_ack_ranges(ids)) == ranges
