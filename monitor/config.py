"""Settings, resolved once from options, the environment and a TOML file, passed down frozen.

Options given on the command line (or through their environment variables) win over
the file, and the file wins over the defaults.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monitor.errors import UsageError

DEFAULT_DB = "data/rankings.db"
MIN_INTERVAL = 1.0
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd])")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?")
_SIZE_UNITS = {None: 1, "b": 1, "kb": 2**10, "kib": 2**10, "mb": 2**20, "mib": 2**20}
_SIZE_UNITS |= {"gb": 2**30, "gib": 2**30}


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the stores, so that tests and mirrors can stand in for them."""

    apple_rss: str = "https://rss.marketingtools.apple.com"
    itunes: str = "https://itunes.apple.com"
    play: str = "https://play.google.com"


@dataclass(frozen=True)
class FetchPolicy:
    """How politely and how persistently to fetch, and the bounds of every response."""

    concurrency: int = 8
    timeout: float = 30.0  # the deadline of one attempt: connecting, headers and body
    retries: int = 3
    backoff: float = 1.0
    max_retry_after: float = 60.0  # a store asking for a longer wait fails the chart now
    max_wait: float = 120.0  # the seconds a sweep spends, in all, waiting to retry
    play_interval: float = 1.0
    # A few times the largest real chart (Google Play, 200 deep: about 1.7 MB).
    max_body: int = 4 * 2**20


@dataclass(frozen=True)
class RawCaps:
    """How many bytes of failed response bodies to keep, compressed, for study.

    A long outage of a store fails every chart every sweep: past these caps, a store's
    bodies of the day are no longer kept, and the oldest bodies make room for new ones.
    """

    per_store_day: int = 4 * 2**20
    total: int = 64 * 2**20


@dataclass(frozen=True)
class Settings:
    """Everything a sweep needs besides the charts themselves."""

    endpoints: Endpoints = field(default_factory=Endpoints)
    policy: FetchPolicy = field(default_factory=FetchPolicy)
    raw: RawCaps = field(default_factory=RawCaps)


@dataclass(frozen=True)
class ChartSpec:
    """One configured chart, in all or some storefronts."""

    store: str = "apple"
    chart: str = "top-free"
    device: str | None = None
    genre: str | None = None
    countries: tuple[str, ...] | None = None
    depth: int | None = None


def parse_duration(text: str) -> float:
    """Read a duration such as ``90s``, ``15m``, ``1h`` or ``1h30m`` as seconds."""
    cleaned = text.strip().lower()
    parts = _DURATION.findall(cleaned)
    if not parts or "".join(n + u for n, u in parts) != cleaned:
        raise UsageError(f"invalid duration {text!r}: use e.g. 90s, 15m, 1h or 1h30m")
    return sum(float(number) * _UNITS[unit] for number, unit in parts)


def parse_interval(text: str) -> float:
    """Read the time between sweeps, refusing one shorter than MIN_INTERVAL."""
    seconds = parse_duration(text)
    if seconds < MIN_INTERVAL:
        raise UsageError(
            f"interval {text!r} is too short: sweeps are at least {MIN_INTERVAL:g}s apart"
        )
    return seconds


def parse_cap(text: str) -> int:
    """Read a cap on kept bytes: a size as parse_size reads it, or 0 to keep nothing."""
    return 0 if text.strip() == "0" else parse_size(text)


def parse_size(text: str) -> int:
    """Read a size such as ``4MB``, ``512KB`` or ``1048576`` as bytes (1 MB = 2**20 bytes)."""
    match = _SIZE.fullmatch(text.strip().lower())
    if match is None:
        raise UsageError(f"invalid size {text!r}: use e.g. 4MB, 512KB or a number of bytes")
    size = int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])
    if size < 1024:
        raise UsageError(f"size {text!r} is too small: at least 1KB")
    return size


