"""One sweep: fetch charts concurrently, validate each, store each in its own transaction.

Every chart of a sweep ends as an observation or as an error row saying why, and the
sweep's own row says how it ended: finished, stopped (a signal), or failed (storage
could not go on, e.g. the disk is full). A sweep whose process died is marked
interrupted by the next one.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlite_utils import Database

from monitor import schema, storage
from monitor.charts import ChartRequest, FetchResult
from monitor.config import RawCaps, Settings
from monitor.errors import FetchError, MonitorError, Unexpected
from monitor.http import Answer, RetryBudget, build_client, send
from monitor.locks import sweep_lock
from monitor.sources import STORES
from monitor.sources.payload import utc_iso
from monitor.validate import check_listing

log = logging.getLogger("monitor")


class SweepNotRecorded(MonitorError):
    """The database could not record a sweep's start or its end (e.g. the disk is full)."""


@dataclass
class SweepReport:
    """The counts a sweep closes with, and how it ended."""

    sweep_id: int
    pending: dict[ChartRequest, None]  # the charts with no row yet, in order
    ok: int = 0
    entries: int = 0
    seconds: float = 0.0
    failures: list[FetchResult] = field(default_factory=list)
    status: str = "running"
    reason: str | None = None
    left_kind: str | None = None  # the error kind of the charts the sweep ended without

    @property
    def failed(self) -> int:
        """How many charts failed."""
        return len(self.failures)

    def summary(self) -> str:
        """Say in one line how the sweep went."""
        ending = "" if self.status == "finished" else f" {self.status} ({self.reason})"
        return (
            f"sweep {self.sweep_id}{ending}: {self.ok} charts ok, {self.failed} failed, "
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
    Raise SweepNotRecorded if the database cannot record the sweep's start or end.
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
    try:
        sweep_id = storage.begin_sweep(db, now())
    except sqlite3.Error as error:
        raise SweepNotRecorded(f"cannot record a new sweep: {_storage_problem(error)}") from None
    report = SweepReport(sweep_id, dict.fromkeys(requests))
    try:
        await _fetch_all(db, report, settings, on_result, stop)
    except sqlite3.Error as error:
        _end(report, "failed", _storage_problem(error), _storage_kind(error))
    except Exception as error:
        # Not foreseen: say so in the sweep's record, then let it surface.
        _end(report, "failed", f"unexpected {type(error).__name__}: {error}", "sweep_failed")
        _close(db, report, clock)
        raise
    else:
        if report.pending:
            _end(report, "stopped", getattr(stop, "reason", "stopped"), "stopped")
        else:
            _end(report, "finished", None, None)
    _close(db, report, clock)
    return report


async def _fetch_all(
    db: Database,
    report: SweepReport,
    settings: Settings,
    on_result: Callable[[FetchResult], None],
    stop: threading.Event | None,
) -> None:
    """Fetch the pending charts concurrently, storing each as it arrives."""
    # Each store has its own politeness, for the whole sweep: concurrent, or paced.
    gates = {name: store.gate(settings.policy) for name, store in STORES.items()}
    budget = RetryBudget(settings.policy.max_wait)
    trim_log = storage.LogTrimmer()
    async with build_client(settings.policy) as client:
        tasks = [
            asyncio.create_task(fetch(client, gates[req.store], budget, req, settings))
            for req in report.pending
        ]
        watcher = asyncio.create_task(_cancel_when(stop, tasks))
        try:
            for task in asyncio.as_completed(tasks):
                try:
                    result = await task
                except asyncio.CancelledError:
                    continue
                _store(db, report, result, settings.raw)
                trim_log(db)
                on_result(result)
        finally:
            # Whatever ended the loop, no fetch outlives it, and each closes its response.
            for pending in [*tasks, watcher]:
                pending.cancel()
            await asyncio.gather(*tasks, watcher, return_exceptions=True)


async def _cancel_when(
    stop: threading.Event | None, tasks: list[asyncio.Task[FetchResult]]
) -> None:
    """Cancel the sweep's fetches once stop is set; each observation stays whole."""
    if stop is None:
        return
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()


class _Started:
    """Wrap a gate, noting when it first let the chart's request through."""

    def __init__(self, gate: AbstractAsyncContextManager[Any]) -> None:
        self.gate = gate
        self.at: str | None = None

    async def __aenter__(self) -> None:
        await self.gate.__aenter__()
        self.at = self.at or now()

    async def __aexit__(self, *exc: Any) -> None:
        await self.gate.__aexit__(*exc)


async def fetch(
    client: httpx.AsyncClient,
    gate: AbstractAsyncContextManager[Any],
    budget: RetryBudget,
    req: ChartRequest,
    settings: Settings,
) -> FetchResult:
    """Fetch, parse and validate one chart; any failure becomes an error result."""
    store = STORES[req.store]
    started = _Started(gate)
    answer: Answer | None = None
    try:
        request = store.http_request(client, req, settings.endpoints)
        answer = await send(client, request, settings.policy, started, budget)
        fetched_at = now()
        listing = check_listing(req, store.parse(req, answer.body))
    # The chart's boundary: whatever one store's answer does to the code that reads it,
    # it ends this chart as a failure row, never the sweep. (CancelledError, a stop, is
    # not an Exception and passes.)
    except Exception as error:
        failure = error if isinstance(error, FetchError) else _unforeseen(req, error)
        return FetchResult(
            req,
            started.at or now(),
            now(),
            error=str(failure),
            error_kind=failure.kind,
            http_status=answer.status if answer else failure.http_status,
            raw=answer.body if answer else None,
        )
    return FetchResult(
        req, started.at or fetched_at, fetched_at, listing=listing, http_status=answer.status
    )


def _unforeseen(req: ChartRequest, error: Exception) -> FetchError:
    log.error("unforeseen error on %s", req.label(), exc_info=error)
    return Unexpected(f"unexpected {type(error).__name__}: {error}"[:1000])


def _store(db: Database, report: SweepReport, result: FetchResult, caps: RawCaps) -> None:
    storage.record(db, report.sweep_id, result, caps)
    del report.pending[result.req]
    if result.listing is None:
        report.failures.append(result)
    else:
        report.ok += 1
        report.entries += len(result.listing.entries)


def _storage_kind(error: sqlite3.Error) -> str:
    return "disk_full" if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL else "storage"


def _storage_problem(error: sqlite3.Error) -> str:
    """Say plainly what went wrong in storage; a full disk by that name."""
    if _storage_kind(error) == "disk_full":
        return f"disk full: {error}"
    return f"storage failed: {error}"


def _end(report: SweepReport, status: str, reason: str | None, left_kind: str | None) -> None:
    report.status, report.reason, report.left_kind = status, reason, left_kind


def _close(db: Database, report: SweepReport, clock: float) -> None:
    """Record the charts left without a row, and how the sweep ended.

    Where the database cannot take the charts' rows (a full disk), the sweep's row alone
    is tried; where it cannot take that either, SweepNotRecorded carries the news to
    the log and the exit code.
    """
    report.seconds = time.monotonic() - clock
    left = list(report.pending)
    finished_at = now()
    if left:
        _record_left(db, report, left, finished_at)
    end = storage.SweepEnd(
        finished_at, report.status, report.reason, report.ok, report.failed, report.entries
    )
    try:
        storage.finish_sweep(db, report.sweep_id, end)
    except sqlite3.Error as error:
        raise SweepNotRecorded(
            f"sweep {report.sweep_id} {report.status} ({report.reason}), and its record could "
            f"not be completed: {_storage_problem(error)}"
        ) from None


def _record_left(db: Database, report: SweepReport, left: list[ChartRequest], at: str) -> None:
    """Give each chart the sweep ended without a row saying why, where there is room."""
    missed = "not fetched" if report.status == "stopped" else "not fetched or not stored"
    why = f"{missed}: the sweep {report.status} ({report.reason})"
    report.reason = f"{report.reason}; {len(left)} charts {missed}"
    try:
        storage.record_unfetched(db, report.sweep_id, left, at, why, report.left_kind or "")
    except sqlite3.Error as error:
        report.reason += ", with no row of their own" + (
            "" if _storage_kind(error) == "disk_full" else f" ({_storage_problem(error)})"
        )


def sweep_once(
    db_path: str | Path,
    requests: Sequence[ChartRequest],
    settings: Settings,
    on_result: Callable[[FetchResult], None],
    on_wait: Callable[[str], None],
    stop: threading.Event | None = None,
) -> SweepReport:
    """Take one sweep under the database's sweep lock, so that sweeps never interleave.

    Afterwards the write-ahead log is truncated, waiting for readers if need be, so
    that it stays small however many readers Datasette has.
    """
    with sweep_lock(db_path, on_wait, stop):
        db = schema.open_db(db_path)
        try:
            report = sweep(db, requests, settings, on_result, stop)
            _checkpoint(db)
            return report
        finally:
            db.close()


def _checkpoint(db: Database) -> None:
    try:
        busy, frames, done = storage.checkpoint(db, wait=schema.BUSY_TIMEOUT_MS / 1000)
    except sqlite3.Error as error:
        log.warning("could not checkpoint the write-ahead log: %s", error)
        return
    if busy:
        log.warning("write-ahead log not truncated: readers held it (%s of %s)", done, frames)
