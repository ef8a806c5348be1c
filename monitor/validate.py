"""Checks every chart must pass before it is stored, whatever its store."""

from __future__ import annotations

import dataclasses

from monitor.charts import ChartRequest, Entry, Listing
from monitor.errors import InvalidFeed

# Far beyond any real store's limits (App Store names: 30 characters; Android package
# names: 255), so that only a hostile or broken answer reaches them.
MAX_LENGTHS = {"app_id": 255, "name": 1_000, "developer": 1_000, "icon_url": 2_000, "url": 2_000}


def whole_text(value: str) -> str:
    """The text, with each lone UTF-16 surrogate (a JSON escape such as \\ud800 can carry
    one, and no UTF-8 can hold it) replaced by U+FFFD, as a decoder replaces a broken
    byte; a pair written as two escapes becomes its one character."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    return value


def check_listing(req: ChartRequest, listing: Listing) -> Listing:
    """Return the listing if it is a whole, plausible chart, its texts made whole text;
    raise InvalidFeed if not."""
    entries = listing.entries
    if not entries:
        raise InvalidFeed("the chart is empty")
    if len(entries) > req.depth:
        raise InvalidFeed(f"asked for at most {req.depth} entries, got {len(entries)}")
    seen: dict[str, int] = {}
    for rank, entry in enumerate(entries, 1):
        _check_lengths(entry, rank)
        if entry.app_id in seen:
            raise InvalidFeed(
                f"app {entry.app_id} appears twice, at ranks {seen[entry.app_id]} and {rank}"
            )
        seen[entry.app_id] = rank
    if _all_whole(entries):  # nearly always: one pass over the chart's texts
        return listing
    made_whole = [_made_whole(entry, rank) for rank, entry in enumerate(entries, 1)]
    return Listing(made_whole, listing.updated)


def _all_whole(entries: list[Entry]) -> bool:
    texts = (text for entry in entries for text in _texts(entry) if text is not None)
    try:
        "".join(texts).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _texts(entry: Entry) -> tuple[str | None, ...]:
    return (entry.app_id, entry.name, entry.developer, entry.icon_url, entry.url)


def _made_whole(entry: Entry, rank: int) -> Entry:
    """The entry, with the texts kept as the store showed them made whole text; an app
    id that is not whole text is refused."""
    if whole_text(entry.app_id) != entry.app_id:
        raise InvalidFeed(f"entry at rank {rank} has an app id that is not whole text")
    return dataclasses.replace(
        entry,
        name=whole_text(entry.name),
        developer=_whole_or_none(entry.developer),
        icon_url=_whole_or_none(entry.icon_url),
        url=_whole_or_none(entry.url),
    )


def _whole_or_none(value: str | None) -> str | None:
    return None if value is None else whole_text(value)


def _check_lengths(entry: Entry, rank: int) -> None:
    for field, most in MAX_LENGTHS.items():
        value = getattr(entry, field)
        if value is not None and len(value) > most:
            raise InvalidFeed(
                f"entry at rank {rank} has a {field} of {len(value):,} characters "
                f"(at most {most:,} allowed)"
            )
