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
from typing import Any


class Hangups:
    """ASGI middleware: cancel a request's handling once its client has hung up."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # One message waits at most: a body the request does not read is not read from
        # its client either (its hang-up then goes unseen; its request ends as ever).
        messages: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1)
        answer = asyncio.ensure_future(self.app(scope, messages.get, send))
        listener = asyncio.ensure_future(_listen(receive, messages, answer))
        try:
            await answer
        except asyncio.CancelledError:
            if not listener.done():  # cancelled from outside, not for a hang-up
                raise
        finally:
            listener.cancel()
            # A server that failed to give a message has nothing more to give: the
            # request went on without it.
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener


async def _listen(receive: Any, messages: asyncio.Queue[dict[str, Any]], answer: Any) -> None:
    """Pass the client's messages on to the request; on its hang-up, cancel the request."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            answer.cancel()
            return
        await messages.put(message)
