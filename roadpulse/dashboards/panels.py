"""Panel and variable helpers over grafana-foundation-sdk: one look for every roadpulse dashboard.

Each helper takes `Select` queries (or InfluxQL builders) and returns an SDK builder, so a
dashboard module reads as a list of what is shown, not as Grafana JSON.
"""

from __future__ import annotations

from collections.abc import Sequence

from grafana_foundation_sdk.builders import common, statetimeline, table, timeseries
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import stat as stat_panel
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.cog import variants as cogvariants
from grafana_foundation_sdk.models import common as common_model
from grafana_foundation_sdk.models import dashboard as model

from roadpulse.dashboards.influxql import DATASOURCE, InfluxQL, ResultFormat, Select

Query = Select | InfluxQL
Steps = Sequence[tuple[float | None, str]]

# Speed colours (km/h): the congestion scale of the road dashboards.
CONGESTION: Steps = ((None, "dark-red"), (20, "red"), (40, "orange"), (60, "yellow"), (80, "green"))
# Fog bands (m): < 50, 50-100, 100-200, 200-500, >= 500 (DOMAIN: Art. 81 speed limits).
VISIBILITY: Steps = ((None, "dark-red"), (50, "red"), (100, "orange"), (200, "yellow"), (500, "green"))


def thresholds(steps: Steps) -> dash.ThresholdsConfig:
    return dash.ThresholdsConfig().mode(model.ThresholdsMode.ABSOLUTE).steps(
        [model.Threshold(value=v, color=c) for v, c in steps])


def by_thresholds() -> dash.FieldColor:
    return dash.FieldColor().mode(model.FieldColorModeId.THRESHOLDS)


def _targets(queries: Sequence[Query], result_format: ResultFormat = "time_series",
             alias: str | None = None) -> list[cogbuilder.Builder[cogvariants.Dataquery]]:
    out: list[cogbuilder.Builder[cogvariants.Dataquery]] = []
    for i, q in enumerate(queries):
        if isinstance(q, InfluxQL):
            out.append(q)
        else:
            out.append(InfluxQL(q, ref_id=chr(ord("A") + i), result_format=result_format, alias=alias))
    return out


def graph(title: str, *queries: Query, unit: str = "", alias: str | None = None, steps: Steps | None = None,
          description: str = "", w: int = 12, h: int = 8) -> timeseries.Panel:
    """A time series panel; with `steps`, lines are coloured and the bands drawn from them."""
    panel = (timeseries.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(_targets(queries, alias=alias))
             .unit(unit).span(w).height(h).span_nulls(True))
    if steps is not None:
        panel = (panel.thresholds(thresholds(steps)).color_scheme(by_thresholds())
                 .thresholds_style(common.GraphThresholdsStyleConfig().mode(
                     common_model.GraphThresholdsStyleMode.LINE_AND_AREA)))
    return panel


def value_names(mapping: dict[str, tuple[str, str]]) -> list[model.ValueMapping]:
    """Values (enum codes, `true`/`false`) shown by name and colour."""
    return [model.ValueMap(options={value: model.ValueMappingResult(text=text, color=color, index=i)
                                    for i, (value, (text, color)) in enumerate(mapping.items())})]


def stat(title: str, *queries: Query, unit: str = "", alias: str | None = None, steps: Steps | None = None,
         mapping: dict[str, tuple[str, str]] | None = None, description: str = "", w: int = 6,
         h: int = 6) -> stat_panel.Panel:
    panel = (stat_panel.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(_targets(queries, alias=alias))
             .unit(unit).span(w).height(h))
    if steps is not None:
        panel = panel.thresholds(thresholds(steps)).color_scheme(by_thresholds())
    if mapping is not None:
        panel = panel.mappings(value_names(mapping))
    return panel


def grid(title: str, *queries: Query, unit: str = "", steps: Steps | None = None, sort_by: str | None = None,
         descending: bool = False, description: str = "", w: int = 12, h: int = 8) -> table.Panel:
    """A table of InfluxQL rows (resultFormat table), optionally sorted by one column."""
    panel = (table.Panel().title(title).description(description).datasource(DATASOURCE)
             .targets(_targets(queries, "table"))
             .unit(unit).span(w).height(h))
    if steps is not None:
        panel = panel.thresholds(thresholds(steps)).color_scheme(by_thresholds())
    if sort_by is not None:
        panel = panel.with_transformation(model.DataTransformerConfig(
            id_val="sortBy", options={"sort": [{"field": sort_by, "desc": descending}]}))
    return panel


def states(title: str, *queries: Query, mapping: dict[int, tuple[str, str]], alias: str | None = None,
           description: str = "", w: int = 12, h: int = 8) -> statetimeline.Panel:
    """A state timeline of an enum field, each code shown by name and colour."""
    mappings = value_names({str(code): named for code, named in sorted(mapping.items())})
    return (statetimeline.Panel().title(title).description(description).datasource(DATASOURCE)
            .targets(_targets(queries, alias=alias))
            .mappings(mappings).span(w).height(h))


def tag_variable(name: str, label: str, measurement: str | None, *, where: str = "") -> dash.QueryVariable:
    """A multi-value variable of one tag's values, with All matching every series (even untagged)."""
    query = "SHOW TAG VALUES" + (f' FROM "{measurement}"' if measurement else "") + f' WITH KEY = "{name}"'
    if where:
        query += f" WHERE {where}"
    return (dash.QueryVariable(name).label(label).datasource(DATASOURCE).query(query)
            .multi(True).include_all(True).all_value(".*")
            .current(model.VariableOption(selected=True, text="All", value="$__all"))
            .refresh(model.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(model.VariableSort.ALPHABETICAL_ASC))


def board(uid: str, title: str, description: str, variables: Sequence[dash.QueryVariable],
          rows: Sequence[tuple[str, Sequence[cogbuilder.Builder[model.Panel]]]]) -> dash.Dashboard:
    """A dashboard: rows of panels laid out left to right, 24 columns wide."""
    board = (dash.Dashboard(title).uid(uid).description(description).tags(["roadpulse", "generated"])
             .time("now-6h", "now").refresh("30s").timezone("browser").editable()
             .tooltip(model.DashboardCursorSync.CROSSHAIR))
    for variable in variables:
        board = board.with_variable(variable)
    for row_title, panels in rows:
        board = board.with_row(dash.Row(row_title))
        for panel in panels:
            board = board.with_panel(panel)
    return board
