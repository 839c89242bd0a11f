"""Grafana dashboard JSON from the catalogue, built with grafana-foundation-sdk.

Who calls this: `python -m gpupool.dashboards` (the `make dashboards` target and the
`--check` in `make lint`). Every panel reads the Prometheus data source the `datasource`
variable picks, so the JSON imports into any Grafana with a Prometheus that scrapes the
operator and the node agents.
"""

from __future__ import annotations

import json

from grafana_foundation_sdk.builders import common as common_builders
from grafana_foundation_sdk.builders import dashboard as dash
from grafana_foundation_sdk.builders import prometheus, timeseries
from grafana_foundation_sdk.cog.encoder import JSONEncoder
from grafana_foundation_sdk.models import common
from grafana_foundation_sdk.models.dashboard import DataSourceRef, VariableOption, VariableRefresh, VariableSort

from gpupool.dashboards.catalogue import Dashboard, Panel, Variable

DATASOURCE = DataSourceRef(type_val="prometheus", uid="${datasource}")
TAGS = ["gpupool"]


def datasource_variable() -> dash.DatasourceVariable:
    return dash.DatasourceVariable("datasource").label("Prometheus").type("prometheus")


def template_variable(variable: Variable) -> dash.QueryVariable | dash.CustomVariable:
    if not variable.metric:
        first = variable.options[0]
        return (
            dash.CustomVariable(variable.name)
            .label(variable.label)
            .values(variable.query)
            .current(VariableOption(selected=True, text=first, value=first))
        )
    return (
        dash.QueryVariable(variable.name)
        .label(variable.label)
        .datasource(DATASOURCE)
        .query(variable.query)
        .refresh(VariableRefresh.ON_TIME_RANGE_CHANGED)
        .sort(VariableSort.ALPHABETICAL_ASC)
        .multi(True)
        .include_all(True)
        .all_value(".*")
        .current(VariableOption(selected=True, text="All", value="$__all"))
    )


def panel(spec: Panel, panel_id: int) -> timeseries.Panel:
    built = (
        timeseries.Panel()
        .id(panel_id)
        .title(spec.title)
        .description(spec.description)
        .datasource(DATASOURCE)
        .unit(str(spec.unit))
        .min(0)
        .span(12)
        .height(8)
        .fill_opacity(10)
        .legend(
            common_builders.VizLegendOptions()
            .show_legend(True)
            .display_mode(common.LegendDisplayMode.LIST)
            .placement(common.LegendPlacement.BOTTOM)
        )
    )
    for index, query in enumerate(spec.queries):
        built = built.with_target(
            prometheus.Dataquery()
            .datasource(DATASOURCE)
            .expr(query.expr)
            .legend_format(query.legend)
            .range()
            .ref_id(chr(ord("A") + index))
        )
    return built


def build(spec: Dashboard) -> dash.Dashboard:
    board = (
        dash.Dashboard(spec.title)
        .uid(spec.uid)
        .description(spec.description)
        .tags(TAGS)
        .time("now-6h", "now")
        .refresh("1m")
        .timezone("browser")
        .with_variable(datasource_variable())
    )
    for variable in spec.variables:
        board = board.with_variable(template_variable(variable))
    next_id = 1
    for row in spec.rows:
        board = board.with_row(dash.Row(row.title).id(next_id))
        next_id += 1
        for item in row.panels:
            board = board.with_panel(panel(item, next_id))
            next_id += 1
    return board


def to_json(spec: Dashboard) -> str:
    """The dashboard as Grafana's JSON model, with stable formatting (one file per dashboard)."""
    return json.dumps(build(spec).build(), cls=JSONEncoder, indent=2, sort_keys=True) + "\n"
