"""Datasette plugin: icons as images, app names linked to their store pages, observation
ids linked to the ranks they hold (every value escaped), history views left uncounted,
bounded read connections, and the ``/-/health`` and ``/-/metrics`` endpoints."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from typing import Any
from weakref import WeakKeyDictionary

from datasette import hookimpl
from datasette.utils.asgi import Response, asgi_static
from markupsafe import Markup

from monitor import datasette_leaks, queries, readers
from monitor.dashboard import STATIC, STATIC_URL
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
def extra_template_vars(template: str, datasette: Any) -> dict[str, Any]:
    """Give the index, monitor's front door, the tables it describes."""
    if template != "index.html":
        return {}
    public = bool((datasette.plugin_config("monitor") or {}).get("public"))
    return {"monitor_tables": front_tables(public)}


# The canned queries' link columns, and what their links say.
_LINKS = {"link": "permalink", "earlier": "the sweep before", "later": "the sweep after"}


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Markup | None:
    """Render icons, app names, canned queries' links and observation ids; leave every
    other cell to Datasette."""
    keys = set(row.keys()) if hasattr(row, "keys") else set()
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
        elif column == "link" and "&at=" not in value:
            text = "this app"
        else:
            text = _LINKS[column]
        return Markup('<a href="{}">{}</a>').format(value, text)
    if column == "snapshot_id" and isinstance(value, int) and table != "snapshots":
        url = datasette.urls.table(database, "rankings") + f"?snapshot_id={value}"
        return Markup('<a href="{}">{}</a>').format(url, value)
    return None


# Views over the whole history: counting their rows on every page costs more than the page.
_UNCOUNTED = re.compile(r"^/[^/]+/(rankings|fetches)(\.json|\.csv)?$")


@hookimpl
def asgi_wrapper(datasette: Any) -> Callable[[Any], Any]:
    """Skip the row count on the pages of the history views, unless asked for, and run
    costly requests one at a time (monitor.turns)."""

    def wrap(app: Any) -> Any:
        async def skip_count(scope: dict[str, Any], receive: Any, send: Any) -> None:
            query = scope.get("query_string", b"")
            if (
                scope["type"] == "http"
                and _UNCOUNTED.match(scope["path"])
                and (b"_nocount" not in query)
            ):
                scope = {**scope, "query_string": query + (b"&" if query else b"") + b"_nocount=1"}
            await gated(scope, receive, send)

        gated = Turns(app, sql_allowed=datasette.metadata("allow_sql") is not False)
        return skip_count

    return wrap
