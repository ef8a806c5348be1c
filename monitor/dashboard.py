"""The per-app dashboard, for datasette-dashboards: headline figures at a time, the rank
history, a world map of ranks and the stretches at No. 1.

Every script, stylesheet and shape it needs is served by this Datasette: the plugin
bundles Vega, and the map's shapes are in ``monitor/static``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote

from monitor import queries
from monitor.reference import iso_numeric, map_points
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
_NO_STOREFRONT = "no storefront"


def dashboards(database: str) -> dict[str, Any]:
    """Return the datasette-dashboards configuration for the database named database."""
    return {
        SLUG: {
            "title": "An app in the charts",
            "description": (
                "Where one app ranks at a time, by country, in one overall chart. A country "
                "is observed at a time when its chart was fetched successfully at most 6 "
                "hours before; a country not observed is never counted as not ranked. "
                "App is the store's id, e.g. 6737597349, or a name it was shown under; "
                "a blank time means the end of the latest complete sweep (UTC)."
            ),
            "layout": [
                ["headline", "headline", "headline", "headline", "headline", "headline"],
                ["map", "map", "map", "map", "countries", "countries"],
                ["world", "world", "world", "history", "history", "history"],
                ["names", "names", "names", "spans", "spans", "spans"],
            ],
            "filters": filters(),
            "charts": _charts(database),
        }
    }


def filters() -> dict[str, Any]:
    """Return the page's filters, with the defaults of those that have one."""
    return {
        "app": {"name": "App (store id or name)", "type": "text"},
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
    def chart(title: str, sql: str, library: str, **more: Any) -> dict[str, Any]:
        return {"title": title, "db": database, "query": _sql(sql), "library": library, **more}

    rankings = f"/{quote(database)}/rankings"
    return {
        "headline": chart("The headline", _HEADLINE, "table"),
        "map": chart("Rank by country at the time", _MAP, "vega-lite", display=_map_spec()),
        "countries": chart(
            "Countries, each linked to the observation that shows it",
            _COUNTRIES.replace("{rankings}", rankings),
            "table",
        ),
        "world": chart(
            "Around the world: countries at No. 1 and in the top 10, sweep by sweep",
            queries.WORLD_OVER_TIME,
            "vega-lite",
            display=_world_spec(),
        ),
        "history": chart(
            "Rank over time, one line per country",
            queries.RANK_HISTORY,
            "vega-lite",
            display=_history_spec(),
        ),
        "names": chart("Names shown, up to the time", _NAMES, "table"),
        "spans": chart("Stretches at No. 1, up to the time", _SPANS, "table"),
    }


def _sql(sql: str) -> str:
    # The charts' SQL travels in the URL of each data request: keep it short. Safe as
    # long as queries hold no "--" comments and no runs of spaces inside quotes.
    return " ".join(queries.with_max_age(sql).split())


# The table charts put every value into the page as HTML: any text that can come from a
# store or a reader (an app's name, :app) arrives escaped by html_escape(), and a NULL as
# an empty cell.
_KEPT = " || ".join(
    f"'&{key}=' || url_quote(coalesce(:{key}, ''))" for key in ("chart", "device", "days")
)


def _link(app: str, at: str, kept: str = _KEPT) -> str:
    """SQL: this page's address for the app at the instant, the other filters kept."""
    return f"'?app=' || url_quote({app}) || '&at=' || url_quote({at}) || {kept}"


_FIRST_BAND, *_OTHER_BANDS = queries.BANDS
_COUNTS = " || ', ' || ".join(
    [
        f"'{_FIRST_BAND.label} in ' || h.{_FIRST_BAND.key} || ' of ' || h.observed "
        "|| ' observed storefronts'",
        *(f"'{band.label.lower()} in ' || h.{band.key}" for band in _OTHER_BANDS),
    ]
)
# The sentence to quote, and the links that pin it and step through time. A name that is
# no app's id comes here only when it names none or several (monitor.app_page sends a
# name of one app to its id): the names table lists them.
_HEADLINE = f"""SELECT CASE
  WHEN h.app_id IS NULL AND trim(:app) = '' THEN 'Which app? Give its id or name.'
  WHEN h.app_id IS NULL
    THEN html_escape(quote(:app)) || ' is no app''s id, and names no one app: see Names, below.'
  ELSE '<b>' || html_escape(coalesce(h.app_name, h.app_id)) || '</b>, '
    || coalesce(h.chart_title, 'this chart')
    || ', at ' || strftime('%Y-%m-%d %H:%M UTC', h.at) || ': ' || {_COUNTS} || '.'
    || CASE WHEN h.not_observed > 0 THEN ' Not observed in ' || h.not_observed || '.' ELSE '' END
    || CASE WHEN h.stale > 0 THEN ' Stale in ' || h.stale || ': the latest fetch failed.'
       ELSE '' END
  END AS "In the charts",
  CASE WHEN h.app_id IS NOT NULL
    THEN '<a href="' || {_link("h.app_id", "h.at", "h.kept")} || '">permalink</a>'
    || coalesce(' · <a href="' || {_link("h.app_id", "h.earlier", "h.kept")}
      || '">the sweep before</a>', '')
    || coalesce(' · <a href="' || {_link("h.app_id", "h.later", "h.kept")}
      || '">the sweep after</a>', '')
  ELSE '' END AS "This answer"
FROM (SELECT *, {_KEPT} AS kept FROM ({queries.HEADLINE})) h"""

# Every storefront, ranked first: each observed one linked to the observation (in the
# rankings view, its snapshot_id linked to the whole chart), the app's row where ranked.
# From one row, as _NAMES below, so that an app with no chart still has a row.
_COUNTRIES = f"""SELECT CASE WHEN coverage = 'observed'
    THEN '<a href="{{rankings}}?snapshot_id=' || snapshot_id
    || CASE WHEN rank IS NULL THEN '' ELSE '&app_id=' || url_quote(app_id) END || '">'
    || html_escape(coalesce(country_name, country)) || '</a>'
    ELSE coalesce(html_escape(coalesce(country_name, country)), 'No storefront to show') END
    AS "Country",
  coalesce(rank, CASE coverage WHEN 'observed' THEN 'not ranked' ELSE coverage END, '') AS "Rank",
  coalesce(observed_at, '') AS "Observed at (UTC)", coalesce(html_escape(note), '') AS "Note"
FROM (SELECT 1) LEFT JOIN ({queries.CLAIM_IN_CHART_WITH_NOTES}) c
ORDER BY c.rank IS NULL, c.rank, c.coverage != 'observed', coalesce(c.country_name, c.country)"""

# The names the app whose id :app is was shown under; where no app has that id, the apps
# one of whose names contains :app, each linked to this page for it; where there are
# neither, a row saying why: the plugin's table chart fails on an empty result.
_NAMES = f"""WITH n AS MATERIALIZED (SELECT * FROM ({queries.APP_NAMES})),
f AS MATERIALIZED (SELECT * FROM ({queries.FIND_APP})
  WHERE NOT EXISTS (SELECT 1 FROM apps WHERE app_id = :app))
SELECT html_escape(n.name) AS "Name", coalesce(html_escape(n.developer), '') AS "Developer",
  html_escape(n.store) AS "Store", n.first_seen AS "First seen", n.charts AS "Charts ranked in"
FROM n
UNION ALL
SELECT '<a href="' || {_link("f.app_id", "coalesce(:at, '')")} || '">'
    || html_escape(coalesce(f.name, f.app_id)) || '</a>', '', html_escape(f.store), '', ''
FROM f
UNION ALL
SELECT CASE WHEN EXISTS (SELECT 1 FROM apps WHERE app_id = :app) THEN 'Not seen up to the time'
  WHEN trim(:app) = '' THEN 'No app at No. 1 here yet'
  ELSE 'No app has the id or a name containing ' || html_escape(quote(:app)) END, '', '', '', ''
WHERE NOT EXISTS (SELECT 1 FROM n) AND NOT EXISTS (SELECT 1 FROM f)
ORDER BY 4, 1"""

_SPANS = f"""SELECT coalesce(html_escape(coalesce(
    (SELECT name FROM storefronts WHERE code = s.country), s.country)),
    'Not at No. 1 up to the time') AS "Country",
  coalesce(s.first_at, '') AS "First at No. 1", coalesce(s.last_at, '') AS "Last at No. 1",
  coalesce(s.hours, '') AS "Hours", CASE WHEN s.now THEN 'yes' ELSE '' END AS "Still No. 1"
FROM (SELECT 1) LEFT JOIN ({queries.NUMBER_ONE_SPANS}) s
ORDER BY s.now DESC, s.first_at DESC, s.country"""

_MAP = f"""SELECT country, country_name, rank, coverage, observed_at,
  CASE WHEN coverage != 'observed' THEN 'not observed'
       WHEN rank IS NULL THEN 'observed, not ranked' WHEN rank = 1 THEN 'No. 1'
       WHEN rank <= 10 THEN '2 to 10' WHEN rank <= 50 THEN '11 to 50'
       ELSE '51 or lower' END AS band
FROM ({queries.CLAIM_IN_CHART})"""


def _time(field: str, title: str) -> dict[str, Any]:
    return {
        "field": field,
        "type": "temporal",
        "scale": {"type": "utc"},
        "axis": {"format": "%d %b %H:%M"},
        "title": title,
    }


# The instant answered, as a light rule: a row of kind (or band) 'at' of every chart over
# time. That row is always there: a layer with no data gives its time scale an infinite
# extent, which Vega warns of.
_AT_COLOUR = "#ccc"
_AT_RULE = {"mark": {"type": "rule", "color": _AT_COLOUR}}


def _world_spec() -> dict[str, Any]:
    time = _time("at", "End of the sweep (UTC)")
    counts = {
        "transform": [{"filter": "datum.band !== 'at'"}],
        "mark": {"type": "line", "point": {"size": 12}},
        "encoding": {
            "x": time,
            "y": {
                "field": "countries",
                "type": "quantitative",
                "axis": {"tickMinStep": 1},
                "title": "Storefronts",
            },
            "color": {
                "field": "band",
                "type": "nominal",
                "title": "Rank",
                "scale": {"domain": ["No. 1", "Top 10"], "range": [_BANDS["No. 1"], "#fd8d3c"]},
            },
            # A new segment after a sweep that observed nothing of the chart: a gap.
            "detail": {"field": "segment", "type": "nominal"},
            "tooltip": [
                {"field": "band", "title": "Rank"},
                {"field": "countries", "title": "Storefronts"},
                {"field": "observed", "title": "Observed"},
                {"field": "at", "title": "Sweep ended (UTC)"},
            ],
        },
    }
    at = {"transform": [{"filter": "datum.band === 'at'"}], "encoding": {"x": time}, **_AT_RULE}
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "height": 260,
        "layer": [counts, at],
        "usermeta": {"embedOptions": _EMBED},
    }


