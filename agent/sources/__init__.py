"""Field-bus drivers, one module each, registered in one table.

The table maps a profile's `driver` to the function that builds a Source for a
configured device. Driver modules are imported lazily, so a gateway without
pymodbus can still run serial ASCII devices.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from agent.sources.base import (
    MODBUS_COUNTERS,
    SERIAL_ASCII_COUNTERS,
    CountingSource,
    DeviceError,
    LinkError,
    Source,
    SourceReading,
)

if TYPE_CHECKING:
    from agent.bus import SerialBus
    from agent.catalog import DeviceEntry

DRIVERS: dict[str, str] = {
    # driver name -> "module:function(device, profile, bus) -> Source"
    "modbus": "agent.sources.modbus:modbus_source_for",
    "serial_ascii": "agent.sources.serial_ascii:serial_source_for",
}

# driver name -> the keys of DeviceStats.driver_counters for its devices (all present from the start).
DRIVER_COUNTERS: dict[str, tuple[str, ...]] = {
    "modbus": MODBUS_COUNTERS,
    "serial_ascii": SERIAL_ASCII_COUNTERS,
}


def create_source(entry: DeviceEntry, *, bus: SerialBus | None = None) -> Source:
    """The Source for one configured device. Opens nothing: the first `connect()`/`read()` does.

    `bus` is the SerialBus named by `entry.device.bus` (see agent.bus.build_buses), else None.
    """
    module_name, _, function = DRIVERS[entry.profile.driver].partition(":")
    factory: Any = getattr(importlib.import_module(module_name), function)
    source: Source = factory(entry.device, entry.profile, bus)
    return source


__all__ = [
    "DRIVERS", "DRIVER_COUNTERS", "CountingSource", "DeviceError", "LinkError", "Source", "SourceReading",
    "create_source",
]
