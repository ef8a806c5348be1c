"""What monitor needs to know of a store: the typed interface every store module provides.

A store module defines one object that satisfies ``Store`` and owns every fact about its
store: where it is reached, which charts, devices, storefronts and categories it has,
how deep its charts go, how politely it must be asked, how to ask and how to read the
answer, and where an app's public page is. Nothing outside ``monitor/sources/`` knows a
store by its name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import httpx

from monitor.charts import ChartRequest, Listing
from monitor.config import FetchPolicy
from monitor.politeness import Politeness

# The base URLs of every store's endpoints, by Endpoint.key.
Endpoints = Mapping[str, str]


@dataclass(frozen=True)
class Endpoint:
    """A base URL a store is reached at, set by an option, a variable or the config file."""

    key: str  # the config key, e.g. ``play_url``: --play-url and MONITOR_PLAY_URL
    default: str
    describes: str  # what is served there, for the help, e.g. "Google Play"

    @property
    def envvar(self) -> str:
        """The environment variable that sets it, e.g. ``MONITOR_PLAY_URL``."""
        return f"MONITOR_{self.key.upper()}"


@runtime_checkable
class Store(Protocol):
    """One store's charts: what can be asked of it, how, and how to read its answers."""

    @property
    def name(self) -> str:
        """Its name as stored in the database and given to --store, e.g. ``play``."""
        ...

    @property
    def title(self) -> str:
        """Its name as people know it, e.g. ``Google Play``."""
        ...

    @property
    def charts(self) -> tuple[str, ...]:
        """The chart kinds it serves, e.g. ``("top-free", "top-paid")``."""
        ...

    @property
    def devices(self) -> tuple[str, ...]:
        """The devices its charts are kept apart for, the default first; none for one list."""
        ...

    @property
    def device_titles(self) -> Mapping[str, str]:
        """Each of its devices as people write it, e.g. ``{"iphone": "iPhone"}``."""
        ...

    @property
    def max_depth(self) -> int:
        """The most ranks one chart can be asked for."""
        ...

    @property
    def endpoints(self) -> tuple[Endpoint, ...]:
        """The base URLs it is reached at."""
        ...

    @property
    def genre_example(self) -> str:
        """A category id and its name, for the help, e.g. ``GAME (Games)``."""
        ...

    def storefronts(self) -> Mapping[str, str]:
        """Return its storefronts as {code: name}: the countries a sweep covers."""
        ...

    def categories(self) -> Mapping[str, str]:
        """Return its genre (category) ids as {id: name}."""
        ...

    def category(self, text: str) -> str:
        """Return the category id a user meant, as the store writes it (not checked)."""
        ...

    def chart_genres(self) -> tuple[str | None, ...]:
        """Return every genre it has top charts for, None (the overall chart) first:
        what a selection of every genre expands to."""
        ...

    def politeness(self, policy: FetchPolicy) -> Politeness:
        """Return the limits each of its hosts gets in a sweep (monitor.politeness)."""
        ...

    def http_request(
        self, client: httpx.AsyncClient, req: ChartRequest, endpoints: Endpoints
    ) -> httpx.Request:
        """Build the request for one chart, with the client's headers."""
        ...

    def parse(self, req: ChartRequest, body: bytes) -> Listing:
        """Read one chart from a response body, checking it is the chart asked for.

        Raise a FetchError (InvalidFeed, Drifted...) for anything that is not that chart.
        """
        ...

    def app_url(self, app_id: str, country: str | None) -> str:
        """Return the app's public page, in a storefront where one is known."""
        ...
