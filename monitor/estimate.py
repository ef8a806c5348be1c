"""How long a sweep will take, said before it starts, from the politeness settings.

Each host's charts go to it at most ``concurrency`` at a time and ``rate`` a second,
each host through a gate of its own (monitor.politeness). Where the last sweep of a store
ran under the same limits, the rate each host reached then (sweep_hosts) says how fast
it answers; otherwise each answer is taken to need ASSUMED_ANSWER seconds. Hosts are
asked side by side, so the slowest host's time is the sweep's.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlite_utils import Database

from monitor import schema
from monitor.charts import ChartRequest
from monitor.config import Settings, format_duration
from monitor.http import host_of
from monitor.sources import STORES

# Seconds one answer takes, where no sweep under the same limits has measured it.
ASSUMED_ANSWER = 0.5
# A sweep expected to take this many seconds or more is announced before it starts.
WORTH_SAYING = 60.0


@dataclass(frozen=True)
class HostEstimate:
    """One host's part of a sweep: its charts, the rate expected, and on what basis."""

    store: str
    host: str
    charts: int
    rate: float  # requests a second
    basis: str

    @property
    def seconds(self) -> float:
        """The time its charts take at that rate."""
        return self.charts / self.rate


@dataclass(frozen=True)
class Estimate:
    """A sweep's expected duration, host by host."""

    hosts: list[HostEstimate]

    @property
    def seconds(self) -> float:
        """The slowest host's time: the sweep's."""
        return max((host.seconds for host in self.hosts), default=0.0)

    def describe(self) -> str:
        """Say it in one line, e.g. before a sweep starts."""
        parts = "; ".join(
            f"{h.store} {h.host}: {h.charts:,} charts at about {h.rate:.1f}/s ({h.basis})"
            for h in self.hosts
        )
        charts = sum(h.charts for h in self.hosts)
        return f"a sweep of {charts:,} charts takes about {_rounded(self.seconds)}: {parts}"

    def overrun(self, interval: float) -> str | None:
        """Say so where the sweep cannot fit in the interval between sweeps."""
        if self.seconds <= interval:
            return None
        return (
            f"a sweep takes about {_rounded(self.seconds)}, longer than the interval of "
            f"{format_duration(interval)}: each sweep will start late, as the one before "
            "ends. Raise --concurrency or --rate, or select fewer charts."
        )


def for_sweep(
    db_path: str | Path, requests: Sequence[ChartRequest], settings: Settings
) -> Estimate:
    """Estimate the sweep of these charts into that database with these settings."""
    db = schema.open_db(db_path)
    try:
        return estimate(db, requests, settings)
    finally:
        db.close()


def estimate(db: Database, requests: Sequence[ChartRequest], settings: Settings) -> Estimate:
    """Estimate the sweep of these charts with these settings."""
    counts = _charts_by_host(requests, settings)
    return Estimate(
        [_host_estimate(db, store, host, n, settings) for (store, host), n in counts.items()]
    )


def _charts_by_host(
    requests: Sequence[ChartRequest], settings: Settings
) -> Counter[tuple[str, str]]:
    """Count the charts each store's host will be asked for, as the collector asks.

    The host is found once per chart kind (store, chart, device and genre), taken to be
    the same in every storefront: building all of the App Store's 48,300 requests would
    hold up each start by seconds.
    """
    kinds = Counter((req.store, req.chart, req.device, req.genre) for req in requests)
    first = {(req.store, req.chart, req.device, req.genre): req for req in reversed(requests)}

    async def count() -> Counter[tuple[str, str]]:
        async with httpx.AsyncClient() as client:  # builds the requests: nothing is sent
            hosts: Counter[tuple[str, str]] = Counter()
            for kind, charts in kinds.items():
                hosts[(kind[0], _host(client, first[kind], settings))] += charts
            return hosts

    return asyncio.run(count())


def _host(client: httpx.AsyncClient, req: ChartRequest, settings: Settings) -> str:
    return host_of(STORES[req.store].http_request(client, req, settings.endpoints))


def _host_estimate(
    db: Database, store: str, host: str, charts: int, settings: Settings
) -> HostEstimate:
    politeness = STORES[store].politeness(settings.policy)
    limits = politeness.describe()
    measured = _measured_rate(db, store, host, limits)
    if measured:
        return HostEstimate(store, host, charts, measured, f"{limits}, as the last sweep measured")
    rate = politeness.concurrency / (ASSUMED_ANSWER + politeness.gap)
    if politeness.rate:
        rate = min(rate, politeness.rate)
    basis = f"{limits}, taking {ASSUMED_ANSWER:g} s an answer"
    return HostEstimate(store, host, charts, rate, basis)


def _measured_rate(db: Database, store: str, host: str, limits: str) -> float | None:
    """The rate the host reached in its store's latest sweep, if under the same limits."""
    row = db.execute(
        "SELECT rate FROM sweep_hosts WHERE store = ? AND host = ? AND limits = ? AND "
        "sweep_id = (SELECT MAX(sweep_id) FROM sweep_hosts WHERE store = ?) AND requests > 1",
        [store, host, limits, store],
    ).fetchone()
    return row[0] if row and row[0] else None


def _rounded(seconds: float) -> str:
    """A duration to the minute past a few minutes, to the second below."""
    return format_duration(round(seconds / 60) * 60 if seconds >= 300 else round(seconds))
