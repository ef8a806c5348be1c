"""Costly requests one at a time, so that readers of the ordinary pages keep Datasette's
other threads: a costly request may hold a thread for the whole time limit, and a few
clients sending them would otherwise hold every thread.

Costly: arbitrary SQL, and table pages asked to sort, facet, search, page on, filter
beyond equality (the filters that indexes serve: see schema.RANKINGS_FILTER_INDEXES), or
count the whole history.
"""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import parse_qs

# A database's own page, where Datasette runs the SQL it is sent (?sql=).
_SQL_PAGE = re.compile(r"^/[^/]+(\.json|\.csv)?$")
# _next: on a view, or a table without a key, the next page is an OFFSET, which reads
# every row before it (?_next=5000000 on rankings holds a thread for the whole limit).
_COSTLY_KEYS = re.compile(r"^(_sort|_sort_desc|_facet.*|_search.*|_where|_through|_next)$")
_CHEAP_FILTERS = ("exact", "in", "isnull", "notnull", "notblank")
AT_ONCE = 1
# How long a query waits for its turn before it is turned away with 429.
WAIT_SECONDS = 10.0


def costly(scope: dict[str, Any], sql_allowed: bool = True) -> bool:
    """Tell whether a request may keep a thread busy for the whole time limit.

    Where SQL is not allowed, Datasette refuses it at once: no need to wait a turn.
    """
    if scope["type"] != "http":
        return False
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    # Datasette reads a parameter's first value; a blank one asks for nothing, except a
    # blank _nocount, which asks for the count a history page skips (history_pages).
    if query.get("_nocount", [None])[0] == "":
        return True
    asked = [key for key, values in query.items() if values[0]]
    if _SQL_PAGE.match(scope["path"]) and "sql" in asked:
        return sql_allowed
    return any(
        _COSTLY_KEYS.match(key) or ("__" in key and key.rsplit("__", 1)[1] not in _CHEAP_FILTERS)
        for key in asked
    )


class Turns:
    """ASGI middleware: costly requests take turns; every other passes at once."""

    def __init__(self, app: Any, sql_allowed: bool) -> None:
        self.app = app
        self.sql_allowed = sql_allowed
        self.turn = asyncio.Semaphore(AT_ONCE)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not costly(scope, self.sql_allowed):
            await self.app(scope, receive, send)
            return
        try:
            await asyncio.wait_for(self.turn.acquire(), WAIT_SECONDS)
        except TimeoutError:
            await _busy(send)
            return
        # The turn is held until the work is done, even where the request is cancelled
        # (its reader hung up: monitor.hangups): its query goes on in Datasette's thread.
        work = asyncio.ensure_future(self.app(scope, receive, send))
        work.add_done_callback(self._done)
        await asyncio.shield(work)

    def _done(self, work: asyncio.Future[None]) -> None:
        self.turn.release()
        if not work.cancelled():
            work.exception()  # raised to the request, unless its reader has gone


async def _busy(send: Any) -> None:
    body = json.dumps(
        {
            "ok": False,
            "status": 429,
            "error": "Other costly requests (SQL, sorts, facets, searches, pages) are waiting: "
            "this server runs them one at a time. Try again shortly.",
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
