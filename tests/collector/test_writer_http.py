"""Our InfluxDB client against a small local HTTP server that checks the request shape.

No InfluxDB 2.x/3.x can be installed here, so the v2 path (`/api/v2/write`, org, bucket,
token, gzip, precision) is verified only as far as this server checks it; the v1 path is also
tested against a real influxd in the integration tests.
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from collector.body import encode_body
from collector.config import InfluxSection
from collector.output.errors import WriteRejected, WriteRetryable, WriteThrottled, WriteTooLarge
from collector.output.influxdb.writer import InfluxWriter, target_from_config


class _Recorder(BaseHTTPRequestHandler):
    requests: list[dict[str, Any]] = []  # noqa: RUF012 - shared by the test server's handler instances
    answers: list[tuple[int, dict[str, str], bytes]] = []  # noqa: RUF012

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        url = urllib.parse.urlsplit(self.path)
        self.requests.append({"path": url.path, "query": dict(urllib.parse.parse_qsl(url.query)),
                              "headers": dict(self.headers), "body": body})
        status, headers, answer = self.answers.pop(0) if self.answers else (204, {}, b"")
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    _Recorder.requests = []
    _Recorder.answers = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, name="fake-influx", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


LINES = 'traffic,device=d1,gateway=g volume=3i 1700000000000\ntraffic,device=d1,gateway=g speed=1.5 1700000000001'


def test_v2_request_shape(server: str, tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text("s3cret\n")
    cfg = InfluxSection(url=server, api="v2", org="roads", bucket="rp", token_file=token)
    writer = InfluxWriter(target_from_config(cfg))
    asyncio.run(writer.write(encode_body(LINES, True)))
    request = _Recorder.requests[0]
    assert request["path"] == "/api/v2/write"
    assert request["query"] == {"org": "roads", "bucket": "rp", "precision": "ms"}
    assert request["headers"]["Authorization"] == "Token s3cret"
    assert request["headers"]["Content-Encoding"] == "gzip"
    assert gzip.decompress(request["body"]).decode() == LINES


def test_v1_request_shape_with_user_password(server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INFLUX_PW", "pw")
    cfg = InfluxSection(url=server + "/", database="db1", retention_policy="week", username="u",
                        password_env="INFLUX_PW", gzip=False)
    asyncio.run(InfluxWriter(target_from_config(cfg)).write(encode_body(LINES, False)))
    request = _Recorder.requests[0]
    assert request["path"] == "/write"
    assert request["query"] == {"db": "db1", "rp": "week", "precision": "ms"}
    assert request["headers"]["Authorization"] == "Basic dTpwdw=="
    assert "Content-Encoding" not in request["headers"]
    assert request["body"].decode() == LINES


@pytest.mark.parametrize(
    ("status", "headers", "error"),
    [(400, {}, WriteRejected), (422, {}, WriteRejected), (413, {}, WriteTooLarge),
     (429, {"Retry-After": "4"}, WriteThrottled), (503, {}, WriteThrottled), (500, {}, WriteRetryable)],
)
def test_answers_become_typed_errors(server: str, status: int, headers: dict[str, str],
                                     error: type[Exception]) -> None:
    _Recorder.answers = [(status, headers, b'{"error":"x"}')]
    writer = InfluxWriter(target_from_config(InfluxSection(url=server, api="v2", org="o", bucket="b")))
    with pytest.raises(error) as caught:
        asyncio.run(writer.write(b"x"))
    if isinstance(caught.value, WriteThrottled) and headers:
        assert caught.value.retry_after == 4.0


def test_connection_refused_is_retryable() -> None:
    from roadpulse.services import free_port

    writer = InfluxWriter(target_from_config(InfluxSection(url=f"http://127.0.0.1:{free_port()}")))
    with pytest.raises(WriteRetryable):
        asyncio.run(writer.write(b"x"))
