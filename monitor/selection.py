"""Turn a user's selection (store, chart, device, genre, countries, depth) into charts."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.charts import ChartRequest
from monitor.errors import UsageError
from monitor.reference import apple_genres, apple_storefronts
from monitor.sources import apple


def parse_countries(values: Iterable[str]) -> list[str]:
    """Split repeated or comma-separated country codes; check each is a storefront."""
    codes = [code.strip().lower() for value in values for code in value.split(",")]
    codes = [code for code in codes if code]
    known = apple_storefronts()
    unknown = [code for code in codes if code not in known]
    if unknown:
        raise UsageError(
            f"unknown country code(s): {', '.join(unknown)}. "
            "Run 'monitor countries' to list the valid codes."
        )
    return list(dict.fromkeys(codes))


def select(
    *,
    store: str = "apple",
    chart: str = "top-free",
    device: str | None = None,
    genre: str | None = None,
    countries: list[str] | None = None,
    depth: int = apple.MAX_DEPTH,
) -> list[ChartRequest]:
    """Return one request per country for the chosen chart; all storefronts by default."""
    if genre is not None and genre not in apple_genres():
        raise UsageError(f"unknown App Store genre id {genre!r}; see the iOS genre ids")
    if not 1 <= depth <= apple.MAX_DEPTH:
        raise UsageError(f"depth must be between 1 and {apple.MAX_DEPTH} for the App Store")
    return [
        ChartRequest(store, chart, device or "iphone", genre, country, depth)
        for country in countries or list(apple_storefronts())
    ]
