"""The health dashboards: devices (last seen, poll errors, quality codes) and the pipeline (agent
queues, collector spool, dead letters, gaps, write latency), from `roadpulse_agent` and
`roadpulse_collector` (docs/data-model.md). Counters are cumulative: rates use
non_negative_difference over the last value of each interval."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dash

from roadpulse.dashboards.influxql import Select, call
from roadpulse.dashboards.panels import board, graph, grid, stat, tag_variable

AGENT = "roadpulse_agent"
COLLECTOR = "roadpulse_collector"
# Measurements of readings (every shipped profile); roadpulse_* are not readings.
READINGS = "/^(traffic|traffic_station|weather|tunnel|bridge|hydrology|city|wim)$/"


def increase(field: str, alias: str | None = None) -> str:
    """Per-interval increase of a cumulative counter (a counter reset counts as no increase)."""
    return f"non_negative_difference(last(\"{field}\"))" + (f' AS "{alias}"' if alias else "")


def devices() -> dash.Dashboard:
    def ag(*fields: str, **kw: object) -> Select:
        return Select(AGENT, fields, ("gateway", "device"), where=("\"device\" != 'agent'",),
                      group_by=("gateway", "device"), **kw)  # type: ignore[arg-type]

    last_seen = ag(call("last", "polls", alias="polls"), call("last", "poll_errors", alias="poll errors"),
                   interval=None)
    quality = Select(READINGS, ("count(/_err$/)",), ("gateway", "device"), group_by=("gateway", "device"),
                     interval=None)
    uncertain = Select(READINGS, ("count(/_q$/)",), ("gateway", "device"), group_by=("gateway", "device"),
                       interval=None)
    return board("roadpulse-devices", "Device health",
                 "Per device: when its agent last reported it, poll errors, and readings stored without a value "
                 "(`<field>_err`) or with a quality flag (`<field>_q`).",
                 [tag_variable("gateway", "Gateway", AGENT), tag_variable("device", "Device", AGENT,
                                                                          where='"gateway" =~ /^$gateway$/')], [
        ("Devices", [
            grid("Last seen (time of the last health report per device)", last_seen, sort_by="Time"),
            graph("Poll errors per interval", ag(increase("poll_errors")), alias="$tag_gateway $tag_device",
                  steps=((None, "green"), (1, "red"))),
            graph("Poll overruns per interval", ag(increase("poll_overruns")), alias="$tag_gateway $tag_device"),
            grid("Readings without a value, by device and field (count of <field>_err)", quality),
            grid("Readings with a quality flag, by device and field (count of <field>_q)", uncertain),
        ]),
    ])


def pipeline() -> dash.Dashboard:
    def gw(*fields: str, **kw: object) -> Select:
        return Select(AGENT, fields, ("gateway",), where=("\"device\" = 'agent'",), group_by=("gateway",),
                      **kw)  # type: ignore[arg-type]

    def col(*fields: str, **kw: object) -> Select:
        return Select(COLLECTOR, fields, ("collector",), group_by=("collector",), **kw)  # type: ignore[arg-type]

    return board("roadpulse-pipeline", "Pipeline health",
                 "Agent queues and evictions, collector spool, dead letters, gaps and duplicates, write latency.",
                 [tag_variable("gateway", "Gateway", AGENT), tag_variable("collector", "Collector", COLLECTOR)], [
        ("Agents", [
            graph("Queued readings", gw(call("last", "queue_readings")), alias="$tag_gateway"),
            graph("Oldest unsent reading", gw(call("max", "oldest_unsent_age_s")), unit="s", alias="$tag_gateway"),
            graph("Evicted and dropped readings per interval",
                  gw(increase("readings_evicted", "evicted"), increase("readings_dropped", "dropped")),
                  alias="$tag_gateway $col", steps=((None, "green"), (1, "red"))),
            graph("Publish latency", gw(call("mean", "publish_latency_ms", alias="mean"),
                                        call("max", "publish_latency_max_ms", alias="max")),
                  unit="ms", alias="$tag_gateway $col"),
        ]),
        ("Collectors", [
            graph("Spool depth", col(call("last", "spool_readings", alias="readings"),
                                     call("last", "spool_depth", alias="batches")), alias="$tag_collector $col"),
            graph("Spool age", col(call("max", "spool_age_s")), unit="s", alias="$tag_collector"),
            graph("Dead letters, rejected and bad values per interval",
                  col(increase("dead_letters", "dead letters"), increase("readings_rejected", "rejected"),
                      increase("bad_values", "bad values")),
                  alias="$tag_collector $col", steps=((None, "green"), (1, "red"))),
            graph("Gaps and duplicates per interval",
                  col(increase("gaps", "gaps"), increase("duplicates", "duplicates")), alias="$tag_collector $col"),
            graph("Write latency (last batch)", col(call("mean", "last_write_seconds", alias="mean"),
                                                    call("max", "last_write_seconds", alias="max")),
                  unit="s", alias="$tag_collector $col"),
            graph("Readings written per second",
                  col('non_negative_derivative(last("readings_written"), 1s)'), unit="ops", alias="$tag_collector"),
            stat("InfluxDB and MQTT up", col(call("last", "influx_up", alias="influx"),
                                             call("last", "mqtt_connected", alias="mqtt"), interval=None,
                                             time_filter="time > now() - 5m"),
                 mapping={"true": ("up", "green"), "false": ("down", "red")}, alias="$tag_collector $col", w=12),
        ]),
    ])
