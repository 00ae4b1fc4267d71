"""Field-bus drivers, one module each, registered in one table.

The table maps a profile's `driver` to the class that reads such devices.
"""

from __future__ import annotations

from agent.sources.base import DeviceError, Source, SourceReading

DRIVERS: dict[str, str] = {
    # driver name -> "module:Class"; imported lazily so a gateway without pymodbus can still run serial devices.
    "modbus": "agent.sources.modbus:ModbusSource",
    "serial_ascii": "agent.sources.serial_ascii:SerialAsciiSource",
}

__all__ = ["DRIVERS", "DeviceError", "Source", "SourceReading"]
