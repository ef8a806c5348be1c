"""Datasette plugin: icons as images, app names linked to their store pages, countries
named beside their codes, observation ids linked to the ranks they hold (every value
escaped), history views left uncounted, bounded read connections, and the
``/-/health`` and ``/-/metrics`` endpoints."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from datasette import hookimpl
from datasette.utils.asgi import Response, asgi_static
from markupsafe import Markup

from monitor import app_page, datasette_leaks, feed, history_pages, queries, readers, reference
from monitor.dashboard import STATIC, STATIC_URL
from monitor.hangups import Hangups
from monitor.health import DEFAULT_MAX_AGE, read_health
from monitor.metadata import front_tables
from monitor.metrics import CONTENT_TYPE, exposition
from monitor.sources import STORES
from monitor.turns import Turns

datasette_leaks.close_them()


# Every connection each Datasette opened, so that closing it closes them all: Datasette
# 0.65 closes none of its own, and its in-memory catalogue's not even on request.
_OPENED: WeakKeyDictionary[Any, list[sqlite3.Connection]] = WeakKeyDictionary()


@hookimpl
def prepare_connection(conn: sqlite3.Connection, datasette: Any) -> None:
    """Bound what any query on a connection Datasette opens can cost (monitor.readers)."""
    _OPENED.setdefault(datasette, []).append(conn)
    readers.bound(conn, public=bool((datasette.plugin_config("monitor") or {}).get("public")))
    queries.prepare(conn)


def close_connections(datasette: Any) -> None:
    """Close every connection a Datasette opened (they may be used from any thread)."""
    for conn in _OPENED.pop(datasette, []):
        conn.close()


@hookimpl
def register_routes() -> list[tuple[str, Any]]:
    """Serve monitor's static files (the map's country shapes), its health and metrics."""
    return [
        (f"^{STATIC_URL}(?P<path>.*)$", asgi_static(STATIC)),
        (r"^/-/health$", health_page),
        (r"^/-/metrics$", metrics_page),
    ]


_UNCACHED = {"cache-control": "no-store"}


async def health_page(datasette: Any) -> Response:
    """200 while a sweep finished recently, 503 otherwise; a small JSON body either way."""
    config = datasette.plugin_config("monitor") or {}
    max_age = config.get("max_sweep_age", DEFAULT_MAX_AGE)
    health = await datasette.get_database().execute_fn(lambda conn: read_health(conn, max_age))
    return Response.json(health.to_json(), status=200 if health.healthy else 503, headers=_UNCACHED)


async def metrics_page(datasette: Any) -> Response:
    """The collector's work and the database's size, in Prometheus's text format."""
    database = datasette.get_database()
    body = await database.execute_fn(lambda conn: exposition(conn, database.path))
    return Response(body.decode(), content_type=CONTENT_TYPE, headers=_UNCACHED)


@hookimpl
def register_output_renderer() -> dict[str, Any]:
    """A .atom link on the queries whose rows are a feed's entries (monitor.feed)."""

    def render_atom(
        datasette: Any,
        request: Any,
        columns: Any,
        rows: Any,
        query_name: str | None,
        database: str,
    ) -> Any:
        return feed.render(datasette, request, columns, rows, query_name, database)

    return {"extension": "atom", "render": render_atom, "can_render": feed.can_render}


@hookimpl
def extra_css_urls() -> list[str]:
    """The app page's layout (monitor/static/monitor.css)."""
    return [f"{STATIC_URL}monitor.css"]


@hookimpl
def extra_js_urls() -> list[str]:
    """Every time field a date-time input (monitor/static/time-input.js)."""
    return [f"{STATIC_URL}time-input.js"]


@hookimpl
def extra_template_vars(template: str, datasette: Any) -> dict[str, Any]:
    """Give the index, monitor's front door, the tables it describes, and where its search
    box goes: the app page, which draws with SQL, where SQL is allowed; else the
    headline's canned query."""
    if template != "index.html":
        return {}
    public = bool((datasette.plugin_config("monitor") or {}).get("public"))
    sql = datasette.metadata("allow_sql") is not False
    return {"monitor_tables": front_tables(public), "monitor_app_page": sql}


# The events feed's link columns, and what their links say.
_FEED_LINKS = {"atom_link": "evidence", "app_page": "app page"}
# The canned queries' link columns, and what their links say.
_LINKS = {
    "link": "permalink",
    "earlier": "the sweep before",
    "later": "the sweep after",
    "older": "older events",
}


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Markup | None:
    """Render icons, app names, countries, canned queries' links and observation ids;
    leave every other cell to Datasette."""
    keys = set(row.keys()) if hasattr(row, "keys") else set()
    if column == "country" and "country_name" not in keys:
        return _country(value)
    if column in ("icon", "icon_url") and isinstance(value, str) and value.startswith("http"):
        return Markup('<img src="{}" alt="" width="32" height="32" loading="lazy">').format(value)
    if column == "app_name" and isinstance(value, str) and {"store", "app_id"} <= keys:
        store = STORES.get(row["store"])
        if store is None:  # a store this monitor no longer has: its name, unlinked
            return None
        country = row["country"] if "country" in keys else None
        return Markup('<a href="{}">{}</a>').format(store.app_url(row["app_id"], country), value)
    if column in _LINKS and table is None and isinstance(value, str) and value.startswith("?"):
        # A canned query's link to the same question: by the app's id, pinned in time, at
        # the sweep before or after, or its next page.
        if "&page=" in value:
            text = "next page"
        elif column == "link" and not re.search(r"[?&]at=", value):
            text = "this app"
        else:
            text = _LINKS[column]
        return Markup('<a href="{}">{}</a>').format(value, text)
    if column in _FEED_LINKS and isinstance(value, str) and value.startswith(("rankings?", "/")):
        # An event's evidence (queries.EVENTS_FEED): its observation, or the app page.
        return Markup('<a href="{}">{}</a>').format(value, _FEED_LINKS[column])
    if column == "snapshot_id" and isinstance(value, int) and table != "snapshots":
        url = datasette.urls.table(database, "rankings") + f"?snapshot_id={value}&_sort=rank"
        return Markup('<a href="{}">{}</a>').format(url, value)
    return None


def _country(code: Any) -> Markup | None:
    """A storefront's code with its name beside it, on pages whose rows do not name it."""
    name = reference.storefronts_175().get(code) if isinstance(code, str) else None
    if name is None:
        return None
    return Markup('{} <span class="country-name">{}</span>').format(code, name)


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable[[Any], Any]:
    """Keep the pages of the history within the time limit (monitor.history_pages), run
    costly requests one at a time (monitor.turns), send the app page to its app's id
    (monitor.app_page), and drop the requests of readers who hung up (monitor.hangups)."""

    def wrap(app: Any) -> Any:
        gated = Turns(app, sql_allowed=datasette.metadata("allow_sql") is not False)
        return Hangups(app_page.wrap(history_pages.wrap(gated, datasette), datasette))

    return wrap
