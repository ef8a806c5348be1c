"""The one place that builds the HTTP client and decides when to retry."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import httpx

from monitor import __version__
from monitor.config import FetchPolicy
from monitor.errors import HTTPStatusError, TransportError

USER_AGENT = f"monitor/{__version__} (app-store ranking monitor; python-httpx)"
_RETRY_STATUSES = {429, 500, 502, 503, 504}


def build_client(
    policy: FetchPolicy, transport: httpx.AsyncBaseTransport | None = None
) -> httpx.AsyncClient:
    """Build the client every fetch shares: timeouts, limits and the User-Agent."""
    return httpx.AsyncClient(
        transport=transport,
        timeout=httpx.Timeout(policy.timeout),
        limits=httpx.Limits(max_connections=policy.concurrency),
        headers={"User-Agent": USER_AGENT},
        follow_redirects=True,
    )


async def send(
    client: httpx.AsyncClient, request: httpx.Request, policy: FetchPolicy
) -> httpx.Response:
    """Send a request, retrying transient failures; return the first 2xx answer."""
    for attempt in range(policy.retries + 1):
        last = attempt == policy.retries
        try:
            response = await client.send(request)
        except httpx.TransportError as error:
            if last:
                raise TransportError(_describe(error, request, attempt + 1)) from None
            await asyncio.sleep(_backoff(policy, attempt))
            continue
        if response.is_success:
            return response
        if response.status_code not in _RETRY_STATUSES or last:
            raise HTTPStatusError(
                f"HTTP {response.status_code} from {request.url} after {attempt + 1} attempt(s)",
                http_status=response.status_code,
            )
        await asyncio.sleep(_retry_delay(response, policy, attempt))
    raise AssertionError("unreachable: the last attempt returns or raises")


def _describe(error: httpx.TransportError, request: httpx.Request, attempts: int) -> str:
    kind = "timed out" if isinstance(error, httpx.TimeoutException) else "failed"
    detail = str(error) or type(error).__name__
    return f"request to {request.url} {kind} after {attempts} attempt(s): {detail}"


def _backoff(policy: FetchPolicy, attempt: int) -> float:
    """Exponential backoff with full jitter."""
    return random.uniform(0, policy.backoff * 2**attempt)


def _retry_delay(response: httpx.Response, policy: FetchPolicy, attempt: int) -> float:
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is None:
        return _backoff(policy, attempt)
    return min(retry_after, policy.max_retry_after)


def parse_retry_after(value: str | None) -> float | None:
    """Read a Retry-After header given in seconds or as an HTTP date."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


class Pacer:
    """Let one request through at a time, starting each at least interval seconds apart."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._lock = asyncio.Lock()
        self._next = 0.0

    async def __aenter__(self) -> None:
        await self._lock.acquire()
        delay = self._next - asyncio.get_running_loop().time()
        if delay > 0:
            await asyncio.sleep(delay)

    async def __aexit__(self, *exc: object) -> None:
        self._next = asyncio.get_running_loop().time() + self.interval
        self._lock.release()
