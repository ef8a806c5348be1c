"""The configuration a collector and a service run with: frozen, typed, with its defaults.

``monitor.settings`` fills it from options, the environment and a TOML file; here are
its parts and the readers of durations and sizes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
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
class FetchPolicy:
    """How politely and how persistently to fetch, and the bounds of every response."""

    concurrency: int = 8
    rate: float = 0.0  # requests started a second to each host; 0: no limit
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
class EventRules:
    """Which events a sweep records beyond each chart's changes (monitor.events)."""

    # The storefront counts at No. 1 (or in the top 10) whose crossing is a milestone.
    milestones: tuple[int, ...] = (1, 10, 25, 50, 100)


@dataclass(frozen=True)
class Settings:
    """Everything a sweep needs besides the charts themselves."""

    endpoints: Mapping[str, str]  # each store's base URLs, by Endpoint.key
    policy: FetchPolicy = field(default_factory=FetchPolicy)
    raw: RawCaps = field(default_factory=RawCaps)
    events: EventRules = field(default_factory=EventRules)


@dataclass(frozen=True)
class Schedule:
    """When to sweep: every interval seconds, each run delayed by up to jitter seconds."""

    interval: float = 3600.0
    jitter: float = 0.0


@dataclass(frozen=True)
class Access:
    """Who Datasette serves."""

    public: bool = False  # readers unknown: no arbitrary SQL, raw bodies or downloads
    public_sql: bool = False  # arbitrary SQL all the same


@dataclass(frozen=True)
class ChartSpec:
    """One configured chart, in all or some storefronts; no store means the default one."""

    store: str | None = None
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


def format_duration(seconds: float) -> str:
    """Write seconds as parse_duration reads them, e.g. ``1h``, ``1h30m`` or ``0s``."""
    parts, left = [], seconds
    for unit, size in reversed(_UNITS.items()):
        count, left = divmod(left, size)
        if count:
            parts.append(f"{count:g}{unit}")
    if left:
        parts.append(f"{left:g}s")
    return "".join(parts) or "0s"


def format_size(size: int) -> str:
    """Write bytes as parse_size reads them, in the largest whole unit: ``4MB``, ``0``."""
    for unit in ("GB", "MB", "KB"):
        scale = _SIZE_UNITS[unit.lower()]
        if size and size % scale == 0:
            return f"{size // scale}{unit}"
    return str(size)


@dataclass(frozen=True)
class Alert:
    """One destination: where to post, how, signed with what, and which events."""

    name: str
    url: str
    secret: str = field(repr=False)
    format: str = "json"
    kinds: tuple[str, ...] = ()  # none: every kind
    apps: tuple[str, ...] = ()  # store ids; none: every app
    countries: tuple[str, ...] = ()  # storefront codes; none: every one (and milestones)
    charts: tuple[str, ...] = ()
    threshold: int | None = None  # milestones below it are not sent

    def wants(self, event: Mapping[str, Any]) -> bool:
        """Tell whether this destination is sent the event."""
        return (
            (not self.kinds or event["kind"] in self.kinds)
            and (not self.apps or event["app_id"] in self.apps)
            and (not self.countries or event["country"] in self.countries)
            and (not self.charts or event["chart"] in self.charts)
            and (
                self.threshold is None
                or event["threshold"] is None
                or event["threshold"] >= self.threshold
            )
        )


@dataclass(frozen=True)
class Config:
    """Everything monitor runs with; charts None means the default selection."""

    settings: Settings
    schedule: Schedule
    access: Access
    charts: tuple[ChartSpec, ...] | None
    alerts: tuple[Alert, ...] = ()  # webhook destinations (monitor.alerts)
