"""Arbitrary SQL one query at a time, so that readers of the pages keep Datasette's other
threads: each SQL query may hold a thread for the whole time limit, and a few clients
sending runaway queries would otherwise hold them all."""

from __future__ import annotations

import asyncio
import json
import re
from typing import Any
from urllib.parse import parse_qs

# A database's own page, where Datasette runs the SQL it is sent (?sql=).
_SQL_PAGE = re.compile(r"^/[^/]+(\.json|\.csv)?$")
AT_ONCE = 1
# How long a query waits for its turn before it is turned away with 429.
WAIT_SECONDS = 10.0


def sends_sql(scope: dict[str, Any]) -> bool:
    """Tell whether a request asks Datasette to run SQL of the reader's own."""
    if scope["type"] != "http" or not _SQL_PAGE.match(scope["path"]):
        return False
    return "sql" in parse_qs(scope.get("query_string", b"").decode("latin-1"))


class SqlGate:
    """ASGI middleware: requests with arbitrary SQL take turns; every other passes."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.turn = asyncio.Semaphore(AT_ONCE)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not sends_sql(scope):
            await self.app(scope, receive, send)
            return
        try:
            await asyncio.wait_for(self.turn.acquire(), WAIT_SECONDS)
        except TimeoutError:
            await _busy(send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.turn.release()


async def _busy(send: Any) -> None:
    body = json.dumps(
        {
            "ok": False,
            "status": 429,
            "error": "Other SQL queries are waiting: this server runs one at a time. "
            "Try again shortly.",
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"retry-after", b"1")]
    await send({"type": "http.response.start", "status": 429, "headers": headers})
    await send({"type": "http.response.body", "body": body})
