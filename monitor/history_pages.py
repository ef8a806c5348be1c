"""The pages of the whole history, kept within the time limit however long it grows.

- Their row count is skipped, in every format, unless asked for (``?_nocount=``, which
  takes its turn as a costly request: monitor.turns): counting millions of rows costs
  more than the page, and grows with the history.
- The rankings page, asked with nothing, opens on the observations of the latest
  complete sweep (``?snapshot_id__gte=``): the newest, in an order that any filter added
  keeps cheap, which a sort of the whole history would not.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs

from datasette.utils.asgi import Response

HISTORY = ("rankings", "fetches", "events", "snapshots", "runs", "attempts")
_UNCOUNTED = re.compile(rf"^/[^/]+/({'|'.join(HISTORY)})(\.\w+)?$")  # in any format
_RANKINGS_PAGE = re.compile(r"^/([^/]+)/rankings$")
# The first observation of the latest complete sweep, through the index of fetch times
# (MATERIALIZED: else SQLite looks for MIN(id) from the first id on, through all history).
LATEST_SWEEP_FIRST = """WITH latest AS MATERIALIZED (SELECT id FROM snapshots WHERE fetched_at >= (
  SELECT started_at FROM sweeps WHERE status = 'finished' ORDER BY id DESC LIMIT 1))
SELECT MIN(id) AS id FROM latest"""


def wrap(app: Any, datasette: Any) -> Any:
    """Wrap an ASGI app with both rules."""

    async def history_page(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            query = scope.get("query_string", b"")
            bare = _RANKINGS_PAGE.match(scope["path"])
            if bare and not query and scope["method"] == "GET":
                first = await _latest_sweep_first(datasette, bare.group(1))
                if first is not None:
                    location = f"{scope['path']}?snapshot_id__gte={first}"
                    await Response.redirect(location).asgi_send(send)
                    return
            if _UNCOUNTED.match(scope["path"]) and "_nocount" not in _keys(query):
                scope = {**scope, "query_string": query + (b"&" if query else b"") + b"_nocount=1"}
        await app(scope, receive, send)

    return history_page


def _keys(query: bytes) -> set[str]:
    return set(parse_qs(query.decode("latin-1"), keep_blank_values=True))


async def _latest_sweep_first(datasette: Any, database: str) -> int | None:
    try:
        db = datasette.get_database(database)
    except KeyError:
        return None
    first: int | None = (await db.execute(LATEST_SWEEP_FIRST)).first()["id"]
    return first
