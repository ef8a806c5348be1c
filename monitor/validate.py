"""Checks every chart must pass before it is stored, whatever its store."""

from __future__ import annotations

from monitor.charts import ChartRequest, Listing
from monitor.errors import InvalidFeed


def check_listing(req: ChartRequest, listing: Listing) -> Listing:
    """Return the listing if it is a whole, plausible chart; raise InvalidFeed if not."""
    entries = listing.entries
    if not entries:
        raise InvalidFeed("the chart is empty")
    if len(entries) > req.depth:
        raise InvalidFeed(f"asked for at most {req.depth} entries, got {len(entries)}")
    seen: dict[str, int] = {}
    for rank, entry in enumerate(entries, 1):
        if entry.app_id in seen:
            raise InvalidFeed(
                f"app {entry.app_id} appears twice, at ranks {seen[entry.app_id]} and {rank}"
            )
        seen[entry.app_id] = rank
    return listing
