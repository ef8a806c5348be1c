"""The app page's address: the dashboard, opened on one app by its store id.

Every chart of the dashboard asks for the app by its id. So a request naming an app
otherwise is sent on to the same page by id: a name that exactly one app was shown
under (monitor claim's search, from the same SQL), and no app at all the app at No. 1 in
the most storefronts of the chart at the time. A name of several apps, or of none, stays:
the page lists them, or says so.
"""

from __future__ import annotations

import sqlite3
from typing import Any
from urllib.parse import parse_qsl, urlencode

from datasette.database import QueryInterrupted
from datasette.utils.asgi import Response

from monitor import dashboard, queries

PATH = f"/-/dashboards/{dashboard.SLUG}"
_DEFAULTS = {key: str(f["default"]) for key, f in dashboard.filters().items() if "default" in f}


async def app_id_for(datasette: Any, args: dict[str, str]) -> str | None:
    """Return the id of the app the page should show, where it differs from args' app.

    A name the readers' bounds refuse (monitor.readers: a pattern too long) sends the
    page on nowhere: its charts say what they can.
    """
    try:
        return await _app_id_for(datasette, args)
    except (sqlite3.Error, QueryInterrupted):
        return None


async def _app_id_for(datasette: Any, args: dict[str, str]) -> str | None:
    app = args.get("app", "")
    database = datasette.get_database()
    if not app.strip():
        params = {key: args.get(key, "") for key in ("at", "chart", "device")}
        top = await database.execute(queries.with_max_age(queries.TOP_APP), params)
        return top.first()["app_id"] if top.rows else None
    if (await database.execute("SELECT 1 FROM apps WHERE app_id = ?", [app])).rows:
        return None
    found = (await database.execute(queries.FIND_APP, {"app": app})).rows
    return found[0]["app_id"] if len(found) == 1 else None


def wrap(app: Any, datasette: Any) -> Any:
    """Wrap an ASGI app so that the app page's address names the app by its id."""

    async def by_id(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET":
            args = dict(parse_qsl(scope.get("query_string", b"").decode(), keep_blank_values=True))
            app_id = await app_id_for(datasette, args)
            if app_id is not None:
                query = urlencode({**_DEFAULTS, **args, "app": app_id})
                await Response.redirect(f"{PATH}?{query}").asgi_send(send)
                return
        await app(scope, receive, send)

    return by_id
