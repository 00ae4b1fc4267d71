"""Small simulator scenarios the tests write to a file and run (`roadpulse sim run -s FILE`)."""

from __future__ import annotations


def one_station(name: str) -> str:
    """One Modbus TCP detector station on a 2 km road, 10 x faster than real time."""
    return f"""name = "{name}"
seed = 1
start = 2026-03-02T07:40:00+08:00
time_scale = 10.0
[road]
name = "r"
length_km = 2.0
lanes = 2
aadt = 20000
[[devices]]
id = "vds-1"
kind = "traffic"
profile = "vds_modbus"
protocol = "modbus-tcp"
km = 1.0
unit = 1
interval_s = 20.0
"""
