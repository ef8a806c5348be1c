"""One sweep: fetch charts concurrently, validate each, store each in its own transaction."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlite_utils import Database

from monitor import schema, storage
from monitor.charts import ChartRequest, FetchResult
from monitor.config import Settings
from monitor.errors import FetchError
from monitor.http import Pacer, build_client, send
from monitor.locks import sweep_lock
from monitor.sources import SOURCES
from monitor.sources.payload import utc_iso
from monitor.validate import check_listing


@dataclass
class SweepReport:
    """The counts a sweep closes with."""

    sweep_id: int
    ok: int = 0
    entries: int = 0
    seconds: float = 0.0
    skipped: int = 0
    failures: list[FetchResult] = field(default_factory=list)

    @property
    def failed(self) -> int:
        """How many charts failed."""
        return len(self.failures)

    def summary(self) -> str:
        """Say in one line how the sweep went."""
        stopped = f", {self.skipped} not fetched (stopped)" if self.skipped else ""
        return (
            f"sweep {self.sweep_id}: {self.ok} charts ok, {self.failed} failed{stopped}, "
            f"{self.entries:,} ranked entries recorded in {self.seconds:.1f}s"
        )


def now() -> str:
    """Return the current UTC time as ``YYYY-MM-DDTHH:MM:SSZ``."""
    return utc_iso(datetime.now(UTC))


def sweep(
    db: Database,
    requests: Iterable[ChartRequest],
    settings: Settings,
    on_result: Callable[[FetchResult], None] = lambda result: None,
    stop: threading.Event | None = None,
) -> SweepReport:
    """Fetch every requested chart and store each result as it arrives.

    Setting ``stop`` abandons the fetches still in flight; what was stored stays.
    """
    return asyncio.run(_sweep(db, list(requests), settings, on_result, stop))


async def _sweep(
    db: Database,
    requests: list[ChartRequest],
    settings: Settings,
    on_result: Callable[[FetchResult], None],
    stop: threading.Event | None,
) -> SweepReport:
    clock = time.monotonic()
    report = SweepReport(storage.begin_sweep(db, now()))
    # Each store has its own politeness: Apple takes concurrent requests, Play is paced.
    gates: dict[str, AbstractAsyncContextManager[Any]] = {
        "apple": asyncio.Semaphore(settings.policy.concurrency),
        "play": Pacer(settings.policy.play_interval),
    }
    async with build_client(settings.policy) as client:
        tasks = [
            asyncio.create_task(fetch(client, gates[req.store], req, settings)) for req in requests
        ]
        watcher = asyncio.create_task(_cancel_when(stop, tasks)) if stop else None
        for task in asyncio.as_completed(tasks):
            try:
                result = await task
            except asyncio.CancelledError:
                report.skipped += 1
                continue
            _store(db, report, result)
            on_result(result)
        if watcher:
            watcher.cancel()
    report.seconds = time.monotonic() - clock
    storage.finish_sweep(db, report.sweep_id, now(), report.ok, report.failed, report.entries)
    return report


async def _cancel_when(stop: threading.Event, tasks: list[asyncio.Task[FetchResult]]) -> None:
    """Cancel the sweep's fetches once stop is set; each observation stays whole."""
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()


async def fetch(
    client: httpx.AsyncClient,
    gate: AbstractAsyncContextManager[Any],
    req: ChartRequest,
    settings: Settings,
) -> FetchResult:
    """Fetch, parse and validate one chart; a failure becomes an error result."""
    source = SOURCES[req.store]
    async with gate:
        started_at = now()
        try:
            response = await send(
                client, source.http_request(client, req, settings.endpoints), settings.policy
            )
        except FetchError as error:
            return FetchResult(
                req, started_at, now(), error=str(error), http_status=error.http_status
            )
    fetched_at = now()
    try:
        listing = check_listing(req, source.parse(req, response.content))
    except FetchError as error:
        return FetchResult(
            req,
            started_at,
            fetched_at,
            error=str(error),
            http_status=response.status_code,
            raw=response.content,
        )
    return FetchResult(
        req, started_at, fetched_at, listing=listing, http_status=response.status_code
    )


def _store(db: Database, report: SweepReport, result: FetchResult) -> None:
    storage.record(db, report.sweep_id, result)
    if result.listing is None:
        report.failures.append(result)
    else:
        report.ok += 1
        report.entries += len(result.listing.entries)


def sweep_once(
    db_path: str | Path,
    requests: list[ChartRequest],
    settings: Settings,
    on_result: Callable[[FetchResult], None],
    on_wait: Callable[[str], None],
    stop: threading.Event | None = None,
) -> SweepReport:
    """Take one sweep under the database's sweep lock, so that sweeps never interleave."""
    with sweep_lock(db_path, on_wait, stop):
        db = schema.open_db(db_path)
        try:
            return sweep(db, requests, settings, on_result, stop)
        finally:
            db.close()
