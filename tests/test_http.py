"""The one HTTP client: retries, politeness and the bounds of every request.

Each test drives monitor.http.send through httpx.MockTransport, whose handler plays
the store.
"""

from __future__ import annotations

import asyncio
import gzip
import time
import zlib
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from monitor import __version__
from monitor.config import FetchPolicy
from monitor.errors import (
    HTTPStatusError,
    InvalidFeed,
    RateLimited,
    Redirected,
    Timeout,
    TooLarge,
    TransportError,
)
from monitor.http import USER_AGENT, RetryBudget, build_client, parse_retry_after, send

FAST = FetchPolicy(retries=3, backoff=0.01, max_retry_after=1, timeout=1, max_body=2**20)


def run(responses, policy=FAST, gate=None, budget=None, url="http://store/x"):
    """Send one request through a client whose transport answers from a script.

    Return what send() returned or raised, and the requests the transport saw.
    """
    seen = []

    async def handler(request):
        seen.append(request)
        answer = responses[len(seen) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer

    async def go():
        async with build_client(policy, httpx.MockTransport(handler)) as client:
            return await send(client, client.build_request("GET", url), policy, gate, budget)

    try:
        return asyncio.run(go()), seen
    except Exception as error:
        return error, seen


def answer(body, status=200, **headers):
    """A response as a network transport gives it: a body still to be read."""
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(body))


class Trickle(httpx.AsyncByteStream):
    """A body sent one byte at a time, slowly."""

    def __init__(self, body: bytes, pause: float) -> None:
        self.body, self.pause = body, pause

    async def __aiter__(self):
        for byte in self.body:
            await asyncio.sleep(self.pause)
            yield bytes([byte])


class Endless(httpx.AsyncByteStream):
    """A body that never ends, counting what was read of it."""

    def __init__(self) -> None:
        self.sent = 0

    async def __aiter__(self):
        while True:
            self.sent += 65536
            yield b" " * 65536


def test_transient_failures_are_retried_until_success():
    got, seen = run(
        [
            httpx.ConnectError("refused"),
            httpx.Response(503),
            httpx.Response(429, headers={"Retry-After": "0"}),
            answer(b"ok"),
        ]
    )
    assert got.body == b"ok" and got.status == 200
    assert len(seen) == 4
    assert seen[0].headers["User-Agent"] == USER_AGENT
    assert f"monitor/{__version__}" in USER_AGENT


def test_a_client_error_is_not_retried():
    error, seen = run([httpx.Response(404)])
    assert isinstance(error, HTTPStatusError)
    assert "HTTP 404 from http://store/x after 1 attempt(s)" in str(error)
    assert (error.http_status, error.kind) == (404, "http_status")
    assert len(seen) == 1


def test_retries_give_up_with_the_last_status():
    error, seen = run([httpx.Response(502)] * 4)
    assert isinstance(error, HTTPStatusError)
    assert "HTTP 502 from http://store/x after 4 attempt(s)" in str(error)
    assert len(seen) == 4


def test_a_429_is_a_rate_limit():
    error, _ = run([httpx.Response(429)] * 4)
    assert isinstance(error, RateLimited)
    assert (error.http_status, error.kind) == (429, "rate_limited")


def test_timeouts_give_up_with_a_timeout():
    error, seen = run([httpx.ReadTimeout("slow")] * 4)
    assert isinstance(error, Timeout) and error.kind == "timeout"
    assert "timed out" in str(error) and "after 4 attempt(s)" in str(error)
    assert len(seen) == 4


def test_a_trickled_body_fails_at_the_deadline_not_per_read():
    # Every byte comes well within httpx's per-read timeout; the whole does not.
    policy = FetchPolicy(retries=0, timeout=0.5)
    started = time.monotonic()
    error, _ = run([httpx.Response(200, stream=Trickle(b"x" * 100, 0.05))], policy)
    assert isinstance(error, Timeout)
    assert "no whole answer within 0.5s" in str(error)
    assert time.monotonic() - started < 1.5


def test_a_body_over_the_cap_is_not_read_further():
    endless = Endless()
    error, _ = run([httpx.Response(200, stream=endless)])
    assert isinstance(error, TooLarge) and error.kind == "too_large"
    assert endless.sent <= 2**20 + 65536


def test_an_announced_size_over_the_cap_is_refused_unread():
    endless = Endless()
    response = httpx.Response(200, headers={"Content-Length": str(10 * 2**20)}, stream=endless)
    error, _ = run([response])
    assert isinstance(error, TooLarge)
    assert "announces 10,485,760 bytes" in str(error)
    assert endless.sent == 0


