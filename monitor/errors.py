"""The errors monitor raises, each carrying the context a user needs."""

from __future__ import annotations


class MonitorError(Exception):
    """Base class of every error monitor reports to its users."""


class UsageError(MonitorError):
    """A selection or setting that cannot be collected."""


class FetchError(MonitorError):
    """A chart could not be fetched or did not hold a valid list."""

    def __init__(self, message: str, http_status: int | None = None) -> None:
        super().__init__(message)
        self.http_status = http_status


class TransportError(FetchError):
    """The connection failed or timed out."""


class HTTPStatusError(FetchError):
    """The store answered with an error status."""


class InvalidFeed(FetchError):
    """The response was not a valid chart: wrong shape, wrong chart, or a bad list."""


class RateLimited(FetchError):
    """The store answered, but with a rate-limit error instead of the chart."""


class Blocked(FetchError):
    """The store answered with a consent or captcha page instead of the chart."""
