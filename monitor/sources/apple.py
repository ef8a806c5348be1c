"""The App Store's two public chart feeds: RSS v2 and the iTunes legacy RSS.

RSS v2 serves the overall iPhone top-free and top-paid charts. It is the feed Apple
maintains, its ids are strings and it states its storefront, so it is preferred
wherever it can answer. It has no top-grossing chart, no iPad charts and no genres;
those come from the legacy feed, which has been seen ignoring ``limit`` and
``genre``, so its self link is checked against the request.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, unquote

import httpx

from monitor.charts import ChartRequest, Entry, Listing
from monitor.config import FetchPolicy
from monitor.errors import InvalidFeed
from monitor.politeness import Politeness
from monitor.reference import ios_chart_genres, ios_genres, storefronts_175
from monitor.sources.payload import decode_json, dig, text_or_none, utc_iso
from monitor.sources.store import Endpoint, Endpoints, Store

RSS = Endpoint("apple_rss_url", "https://rss.marketingtools.apple.com", "Apple RSS v2")
ITUNES = Endpoint("itunes_url", "https://itunes.apple.com", "iTunes legacy RSS")
DEVICE_TITLES = MappingProxyType({"iphone": "iPhone", "ipad": "iPad"})
DEVICES = tuple(DEVICE_TITLES)
_V2_CHARTS = {"top-free", "top-paid"}
_LEGACY_FEEDS = {
    ("top-free", "iphone"): "topfreeapplications",
    ("top-paid", "iphone"): "toppaidapplications",
    ("top-grossing", "iphone"): "topgrossingapplications",
    ("top-free", "ipad"): "topfreeipadapplications",
    ("top-paid", "ipad"): "toppaidipadapplications",
    ("top-grossing", "ipad"): "topgrossingipadapplications",
}
_LEGACY_SELF = re.compile(r"/([a-z]{2})/rss/([a-z]+)/(.*?)/?json")
_APP_ID = re.compile(r"[0-9]+")
_V2_CHART = re.compile(r"/apps/([a-z-]+)/")


def uses_v2(req: ChartRequest) -> bool:
    """Tell whether RSS v2 can serve this chart (overall iPhone free or paid)."""
    return req.device == "iphone" and req.genre is None and req.chart in _V2_CHARTS


class AppStore:
    """The App Store: its charts answer concurrent requests, --concurrency at a time."""

    name = "apple"
    title = "App Store"
    charts = ("top-free", "top-paid", "top-grossing")
    devices = DEVICES
    device_titles = DEVICE_TITLES
    max_depth = 100
    endpoints = (RSS, ITUNES)
    genre_example = "6014 (Games)"

    def storefronts(self) -> Mapping[str, str]:
        """Return the 175 storefronts."""
        return storefronts_175()

    def categories(self) -> Mapping[str, str]:
        """Return the iOS genre ids."""
        return ios_genres()

    def category(self, text: str) -> str:
        """Return a genre id as given: ids are numbers."""
        return text

    def chart_genres(self) -> tuple[str | None, ...]:
        """Return None (all apps), then each genre and each game genre with top charts."""
        return (None, *ios_chart_genres())

    def politeness(self, policy: FetchPolicy) -> Politeness:
        """Let --concurrency requests be in flight at once, and --rate start a second."""
        return Politeness(policy.concurrency, policy.rate or None)

    def http_request(
        self, client: httpx.AsyncClient, req: ChartRequest, endpoints: Endpoints
    ) -> httpx.Request:
        """Build the GET request for one chart, from RSS v2 where it serves the chart."""
        if uses_v2(req):
            base = endpoints[RSS.key].rstrip("/")
            url = f"{base}/api/v2/{req.country}/apps/{req.chart}/{req.depth}/apps.json"
        else:
            base = endpoints[ITUNES.key].rstrip("/")
            genre = f"/genre={req.genre}" if req.genre else ""
            url = f"{base}/{req.country}/rss/{_legacy_feed(req)}/limit={req.depth}{genre}/json"
        return client.build_request("GET", url)

    def parse(self, req: ChartRequest, body: bytes) -> Listing:
        """Parse one chart response, checking that it is the chart that was asked for."""
        data = decode_json(body)
        return parse_v2(req, data) if uses_v2(req) else parse_legacy(req, data)

    def app_url(self, app_id: str, country: str | None) -> str:
        """Return the app's page on apps.apple.com (the US storefront's by default)."""
        return f"https://apps.apple.com/{quote(country or 'us')}/app/id{quote(app_id)}"


STORE: Store = AppStore()


def _legacy_feed(req: ChartRequest) -> str:
    return _LEGACY_FEEDS[(req.chart, req.device or DEVICES[0])]


def parse_v2(req: ChartRequest, data: Any) -> Listing:
    """Parse an RSS v2 body: ``feed.results`` in rank order."""
    feed = dig(data, "feed")
    if not isinstance(feed, dict):
        raise InvalidFeed("RSS v2 body has no 'feed' object")
    _check_v2_echo(req, feed)
    results = feed.get("results", [])
    if not isinstance(results, list):
        raise InvalidFeed("RSS v2 'feed.results' is not a list")
    entries = [_v2_entry(result, rank) for rank, result in enumerate(results, 1)]
    return Listing(entries, _rfc2822_utc(feed.get("updated")))


def _check_v2_echo(req: ChartRequest, feed: dict[str, Any]) -> None:
    """Check the storefront and chart the feed states, where it states them."""
    country = feed.get("country")
    if isinstance(country, str) and country.lower() != req.country:
        raise InvalidFeed(f"asked for storefront {req.country!r}, feed is for {country!r}")
    feed_id = text_or_none(feed.get("id")) or ""
    chart = _V2_CHART.search(feed_id)
    if chart and chart.group(1) != req.chart:
        raise InvalidFeed(f"asked for {req.chart}, feed id is {feed_id!r}")


def _v2_entry(result: Any, rank: int) -> Entry:
    return _entry(
        rank,
        app_id=dig(result, "id"),
        name=dig(result, "name"),
        developer=dig(result, "artistName"),
        icon_url=dig(result, "artworkUrl100"),
    )


def parse_legacy(req: ChartRequest, data: Any) -> Listing:
    """Parse an iTunes legacy RSS body: ``feed.entry`` in rank order."""
    feed = dig(data, "feed")
    if not isinstance(feed, dict):
        raise InvalidFeed("legacy RSS body has no 'feed' object")
    _check_self_link(req, feed)
    raw = feed.get("entry", [])
    # The feed sends a lone entry as an object, and no 'entry' at all for none.
    entries = legacy_entries([raw] if isinstance(raw, dict) else raw)
    return Listing(entries, _iso_utc(dig(feed, "updated", "label")))


def legacy_entries(raw: Any) -> list[Entry]:
    """Parse a list of legacy RSS entries, in rank order."""
    if not isinstance(raw, list):
        raise InvalidFeed("legacy RSS 'feed.entry' is neither an object nor a list")
    return [_legacy_entry(item, rank) for rank, item in enumerate(raw, 1)]


def _legacy_entry(item: Any, rank: int) -> Entry:
    images = dig(item, "im:image")
    icon = dig(images, -1, "label") if isinstance(images, list) else None
    return _entry(
        rank,
        app_id=dig(item, "id", "attributes", "im:id"),
        name=dig(item, "im:name", "label"),
        developer=dig(item, "im:artist", "label"),
        icon_url=icon,
    )


def _entry(rank: int, *, app_id: Any, name: Any, developer: Any, icon_url: Any) -> Entry:
    if not isinstance(app_id, str) or not _APP_ID.fullmatch(app_id):
        raise InvalidFeed(f"entry at rank {rank} has no valid app id (got {app_id!r})")
    if not isinstance(name, str) or not name:
        raise InvalidFeed(f"entry at rank {rank} (app {app_id}) has no name")
    return Entry(app_id, name, text_or_none(developer), text_or_none(icon_url))


def _check_self_link(req: ChartRequest, feed: dict[str, Any]) -> None:
    link = _self_href(feed.get("link")) or text_or_none(dig(feed, "id", "label"))
    match = _LEGACY_SELF.search(unquote(link or ""))
    if match is None:
        return
    country, feed_name, params = match.groups()
    expected = _legacy_feed(req)
    if (country, feed_name) != (req.country, expected):
        raise InvalidFeed(
            f"asked for {expected} in {req.country!r}, feed is {feed_name} in {country!r}"
        )
    genre = re.search(r"genre=([0-9]+)", params)
    if (genre.group(1) if genre else None) != req.genre:
        raise InvalidFeed(f"asked for genre {req.genre}, feed link says {link}")


def _self_href(links: Any) -> str | None:
    for link in links if isinstance(links, list) else [links]:
        if dig(link, "attributes", "rel") == "self":
            return text_or_none(dig(link, "attributes", "href"))
    return None


def _rfc2822_utc(value: Any) -> str | None:
    try:
        return utc_iso(parsedate_to_datetime(value)) if isinstance(value, str) else None
    except (TypeError, ValueError, OverflowError):  # a time beyond datetime's years, too
        return None


def _iso_utc(value: Any) -> str | None:
    try:
        return utc_iso(datetime.fromisoformat(value)) if isinstance(value, str) else None
    except (ValueError, OverflowError):
        return None
