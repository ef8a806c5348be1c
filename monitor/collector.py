"""One sweep: fetch charts concurrently, validate each, store each whole as it arrives.

Every chart of a sweep ends as an observation or as an error row saying why, and the
sweep's own row says how it ended: finished, stopped (a signal), or failed (storage
could not go on, e.g. the disk is full). A sweep whose process died is marked
interrupted by the next one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from sqlite_utils import Database

from monitor import reserve, schema, storage
from monitor.charts import ChartRequest, FetchResult
from monitor.config import RawCaps, Settings
from monitor.errors import FetchError, MonitorError, Unexpected
from monitor.http import Answer, RetryBudget, build_client, host_of, send
from monitor.locks import sweep_lock
from monitor.politeness import Gate, Gates, HostReport
from monitor.sources import STORES
from monitor.sources.payload import utc_iso
from monitor.validate import check_listing, whole_text
from monitor.writes import writing

log = logging.getLogger("monitor")

# Results fetched and waiting for the writer thread, at most; and the most it stores in
# one transaction.
RESULTS_WAITING = 64
GROUP_COMMIT = 32
# Workers per request a store lets in flight: a chart waiting to retry holds a worker,
# not a slot, so the other workers keep the slots busy meanwhile.
WORKERS_PER_SLOT = 4


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
    hosts: list[HostReport] = field(default_factory=list)  # what each host got
    status: str = "running"
    reason: str | None = None
    left_kind: str | None = None  # the error kind of the charts the sweep ended without

    @property
    def failed(self) -> int:
        """How many charts failed."""
        return len(self.failures)

    def politeness(self) -> list[str]:
        """Say, a line per host, what each got: its limits, rate and slow-downs."""
        return [host.describe() for host in self.hosts]

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
    room = reserve.keep(db)
    sweep_id, full = _begin(db)
    report = SweepReport(sweep_id, dict.fromkeys(requests))
    try:
        if full:  # the reserve's room is the sweep's ending: none is left for charts
            raise full
        if room:  # else what room there is goes to the charts' rows, none fetched
            await _fetch_all(db, report, settings, on_result, stop)
    except sqlite3.Error as error:
        _end(report, "failed", _storage_problem(error), _storage_kind(error))
    except Exception as error:
        # Not foreseen: say so in the sweep's record, then let it surface.
        _end(report, "failed", f"unexpected {type(error).__name__}: {error}", "sweep_failed")
        _close(db, report, clock, settings.events.milestones)
        raise
    else:
        if not room:
            _end(report, "failed", reserve.NO_ROOM, "disk_full")
        elif report.pending:
            _end(report, "stopped", getattr(stop, "reason", "stopped"), "stopped")
        else:
            _end(report, "finished", None, None)
    _close(db, report, clock, settings.events.milestones)
    return report


def _begin(db: Database) -> tuple[int, sqlite3.Error | None]:
    """Record a new sweep; where the disk is full, in the reserve's room, and then
    return the disk's error too."""
    try:
        return storage.begin_sweep(db, now()), None
    except sqlite3.Error as error:
        problem = error
        if _storage_kind(error) == "disk_full" and reserve.release(db):
            try:
                return storage.begin_sweep(db, now()), error
            except sqlite3.Error as again:
                problem = again
        raise SweepNotRecorded(f"cannot record a new sweep: {_storage_problem(problem)}") from None


