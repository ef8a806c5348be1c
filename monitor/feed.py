"""Events as an Atom feed: a ``.atom`` link on every query whose rows carry an entry's
``atom_id``, ``atom_updated``, ``atom_title`` and ``atom_link``, and maybe an ``app_page``
linked from its text and, on the last row, an ``older`` page (queries.EVENTS_FEED).

feedgen writes the XML. Each entry links to its evidence, made absolute against the
page asked for; a feed with no entry yet is still a valid feed, updated now.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import urljoin

from datasette.utils.asgi import NotFound, Response
from feedgen.feed import FeedGenerator

COLUMNS = {"atom_id", "atom_updated", "atom_title", "atom_link"}
CONTENT_TYPE = "application/atom+xml; charset=utf-8"


def can_render(columns: Sequence[str]) -> bool:
    """Tell whether a query's rows can be a feed."""
    return set(columns) >= COLUMNS


def render(
    datasette: Any,
    request: Any,
    columns: Sequence[str],
    rows: Sequence[Any],
    query_name: str | None,
    database: str,
) -> Response:
    """The rows, newest first, as an Atom feed titled after their canned query; a 404
    for rows that are not a feed's entries (a .atom link asked of any other page)."""
    if not can_render(columns):
        raise NotFound("These rows are not feed entries: no Atom feed here.")
    page = request.url
    rows = [row for row in rows if row["atom_id"] is not None]  # not an entry: a candidate
    feed = FeedGenerator()
    feed.id(page)
    feed.title(_title(datasette, database, query_name))
    feed.link(href=page, rel="self")
    feed.link(href=page.replace(".atom", "", 1), rel="alternate")
    if rows and "older" in columns and rows[-1]["older"]:  # a page of a paged feed, RFC 5005
        feed.link(href=urljoin(page, rows[-1]["older"]), rel="next")
    feed.author({"name": "monitor"})
    times = [_time(row["atom_updated"]) for row in rows]
    feed.updated(max(times, default=datetime.now(UTC)))
    for row, updated in zip(reversed(rows), reversed(times), strict=True):
        entry = feed.add_entry()  # feedgen puts each new entry first: the newest last
        entry.id(row["atom_id"])
        entry.title(row["atom_title"])
        entry.updated(updated)
        evidence = urljoin(page, row["atom_link"])
        entry.link(href=evidence)
        entry.content(_content(row, evidence, page, "app_page" in columns), type="html")
    return Response(feed.atom_str(pretty=True), content_type=CONTENT_TYPE)


def _content(row: Any, evidence: str, page: str, has_app_page: bool) -> str:
    """The entry's text, and links to its evidence and to the app page. Links in the
    content, since an entry may hold one link of its kind (RFC 4287, 4.1.2)."""
    links = [f'<a href="{escape(evidence)}">the evidence</a>']
    if has_app_page and row["app_page"] != row["atom_link"]:
        links.append(f'<a href="{escape(urljoin(page, row["app_page"]))}">the app page</a>')
    return f"<p>{escape(row['atom_title'])}</p><p>{', '.join(links)}</p>"


def _title(datasette: Any, database: str, query_name: str | None) -> str:
    queries = (datasette.metadata(database=database) or {}).get("queries", {})
    found = queries.get(query_name or "", {})
    return str(found.get("title", "monitor: events"))


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
