"""How a sweep treats each host: requests in flight, requests a second, and slowing down.

Every request to a host passes its Gate. The gate lets at most ``concurrency`` requests
be in flight, starts at most ``rate`` a second, and leaves ``gap`` seconds of quiet
after each answer. When the host answers 429 (too many requests) or 503 (unavailable),
the whole sweep slows down for that host: the requests it lets in flight are halved
(multiplicative decrease), at most once per round of requests. Each answer that is not
one of those lets one more in flight per round again (additive increase), up to
``concurrency``. A host that stops complaining thus gets its full speed back gradually,
the way TCP shares a congested link.

Below one request in flight (a host that complains to one request at a time, as Google
Play's gate is), the window goes on halving, down to MIN_WINDOW, and becomes a wait: a
window of w leaves (1/w - 1) times the last request's duration of quiet after its
answer (at most MAX_QUIET seconds), so that the host gets w requests per answer's
time. Each answer then grows it by half, back to one in flight. An answer that carries
a rate-limit error in its body (Google Play's PlayGatewayError) complains as 429 does.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from fractions import Fraction

# The answers that say the host wants fewer requests.
SLOW_DOWN = frozenset({429, 503})
MIN_WINDOW = 1 / 16
MAX_QUIET = 60.0


@dataclass(frozen=True)
class Politeness:
    """A store's limits per host: requests in flight, and requests started a second."""

    concurrency: int
    rate: float | None = None  # None: no limit beyond concurrency
    # Seconds of quiet the host sees after each answer before the next request starts.
    gap: float = 0.0

    def describe(self) -> str:
        """Say the limits in a few words."""
        rate = f", at most {self.rate:g} a second" if self.rate else ""
        gap = f", {self.gap:g}s after each answer" if self.gap else ""
        return f"{self.concurrency} in flight{rate}{gap}"


@dataclass(frozen=True)
class HostReport:
    """What one host's gate saw in a sweep."""

    store: str
    host: str
    limits: str
    requests: int
    seconds: float  # from the first request's start to the last one's start
    slowdowns: int
    fewest_in_flight: float  # the lowest the window fell to: below 1, a share of the time

    @property
    def rate(self) -> float:
        """The requests started a second, over the host's part of the sweep."""
        return (self.requests - 1) / self.seconds if self.seconds > 0 else 0.0

    def describe(self) -> str:
        """Say in one line what the host got, e.g. for the sweep's summary."""
        fewest = self.fewest_in_flight
        to = (
            f"{int(fewest)} in flight"
            if fewest >= 1
            else f"1 in flight, {Fraction(fewest).limit_denominator(1000)} of the time"
        )
        slowed = f", slowed down {self.slowdowns} times (to {to})" if self.slowdowns else ""
        return (
            f"{self.store} {self.host}: {self.requests:,} requests, {self.rate:.1f}/s "
            f"({self.limits}){slowed}"
        )


class Gate:
    """One host's gate for one sweep (see the module's docstring)."""

    def __init__(self, store: str, host: str, politeness: Politeness) -> None:
        self.store = store
        self.host = host
        self.politeness = politeness
        self.window = float(politeness.concurrency)  # requests let in flight now
        self.in_flight = 0
        self._turn = asyncio.Condition()
        self._next_start = 0.0  # loop time
        self._slowed_at = float("-inf")  # when the window was last halved
        self.requests = 0
        self.slowdowns = 0
        self.fewest: float = politeness.concurrency
        self._first: float | None = None
        self._last = 0.0  # when the last request started

    async def enter(self) -> float:
        """Wait for a turn in flight and for the rate; return when the request started."""
        async with self._turn:
            await self._turn.wait_for(lambda: self.in_flight < max(1, int(self.window)))
            self.in_flight += 1
        try:
            await self._pace()
        except BaseException:
            await self._leave()
            raise
        started = asyncio.get_running_loop().time()
        self._first = started if self._first is None else self._first
        self._last = started
        self.requests += 1
        return started

    async def _pace(self) -> None:
        """Start no sooner than the rate allows after the request before, nor than the
        quiet after the last answer ends."""
        now = asyncio.get_running_loop().time()
        start = max(now, self._next_start)
        if self.politeness.rate:
            self._next_start = start + 1 / self.politeness.rate
        if start > now:
            await asyncio.sleep(start - now)

    async def leave(self, started: float, error: BaseException | None) -> None:
        """End a request that started at ``started``, learning from its answer."""
        now = asyncio.get_running_loop().time()
        status = getattr(error, "http_status", None)
        if status in SLOW_DOWN or getattr(error, "kind", None) == "rate_limited":
            self._complain(started)
        elif error is None or status is not None:  # the host answered, and did not complain
            self._grow()
        self._quiet(max(self.politeness.gap, self._wait(now - started)), now)
        await self._leave()

    def _complain(self, started: float) -> None:
        """Slow down for a complaint about the request that started at ``started``:
        at most once per round, as the requests already in flight at the last
        slow-down say the same thing again."""
        if started < self._slowed_at:
            return
        now = asyncio.get_running_loop().time()
        self._slowed_at = now
        self.window = max(MIN_WINDOW, self.window / 2)
        self.slowdowns += 1
        self.fewest = min(self.fewest, self.window if self.window < 1 else int(self.window))
        self._quiet(self._wait(now - started), now)

    def _wait(self, answer_seconds: float) -> float:
        """The quiet a window below one in flight asks for after an answer."""
        if self.window >= 1:
            return 0.0
        return min(MAX_QUIET, (1 / self.window - 1) * answer_seconds)

    def _quiet(self, seconds: float, now: float) -> None:
        """Let the next request start no sooner than ``seconds`` from now."""
        if seconds:
            self._next_start = max(self._next_start, now + seconds)

    def _grow(self) -> None:
        if self.window < 1:
            self.window = min(1.0, self.window * 1.5)
        else:
            self.window = min(self.politeness.concurrency, self.window + 1 / self.window)

    async def _leave(self) -> None:
        async with self._turn:
            self.in_flight -= 1
            self._turn.notify_all()

    def report(self) -> HostReport:
        """What this host got in the sweep."""
        seconds = self._last - self._first if self._first is not None else 0.0
        return HostReport(
            self.store,
            self.host,
            self.politeness.describe(),
            self.requests,
            seconds,
            self.slowdowns,
            self.fewest,
        )


class Gates:
    """The sweep's gates, one per store and host, made as each host is first asked."""

    def __init__(self) -> None:
        self._by_host: dict[tuple[str, str], Gate] = {}

    def for_host(self, store: str, host: str, politeness: Politeness) -> Gate:
        """Return the store's host's gate, making it with these limits the first time."""
        key = (store, host)
        if key not in self._by_host:
            self._by_host[key] = Gate(store, host, politeness)
        return self._by_host[key]

    def reports(self) -> list[HostReport]:
        """What each host got, in the order they were first asked."""
        return [gate.report() for gate in self._by_host.values()]
