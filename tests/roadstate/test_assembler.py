"""Readings into closed intervals: event time, latest-per-field, redelivery changes nothing; the config sample loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from roadpulse.configfile import ConfigError
from roadpulse.wire import Birth, DataBatch, MetricDef, Reading
from roadstate.assembler import Assembler
from roadstate.config import load_config
from roadstate.state import LaneBin

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_772_400_000_000  # a multiple of 30 s


def _birth() -> Birth:
    metrics = [MetricDef(i, dev, "traffic", f, "", "f", {"lane": "1"})
               for i, (dev, f) in enumerate([(d, f) for d in ("a", "b") for f in ("volume", "occupancy", "speed")])]
    metrics.append(MetricDef(9, "a", "traffic_station", "interval_s", "s", "i"))
    devices = [{"id": "a", "tags": {"road": "G1", "direction": "N", "kp": "K001+000"}},
               {"id": "b", "tags": {"road": "G1", "direction": "N", "kp": "K003+000"}}]
    return Birth("gw", "boot", 0, T0, "t", "c", devices, metrics)


def _data(ts: int, volume: float) -> DataBatch:
    return DataBatch("gw", "boot", 1, ts, [Reading(0, ts, volume), Reading(1, ts, 5.0), Reading(2, ts, 90.0),
                                           Reading(9, ts, 30)])


def test_intervals_close_on_event_time_and_redelivery_is_idempotent() -> None:
    asm = Assembler(30.0, 60.0)
    assert asm.on_birth(_birth()) == ["G1/N/gw/a", "G1/N/gw/b"]
    key = ("G1", "N")
    asm.add(_data(T0 + 10_000, 10))
    asm.add(_data(T0 + 29_000, 12))  # a later poll of the same bin wins
    asm.add(_data(T0 + 29_000, 12))  # redelivered
    assert asm.closable(key) == []
    asm.add(_data(T0 + 90_000, 11))  # 60 s past the first interval's end
    assert asm.closable(key) == [T0 // 30_000]
    t_ms, stations = asm.take(key, T0 // 30_000)
    assert t_ms == T0
    assert stations == {"gw/a": [LaneBin(12.0, 5.0, 90.0, None)], "gw/b": None}
    asm.add(_data(T0 + 5_000, 99))  # late: its interval is closed
    assert asm.counters.late_readings == 3
    restored = Assembler(30.0, 60.0)
    restored.restore(asm.snapshot())
    assert restored.snapshot() == asm.snapshot()


def test_metrics_without_a_kilometre_post_are_counted_not_placed() -> None:
    birth = _birth()
    birth.devices[1]["tags"].pop("kp")
    asm = Assembler(30.0, 60.0)
    assert asm.on_birth(birth) == ["G1/N/gw/a"]
    assert asm.counters.unplaced_metrics == 3


def test_example_config_loads_and_bad_algorithm_is_named(tmp_path: Path) -> None:
    config = load_config(ROOT / "config" / "roadstate.example.toml")
    assert config.roadstate.algorithms == ["roadpulse"]
    bad = tmp_path / "bad.toml"
    bad.write_text('[roadstate]\ndata_dir = "x"\nalgorithms = ["apid"]\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="algorithms"):
        load_config(bad)