def test_a_gzip_bomb_is_stopped_at_the_cap():
    bomb = gzip.compress(b" " * (64 * 2**20))  # 64 MiB in about 64 KB
    response = answer(bomb, **{"Content-Encoding": "gzip"})
    error, _ = run([response])
    assert isinstance(error, TooLarge)
    assert "once decompressed" in str(error)


def test_stacked_encodings_are_refused():
    body = gzip.compress(gzip.compress(b"{}"))
    response = answer(body, **{"Content-Encoding": "gzip, gzip"})
    error, _ = run([response])
    assert isinstance(error, InvalidFeed)
    assert "unsupported Content-Encoding 'gzip, gzip'" in str(error)


def test_gzip_and_deflate_bodies_are_decoded():
    for encoding, body in (("gzip", gzip.compress(b'{"a": 1}')), ("deflate", zlib.compress(b"{}"))):
        response = answer(body, **{"Content-Encoding": encoding})
        got, _ = run([response])
        assert got.body == zlib.decompress(body, 47), encoding


def test_a_body_labelled_gzip_that_is_not_is_invalid():
    response = answer(b'{"feed": 1}', **{"Content-Encoding": "gzip"})
    error, _ = run([response])
    assert isinstance(error, InvalidFeed)
    assert "labelled gzip but does not decode" in str(error)


def test_a_redirect_within_the_origin_is_followed():
    got, seen = run(
        [
            httpx.Response(302, headers={"Location": "/moved/x"}),
            answer(b"ok"),
        ]
    )
    assert got.body == b"ok"
    assert [str(r.url) for r in seen] == ["http://store/x", "http://store/moved/x"]


@pytest.mark.parametrize(
    "location", ["http://elsewhere/x", "https://store/x", "http://store:8080/x"]
)
def test_a_redirect_to_another_origin_is_not_followed(location):
    error, seen = run([httpx.Response(301, headers={"Location": location})])
    assert isinstance(error, Redirected) and error.kind == "redirect"
    assert f"redirected to another origin, {location}; not followed" in str(error)
    assert len(seen) == 1


def test_a_redirect_loop_ends():
    error, seen = run([httpx.Response(302, headers={"Location": "/x"})] * 10)
    assert isinstance(error, Redirected)
    assert "redirected more than 5 times" in str(error)
    assert len(seen) == 6


def test_retry_after_in_seconds_and_as_a_date():
    assert parse_retry_after("7") == 7.0
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    assert 25 <= parse_retry_after(later) <= 30
    assert parse_retry_after("soon") is None
    assert parse_retry_after("²") is None
    assert parse_retry_after(None) is None


def test_a_retry_after_longer_than_allowed_fails_at_once():
    started = time.monotonic()
    error, seen = run([httpx.Response(429, headers={"Retry-After": "3600"})])
    assert isinstance(error, RateLimited)
    assert "asked to wait 3600s, more than the 1s allowed" in str(error)
    assert len(seen) == 1
    assert time.monotonic() - started < 1


def test_waits_stop_when_the_sweeps_budget_is_spent():
    budget = RetryBudget(0.3)
    error, seen = run([httpx.Response(503, headers={"Retry-After": "0.2"})] * 4, budget=budget)
    # Retry-After is whole seconds or a date: "0.2" is neither, so backoff applies...
    assert isinstance(error, HTTPStatusError)
    error, seen = run([httpx.Response(503, headers={"Retry-After": "1"})] * 4, budget=budget)
    # ...and a 1 s wait does not fit in what is left of 0.3 s.
    assert "the sweep's 0.3s of waiting to retry are spent" in str(error)
    assert len(seen) == 1


def test_waiting_to_retry_does_not_hold_the_gate():
    gate = asyncio.Semaphore(1)
    held_while_waiting = []

    async def handler(request):
        if request.url.path == "/slow":
            return httpx.Response(429, headers={"Retry-After": "1"})
        return answer(b"ok")

    async def go():
        async with build_client(FAST, httpx.MockTransport(handler)) as client:
            slow = asyncio.create_task(
                send(client, client.build_request("GET", "http://store/slow"), FAST, gate)
            )
            await asyncio.sleep(0.2)  # the slow one is waiting for its retry
            held_while_waiting.append(gate.locked())
            fast = await send(client, client.build_request("GET", "http://store/fast"), FAST, gate)
            slow.cancel()
            return fast

    assert asyncio.run(go()).body == b"ok"
    assert held_while_waiting == [False]


def test_a_connection_error_is_a_transport_error():
    error, _ = run([httpx.ConnectError("refused")] * 4)
    assert isinstance(error, TransportError) and error.kind == "transport"
    assert "request to http://store/x failed (refused) after 4 attempt(s)" in str(error)
