"""The sink's reaction to each write error, with real mosquitto and a scripted fake InfluxDB."""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from roadpulse.services import Mosquitto
from tests.collector.conftest import running, wait_for
from tests.collector.traffic import Publisher, boot_id, collector_toml, make_batch, make_birth

Answer = Callable[[list[str]], tuple[int, dict[str, str]]]


class FakeInflux:
    """Stores the lines of every 2xx answer; `answer` decides per request."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.stored: list[str] = []
        self.requests: list[tuple[float, int, int]] = []  # (time, lines, status)
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                lines = [line for line in body.decode().split("\n") if line]
                status, headers = fake.answer(lines)
                fake.requests.append((time.monotonic(), len(lines), status))
                if status < 300:
                    fake.stored += lines
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-influx", daemon=True)

    def readings(self) -> int:
        return sum(1 for line in self.stored if not line.startswith("roadpulse_"))


@pytest.fixture
def fake_influx() -> Iterator[Callable[[Answer], FakeInflux]]:
    started: list[FakeInflux] = []

    def start(answer: Answer) -> FakeInflux:
        fake = FakeInflux(answer)
        fake.thread.start()
        started.append(fake)
        return fake

    yield start
    for fake in started:
        fake.server.shutdown()
        fake.server.server_close()


def _run(tmp_path: Path, mosquitto: Mosquitto, url: str, messages: int, until: Callable[[object], bool]) -> object:
    from collector.config import load_collector_config
    from collector.run import Collector

    config = load_collector_config(collector_toml(tmp_path, mosquitto.url, url))
    birth = make_birth("gw-1", boot_id())
    publisher = Publisher(mosquitto.url)
    publisher.birth(birth)
    collector = Collector(config)

    async def scenario() -> None:
        async with running(collector):
            await asyncio.to_thread(publisher.data, [make_batch(birth, s) for s in range(messages)])
            await wait_for(lambda: until(collector), limit_s=30, what="scenario done")

    asyncio.run(scenario())
    publisher.close()
    return collector


@pytest.mark.slow
def test_413_splits_until_batches_fit(tmp_path: Path, mosquitto: Mosquitto,
                                      fake_influx: Callable[[Answer], FakeInflux]) -> None:
    fake = fake_influx(lambda lines: (413, {}) if len(lines) > 300 else (204, {}))
    _run(tmp_path, mosquitto, fake.url, 40, lambda c: fake.readings() >= 2000)
    assert fake.readings() == 2000
    assert any(status == 413 for _, _, status in fake.requests)
    assert all(n <= 300 for _, n, status in fake.requests if status == 204)


@pytest.mark.slow
def test_400_is_dead_lettered_not_retried(tmp_path: Path, mosquitto: Mosquitto,
                                          fake_influx: Callable[[Answer], FakeInflux]) -> None:
    fake = fake_influx(lambda lines: (400, {}) if any("volume=7i" in line for line in lines) else (204, {}))
    collector = _run(tmp_path, mosquitto, fake.url, 10, lambda c: c.stats.dead_letters >= 1)  # type: ignore[attr-defined]
    rejected = [r for r in fake.requests if r[2] == 400]
    letters = [json.loads(line) for path in (tmp_path / "c1-data" / "deadletters").glob("*.jsonl")
               for line in path.read_text().splitlines()]
    assert letters
    assert all(letter["reason"] == "influx-rejected" and letter["lines"] for letter in letters)
    assert len(rejected) == len(letters)  # each rejected batch was sent once, never retried
    assert collector.stats.readings_spooled == 0  # type: ignore[attr-defined]


@pytest.mark.slow
def test_429_waits_for_retry_after_and_spools_meanwhile(tmp_path: Path, mosquitto: Mosquitto,
                                                        fake_influx: Callable[[Answer], FakeInflux]) -> None:
    state = {"throttled": 0}

    def answer(lines: list[str]) -> tuple[int, dict[str, str]]:
        if state["throttled"] < 1:
            state["throttled"] += 1
            return 429, {"Retry-After": "2"}
        return 204, {}

    fake = fake_influx(answer)
    collector = _run(tmp_path, mosquitto, fake.url, 20, lambda c: fake.readings() >= 1000)
    first_429 = next(t for t, _, status in fake.requests if status == 429)
    next_try = min(t for t, _, status in fake.requests if t > first_429)
    assert next_try - first_429 >= 1.9  # Retry-After honoured: no write before it ran out
    assert collector.stats.readings_spooled > 0  # type: ignore[attr-defined]
    assert fake.readings() == 1000


@pytest.mark.slow
def test_a_rejected_part_of_a_split_batch_is_dead_lettered_alone(
        tmp_path: Path, mosquitto: Mosquitto, fake_influx: Callable[[Answer], FakeInflux]) -> None:
    """413, split; one part then gets 400: only that part is dead-lettered, the other parts stay stored."""

    def answer(lines: list[str]) -> tuple[int, dict[str, str]]:
        if len(lines) > 300:
            return 413, {}
        return (400, {}) if any("volume=7i" in line for line in lines) else (204, {})

    fake = fake_influx(answer)

    def settled(c: object) -> bool:
        stats = c.stats  # type: ignore[attr-defined]
        return bool(stats.readings_written + stats.readings_rejected >= 2000)

    collector = _run(tmp_path, mosquitto, fake.url, 40, settled)
    stats = collector.stats  # type: ignore[attr-defined]
    letters = [json.loads(line) for path in (tmp_path / "c1-data" / "deadletters").glob("*.jsonl")
               for line in path.read_text().splitlines()]
    dead = [line for letter in letters for line in letter["lines"].split("\n") if not line.startswith("roadpulse_")]
    assert dead
    assert all(letter["reason"] == "influx-rejected" for letter in letters)
    assert all(len(letter["lines"].split("\n")) <= 300 for letter in letters)  # parts, not whole batches
    assert stats.readings_rejected == len(dead)
    assert stats.readings_written == fake.readings()
    assert fake.readings() + len(dead) == 2000  # each reading stored or dead-lettered, once


@pytest.mark.slow
def test_a_refused_part_then_a_503_dead_letters_it_once(
        tmp_path: Path, mosquitto: Mosquitto, fake_influx: Callable[[Answer], FakeInflux]) -> None:
    """A split batch: one part refused (400), the next answered 503. The batch is spooled whole
    and replayed; the refused part must end in the dead letters once, not once per attempt."""
    state = {"refused": 0, "unavailable": 0}

    def answer(lines: list[str]) -> tuple[int, dict[str, str]]:
        if len(lines) > 300:
            return 413, {}
        if state["refused"] and not state["unavailable"]:
            state["unavailable"] += 1
            return 503, {"Retry-After": "1"}
        if any("volume=7i" in line for line in lines):
            state["refused"] += 1
            return 400, {}
        return 204, {}

    fake = fake_influx(answer)

    def settled(c: object) -> bool:
        stats = c.stats  # type: ignore[attr-defined]
        return bool(stats.readings_written + stats.readings_rejected >= 2000 and stats.spool_depth == 0)

    collector = _run(tmp_path, mosquitto, fake.url, 40, settled)
    stats = collector.stats  # type: ignore[attr-defined]
    assert state["unavailable"] == 1
    assert stats.readings_spooled > 0
    letters = [json.loads(line) for path in (tmp_path / "c1-data" / "deadletters").glob("*.jsonl")
               for line in path.read_text().splitlines()]
    dead = [line for letter in letters for line in letter["lines"].split("\n") if not line.startswith("roadpulse_")]
    assert len(dead) == len(set(dead))  # no line dead-lettered twice
    assert stats.readings_rejected == len(dead)
    assert len(set(fake.stored) & set(dead)) == 0
    assert len({line for line in fake.stored if not line.startswith("roadpulse_")}) + len(dead) == 2000
