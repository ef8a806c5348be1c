"""A request whose reader hangs up is dropped, not answered to no one.

Datasette goes on with a request after its client has gone: its queries wait for a
thread, or for their turn (monitor.turns), and then run. A reader who sends requests
and hangs up at once would so build a queue that every other reader waits behind, for
as long as the requests it left would take. Here each request listens for its client's
hang-up while it is answered, and is cancelled when it comes: a query still waiting for
a thread or a turn is then never run. One already running ends within the time limit,
and holds its turn until then (monitor.turns).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

# Requests with no body to read: the reader's next message can only be its hang-up.
_BODILESS = ("GET", "HEAD")
_EMPTY = {"type": "http.request", "body": b"", "more_body": False}
_GONE = {"type": "http.disconnect"}


class Hangups:
    """ASGI middleware: cancel a request's handling once its client has hung up. Pages
    alone (GET, HEAD): a request with a body (a note saved) passes as it is."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in _BODILESS:
            await self.app(scope, receive, send)
            return
        gone = asyncio.Event()
        answer = asyncio.ensure_future(self.app(scope, _bodiless(gone), send))
        listener = asyncio.ensure_future(_listen(receive, gone, answer))
        try:
            await answer
        except asyncio.CancelledError:
            if not gone.is_set():  # cancelled from outside, not for a hang-up
                raise
        finally:
            listener.cancel()
            # A server that failed to give a message has nothing more to give: the
            # request went on without it.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener


def _bodiless(gone: asyncio.Event) -> Callable[[], Awaitable[dict[str, Any]]]:
    """The messages a page's request is given: its empty body, then, once its reader has
    gone, the hang-up (to work that outlives the request, as a costly query does)."""
    given = False

    async def receive() -> dict[str, Any]:
        nonlocal given
        if not given:
            given = True
            return _EMPTY
        await gone.wait()
        return _GONE

    return receive


async def _listen(receive: Any, gone: asyncio.Event, answer: Any) -> None:
    """Wait for the reader's hang-up, and cancel the request when it comes. A body sent
    with a page's request is left unread, as the server leaves it: that hang-up goes
    unseen, and the request ends as ever."""
    while (message := await receive())["type"] == "http.request":
        if message.get("more_body"):
            return
    gone.set()
    answer.cancel()
