"""What the tests share: reading a database file, naming a chart, pointing at a server,
asking a Datasette in process."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any
from urllib.parse import quote

from monitor.charts import ChartRequest
from monitor.config import Settings
from monitor.settings import build
from monitor.sources import ENDPOINTS


def query(path: str | Path, sql: str, params: Any = ()) -> list[tuple[Any, ...]]:
    """Read rows from the database at path, through a read-only connection closed at once."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return conn.execute(sql, params).fetchall()


def count(path: str | Path, sql: str) -> int:
    """Return the single number a query counts."""
    return int(query(path, sql)[0][0])


def chart(
    country: str = "us",
    chart: str = "top-free",
    device: str | None = "iphone",
    store: str = "apple",
    genre: str | None = None,
    depth: int = 100,
) -> ChartRequest:
    """Name one App Store chart (by default iPhone top free, 100 deep, in the US)."""
    return ChartRequest(store, chart, device, genre, country, depth)


def play_chart(
    country: str = "us", chart: str = "top-free", genre: str | None = "GAME", depth: int = 100
) -> ChartRequest:
    """Name one Google Play chart (by default top free games, 100 deep, in the US)."""
    return ChartRequest("play", chart, None, genre, country, depth)


def settings_at(url: str) -> Settings:
    """Return the default settings with every store's base URLs pointing at url."""
    return build({endpoint.key: url for endpoint in ENDPOINTS}).settings


def get(ds: Any, path: str) -> Any:
    """GET a path from a Datasette in process, expecting 200."""
    response = asyncio.run(ds.client.get(path))
    assert response.status_code == 200, (path, response.text[:500])
    return response


def rows(ds: Any, query: str, **params: Any) -> list[dict[str, Any]]:
    """Return a canned query's rows, its parameters quoted as a browser would send them."""
    args = "&".join(f"{key}={quote(str(value))}" for key, value in params.items())
    answer: list[dict[str, Any]] = get(ds, f"/rankings/{query}.json?_shape=array&{args}").json()
    return answer
