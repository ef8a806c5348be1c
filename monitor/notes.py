"""Notes on an app's timeline: what happened at a time, with a link to read more.

``monitor note`` writes them; the notes table publishes them, and the dashboard's rank
chart draws them at their time.
"""

from __future__ import annotations

from sqlite_utils import Database

from monitor.claims import App
from monitor.errors import UsageError
from monitor.settings import URL
from monitor.writes import writing

MAX_TEXT = 1000  # characters: a line on a chart, not an article
MAX_URL = 2000


def add_note(db: Database, app: App, at: str, text: str, url: str | None, now: str) -> int:
    """Store a note on app's timeline at time at; return its id."""
    text = " ".join(text.split())
    if not text:
        raise UsageError("a note needs some text")
    if len(text) > MAX_TEXT:
        raise UsageError(f"a note holds at most {MAX_TEXT} characters, not {len(text)}")
    if url is not None and (len(url) > MAX_URL or not _is_url(url)):
        raise UsageError(
            f"--url must be {URL.expects}, of at most {MAX_URL} characters, not {url[:100]!r}"
        )
    row = {"store": app.store, "app_id": app.app_id, "at": at, "text": text, "url": url}
    with writing(db):
        note_id = db.table("notes").insert({**row, "created_at": now}).last_rowid
    assert note_id is not None  # an insert always makes a row
    return note_id


def _is_url(text: str) -> bool:
    try:
        URL.read(text)
    except ValueError:
        return False
    return True