_TOP_KEYS = {
    "interval": "a duration such as 90s, 15m or 1h",
    "jitter": "a duration such as 30s",
    "concurrency": "an integer from 1 to 64",
    "timeout": "seconds, a positive number",
    "retries": "an integer from 0 to 10",
    "play_interval": "seconds between Google Play requests, from 0 to 60",
    "max_body": "a size such as 4MB, the most a response may hold once decompressed",
    "raw_per_day": "a size such as 4MB, or 0: failed bodies kept per store and day",
    "raw_total": "a size such as 64MB, or 0: failed bodies kept in all",
    "charts": "a list of [[charts]] tables",
    "public": "true or false: serve readers you do not know (see --public)",
    "public_sql": "true or false: in public mode, allow arbitrary SQL all the same",
}
_CHART_KEYS = {
    "store": "apple or play",
    "chart": "top-free, top-paid or top-grossing",
    "device": "iphone or ipad (App Store only)",
    "genre": "a store category id, as text",
    "countries": '"all" or a list of storefront codes',
    "depth": "an integer, the number of ranks",
}


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and check a TOML config file; return its settings with durations in seconds."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read config {path}: {error.strerror}") from None
    except UnicodeDecodeError as error:
        raise UsageError(f"config {path} is not UTF-8 text: {error.reason}") from None
    except tomllib.TOMLDecodeError as error:
        raise UsageError(f"config {path} is not valid TOML: {error}") from None
    _check_keys(data, _TOP_KEYS, f"config {path}")
    settings: dict[str, Any] = {}
    readers = {
        "interval": parse_interval,
        "jitter": parse_duration,
        "max_body": parse_size,
        "raw_per_day": parse_cap,
        "raw_total": parse_cap,
    }
    for key, read in readers.items():
        if key in data:
            text = _typed(data, key, str, path)
            try:
                settings[key] = read(text)
            except UsageError as error:
                raise UsageError(f"config {path}: '{key}': {error}") from None
    settings.update(_numbers(data, path))
    for key in ("public", "public_sql"):
        if key in data:
            settings[key] = _typed(data, key, bool, path)
    if "charts" in data:
        charts = data["charts"]
        if not isinstance(charts, list) or not charts:
            raise UsageError(f"config {path}: 'charts' must be {_TOP_KEYS['charts']}")
        settings["charts"] = tuple(
            _chart(item, f"{path}: charts[{i}]") for i, item in enumerate(charts)
        )
    return settings


def _numbers(data: dict[str, Any], path: str | Path) -> dict[str, Any]:
    limits: dict[str, tuple[type, float, float]] = {
        "concurrency": (int, 1, 64),
        "timeout": (float, 0.1, 3600),
        "retries": (int, 0, 10),
        "play_interval": (float, 0, 60),
    }
    found = {}
    for key, (kind, low, high) in limits.items():
        if key in data:
            value = data[key]
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or (kind is int and not isinstance(value, int))
                or not low <= value <= high
            ):
                raise UsageError(f"config {path}: '{key}' must be {_TOP_KEYS[key]}, not {value!r}")
            found[key] = value
    return found


def _chart(item: Any, where: str) -> ChartSpec:
    if not isinstance(item, dict):
        raise UsageError(f"config {where} must be a table")
    _check_keys(item, _CHART_KEYS, f"config {where}")
    countries = item.get("countries", "all")
    if countries != "all" and not (
        isinstance(countries, list) and countries and all(isinstance(c, str) for c in countries)
    ):
        raise UsageError(f"config {where}: 'countries' must be {_CHART_KEYS['countries']}")
    depth = item.get("depth")
    if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int)):
        raise UsageError(f"config {where}: 'depth' must be {_CHART_KEYS['depth']}")
    return ChartSpec(
        store=_typed(item, "store", str, where, "apple"),
        chart=_typed(item, "chart", str, where, "top-free"),
        device=_typed(item, "device", str, where, None),
        genre=_typed(item, "genre", str, where, None),
        countries=None if countries == "all" else tuple(countries),
        depth=depth,
    )


def _typed(
    data: dict[str, Any], key: str, kind: type, where: str | Path, default: Any = None
) -> Any:
    value = data.get(key, default)
    if value is not None and not isinstance(value, kind):
        allowed = {**_TOP_KEYS, **_CHART_KEYS}[key]
        raise UsageError(f"config {where}: '{key}' must be {allowed}, not {value!r}")
    return value


def _check_keys(data: dict[str, Any], allowed: dict[str, str], where: str) -> None:
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise UsageError(
            f"{where}: unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed keys are {', '.join(allowed)}"
        )
