"""Dead letters: messages we cannot store, kept as JSON lines in data_dir with their reason.

A dead letter is a decision, not a loss: the payload is kept (base64) so an operator can
inspect or replay it. Writes are buffered and made durable by `sync()`, which the collector
calls before it acks the messages concerned.
"""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path
from typing import IO


class DeadLetters:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.count = 0
        self.by_reason: dict[str, int] = {}
        self._fh: IO[str] | None = None
        self._day = ""
        self._dirty = False

    def _file(self) -> IO[str]:
        day = time.strftime("%Y%m%d", time.gmtime())
        if self._fh is None or day != self._day:
            if self._fh is not None:
                self.sync()
                self._fh.close()
            self._fh = (self.directory / f"deadletters-{day}.jsonl").open("a", encoding="utf-8")
            self._day = day
        return self._fh

    def add(self, reason: str, *, topic: str = "", detail: str = "", payload: bytes = b"",
            lines: str = "") -> None:
        """Buffered; durable after the next `sync()`."""
        record: dict[str, object] = {"ts_ms": int(time.time() * 1000), "reason": reason, "topic": topic,
                                     "detail": detail}
        if payload:
            record["payload_b64"] = base64.b64encode(payload).decode()
        if lines:
            record["lines"] = lines
        self._file().write(json.dumps(record, ensure_ascii=False) + "\n")
        self._dirty = True
        self.count += 1
        self.by_reason[reason] = self.by_reason.get(reason, 0) + 1

    def sync(self) -> None:
        if self._dirty and self._fh is not None:
            self._fh.flush()
            os.fsync(self._fh.fileno())
            self._dirty = False

    def close(self) -> None:
        if self._fh is not None:
            self.sync()
            self._fh.close()
            self._fh = None
