"""The one place that builds the HTTP client and bounds every request a sweep sends.

A request has a deadline for the whole of it (connecting, headers and body), a cap on
its body after decompression, and redirects only within the origin that was asked.
Waiting to retry never holds a concurrency slot, and a sweep's waits share one budget.
"""

from __future__ import annotations

import asyncio
import random
import re
from contextlib import AbstractAsyncContextManager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from monitor import __version__
from monitor.body import read_body
from monitor.config import FetchPolicy
from monitor.errors import (
    FetchError,
    HTTPStatusError,
    RateLimited,
    Redirected,
    Timeout,
    TransportError,
)

USER_AGENT = f"monitor/{__version__} (app-store ranking monitor; python-httpx)"
MAX_REDIRECTS = 5
_RETRY_STATUSES = {429, 500, 502, 503, 504}
# Errors that a later attempt may not meet; the others (a redirect away, a body too
# large or invalid) would come back the same.
_RETRYABLE = (TransportError, HTTPStatusError, RateLimited)
_DEFAULT_PORTS = {"http": 80, "https": 443}
_SECONDS = re.compile(r"[0-9]+")


@dataclass(frozen=True)
class Answer:
    """A successful response, read whole within the limits."""

    status: int
    body: bytes


class RetryBudget:
    """The seconds a sweep may spend, in all, waiting before retries."""

    def __init__(self, seconds: float) -> None:
        self.total = self.left = seconds

    def take(self, delay: float) -> bool:
        """Spend delay seconds of the budget; return False, spending nothing, if it is short."""
        if delay > self.left:
            return False
        self.left -= delay
        return True


def host_of(request: httpx.Request) -> str:
    """The host (and port, if any) a request goes to: what a politeness gate is for."""
    return request.url.netloc.decode()


def build_client(
    policy: FetchPolicy, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """Build the client every fetch shares: timeouts, limits and the User-Agent."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(policy.timeout),
        # No pool limit of its own: each host's gate (monitor.politeness) limits the
        # requests in flight to it, and the sweep's workers all of them. A pool smaller
        # than the gates' sum made requests a gate had let through wait for a connection
        # inside their timeout (the App Store's two hosts take 8 each).
        limits=httpx.Limits(max_connections=None),
        # Only the encodings monitor.body decodes within the size cap.
        headers={"User-Agent": USER_AGENT, "Accept-Encoding": "gzip, deflate"},
        follow_redirects=False,
    )


async def send(
    client: httpx.AsyncClient,
    request: httpx.Request,
    policy: FetchPolicy,
    gate: AbstractAsyncContextManager[Any] | None = None,
    budget: RetryBudget | None = None,
) -> Answer:
    """Send a request, retrying transient failures; return the first 2xx answer.

    Each attempt holds the gate (the store's concurrency or pacing); the waits between
    attempts do not, and they are drawn from the budget.
    """
    budget = budget or RetryBudget(float("inf"))
    for attempt in range(1, policy.retries + 2):
        try:
            async with gate or nullcontext():
                return await _attempt(client, request, policy)
        except _RETRYABLE as error:
            delay = _retry_delay(error, policy, attempt)
            if delay is None or attempt > policy.retries:
                raise _gave_up(error, attempt) from None
            if delay > policy.max_retry_after or not budget.take(delay):
                raise _gave_up(error, attempt, _why_not_waiting(delay, policy, budget)) from None
        await asyncio.sleep(delay)
    raise AssertionError("unreachable: the last attempt returns or raises")


async def _attempt(
    client: httpx.AsyncClient, request: httpx.Request, policy: FetchPolicy
) -> Answer:
    """Make one attempt, redirects included, within the request's deadline."""
    try:
        async with asyncio.timeout(policy.timeout):
            response = await _follow_home(client, request)
            try:
                _check_status(response, request)
                return Answer(response.status_code, await read_body(response, policy.max_body))
            finally:
                await response.aclose()
    except (TimeoutError, httpx.TimeoutException):
        raise Timeout(
            f"request to {request.url} timed out (no whole answer within {policy.timeout:g}s)"
        ) from None
    except httpx.TransportError as error:
        detail = str(error) or type(error).__name__
        raise TransportError(f"request to {request.url} failed ({detail})") from None


async def _follow_home(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """Send the request, following redirects only within its own origin."""
    current = request
    for _ in range(MAX_REDIRECTS + 1):
        response = await client.send(current, stream=True)
        if response.next_request is None:
            return response
        await response.aclose()
        current = response.next_request
        if _origin(current.url) != _origin(request.url):
            raise Redirected(
                f"{request.url} redirected to another origin, {current.url}; not followed",
                http_status=response.status_code,
            )
    raise Redirected(
        f"{request.url} redirected more than {MAX_REDIRECTS} times (last to {current.url})",
        http_status=response.status_code,
    )


def _origin(url: httpx.URL) -> tuple[str, str, int | None]:
    return url.scheme, url.host, url.port or _DEFAULT_PORTS.get(url.scheme)


def _check_status(response: httpx.Response, request: httpx.Request) -> None:
    """Raise for an answer that is not a 2xx, keeping what a retry needs."""
    if response.is_success:
        return
    status = response.status_code
    error_type = RateLimited if status == 429 else HTTPStatusError
    raise error_type(
        f"HTTP {status} from {request.url}",
        http_status=status,
        retry_after=parse_retry_after(response.headers.get("Retry-After")),
    )


def _retry_delay(error: FetchError, policy: FetchPolicy, attempt: int) -> float | None:
    """Return how long to wait before retrying after error, or None if it is final."""
    if not isinstance(error, TransportError) and error.http_status not in _RETRY_STATUSES:
        return None
    return _backoff(policy, attempt) if error.retry_after is None else error.retry_after


def _gave_up(error: FetchError, attempts: int, why: str = "") -> FetchError:
    """Say, in the error, how many attempts were made, and why no more."""
    error.args = (f"{error.args[0]} after {attempts} attempt(s){why}",)
    return error


def _why_not_waiting(delay: float, policy: FetchPolicy, budget: RetryBudget) -> str:
    if delay > policy.max_retry_after:
        return f"; asked to wait {delay:g}s, more than the {policy.max_retry_after:g}s allowed"
    return f"; the sweep's {budget.total:g}s of waiting to retry are spent"


def _backoff(policy: FetchPolicy, attempt: int) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, policy.backoff * 2 ** (attempt - 1))


def parse_retry_after(value: str | None) -> float | None:
    """Read a Retry-After header given in seconds or as an HTTP date."""
    if not value:
        return None
    if _SECONDS.fullmatch(value.strip()):
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())
