"""Births persisted in data_dir, so a restarted collector can decode data before the retained birth arrives.

A persistent session delivers queued data right after CONNACK, before our subscriptions
bring the retained births; and replays of an earlier boot need that boot's birth. So the
last few raw births per gateway are kept on disk (temp file, fsync, rename).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import msgpack

from roadpulse.wire import Birth, WireError, decode

log = logging.getLogger(__name__)


class BirthStore:
    def __init__(self, directory: Path, boots_per_gateway: int = 4) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self._keep = boots_per_gateway
        self._raw: dict[str, list[tuple[str, bytes]]] = {}  # gateway -> (boot, payload), oldest first

    def load(self) -> list[Birth]:
        births: list[Birth] = []
        for path in sorted(self.directory.glob("*.births")):
            try:
                payloads = msgpack.unpackb(path.read_bytes())
            except (ValueError, msgpack.ExtraData, msgpack.UnpackException) as exc:
                log.warning("unreadable birth file", extra={"path": str(path), "error": str(exc)})
                continue
            kept: list[tuple[str, bytes]] = []
            for raw in payloads if isinstance(payloads, list) else []:
                try:
                    message = decode(raw)
                except WireError:
                    continue
                if isinstance(message, Birth):
                    births.append(message)
                    kept.append((message.boot, raw))
            if kept:
                self._raw[path.stem] = kept
        return births

    def save(self, birth: Birth, payload: bytes) -> None:
        """Durable when it returns."""
        kept = [(boot, raw) for boot, raw in self._raw.get(birth.gateway, []) if boot != birth.boot]
        kept.append((birth.boot, payload))
        kept = kept[-self._keep :]
        self._raw[birth.gateway] = kept
        path = self.directory / f"{birth.gateway}.births"
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as fh:
            fh.write(msgpack.packb([raw for _, raw in kept]))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)

