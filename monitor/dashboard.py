"""The per-app dashboard, for datasette-dashboards: headline figures at a time, the rank
history, a world map of ranks and the stretches at No. 1.

Every script, stylesheet and shape it needs is served by this Datasette: the plugin
bundles Vega, and the map's shapes are in ``monitor/static``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor import queries
from monitor.reference import iso_numeric
from monitor.sources import CHARTS, DEVICES, STORES

SLUG = "app"
STATIC = Path(__file__).parent / "static"
STATIC_URL = "/-/monitor-static/"  # served by monitor.datasette_plugin
SHAPES_URL = STATIC_URL + "countries-110m.json"
VEGA_LITE_SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json"  # an id, never fetched

# SVG, so that marks are elements a browser test can count; no link to the online editor.
_EMBED = {
    "renderer": "svg",
    "actions": {"export": True, "source": False, "compiled": False, "editor": False},
}
_BANDS = {
    "No. 1": "#08306b",
    "2 to 10": "#2171b5",
    "11 to 50": "#6baed6",
    "51 or lower": "#c6dbef",
    "observed, not ranked": "#fff2b3",
    "not observed": "#969696",
}
_LAND = "#e5e5e5"
_HTML_ESCAPES = (("&", "&amp;"), ("<", "&lt;"), (">", "&gt;"), ('"', "&quot;"), ("'", "&#39;"))


def dashboards(database: str) -> dict[str, Any]:
    """Return the datasette-dashboards configuration for the database named database."""
    return {
        SLUG: {
            "title": "An app in the charts",
            "description": (
                "Where one app ranks at a time, by country, in one overall chart. A country "
                "is observed at a time when its chart was fetched successfully at most 6 "
                "hours before; a country not observed is never counted as not ranked. "
                "App is the store's id, e.g. 6737597349; a blank time means the end of the latest "
                "complete sweep (UTC)."
            ),
            "layout": [
                ["names", "names", "names", "number_one", "top_10", "observed"],
                ["map", "map", "map", "map", "map", "map"],
                ["history", "history", "history", "spans", "spans", "spans"],
            ],
            "filters": _filters(),
            "charts": _charts(database),
        }
    }


def _filters() -> dict[str, Any]:
    return {
        "app": {"name": "App (store id)", "type": "text"},
        "at": {"name": "At (UTC; blank: the latest sweep)", "type": "text"},
        "chart": {
            "name": "Chart",
            "type": "select",
            "options": list(CHARTS),
            "default": "top-free",
        },
        "device": {
            "name": f"Device ({', '.join(s.title for s in STORES.values() if s.devices)})",
            "type": "select",
            "options": list(DEVICES),
            "default": DEVICES[0],
        },
        "countries": {"name": "History: countries (us,gb; blank: the 5 best)", "type": "text"},
        "days": {"name": "History: days", "type": "number", "min": 1, "default": 7},
    }


def _charts(database: str) -> dict[str, Any]:
    def count(title: str, where: str) -> dict[str, Any]:
        return {
            "title": title,
            "db": database,
            "query": _sql(f"SELECT COUNT(*) AS countries FROM ({queries.CLAIM_IN_CHART}) {where}"),
            "library": "metric",
            "display": {"field": "countries"},
        }

    return {
        "names": {
            "title": "Names shown, up to the time",
            "db": database,
            "query": _sql(_NAMES),
            "library": "table",
        },
        "number_one": count("Countries at No. 1", f"WHERE {queries.NUMBER_ONE.holds('rank')}"),
        "top_10": count("Countries in the top 10", f"WHERE {queries.TOP_10.holds('rank')}"),
        "observed": count("Countries observed", "WHERE coverage = 'observed'"),
        "history": {
            "title": "Rank over time, one line per country",
            "db": database,
            "query": _sql(queries.RANK_HISTORY),
            "library": "vega-lite",
            "display": _history_spec(),
        },
        "map": {
            "title": "Rank by country at the time",
            "db": database,
            "query": _sql(_MAP),
            "library": "vega-lite",
            "display": _map_spec(),
        },
        "spans": {
            "title": "Stretches at No. 1, up to the time",
            "db": database,
            "query": _sql(_SPANS),
            "library": "table",
        },
    }


def _html(column: str) -> str:
    """Return SQL that HTML-escapes a text column.

    The plugin's table charts put every value into the page as HTML, so any text that
    can come from a store (an app's name) must arrive escaped.
    """
    sql = column  # NULL stays NULL, which the plugin shows as an empty cell
    for char, entity in _HTML_ESCAPES:
        quoted = char.replace("'", "''")
        sql = f"replace({sql}, '{quoted}', '{entity}')"
    return sql


def _sql(sql: str) -> str:
    # The charts' SQL travels in the URL of each data request: keep it short. Safe as
    # long as queries hold no "--" comments and no runs of spaces inside quotes.
    return " ".join(queries.with_max_age(sql).split())


# A LEFT JOIN from one row keeps a row when the app has none: the plugin's table
# chart fails on an empty result.
_NAMES = f"""SELECT coalesce({_html("n.name")}, 'No app has this id') AS "Name",
  {_html("n.developer")} AS "Developer", {_html("n.store")} AS "Store",
  {_html("n.first_seen")} AS "First seen", coalesce(n.charts, '') AS "Charts ranked in"
FROM (SELECT 1) LEFT JOIN ({queries.APP_NAMES}) n
ORDER BY n.first_seen, n.name"""

_SPANS = f"""SELECT coalesce({_html("s.country")}, 'None') AS "Country",
  {_html("s.first_at")} AS "First at No. 1", {_html("s.last_at")} AS "Last at No. 1",
  coalesce(s.hours, '') AS "Hours", CASE WHEN s.now THEN 'yes' ELSE '' END AS "Still No. 1"
FROM (SELECT 1) LEFT JOIN ({queries.NUMBER_ONE_SPANS}) s
ORDER BY s.now DESC, s.first_at DESC, s.country"""

_MAP = f"""SELECT country, rank, coverage, observed_at,
  CASE WHEN coverage != 'observed' THEN 'not observed'
       WHEN rank IS NULL THEN 'observed, not ranked' WHEN rank = 1 THEN 'No. 1'
       WHEN rank <= 10 THEN '2 to 10' WHEN rank <= 50 THEN '11 to 50'
       ELSE '51 or lower' END AS band
FROM ({queries.CLAIM_IN_CHART})"""


def _history_spec() -> dict[str, Any]:
    time = {
        "field": "fetched_at",
        "type": "temporal",
        "scale": {"type": "utc"},
        "axis": {"format": "%d %b %H:%M"},
        "title": "Observed at (UTC)",
    }
    ranks = {
        "transform": [{"filter": "datum.kind === 'rank'"}],
        "mark": {"type": "line", "point": {"size": 12}},
        "encoding": {
            "x": time,
            "y": {
                "field": "rank",
                "type": "quantitative",
                "scale": {"reverse": True, "zero": False, "domainMin": 1},
                "axis": {"tickMinStep": 1},
                "title": "Rank",
            },
            "color": {"field": "country", "type": "nominal", "title": "Country"},
            # A new segment where the app left the chart or the country went unobserved.
            "detail": {"field": "segment", "type": "nominal"},
            "tooltip": [
                {"field": "country", "title": "Country"},
                {"field": "rank", "title": "Rank"},
                {"field": "fetched_at", "title": "Observed at (UTC)"},
            ],
        },
    }
    # Notes (monitor note) as dashed rules at their time, their text beside them, and the
    # instant answered as a light rule. That row is always there: a layer with no data
    # gives its time scale an infinite extent, which Vega warns of.
    at = "datum.kind === 'at'"
    notes: dict[str, Any] = {
        "transform": [{"filter": "datum.kind !== 'rank'"}],
        "encoding": {
            "x": time,
            "tooltip": [
                {"field": "note", "title": "Note"},
                {"field": "fetched_at", "title": "At (UTC)"},
                {"field": "url", "title": "More"},
            ],
        },
        "layer": [
            {
                "mark": {"type": "rule"},
                "encoding": {
                    "color": {"condition": {"test": at, "value": "#ccc"}, "value": "#666"},
                    "strokeDash": {"condition": {"test": at, "value": [1, 0]}, "value": [4, 3]},
                },
            },
            {
                "mark": {"type": "text", "align": "left", "baseline": "top", "dx": 3, "y": 2},
                "encoding": {"text": {"field": "note", "condition": {"test": at, "value": ""}}},
            },
        ],
    }
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "height": 260,
        "layer": [ranks, notes],
        "usermeta": {"embedOptions": _EMBED},
    }


def _map_spec() -> dict[str, Any]:
    shapes = {"url": SHAPES_URL, "format": {"type": "topojson", "feature": "countries"}}
    # The store's alpha-2 codes reach the shapes' numeric ids through the shipped table.
    codes = [{"code": r["code"], "id": r["numeric"], "name": r["name"]} for r in iso_numeric()]
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "height": 460,
        "projection": {"type": "equalEarth"},
        "layer": [
            # Land underneath, for countries with no chart. Not the countries feature:
            # Vega-Lite 6.4 fails ("Undefined data set name") when a layer's data is also
            # the other layer's lookup source.
            {
                "data": {"url": SHAPES_URL, "format": {"type": "topojson", "feature": "land"}},
                "mark": {"type": "geoshape", "fill": _LAND},
            },
            {
                "transform": [
                    {
                        "lookup": "country",
                        "from": {
                            "data": {"values": codes},
                            "key": "code",
                            "fields": ["id", "name"],
                        },
                    },
                    {"lookup": "id", "from": {"data": shapes, "key": "id"}, "as": "geo"},
                    {"filter": "datum.geo"},
                ],
                "mark": {"type": "geoshape", "stroke": "white", "strokeWidth": 0.5},
                "encoding": {
                    "shape": {"field": "geo", "type": "geojson"},
                    "color": {
                        "field": "band",
                        "type": "nominal",
                        "title": "Rank",
                        "scale": {"domain": list(_BANDS), "range": list(_BANDS.values())},
                    },
                    "tooltip": [
                        {"field": "name", "title": "Country"},
                        {"field": "rank", "title": "Rank"},
                        {"field": "coverage", "title": "Coverage"},
                        {"field": "observed_at", "title": "Observed at (UTC)"},
                    ],
                },
            },
        ],
        "usermeta": {"embedOptions": _EMBED},
    }
