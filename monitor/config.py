"""Settings, resolved once from options and the environment and passed down frozen."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_DB = "data/rankings.db"


@dataclass(frozen=True)
class Endpoints:
    """Base URLs of the stores, so that tests and mirrors can stand in for them."""

    apple_rss: str = "https://rss.marketingtools.apple.com"
    itunes: str = "https://itunes.apple.com"
    play: str = "https://play.google.com"


@dataclass(frozen=True)
class FetchPolicy:
    """How politely and how persistently to fetch."""

    concurrency: int = 8
    timeout: float = 30.0
    retries: int = 3
    backoff: float = 1.0
    max_retry_after: float = 120.0


@dataclass(frozen=True)
class Settings:
    """Everything a sweep needs besides the charts themselves."""

    endpoints: Endpoints = field(default_factory=Endpoints)
    policy: FetchPolicy = field(default_factory=FetchPolicy)
