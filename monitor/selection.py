"""Turn what a user selected (flags or config) into the charts to fetch, checking it."""

from __future__ import annotations

from collections.abc import Iterable

from monitor.charts import CHARTS, DEVICES, STORES, ChartRequest
from monitor.config import ChartSpec
from monitor.errors import UsageError
from monitor.reference import genres, storefronts
from monitor.sources import SOURCES

DEFAULT_CHARTS = (ChartSpec(),)
DEFAULT_DEPTH = 100
STORE_NAMES = {"apple": "App Store", "play": "Google Play"}


def split_countries(values: Iterable[str]) -> tuple[str, ...]:
    """Split repeated or comma-separated country codes, lowercased, without repeats."""
    codes = [code.strip().lower() for value in values for code in value.split(",")]
    return tuple(dict.fromkeys(code for code in codes if code))


def requests_for(spec: ChartSpec) -> list[ChartRequest]:
    """Return one request per storefront of a chart spec; all storefronts by default."""
    _check_choice("store", spec.store, STORES)
    _check_choice("chart", spec.chart, CHARTS)
    store = STORE_NAMES[spec.store]
    device = _device(spec)
    genre = _genre(spec)
    most = SOURCES[spec.store].MAX_DEPTH
    depth = DEFAULT_DEPTH if spec.depth is None else spec.depth
    if not 1 <= depth <= most:
        raise UsageError(f"depth must be between 1 and {most} for {store}")
    known = storefronts(spec.store)
    countries = split_countries(spec.countries) if spec.countries else tuple(known)
    unknown = [code for code in countries if code not in known]
    if unknown:
        raise UsageError(
            f"unknown country code(s) for {store}: {', '.join(unknown)}. "
            f"Run 'monitor countries --store {spec.store}' to list the valid codes."
        )
    return [ChartRequest(spec.store, spec.chart, device, genre, cc, depth) for cc in countries]


def requests_for_all(specs: Iterable[ChartSpec]) -> list[ChartRequest]:
    """Return the requests of several chart specs, in order, without repeats."""
    return list(dict.fromkeys(req for spec in specs for req in requests_for(spec)))


def _device(spec: ChartSpec) -> str | None:
    if spec.store == "play":
        if spec.device is not None:
            raise UsageError("device applies to the App Store only, not to Google Play")
        return None
    if spec.device is not None:
        _check_choice("device", spec.device, DEVICES)
    return spec.device or "iphone"


def _genre(spec: ChartSpec) -> str | None:
    if spec.genre is None:
        return None
    genre = spec.genre.upper() if spec.store == "play" else spec.genre
    if genre not in genres(spec.store):
        raise UsageError(
            f"unknown {STORE_NAMES[spec.store]} genre {spec.genre!r}; "
            f"run 'monitor genres --store {spec.store}' to list them"
        )
    return genre


def _check_choice(key: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise UsageError(f"{key} must be one of {', '.join(allowed)}, not {value!r}")
