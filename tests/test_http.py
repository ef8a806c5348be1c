"""Retries and politeness of the one HTTP client, with httpx.MockTransport."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx

from monitor import __version__
from monitor.config import FetchPolicy
from monitor.errors import HTTPStatusError, TransportError
from monitor.http import USER_AGENT, build_client, parse_retry_after, send

FAST = FetchPolicy(retries=3, backoff=0.01, max_retry_after=0.05, timeout=1)


def run(responses, policy=FAST):
    """Send one request through a client whose transport answers from a script.

    Return what send() returned or raised, and the requests the transport saw.
    """
    seen = []

    def handler(request):
        seen.append(request)
        answer = responses[len(seen) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def go():
        async with build_client(policy, httpx.MockTransport(handler)) as client:
            return await send(client, client.build_request("GET", "http://store/x"), policy)

    try:
        return asyncio.run(go()), seen
    except Exception as error:
        return error, seen


def test_transient_failures_are_retried_until_success():
    response, seen = run(
        [
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "1"}),
            httpx.Response(200, content=b"ok"),
        ]
    )
    assert response.content == b"ok"
    assert len(seen) == 4
    assert seen[0].headers["User-Agent"] == USER_AGENT
    assert f"monitor/{__version__}" in USER_AGENT


def test_a_client_error_is_not_retried():
    error, seen = run([httpx.Response(404)])
    assert isinstance(error, HTTPStatusError)
    assert "HTTP 404 from http://store/x after 1 attempt(s)" in str(error)
    assert error.http_status == 404
    assert len(seen) == 1


def test_retries_give_up_with_the_last_status():
    error, seen = run([httpx.Response(502)] * 4)
    assert isinstance(error, HTTPStatusError)
    assert "HTTP 502 from http://store/x after 4 attempt(s)" in str(error)
    assert len(seen) == 4


def test_timeouts_give_up_with_a_transport_error():
    error, seen = run([httpx.ReadTimeout("slow")] * 4)
    assert isinstance(error, TransportError)
    assert "timed out after 4 attempt(s)" in str(error)
    assert len(seen) == 4


def test_retry_after_in_seconds_and_as_a_date():
    assert parse_retry_after("7") == 7.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(later) <= 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after(None) is None


def test_retry_after_is_honoured_up_to_a_bound():
    # FAST caps Retry-After at 0.05 s: a server asking for 100 s must not stall the sweep.
    started = time.monotonic()
    response, seen = run(
        [httpx.Response(429, headers={"Retry-After": "100"}), httpx.Response(200, content=b"ok")]
    )
    assert response.content == b"ok" and len(seen) == 2
    assert time.monotonic() - started < 5