async def _fetch_all(
    db: Database,
    report: SweepReport,
    settings: Settings,
    on_result: Callable[[FetchResult], None],
    stop: threading.Event | None,
) -> None:
    """Fetch the pending charts concurrently, storing each as it arrives.

    Each store's charts are fetched by a few workers per request its politeness lets
    through at once (WORKERS_PER_SLOT). The results wait in a bounded queue for the
    writer thread, which owns the database for the sweep: fetching never waits for the
    disk unless the queue is full, and memory stays bounded however many charts the
    sweep has.
    """
    gates = Gates()
    budget = RetryBudget(settings.policy.max_wait)
    results = _Results(RESULTS_WAITING)
    async with build_client(settings.policy) as client:
        workers = [
            asyncio.create_task(_fetch_each(client, gates, budget, charts, settings, results))
            for name, charts in _by_store(report.pending)
            for _ in range(STORES[name].politeness(settings.policy).concurrency * WORKERS_PER_SLOT)
        ]
        watcher = asyncio.create_task(_cancel_when(stop, workers))
        closer = asyncio.create_task(_close_when_done(workers, results))
        try:
            await _store_each(db, report, results, settings.raw, on_result)
        finally:
            results.stored_all.set()
            # Whatever ended the storing, no fetch outlives it, and each closes its response.
            for pending in [*workers, watcher, closer]:
                pending.cancel()
            await asyncio.gather(*workers, watcher, closer, return_exceptions=True)
            report.hosts = gates.reports()
    _raise_what_a_worker_met(workers)


def _raise_what_a_worker_met(workers: list[asyncio.Task[None]]) -> None:
    """Raise the error that ended a worker, if one did: its charts were not stopped, and
    the sweep must not say they were."""
    for worker in workers:
        error = None if worker.cancelled() else worker.exception()
        if error is not None:
            raise error


def _by_store(requests: Iterable[ChartRequest]) -> list[tuple[str, Iterator[ChartRequest]]]:
    """Each store's charts, in order, as one iterator its workers share."""
    stores: dict[str, list[ChartRequest]] = {}
    for req in requests:
        stores.setdefault(req.store, []).append(req)
    return [(store, iter(charts)) for store, charts in stores.items()]


async def _fetch_each(
    client: httpx.AsyncClient,
    gates: Gates,
    budget: RetryBudget,
    charts: Iterator[ChartRequest],
    settings: Settings,
    results: _Results,
) -> None:
    """Fetch the store's next chart until there is none, handing each result on."""
    for req in charts:
        await _hand_on(results, await fetch(client, gates, budget, req, settings))


class _Results(asyncio.Queue[FetchResult | None]):
    """The results waiting for the writer (None: there are no more), and whether the
    writer has stored all it will."""

    def __init__(self, size: int) -> None:
        super().__init__(size)
        self.stored_all = asyncio.Event()


