"""Checks every chart must pass before it is stored, whatever its store."""

from __future__ import annotations

from monitor.charts import ChartRequest, Entry, Listing
from monitor.errors import InvalidFeed

# Far beyond any real store's limits (App Store names: 30 characters; Android package
# names: 255), so that only a hostile or broken answer reaches them.
MAX_LENGTHS = {"app_id": 255, "name": 1_000, "developer": 1_000, "icon_url": 2_000, "url": 2_000}


def check_listing(req: ChartRequest, listing: Listing) -> Listing:
    """Return the listing if it is a whole, plausible chart; raise InvalidFeed if not."""
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
    return listing


def _check_lengths(entry: Entry, rank: int) -> None:
    for field, most in MAX_LENGTHS.items():
        value = getattr(entry, field)
        if value is not None and len(value) > most:
            raise InvalidFeed(
                f"entry at rank {rank} has a {field} of {len(value):,} characters "
                f"(at most {most:,} allowed)"
            )
