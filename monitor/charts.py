"""What a chart is: the store, list, device, genre and storefront of one top list."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ChartRequest:
    """One chart to fetch: a top list of one storefront, to a given depth."""

    store: str
    chart: str
    device: str | None
    genre: str | None
    country: str
    depth: int

    def label(self) -> str:
        """Name the chart for people, e.g. ``apple/top-free/iphone/us``."""
        parts = [self.store, self.chart, self.device, self.genre and f"genre {self.genre}"]
        return "/".join(p for p in parts if p) + f"/{self.country}"


@dataclass(frozen=True)
class Entry:
    """One ranked app as a chart listed it; rank is its position in the list."""

    app_id: str
    name: str
    developer: str | None
    icon_url: str | None = None
    url: str | None = None
    score: float | None = None


@dataclass(frozen=True)
class Listing:
    """A chart's whole list as parsed from one response."""

    entries: list[Entry]
    updated: str | None


@dataclass(frozen=True)
class FetchResult:
    """What one chart's fetch gave: a valid listing, or an error."""

    req: ChartRequest
    started_at: str
    fetched_at: str
    listing: Listing | None = None
    error: str | None = None
    error_kind: str | None = None  # a short word for the cause, e.g. timeout or drift
    http_status: int | None = None
    raw: bytes | None = None  # the body of a response that failed to parse, kept for study
