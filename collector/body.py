"""Batch bodies as they travel and as the spool keeps them: UTF-8 lines, gzip when configured."""

from __future__ import annotations

import gzip


def encode_body(lines: str, use_gzip: bool) -> bytes:
    data = lines.encode()
    # Level 1: ~0.2 µs per point, against ~3.4 µs at level 9, for most of the size gain.
    return gzip.compress(data, compresslevel=1, mtime=0) if use_gzip else data


def normalize_body(payload: bytes, use_gzip: bool) -> bytes:
    """Spooled bodies may predate a config change: gzip or un-gzip to match the target."""
    is_gzip = payload[:2] == b"\x1f\x8b"
    if is_gzip and not use_gzip:
        return gzip.decompress(payload)
    if use_gzip and not is_gzip:
        return gzip.compress(payload, compresslevel=1, mtime=0)
    return payload


def body_text(payload: bytes) -> str:
    return (gzip.decompress(payload) if payload[:2] == b"\x1f\x8b" else payload).decode()
