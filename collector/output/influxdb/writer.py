"""HTTP writes to InfluxDB: v1 `/write` or v2 `/api/v2/write`, gzip, typed errors decided in one place.

`classify()` is the one place that maps an answer to WriteRejected (dead letter, never
retried), WriteThrottled (wait Retry-After), WriteTooLarge (split) or WriteRetryable
(backoff). The loop above decides what to do with each. Requests run in a worker thread
(asyncio.to_thread) over http.client: one keep-alive connection per InfluxWriter.
"""

from __future__ import annotations

import asyncio
import base64
import http.client
import logging
import re
import ssl
import urllib.parse
from dataclasses import dataclass

from collector.body import encode_body
from collector.config import InfluxSection
from collector.output.errors import (
    WriteError,
    WriteRejected,
    WriteRetryable,
    WriteThrottled,
    WriteTooLarge,
    parse_retry_after,
)
from collector.output.influxdb.partial import error_text
from roadpulse.configfile import read_secret

log = logging.getLogger(__name__)

_PARTIAL = re.compile(r"partial write", re.IGNORECASE)


def classify(status: int, retry_after: str | None, body: str) -> WriteError | None:
    """The single decision from an HTTP answer to an error class; None means stored."""
    if 200 <= status < 300:
        return None
    text = f"HTTP {status}: {body[:300]}"
    if status in (400, 422):
        return WriteRejected(("partial write; " if _PARTIAL.search(body) else "") + text, error_text(body))
    if status == 413:
        return WriteTooLarge(text)
    if status in (429, 503):
        return WriteThrottled(text, parse_retry_after(retry_after))
    # 401/403/404 are configuration problems an operator can fix: keep the data and retry.
    return WriteRetryable(text)


@dataclass(frozen=True, slots=True)
class WriteTarget:
    """Where and how to POST, derived once from the config."""

    scheme: str
    host: str
    port: int
    path: str  # with query string
    headers: tuple[tuple[str, str], ...]
    gzip: bool
    timeout_s: float


def target_from_config(cfg: InfluxSection) -> WriteTarget:
    url = urllib.parse.urlsplit(cfg.url)
    base = url.path.rstrip("/")
    headers: list[tuple[str, str]] = [("Content-Type", "text/plain; charset=utf-8")]
    token = read_secret(cfg.token_file, cfg.token_env)
    if cfg.api == "v1":
        params = {"db": cfg.database, "precision": "ms"}
        if cfg.retention_policy:
            params["rp"] = cfg.retention_policy
        password = read_secret(cfg.password_file, cfg.password_env)
        if token:
            headers.append(("Authorization", f"Token {token}"))
        elif cfg.username:
            creds = base64.b64encode(f"{cfg.username}:{password or ''}".encode()).decode()
            headers.append(("Authorization", f"Basic {creds}"))
        path = f"{base}/write?{urllib.parse.urlencode(params)}"
    else:
        params = {"org": cfg.org or "", "bucket": cfg.bucket or "", "precision": "ms"}
        if token:
            headers.append(("Authorization", f"Token {token}"))
        path = f"{base}/api/v2/write?{urllib.parse.urlencode(params)}"
    if cfg.gzip:
        headers.append(("Content-Encoding", "gzip"))
    port = url.port or (443 if url.scheme == "https" else 80)
    return WriteTarget(url.scheme, url.hostname or "127.0.0.1", port, path, tuple(headers), cfg.gzip,
                       cfg.timeout_s)


class InfluxWriter:
    """One keep-alive connection. `write` raises one of the typed WriteErrors or returns."""

    def __init__(self, target: WriteTarget) -> None:
        self._target = target
        self._conn: http.client.HTTPConnection | None = None

    async def write(self, body: bytes) -> None:
        await asyncio.to_thread(self._post, body)

    async def write_lines(self, text: str) -> None:
        """Encode (gzip) and POST in one trip to the worker thread."""
        await asyncio.to_thread(self._encode_and_post, text)

    def _encode_and_post(self, text: str) -> None:
        self._post(encode_body(text, self._target.gzip))

    def _connection(self) -> http.client.HTTPConnection:
        if self._conn is None:
            t = self._target
            if t.scheme == "https":
                self._conn = http.client.HTTPSConnection(
                    t.host, t.port, timeout=t.timeout_s, context=ssl.create_default_context())
            else:
                self._conn = http.client.HTTPConnection(t.host, t.port, timeout=t.timeout_s)
        return self._conn

    def _post(self, body: bytes) -> None:
        conn = self._connection()
        try:
            conn.request("POST", self._target.path, body=body, headers=dict(self._target.headers))
            resp = conn.getresponse()
            answer = resp.read().decode("utf-8", "replace")
            status, retry_after = resp.status, resp.getheader("Retry-After")
            if resp.will_close:
                self.close()
        except (OSError, http.client.HTTPException) as exc:
            self.close()
            raise WriteRetryable(f"{type(exc).__name__}: {exc}") from None
        error = classify(status, retry_after, answer)
        if error is not None:
            raise error

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
