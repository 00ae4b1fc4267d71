"""Field-bus drivers, one package each, registered in one table.

The table maps a profile's `driver` to its Driver (agent.sources.base): its counters,
how to build a device's Source and which shared lines it opens. Importing this
imports no device library; building a source does, so a gateway without pymodbus
can still run serial ASCII devices.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agent.sources import modbus, serial_ascii
from agent.sources.base import (
    CountingSource,
    DeviceError,
    Driver,
    LinkError,
    SharedLine,
    Source,
    SourceReading,
)

if TYPE_CHECKING:
    from agent.catalog import DeviceEntry
    from agent.config import AgentConfig

DRIVERS: dict[str, Driver] = {
    "modbus": modbus.DRIVER,
    "serial_ascii": serial_ascii.DRIVER,
}


def driver_of(entry: DeviceEntry) -> Driver:
    return DRIVERS[entry.profile.driver]


def create_source(entry: DeviceEntry, *, bus: SharedLine | None = None) -> Source:
    """The Source for one configured device. Opens nothing: the first `connect()`/`read()` does.

    `bus` is the shared line named by the device's config (see `open_sources`), else None.
    """
    return driver_of(entry).create(entry, bus)


@dataclass(slots=True)
class Sources:
    """Every configured device's Source and the shared lines under them: closed together."""

    by_device: dict[str, Source]
    lines: list[SharedLine]

    async def close(self) -> None:
        # Best effort at shutdown: a driver failing to close must not keep the others open.
        for source in self.by_device.values():
            with contextlib.suppress(Exception):
                await source.close()
        for line in self.lines:
            with contextlib.suppress(Exception):
                line.close()


def open_sources(entries: Iterable[DeviceEntry], config: AgentConfig) -> Sources:
    """Sources of `entries`, each on the shared line its config names. Opens no port yet."""
    entries = list(entries)
    lines: dict[tuple[str, str], SharedLine] = {}
    for driver in {driver_of(e).name: driver_of(e) for e in entries}.values():
        lines.update({(driver.name, key): line for key, line in driver.shared_lines(config).items()})
    by_device = {}
    for entry in entries:
        driver = driver_of(entry)
        line_id = driver.line_of(entry)
        by_device[entry.device.id] = driver.create(entry, lines.get((driver.name, line_id)) if line_id else None)
    return Sources(by_device, list(lines.values()))


SourceFactory = Callable[["DeviceEntry"], Source]

__all__ = [
    "DRIVERS",
    "CountingSource",
    "DeviceError",
    "Driver",
    "LinkError",
    "SharedLine",
    "Source",
    "SourceFactory",
    "SourceReading",
    "Sources",
    "create_source",
    "driver_of",
    "open_sources",
]