async def _hand_on(results: _Results, result: FetchResult) -> None:
    """Queue a result for the writer. A stop that comes while it waits for room still
    lets it in while the writer goes on, which stores every result queued before its
    end: a chart fetched is not recorded as not fetched. Once the writer has ended (a
    failure of storage), nothing waits."""
    queued = asyncio.ensure_future(results.put(result))
    try:
        await asyncio.shield(queued)
    except asyncio.CancelledError:
        ended = asyncio.ensure_future(results.stored_all.wait())
        try:
            await asyncio.wait({queued, ended}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            queued.cancel()
            ended.cancel()
        raise


async def _close_when_done(workers: list[asyncio.Task[None]], results: _Results) -> None:
    """Once every worker has ended, fetched or stopped, tell the writer there is no more."""
    await asyncio.gather(*workers, return_exceptions=True)
    await results.put(None)


async def _store_each(
    db: Database,
    report: SweepReport,
    results: _Results,
    caps: RawCaps,
    on_result: Callable[[FetchResult], None],
) -> None:
    """Store the results on the writer thread as they come: each time, those waiting, in
    one transaction (a group commit), so that many small charts share one write.

    A write is never abandoned halfway: this coroutine is not cancelled by a stop, and
    the pool is waited for whatever happens, so the report always matches the file.
    """
    loop = asyncio.get_running_loop()
    trim_log = storage.LogTrimmer()
    done = False
    with ThreadPoolExecutor(1, thread_name_prefix="monitor-writer") as writer:
        while not done:
            group = [await results.get()]
            while not results.empty() and len(group) < GROUP_COMMIT:
                group.append(results.get_nowait())
            done = group[-1] is None
            taken = [result for result in group if result is not None]
            stored = await loop.run_in_executor(writer, _store, db, report, taken, caps, trim_log)
            for result in stored:
                on_result(result)


async def _cancel_when(stop: threading.Event | None, tasks: list[asyncio.Task[None]]) -> None:
    """Cancel the sweep's fetches once stop is set; each observation stays whole."""
    if stop is None:
        return
    while not stop.is_set():
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()


class _Turn:
    """A chart's way through its host's gate, attempt by attempt, noting when the gate
    first let it through.

    The gate hears of an answer only once it has been read (``heard``), so that a
    rate limit in its body (Google Play's) is a complaint as a 429 is, not an answer
    that lets the host have more requests in flight.
    """

    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.at: str | None = None
        self._started = 0.0
        self._unread = False  # an answer came, and the gate has not heard of it yet

    async def __aenter__(self) -> None:
        self._started = await self.gate.enter()
        self.at = self.at or now()

    async def __aexit__(self, kind: Any, error: BaseException | None, trace: Any) -> None:
        if error is None:
            self._unread = True
        else:
            await self.gate.leave(self._started, error)

    async def heard(self, error: FetchError | None) -> None:
        """Leave the gate for an answer that has been read: ``error`` is what reading it
        found, if anything."""
        if self._unread:
            self._unread = False
            refused = error if error is not None and error.kind == "rate_limited" else None
            await self.gate.leave(self._started, refused)


async def fetch(
    client: httpx.AsyncClient,
    gates: Gates,
    budget: RetryBudget,
    req: ChartRequest,
    settings: Settings,
) -> FetchResult:
    """Fetch, parse and validate one chart; any failure becomes an error result.

    Each attempt passes the gate of the store's host (monitor.politeness).
    """
    store = STORES[req.store]
    turn: _Turn | None = None
    answer: Answer | None = None
    try:
        request = store.http_request(client, req, settings.endpoints)
        gate = gates.for_host(req.store, host_of(request), store.politeness(settings.policy))
        turn = _Turn(gate)
        answer = await send(client, request, settings.policy, turn, budget)
        fetched_at = now()
        listing = check_listing(req, store.parse(req, answer.body))
    # The chart's boundary: whatever one store's answer does to the code that reads it,
    # it ends this chart as a failure row, never the sweep. (CancelledError, a stop, is
    # not an Exception and passes.)
    except Exception as error:
        failure = error if isinstance(error, FetchError) else _unforeseen(req, error)
        if turn is not None:
            await turn.heard(failure)
        return FetchResult(
            req,
            (turn and turn.at) or now(),
            now(),
            error=_readable(str(failure)),
            error_kind=failure.kind,
            http_status=answer.status if answer else failure.http_status,
            raw=answer.body if answer else None,
        )
    await turn.heard(None)
    return FetchResult(
        req, turn.at or fetched_at, fetched_at, listing=listing, http_status=answer.status
    )


def _unforeseen(req: ChartRequest, error: Exception) -> FetchError:
    log.error("unforeseen error on %s", req.label(), exc_info=error)
    return Unexpected(f"unexpected {type(error).__name__}: {error}")


# The most of an error's text kept: enough for any message, though it may quote what a
# store sent, which can be of any length.
ERROR_KEPT = 1_000


def _readable(error: str) -> str:
    """The error's text, bounded, and whole text whatever the store's answer held."""
    if len(error) > ERROR_KEPT:
        error = f"{error[:ERROR_KEPT]}… ({len(error):,} characters)"
    return whole_text(error)


def _store(
    db: Database,
    report: SweepReport,
    group: list[FetchResult],
    caps: RawCaps,
    trim_log: storage.LogTrimmer,
) -> list[FetchResult]:
    """Store a group of results in one transaction, count them in the report, and return
    them as stored; on the writer thread. Each result is whole, and the group is stored
    whole or not at all: a group that fails is tried again one result at a time.

    - On a database error (a full disk, say), as many are stored as there is room for,
      and the first that fails ends the sweep.
    - A result that storing cannot take for what it holds, whatever that is, is stored
      as that chart's failure, as a failure to read it would be.
    """
    try:
        _record(db, report.sweep_id, group, caps)
    except Exception as error:
        if len(group) > 1:
            return [stored for one in group for stored in _store(db, report, [one], caps, trim_log)]
        if isinstance(error, sqlite3.Error):
            raise
        group = [_unstorable(group[0], error)]
        _record(db, report.sweep_id, group, caps)
    for result in group:
        del report.pending[result.req]
        if result.listing is None:
            report.failures.append(result)
        else:
            report.ok += 1
            report.entries += len(result.listing.entries)
    trim_log(db)
    return group


def _record(db: Database, sweep_id: int, group: list[FetchResult], caps: RawCaps) -> None:
    with writing(db):
        for result in group:
            storage.record(db, sweep_id, result, caps)


def _unstorable(result: FetchResult, error: Exception) -> FetchResult:
    failure = _unforeseen(result.req, error)
    return dataclasses.replace(
        result,
        listing=None,
        error=_readable(f"could not be stored: {failure}"),
        error_kind=failure.kind,
        raw=None,
    )


def _storage_kind(error: sqlite3.Error) -> str:
    return "disk_full" if error.sqlite_errorcode & 0xFF == sqlite3.SQLITE_FULL else "storage"


def _storage_problem(error: sqlite3.Error) -> str:
    """Say plainly what went wrong in storage; a full disk by that name."""
    if _storage_kind(error) == "disk_full":
        return f"disk full: {error}"
    return f"storage failed: {error}"


def _end(report: SweepReport, status: str, reason: str | None, left_kind: str | None) -> None:
    report.status, report.reason, report.left_kind = status, reason, left_kind


def _close(db: Database, report: SweepReport, clock: float, milestones: Sequence[int]) -> None:
    """Record how the sweep ended, with a row for each chart it ended without.

    Where the disk is full, the reserve's room is given to this record (monitor.reserve).
    Where the database cannot take the charts' rows, the sweep's row alone is tried;
    where it cannot take that either, SweepNotRecorded carries the news to the log and
    the exit code.
    """
    report.seconds = time.monotonic() - clock
    if report.left_kind == "disk_full":
        reserve.release(db)
    left = _left(report, now())
    try:
        storage.finish_sweep(db, report.sweep_id, _sweep_end(report, left), milestones, left)
    except sqlite3.Error as error:
        if left is None:
            raise _not_recorded(report, error) from None
        report.reason = f"{report.reason}, with no row of their own" + (
            "" if _storage_kind(error) == "disk_full" else f" ({_storage_problem(error)})"
        )
        try:
            storage.finish_sweep(db, report.sweep_id, _sweep_end(report, None), milestones)
        except sqlite3.Error as again:
            raise _not_recorded(report, again) from None


def _left(report: SweepReport, at: str) -> storage.Unfetched | None:
    """The charts the sweep ended without, and why; the sweep's reason counts them."""
    if not report.pending:
        return None
    missed = "not fetched" if report.status == "stopped" else "not fetched or not stored"
    why = f"{missed}: the sweep {report.status} ({report.reason})"
    report.reason = f"{report.reason}; {len(report.pending)} charts {missed}"
    return storage.Unfetched(list(report.pending), at, why, report.left_kind or "")


def _sweep_end(report: SweepReport, left: storage.Unfetched | None) -> storage.SweepEnd:
    finished_at = left.at if left else now()
    return storage.SweepEnd(
        finished_at,
        report.status,
        report.reason,
        report.ok,
        report.failed,
        report.entries,
        report.hosts,
    )


def _not_recorded(report: SweepReport, error: sqlite3.Error) -> SweepNotRecorded:
    return SweepNotRecorded(
        f"sweep {report.sweep_id} {report.status} ({report.reason}), and its record could "
        f"not be completed: {_storage_problem(error)}"
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
