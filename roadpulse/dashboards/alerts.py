"""Grafana alert rules, built with the SDK and written in Grafana's alerting file-provisioning format.

Thresholds are the field facts operators alert on (fog < 200 m; tunnel CO 75 ppm peak and
50 ppm as a 1-h mean; each gauging point's own warning level; a gateway silent for 3 health
intervals or whose death arrived; a device whose every poll fails for 5 minutes). Every rule
is a chain Grafana evaluates server-side: InfluxQL queries, a reduce per series, then math or a
threshold; a rule fires per series (per gateway, device or site), so a notification names it.

`Timing` holds the windows, so the live test can evaluate the same rules on a run of seconds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from grafana_foundation_sdk.builders import alerting, expr
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import alerting as alerting_model
from grafana_foundation_sdk.models.dashboard import DataSourceRef

from roadpulse.dashboards.influxql import DATASOURCE_UID, InfluxQL, Select, call
from roadpulse.dashboards.roads import Station, load_stations

FOLDER = "roadpulse"
EXPR = DataSourceRef(type_val="__expr__", uid="__expr__")
Reducer = Literal["sum", "mean", "min", "max", "count", "last", "median"]
Op = Literal["gt", "lt"]


@dataclass(frozen=True, slots=True)
class Timing:
    """Windows of the rules, in seconds. Defaults are the production ones (agent health every 60 s)."""

    health_interval_s: float = 60.0
    silent_intervals: int = 3
    device_down_s: float = 300.0
    growth_window_s: float = 600.0
    spool_age_s: float = 300.0
    counter_bucket_s: float = 60.0
    window_s: float = 600.0
    evaluate_every: str = "1m"
    pending: str = "1m"


def _d(seconds: float) -> str:
    """An InfluxQL duration: whole seconds as `60s`, else milliseconds."""
    return f"{seconds:g}s" if float(seconds).is_integer() else f"{round(seconds * 1000)}ms"


def query(ref: str, select: Select, range_s: float) -> alerting.Query:
    return (alerting.Query(ref).datasource_uid(DATASOURCE_UID)
            .relative_time_range(alerting_model.RelativeTimeRange(from_val=round(range_s), to=0))
            .model(InfluxQL(select, ref_id=ref)))


def _expr(ref: str, model: cogbuilder.Builder[cogvariants.Dataquery]) -> alerting.Query:
    return alerting.Query(ref).datasource_uid("__expr__").model(model)


def reduce(ref: str, of: str, reducer: Reducer) -> alerting.Query:
    return _expr(ref, expr.TypeReduce().ref_id(ref).datasource(EXPR).expression(of).reducer(reducer)
                 .settings(expr.ExprTypeReduceSettings().mode("dropNN")))


def math(ref: str, expression: str) -> alerting.Query:
    return _expr(ref, expr.TypeMath().ref_id(ref).datasource(EXPR).expression(expression))


def threshold(ref: str, of: str, op: Op, value: float) -> alerting.Query:
    evaluator = expr.ExprTypeThresholdConditionsEvaluator().type(op).params([value])
    return _expr(ref, expr.TypeThreshold().ref_id(ref).datasource(EXPR).expression(of)
                 .conditions([expr.ExprTypeThresholdConditions().evaluator(evaluator)]))


def rule(uid: str, title: str, queries: Sequence[alerting.Query], *, summary: str, severity: str,
         pending: str, condition: str = "C") -> alerting.Rule:
    return (alerting.Rule(title).uid(uid).condition(condition).queries(list(queries)).for_val(pending)
            .no_data_state("OK").exec_err_state("Error")
            .labels({"severity": severity, "team": "roadpulse"})
            .annotations({"summary": summary}))


def field_rules(t: Timing) -> list[alerting.Rule]:
    recent = t.window_s
    fog = Select("weather", (call("mean", "visibility"),), where=(), group_by=("road", "site", "device"),
                 interval=_d(t.counter_bucket_s))
    co_peak = Select("tunnel", (call("max", "co_ppm"),), group_by=("site", "device"), interval=None)
    co_hour = Select("tunnel", (call("mean", "co_ppm"),), group_by=("site", "device"), interval=None)
    rules = [
        rule("roadpulse-visibility-200m", "Visibility under 200 m",
             [query("A", fog, recent), reduce("B", "A", "last"), threshold("C", "B", "lt", 200)],
             summary="Fog at {{ $labels.site }} {{ $labels.device }}: visibility {{ $values.B }} m "
                     "(< 200 m: 60 km/h limit; < 100 m: 40 km/h; < 50 m: 20 km/h and leave at the next exit)",
             severity="critical", pending=t.pending),
        rule("roadpulse-tunnel-co", "Tunnel CO over its limit",
             [query("A", co_peak, recent), query("B", co_hour, 3600), reduce("RA", "A", "last"),
              reduce("RB", "B", "last"), math("C", "$RA > 75 || $RB > 50")],
             summary="CO in {{ $labels.device }}: peak {{ $values.RA }} ppm (limit 75), "
                     "1-h mean {{ $values.RB }} ppm (limit 50)",
             severity="critical", pending="0s"),
    ]
    rules += [water_rule(s, t) for s in load_stations()]
    incident = Select("incident", (call("last", "active"),), where=("\"algorithm\" = 'roadpulse'",),
                      group_by=("road", "direction", "segment"), interval=None)
    rules.append(rule("roadpulse-new-incident", "New incident",
                      [query("A", incident, recent), reduce("B", "A", "last"), threshold("C", "B", "gt", 0)],
                      summary="Incident on {{ $labels.road }} {{ $labels.direction }} segment {{ $labels.segment }}",
                      severity="critical", pending="0s"))
    return rules


def water_rule(station: Station, t: Timing) -> alerting.Rule:
    where = [f"\"device\" = '{station.device}'"] + ([f"\"gateway\" = '{station.gateway}'"] if station.gateway else [])
    level = Select("hydrology", (call("max", "water_level"),), where=tuple(where), group_by=("site", "device"),
                   interval=None)
    return rule(f"roadpulse-water-{station.device}", f"Water level over warning: {station.name or station.device}",
                [query("A", level, t.window_s), reduce("B", "A", "last"), threshold("C", "B", "gt", station.warning_m)],
                summary=f"Water at {station.name or station.device}: {{{{ $values.B }}}} m, warning level "
                        f"{station.warning_m} m, guaranteed level {station.guaranteed_m} m",
                severity="critical", pending="0s")


def pipeline_rules(t: Timing) -> list[alerting.Rule]:
    silent = t.silent_intervals * t.health_interval_s
    # Four buckets of silent/3: their mean count is 0 only if nothing came for at least `silent`.
    # fill(0) writes the empty buckets of a gateway seen earlier in the hour, so silence is a 0, not a gap.
    beats = Select("roadpulse_agent", ('moving_average(count("queue_readings"), 4)',),
                   where=("\"device\" = 'agent'",), group_by=("gateway",), interval=_d(silent / 3), fill="0")
    deaths = Select("roadpulse_collector", ('non_negative_difference(last("deaths"))',), group_by=("collector",),
                    interval=_d(t.counter_bucket_s))
    errors = Select("roadpulse_agent", (call("spread", "poll_errors"),), where=("\"device\" != 'agent'",),
                    group_by=("gateway", "device"), interval=None)
    polls = Select("roadpulse_agent", (call("spread", "polls"),), where=("\"device\" != 'agent'",),
                   group_by=("gateway", "device"), interval=None)
    growth = Select("roadpulse_agent", ('derivative(last("queue_readings"), 1s)',), where=("\"device\" = 'agent'",),
                    group_by=("gateway",), interval=_d(2 * t.health_interval_s))
    backlog = Select("roadpulse_agent", (call("last", "oldest_unsent_age_s"),), where=("\"device\" = 'agent'",),
                     group_by=("gateway",), interval=None)
    evicted = Select("roadpulse_agent", ('non_negative_difference(last("readings_evicted"))',),
                     where=("\"device\" = 'agent'",), group_by=("gateway",), interval=_d(t.counter_bucket_s))
    spool_age = Select("roadpulse_collector", (call("max", "spool_age_s"),), group_by=("collector",), interval=None)
    spool_full = Select("roadpulse_collector", (call("max", "spool_full"),), group_by=("collector",), interval=None)
    dead = Select("roadpulse_collector", ('non_negative_difference(last("dead_letters"))',), group_by=("collector",),
                  interval=_d(t.counter_bucket_s))
    return [
        rule("roadpulse-gateway-silent", "Gateway offline: silent",
             [query("A", beats, max(3600.0, 4 * silent)), reduce("B", "A", "last"), threshold("C", "B", "lt", 0.01)],
             summary=f"Gateway {{{{ $labels.gateway }}}} sent no health report for {silent:g} s "
                     f"({t.silent_intervals} intervals)", severity="critical", pending="0s"),
        rule("roadpulse-gateway-death", "Gateway offline: death received",
             [query("A", deaths, t.window_s), reduce("B", "A", "sum"), threshold("C", "B", "gt", 0)],
             summary="Collector {{ $labels.collector }} received {{ $values.B }} gateway death message(s); "
                     "see 'Gateway offline: silent' and the collector log for which gateway",
             severity="warning", pending="0s"),
        rule("roadpulse-device-down", "Device down",
             [query("A", errors, t.device_down_s), query("B", polls, t.device_down_s), reduce("RA", "A", "last"),
              reduce("RB", "B", "last"), math("C", "$RB > 0 && $RA >= $RB")],
             summary=f"{{{{ $labels.device }}}} on {{{{ $labels.gateway }}}}: every poll failed for "
                     f"{t.device_down_s:g} s", severity="warning", pending="0s"),
        # Growing, or grown to its cap: a full queue evicts its oldest readings and stops growing,
        # so growth alone would resolve the alert just as readings start to be lost.
        rule("roadpulse-agent-backlog", "Agent queue backlog growing",
             [query("A", growth, t.growth_window_s), query("B", backlog, t.growth_window_s),
              query("E", evicted, t.growth_window_s), reduce("RA", "A", "min"), reduce("RB", "B", "last"),
              reduce("RE", "E", "sum"), math("C", f"($RA > 0 && $RB > {2 * t.health_interval_s:g}) || $RE > 0")],
             summary="Queue of {{ $labels.gateway }}: grew in every interval for "
                     f"{t.growth_window_s:g} s (min {{{{ $values.RA }}}} readings/s), oldest unsent reading "
                     f"{{{{ $values.RB }}}} s, {{{{ $values.RE }}}} reading(s) evicted (queue full)",
             severity="warning", pending="0s"),
        rule("roadpulse-spool-filling", "Collector spool filling",
             [query("A", spool_age, t.window_s), query("B", spool_full, t.window_s), reduce("RA", "A", "last"),
              reduce("RB", "B", "last"), math("C", f"$RA > {t.spool_age_s:g} || $RB > 0")],
             summary="Collector {{ $labels.collector }} spools: oldest batch {{ $values.RA }} s, full "
                     "{{ $values.RB }} (InfluxDB down or too slow)", severity="critical", pending="0s"),
        rule("roadpulse-dead-letters", "Dead letters rising",
             [query("A", dead, t.window_s), reduce("B", "A", "sum"), threshold("C", "B", "gt", 0)],
             summary="Collector {{ $labels.collector }} dead-lettered {{ $values.B }} item(s)",
             severity="warning", pending="0s"),
    ]


def groups(t: Timing | None = None) -> dict[str, list[alerting_model.Rule]]:
    t = t or Timing()
    return {"roadpulse-field": [r.build() for r in field_rules(t)],
            "roadpulse-pipeline": [r.build() for r in pipeline_rules(t)]}


def provisioning(t: Timing | None = None) -> dict[str, object]:
    """The alerting provisioning file (apiVersion 1): groups in folder `roadpulse`, org 1."""
    t = t or Timing()
    kept = ("uid", "title", "condition", "data", "noDataState", "execErrState", "for", "annotations", "labels")
    out = []
    for name, rules in groups(t).items():
        out.append({"orgId": 1, "name": name, "folder": FOLDER, "interval": t.evaluate_every,
                    "rules": [{k: v for k, v in _plain(r).items() if k in kept} for r in rules]})
    return {"apiVersion": 1, "groups": out}


def _plain(rule_model: alerting_model.Rule) -> dict[str, object]:
    import json

    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    plain: dict[str, object] = json.loads(json.dumps(rule_model, cls=JSONEncoder))
    return plain
