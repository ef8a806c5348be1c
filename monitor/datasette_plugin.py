"""Datasette plugin: icons as images, app names linked to their store pages, and
observation ids linked to the ranks they hold. Every value is escaped."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from datasette import hookimpl
from markupsafe import Markup


def store_page(store: str, app_id: str, country: str | None) -> str:
    """Return the public store page of an app, in a storefront where one is known."""
    if store == "play":
        gl = f"&gl={quote(country)}" if country else ""
        return f"https://play.google.com/store/apps/details?id={quote(app_id)}{gl}"
    return f"https://apps.apple.com/{quote(country or 'us')}/app/id{quote(app_id)}"


@hookimpl
def render_cell(
    row: Any, value: Any, column: str, table: str | None, database: str, datasette: Any
) -> Markup | None:
    """Render icons, app names and observation ids; leave every other cell to Datasette."""
    keys = set(row.keys()) if hasattr(row, "keys") else set()
    if column in ("icon", "icon_url") and isinstance(value, str) and value.startswith("http"):
        return Markup('<img src="{}" alt="" width="32" height="32" loading="lazy">').format(value)
    if column == "app_name" and isinstance(value, str) and {"store", "app_id"} <= keys:
        country = row["country"] if "country" in keys else None
        return Markup('<a href="{}">{}</a>').format(
            store_page(row["store"], row["app_id"], country), value
        )
    if column == "snapshot_id" and isinstance(value, int) and table != "snapshots":
        url = datasette.urls.table(database, "rankings") + f"?snapshot_id={value}"
        return Markup('<a href="{}">{}</a>').format(url, value)
    return None
