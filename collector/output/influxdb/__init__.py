"""The InfluxDB output: line protocol (compile per birth, format per message, the C loop), HTTP
writes to the v1 `/write` or v2 `/api/v2/write` API, and partial writes read line by line."""

from __future__ import annotations

from typing import Any

from collector.body import normalize_body
from collector.output.base import WriteResult
from collector.output.influxdb.compile import CompiledBirth, build_table, templates
from collector.output.influxdb.format import data_lines
from collector.output.influxdb.refusals import write_resolving
from collector.output.influxdb.writer import InfluxWriter, WriteTarget
from roadpulse.wire import Birth


class LineProtocol:
    """InfluxDB line protocol, a line per series and time: the format every output here takes."""

    def compile(self, birth: Birth, *, health: bool = False) -> CompiledBirth:
        table = build_table(birth, health=health)
        return CompiledBirth(table, templates(table))

    def format(self, compiled: Any, flat: list[Any], base: int, qualities: dict[Any, Any],
               flags: int) -> tuple[str, int]:
        birth: CompiledBirth = compiled
        return data_lines(flat, base, qualities, flags, birth.table, compiled=birth.templates)


LINE_PROTOCOL = LineProtocol()


class InfluxOutput:
    """One InfluxDB (or anything that answers like one), over one keep-alive connection."""

    def __init__(self, target: WriteTarget) -> None:
        self._target = target
        self._writer = InfluxWriter(target)

    async def connect(self) -> None:
        """Nothing to open ahead: the connection is made by the first write (and again after a failure)."""

    async def write(self, batch: str | bytes) -> WriteResult:
        result = WriteResult()
        if isinstance(batch, bytes):
            await write_resolving(self._writer, None, result.refusals, result.seconds.append,
                                  body=normalize_body(batch, self._target.gzip))
        else:
            await write_resolving(self._writer, batch, result.refusals, result.seconds.append)
        return result

    async def close(self) -> None:
        self._writer.close()


__all__ = ["LINE_PROTOCOL", "InfluxOutput", "LineProtocol"]
