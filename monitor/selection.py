"""Turn what a user selected (flags or config) into the charts to fetch, checking it."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.charts import CHARTS, DEVICES, STORES, ChartRequest
from monitor.config import ChartSpec
from monitor.errors import UsageError
from monitor.reference import apple_genres, apple_storefronts
from monitor.sources import apple

DEFAULT_CHARTS = (ChartSpec(),)


def split_countries(values: Iterable[str]) -> tuple[str, ...]:
    """Split repeated or comma-separated country codes, lowercased, without repeats."""
    codes = [code.strip().lower() for value in values for code in value.split(",")]
    return tuple(dict.fromkeys(code for code in codes if code))


def requests_for(spec: ChartSpec) -> list[ChartRequest]:
    """Return one request per storefront of a chart spec; all storefronts by default."""
    _check_choice("store", spec.store, STORES)
    _check_choice("chart", spec.chart, CHARTS)
    if spec.device is not None:
        _check_choice("device", spec.device, DEVICES)
    if spec.genre is not None and spec.genre not in apple_genres():
        raise UsageError(f"unknown App Store genre id {spec.genre!r}; see the iOS genre ids")
    depth = apple.MAX_DEPTH if spec.depth is None else spec.depth
    if not 1 <= depth <= apple.MAX_DEPTH:
        raise UsageError(f"depth must be between 1 and {apple.MAX_DEPTH} for the App Store")
    known = apple_storefronts()
    countries = split_countries(spec.countries) if spec.countries else tuple(known)
    unknown = [code for code in countries if code not in known]
    if unknown:
        raise UsageError(
            f"unknown country code(s): {', '.join(unknown)}. "
            "Run 'monitor countries' to list the valid codes."
        )
    device = spec.device or "iphone"
    return [ChartRequest(spec.store, spec.chart, device, spec.genre, cc, depth) for cc in countries]


def requests_for_all(specs: Iterable[ChartSpec]) -> list[ChartRequest]:
    """Return the requests of several chart specs, in order, without repeats."""
    return list(dict.fromkeys(req for spec in specs for req in requests_for(spec)))


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
