"""The Agent's own logic without a broker: clock steps, birth contents, health envelope."""

from __future__ import annotations

from pathlib import Path

import pytest

import agent.intake as intake_module
from agent.clock import BUILD_DATE_MS
from agent.config import load_agent_config
from agent.health import ProcessSampler
from agent.outbox import Outbox
from agent.queue import MemoryQueue, Record
from agent.run import Agent
from roadpulse.wire import Birth, DataBatch, Reading, TimeFlag, decode
from tests.agent_core.helpers import write_config

T = BUILD_DATE_MS + 86_400_000


@pytest.fixture
def agent(tmp_path: Path) -> Agent:
    path = write_config(tmp_path, "mqtt://127.0.0.1:1")
    a = Agent(load_agent_config(path), path)
    a.attach(MemoryQueue(max_bytes=1 << 20))
    return a


def _outbox(a: Agent) -> Outbox:
    assert a.outbox is not None
    return a.outbox


def _queued(a: Agent) -> list[tuple[Record, DataBatch]]:
    assert a.outbox is not None
    tx = a.outbox.queue.begin(100)
    out = []
    for record in tx.records:
        batch = decode(a.outbox.payload(record, replay=False))
        assert isinstance(batch, DataBatch)
        out.append((record, batch))
    return out


def test_readings_taken_before_an_ntp_step_are_corrected(agent: Agent, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = {"wall": 10_000, "mono": 10_000}
    monkeypatch.setattr(intake_module, "_wall_ms", lambda: clock["wall"])
    monkeypatch.setattr(intake_module, "_mono_ms", lambda: clock["mono"])
    taken: list[Reading] = []
    intake = agent.attach(MemoryQueue(max_bytes=1 << 20))
    intake._on_taken = taken.extend
    # Booted in 1970: readings are kept, flagged unsynced and suspect.
    intake.take([Reading(0, 10_000, 1), Reading(1, 10_000, 2)])
    intake.commit()
    # NTP steps the clock to the real time 5 s (monotonic) later.
    clock.update(wall=T, mono=15_000)
    intake.take([Reading(0, T, 3)])
    intake.seal_all()
    intake.commit()
    batches = [b for _, b in _queued(agent)]
    assert len(taken) == 3
    assert [(b.time_flags, [r.ts_ms for r in b.readings]) for b in batches] == [
        (TimeFlag.CORRECTED, [T - 5_000, T - 5_000]),
        (TimeFlag.NONE, [T]),
    ]
    assert [b.seq for b in batches] == [0, 1]


def test_birth_describes_devices_and_health_metrics(agent: Agent) -> None:
    birth = decode(_outbox(agent).birth())
    assert isinstance(birth, Birth)
    assert birth.boot == agent.boot
    assert birth.seq == 0
    assert birth.config_hash == agent.catalog.config_hash
    assert [d["id"] for d in birth.devices] == ["dev0", "dev1"]
    health = [m for m in birth.metrics if m.measurement == "roadpulse_agent"]
    assert {m.field for m in health} >= {"queue_readings", "readings_evicted", "publish_latency_ms",
                                         "reconnects", "cpu_percent", "rss_bytes", "disk_free_bytes",
                                         "oldest_unsent_age_s", "poll_errors"}
    assert len({m.alias for m in birth.metrics}) == len(birth.metrics)


def test_health_envelope_decodes_against_the_birth(agent: Agent, tmp_path: Path) -> None:
    birth = decode(_outbox(agent).birth())
    assert isinstance(birth, Birth)
    health = decode(agent.health_payload(ProcessSampler(tmp_path)))
    assert isinstance(health, DataBatch)
    assert health.kind == "health"
    names = {m.alias: m for m in birth.metrics}
    fields = {names[r.alias].field: r.value for r in health.readings}
    assert all(names[r.alias].measurement == "roadpulse_agent" for r in health.readings)
    assert fields["queue_readings"] == 0
    assert isinstance(fields["rss_bytes"], int)
    assert fields["rss_bytes"] > 0
    assert fields["disk_free_bytes"] > 0


def test_health_reports_poll_errors_per_device(agent: Agent, tmp_path: Path) -> None:
    from agent.schedule import DeviceStats

    agent.stats.devices["dev1"] = DeviceStats(polls=10, errors=3)
    birth = decode(_outbox(agent).birth())
    assert isinstance(birth, Birth)
    names = {m.alias: m for m in birth.metrics}
    health = decode(agent.health_payload(ProcessSampler(tmp_path)))
    assert isinstance(health, DataBatch)
    per_device = {(names[r.alias].device, names[r.alias].field): r.value for r in health.readings}
    assert per_device[("dev1", "poll_errors")] == 3
    assert per_device[("dev1", "polls")] == 10


def test_kernel_clock_check_flags_readings_unsynced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_config(tmp_path, "mqtt://127.0.0.1:1", extra="")
    text = path.read_text().replace("health_interval_s = 0.5", 'health_interval_s = 0.5\nclock_sync_check = "kernel"')
    path.write_text(text)
    a = Agent(load_agent_config(path), path)
    intake = a.attach(MemoryQueue(max_bytes=1 << 20))
    monkeypatch.setattr(intake_module, "kernel_clock_synchronised", lambda: False)
    now = intake_module._wall_ms()
    intake.take([Reading(0, now, 1)])
    intake.seal_all()
    intake.commit()
    [(_, batch)] = _queued(a)
    assert batch.time_flags == TimeFlag.UNSYNCED
