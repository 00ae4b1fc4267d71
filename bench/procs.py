"""What a process has cost so far, read from /proc: CPU, memory, bytes written.

CPU is user + system time from /proc/<pid>/stat (clock ticks), so a figure is the work a
process did, not wall time, and a window over several processes sees the same neighbours.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def status_kib(pid: int, key: str) -> int:
    """A `kB` line of /proc/<pid>/status, e.g. VmRSS or VmHWM."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def write_bytes(pid: int) -> int:
    """Bytes this process caused to be sent to the storage layer (/proc/<pid>/io)."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    raise KeyError("write_bytes")


@dataclass
class CpuWindow:
    """CPU seconds of named processes between open() and close()."""

    pids: dict[str, int]
    start: dict[str, float] = field(default_factory=dict)

    def open(self) -> CpuWindow:
        self.start = {name: cpu_seconds(pid) for name, pid in self.pids.items()}
        return self

    def close(self) -> dict[str, float]:
        return {name: cpu_seconds(pid) - self.start[name] for name, pid in self.pids.items()}


def per_reading_us(cpu: dict[str, float], readings: int) -> dict[str, float]:
    """µs of CPU per reading for each process and their sum (`total`)."""
    out = {name: seconds / max(readings, 1) * 1e6 for name, seconds in cpu.items()}
    out["total"] = sum(cpu.values()) / max(readings, 1) * 1e6
    return out
