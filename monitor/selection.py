"""Turn what a user selected (flags or config) into the charts to fetch, checking it.

Whatever a store cannot serve (a chart, a device, a genre, a storefront, a depth) is
refused here, before a sweep starts, naming what it does serve.
"""

from __future__ import annotations

from collections.abc import Iterable

from monitor.charts import ChartRequest
from monitor.config import ChartSpec
from monitor.errors import UsageError
from monitor.sources import DEFAULT_STORE, STORES
from monitor.sources.store import Store

DEFAULT_CHARTS = (ChartSpec(),)
DEFAULT_DEPTH = 100
# As a chart, a device or a genre: every one the store has (chart_genres for genres).
ALL = "all"


def split_countries(values: Iterable[str]) -> tuple[str, ...]:
    """Split repeated or comma-separated country codes, lowercased, without repeats."""
    codes = [code.strip().lower() for value in values for code in value.split(",")]
    return tuple(dict.fromkeys(code for code in codes if code))


def store_named(name: str) -> Store:
    """Return the store of that name, or refuse it naming those there are."""
    _check_choice("store", name, tuple(STORES))
    return STORES[name]


def requests_for(spec: ChartSpec) -> list[ChartRequest]:
    """Return one request per storefront of a chart spec; all storefronts by default.

    "all" as the chart, the device or the genre takes every one the store has, in the
    store's order: every chart, device and genre of a store is one spec.
    """
    store = store_named(spec.store or DEFAULT_STORE)
    charts = store.charts if spec.chart == ALL else (spec.chart,)
    for chart in charts:
        _check_choice(f"chart on {store.title}", chart, store.charts)
    devices = (store.devices or (None,)) if spec.device == ALL else (_device(store, spec.device),)
    genres = store.chart_genres() if spec.genre == ALL else (_genre(store, spec.genre),)
    depth = DEFAULT_DEPTH if spec.depth is None else spec.depth
    if not 1 <= depth <= store.max_depth:
        raise UsageError(f"depth must be between 1 and {store.max_depth} for {store.title}")
    known = store.storefronts()
    countries = split_countries(spec.countries) if spec.countries else tuple(known)
    unknown = [code for code in countries if code not in known]
    if unknown:
        raise UsageError(
            f"unknown country code(s) for {store.title}: {', '.join(unknown)}. "
            f"Run 'monitor countries --store {store.name}' to list the valid codes."
        )
    return [
        ChartRequest(store.name, chart, device, genre, cc, depth)
        for chart in charts
        for device in devices
        for genre in genres
        for cc in countries
    ]


def requests_for_all(specs: Iterable[ChartSpec]) -> list[ChartRequest]:
    """Return the requests of several chart specs, in order, without repeats."""
    return list(dict.fromkeys(req for spec in specs for req in requests_for(spec)))


def _device(store: Store, device: str | None) -> str | None:
    if not store.devices:
        if device is not None:
            with_devices = " and ".join(s.title for s in STORES.values() if s.devices)
            raise UsageError(f"device applies to {with_devices} only, not to {store.title}")
        return None
    if device is None:
        return store.devices[0]
    _check_choice(f"device on {store.title}", device, store.devices)
    return device


def _genre(store: Store, text: str | None) -> str | None:
    if text is None:
        return None
    genre = store.category(text)
    if genre not in store.categories():
        raise UsageError(
            f"unknown {store.title} genre {text!r}; "
            f"run 'monitor genres --store {store.name}' to list them"
        )
    return genre


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
