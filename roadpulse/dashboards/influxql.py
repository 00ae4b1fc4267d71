"""A small typed InfluxQL query builder and the Grafana InfluxDB dataquery it goes into.

grafana-foundation-sdk ships typed builders for panels, dashboards and alert rules but no
InfluxDB query type, so this module adds one: `InfluxQLQuery` is a `Dataquery` variant (it
round-trips through the SDK's JSON decoding, registered under the `influxdb` datasource
type), and `Select` writes the InfluxQL text so every panel filters on the template
variables the same way and no query is a hand-typed string with a missing quote.

Queries are InfluxQL because it is the one language 1.x, 2.x (through DBRP mappings) and
3.x all answer. The field names are the same whether the collector writes one line per
reading or one line per poll, so the queries work with either data model.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Self

from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import runtime as cogruntime
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models.dashboard import DataSourceRef

DATASOURCE_TYPE = "influxdb"
# The provisioned datasource's uid (deploy/grafana/provisioning/datasources/roadpulse.yaml).
DATASOURCE_UID = "roadpulse-influxdb"
DATASOURCE = DataSourceRef(type_val=DATASOURCE_TYPE, uid=DATASOURCE_UID)
ResultFormat = Literal["time_series", "table"]


def ident(name: str) -> str:
    """A quoted InfluxQL identifier (measurement, field, tag or alias)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def call(function: str, field: str, *args: str | int | float, alias: str | None = None) -> str:
    """`mean("speed")`, `percentile("x", 95) AS "p95"`: a function over one field."""
    inner = ", ".join([ident(field), *(str(a) for a in args)])
    return f"{function}({inner})" + (f" AS {ident(alias)}" if alias else "")


def matches_variable(tag: str, variable: str | None = None) -> str:
    """`"road" =~ /^$road$/`: Grafana writes a multi-value or All selection as a regex group."""
    return f"{ident(tag)} =~ /^${variable or tag}$/"


@dataclass(frozen=True, slots=True)
class Select:
    """One InfluxQL SELECT over `$timeFilter`, filtered on template variables by tag name."""

    # A name, or a /regex/ over measurement names.
    measurement: str
    fields: tuple[str, ...]
    # Tags filtered by the dashboard variable of the same name (`"site" =~ /^$site$/`).
    variables: tuple[str, ...] = ()
    where: tuple[str, ...] = ()
    group_by: tuple[str, ...] = ()
    # None: no GROUP BY time(); "$__interval" or a literal such as "1m".
    interval: str | None = "$__interval"
    fill: str | None = "none"
    limit: int | None = None
    slimit: int | None = None
    time_filter: str = "$timeFilter"

    def __str__(self) -> str:
        conditions = [*(matches_variable(v) for v in self.variables), *self.where, self.time_filter]
        source = self.measurement if self.measurement.startswith("/") else ident(self.measurement)
        text = f"SELECT {', '.join(self.fields)} FROM {source} WHERE {' AND '.join(conditions)}"
        groups = ([f"time({self.interval})"] if self.interval else []) + [ident(t) for t in self.group_by]
        if groups:
            text += " GROUP BY " + ", ".join(groups)
            if self.fill and self.interval:
                text += f" fill({self.fill})"
        if self.limit is not None:
            text += f" LIMIT {self.limit}"
        if self.slimit is not None:
            text += f" SLIMIT {self.slimit}"
        return text


class InfluxQLQuery(cogvariants.Dataquery):
    """The JSON Grafana's InfluxDB datasource keeps per target, for a raw InfluxQL query."""

    def __init__(self, ref_id: str = "A", query: str = "", result_format: ResultFormat = "time_series",
                 alias: str | None = None, hide: bool = False) -> None:
        self.ref_id = ref_id
        self.query = query
        self.result_format = result_format
        self.alias = alias
        self.hide = hide

    def to_json(self) -> dict[str, object]:
        payload: dict[str, object] = {
            "refId": self.ref_id,
            "datasource": {"type": DATASOURCE_TYPE, "uid": DATASOURCE_UID},
            "query": self.query,
            "rawQuery": True,
            "resultFormat": self.result_format,
        }
        if self.alias:
            payload["alias"] = self.alias
        if self.hide:
            payload["hide"] = True
        return payload

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Self:
        if data.get("rawQuery") is not True or not isinstance(data.get("query"), str):
            raise ValueError(f"target {data.get('refId')!r}: only raw InfluxQL targets are built here")
        if data.get("resultFormat") not in ("time_series", "table"):
            raise ValueError(f"target {data.get('refId')!r}: resultFormat {data.get('resultFormat')!r}")
        return cls(str(data.get("refId", "A")), data["query"], data["resultFormat"], data.get("alias"),
                   bool(data.get("hide", False)))


class InfluxQL(cogbuilder.Builder[InfluxQLQuery]):
    """Builder of an `InfluxQLQuery`, for `.with_target(...)` of any SDK panel builder."""

    def __init__(self, query: Select | str, *, ref_id: str = "A", result_format: ResultFormat = "time_series",
                 alias: str | None = None) -> None:
        self._internal = InfluxQLQuery(ref_id, str(query), result_format, alias)

    def build(self) -> InfluxQLQuery:
        return self._internal


cogruntime.register_dataquery_variant(
    cogruntime.DataqueryConfig(identifier=DATASOURCE_TYPE, from_json_hook=InfluxQLQuery.from_json)
)
