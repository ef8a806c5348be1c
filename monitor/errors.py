"""The errors monitor raises, each carrying the context a user needs.

Every error that ends one chart's fetch has a ``kind``: a short word stored in
``fetches.error_kind``, so that failures can be counted and faceted by cause.
"""

from __future__ import annotations

# The kinds of the rows a sweep writes for the charts it ended without: the sweep's own
# record says why, so they are not failures of a storefront.
SWEEP_KINDS = ("stopped", "disk_full", "storage", "sweep_failed")


class MonitorError(Exception):
    """Base class of every error monitor reports to its users."""


class UsageError(MonitorError):
    """A selection or setting that cannot be collected."""


class NotMonitorDatabase(MonitorError):
    """A file that is not a SQLite database, or not one of monitor's."""


class FetchError(MonitorError):
    """A chart could not be fetched or did not hold a valid list."""

    kind = "error"

    def __init__(
        self, message: str, http_status: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.http_status = http_status
        self.retry_after = retry_after  # seconds the store asked to wait, if it said


class TransportError(FetchError):
    """The connection failed."""

    kind = "transport"


class Timeout(TransportError):
    """The request did not complete within its deadline."""

    kind = "timeout"


class HTTPStatusError(FetchError):
    """The store answered with an error status."""

    kind = "http_status"


class RateLimited(FetchError):
    """The store answered, but with a rate-limit error instead of the chart."""

    kind = "rate_limited"


class TooLarge(FetchError):
    """The response body, decompressed, was larger than the cap."""

    kind = "too_large"


class Redirected(FetchError):
    """The store redirected to another origin, or in a loop."""

    kind = "redirect"


class InvalidFeed(FetchError):
    """The response was not a valid chart: wrong shape, wrong chart, or a bad list."""

    kind = "invalid_feed"


class Drifted(InvalidFeed):
    """The response's structure is not where the parser expects it: the format changed."""

    kind = "drift"


class Blocked(FetchError):
    """The store answered with a consent or captcha page instead of the chart."""

    kind = "blocked"


class Unexpected(FetchError):
    """Something no other error foresaw went wrong with one chart."""

    kind = "unexpected"


class Stopped(MonitorError):
    """A signal asked monitor to stop before the work at hand began."""