def _history_spec() -> dict[str, Any]:
    time = _time("fetched_at", "Observed at (UTC)")
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
    # instant answered (_AT_RULE's colour).
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
                    "color": {"condition": {"test": at, "value": _AT_COLOUR}, "value": "#666"},
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
    # The store's alpha-2 codes reach the shapes' numeric ids through the shipped table;
    # the storefronts too small for these shapes are dots, at the shipped points.
    codes = [{"code": r["code"], "id": r["numeric"]} for r in iso_numeric()]
    colour = {
        "field": "band",
        "type": "nominal",
        "title": "Rank",
        "scale": {"domain": [*_BANDS, _NO_STOREFRONT], "range": [*_BANDS.values(), _LAND]},
    }
    tooltip = [
        {"field": "country_name", "title": "Country"},
        {"field": "rank", "title": "Rank"},
        {"field": "coverage", "title": "Coverage"},
        {"field": "observed_at", "title": "Observed at (UTC)"},
    ]
    lookup = {"from": {"data": {"values": codes}, "key": "code", "fields": ["id"]}}
    return {
        "$schema": VEGA_LITE_SCHEMA,
        "height": 460,
        "projection": {"type": "equalEarth"},
        "layer": [
            # Land underneath, for countries with no storefront. Not the countries feature:
            # Vega-Lite 6.4 fails ("Undefined data set name") when a layer's data is also
            # the other layer's lookup source.
            {
                "data": {"url": SHAPES_URL, "format": {"type": "topojson", "feature": "land"}},
                "mark": {"type": "geoshape"},
                "encoding": {"color": {"datum": _NO_STOREFRONT, **_without(colour, "field")}},
            },
            {
                "transform": [
                    {"lookup": "country", **lookup},
                    {"lookup": "id", "from": {"data": shapes, "key": "id"}, "as": "geo"},
                    {"filter": "datum.geo"},
                ],
                "mark": {"type": "geoshape", "stroke": "white", "strokeWidth": 0.5},
                "encoding": {
                    "shape": {"field": "geo", "type": "geojson"},
                    "color": colour,
                    "tooltip": tooltip,
                },
            },
            {
                "transform": [
                    {
                        "lookup": "country",
                        "from": {
                            "data": {"values": map_points()},
                            "key": "code",
                            "fields": ["longitude", "latitude"],
                        },
                    },
                    {"filter": "isValid(datum.longitude)"},
                ],
                "mark": {"type": "circle", "size": 40, "opacity": 1, "stroke": "white"},
                "encoding": {
                    "longitude": {"field": "longitude", "type": "quantitative"},
                    "latitude": {"field": "latitude", "type": "quantitative"},
                    "color": colour,
                    "tooltip": tooltip,
                },
            },
        ],
        "usermeta": {"embedOptions": _EMBED},
    }


def _without(spec: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in spec.items() if k != key}
