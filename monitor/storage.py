"""The write path: each observation whole in one transaction, after the network I/O
(the collector stores the results waiting together, in one).

See ``monitor.schema`` for how runs keep unchanged charts from growing the file.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from monitor import events
from monitor.charts import ChartRequest, Entry, FetchResult, Listing
from monitor.config import RawCaps
from monitor.politeness import HostReport
from monitor.schema import BUSY_TIMEOUT_MS, INTERRUPTED, LOG_LIMIT, OPEN, database_file
from monitor.writes import writing

RAW_LIMIT = 4 * 1024 * 1024
DEFAULT_CAPS = RawCaps()


def begin_sweep(db: Database, started_at: str) -> int:
    """Record the start of a sweep and return its id.

    A sweep still marked running was cut short by its process's end (``kill -9``, a
    crash, a power cut): only one sweep runs at a time, under the sweep lock.
    """
    with writing(db):
        db.execute(
            """UPDATE sweeps SET status = 'interrupted', reason = ?,
                 charts_ok = (SELECT COUNT(*) FROM snapshots s WHERE s.sweep_id = sweeps.id),
                 charts_failed = (SELECT COUNT(*) FROM attempts t
                                  WHERE t.sweep_id = sweeps.id AND t.status = 'error'),
                 entries = (SELECT coalesce(SUM(s.size), 0) FROM snapshots s
                            WHERE s.sweep_id = sweeps.id)
               WHERE status = 'running'""",
            [INTERRUPTED],
        )
        return _insert(db, "sweeps", {"started_at": started_at, "status": "running"})


@dataclass(frozen=True)
class SweepEnd:
    """How a sweep ended: its status and reason, and the counts it closes with."""

    finished_at: str
    status: str
    reason: str | None
    ok: int
    failed: int
    entries: int
    hosts: Sequence[HostReport] = ()  # what each host got


@dataclass(frozen=True)
class Unfetched:
    """The charts a sweep ended without, when, and why each has no data."""

    requests: list[ChartRequest]
    at: str
    error: str
    kind: str


def finish_sweep(
    db: Database,
    sweep_id: int,
    end: SweepEnd,
    thresholds: Sequence[int] = events.THRESHOLDS,
    left: Unfetched | None = None,
) -> None:
    """Record, in one transaction, a sweep's end (how it ended, why, and its counts) and
    a row for each chart it ended without; then, in a transaction of their own, the
    milestones it reached (monitor.events), which stay due if they cannot be recorded."""
    with writing(db):
        if left:
            _record_unfetched(db, sweep_id, left)
        db.table("sweeps").update(
            sweep_id,
            {
                "finished_at": end.finished_at,
                "status": end.status,
                "reason": end.reason,
                "charts_ok": end.ok,
                "charts_failed": end.failed,
                "entries": end.entries,
            },
        )
        db.table("sweep_hosts").insert_all(
            {
                **asdict(host),
                "sweep_id": sweep_id,
                "seconds": round(host.seconds, 3),
                "rate": round(host.rate, 3),
            }
            for host in end.hosts
        )
        db.table("milestones_due").insert({"sweep_id": sweep_id}, replace=True)
    events.record_due_milestones(db, thresholds)


def _record_unfetched(db: Database, sweep_id: int, left: Unfetched) -> None:
    for req in left.requests:
        chart_id = _chart_id(db, req)
        _insert_attempt(
            db, sweep_id, chart_id, left.at, status="error", error=left.error, error_kind=left.kind
        )


def checkpoint(db: Database, wait: float) -> tuple[int, int, int]:
    """Copy the write-ahead log into the database and truncate it, once readers allow.

    Wait at most ``wait`` seconds for the readers still in the log to move on. Return
    SQLite's answer: (busy, frames in the log, frames checkpointed).
    """
    db.execute(f"PRAGMA busy_timeout = {int(wait * 1000)}")
    try:
        busy, frames, done = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    finally:
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    return busy, frames, done


class LogTrimmer:
    """Truncate the write-ahead log between observations once it passes LOG_LIMIT.

    Readers that never pause keep SQLite from starting the log over, so it would grow
    with every write. Datasette ends every query within its time limit, so waiting a
    little for the readers in the log always finds a moment to truncate it. A reader
    that holds on longer (not one of Datasette's) is tried again only once as much
    more has been written, so the sweep does not wait on it chart after chart.
    """

    def __init__(self, wait: float = 2.0) -> None:
        self.wait = wait
        self.threshold = LOG_LIMIT

    def __call__(self, db: Database) -> None:
        """Truncate the log if it is past the threshold."""
        size = log_size(db)
        if size <= self.threshold:
            return
        busy, _, _ = checkpoint(db, self.wait)
        self.threshold = size + LOG_LIMIT if busy else LOG_LIMIT


def log_size(db: Database) -> int:
    """Return the bytes in the database's write-ahead log."""
    try:
        return Path(f"{database_file(db)}-wal").stat().st_size
    except FileNotFoundError:
        return 0


def record(
    db: Database, sweep_id: int, result: FetchResult, caps: RawCaps = DEFAULT_CAPS
) -> int | None:
    """Store one fetch in one transaction: a whole chart and its snapshot, which records
    the fetch too, or an error row.

    A failed response's body is kept within ``caps``. Return the snapshot id, or None
    for a failure.
    """
    raw = _pack(result.raw) if result.raw is not None else None  # compressed before the write lock
    with writing(db):
        chart_id = _chart_id(db, result.req)
        if result.listing is not None:
            return _observe(db, sweep_id, chart_id, result, result.listing)
        attempt_id = _insert_attempt(
            db,
            sweep_id,
            chart_id,
            result.started_at,
            status="error",
            http_status=result.http_status,
            error=result.error,
            error_kind=result.error_kind,
        )
        if raw is not None:
            _keep_raw(db, result.req.store, chart_id, attempt_id, result.started_at, raw, caps)
    return None


def _observe(
    db: Database, sweep_id: int, chart_id: int, result: FetchResult, listing: Listing
) -> int:
    """Store an observation: its snapshot, its runs, and its events against the chart's
    previous observation (monitor.events)."""
    previous = db.execute(
        "SELECT id, size FROM snapshots WHERE chart_id = ? ORDER BY id DESC LIMIT 1", [chart_id]
    ).fetchone()
    entries = listing.entries
    snapshot = {
        "chart_id": chart_id,
        "sweep_id": sweep_id,
        "fetched_at": result.fetched_at,
        "feed_updated": listing.updated,
        "depth": result.req.depth,
        "size": len(entries),
        "started_at": result.started_at,
        "http_status": result.http_status,
    }
    snapshot_id = _insert(db, "snapshots", snapshot)
    placed_before, placed_after = _advance_runs(
        db, result.req.store, chart_id, snapshot_id, entries
    )
    if previous is not None:
        before = events.Observed(previous[0], previous[1], placed_before)
        after = events.Observed(snapshot_id, len(entries), placed_after)
        events.record_changes(db, chart_id, sweep_id, before, after)
    return snapshot_id


def _insert_attempt(
    db: Database, sweep_id: int, chart_id: int, started_at: str, **outcome: Any
) -> int:
    row = {"sweep_id": sweep_id, "chart_id": chart_id, "started_at": started_at, **outcome}
    return _insert(db, "attempts", row)


def _pack(body: bytes) -> dict[str, Any]:
    """Compress a failed response, up to RAW_LIMIT bytes of it."""
    kept = body[:RAW_LIMIT]
    return {"size": len(body), "kept": len(kept), "body": zlib.compress(kept)}


def _keep_raw(
    db: Database,
    store: str,
    chart_id: int,
    attempt_id: int,
    started_at: str,
    raw: dict[str, Any],
    caps: RawCaps,
) -> None:
    """Keep a failed response: at most one a day for each chart, within the caps.

    A format change breaks every storefront every sweep; one sample a day is enough to
    study it. A store's bodies of a day stop at caps.per_store_day, and the oldest
    bodies of all make room once caps.total is reached.
    """
    size = len(raw["body"])
    recent = db.execute(
        """SELECT 1 FROM attempts t JOIN raw_responses r ON r.attempt_id = t.id
           WHERE t.chart_id = ? AND t.started_at >= strftime('%Y-%m-%dT%H:%M:%SZ', ?, '-1 day')
           LIMIT 1""",
        [chart_id, started_at],
    ).fetchone()
    if recent or size > caps.total or kept_today(db, store, started_at) + size > caps.per_store_day:
        return
    _make_room(db, caps.total - size)
    _insert(db, "raw_responses", {"attempt_id": attempt_id, **raw})


def kept_today(db: Database, store: str, at: str) -> int:
    """Return the compressed bytes of the store's bodies kept on the UTC day of ``at``."""
    return int(
        db.execute(
            """SELECT coalesce(SUM(length(r.body)), 0) FROM raw_responses r
               JOIN attempts t ON t.id = r.attempt_id JOIN charts c ON c.id = t.chart_id
               WHERE c.store = ? AND t.started_at >= substr(?, 1, 10)""",
            [store, at],
        ).fetchone()[0]
    )


def _make_room(db: Database, most: int) -> None:
    """Delete the oldest kept bodies until those left hold at most ``most`` bytes."""
    db.execute(
        """DELETE FROM raw_responses WHERE attempt_id IN (
             SELECT attempt_id FROM (
               SELECT attempt_id,
                      SUM(length(body)) OVER (ORDER BY attempt_id DESC) AS newer_and_this
               FROM raw_responses)
             WHERE newer_and_this > ?)""",
        [most],
    )


def _advance_runs(
    db: Database, store: str, chart_id: int, snapshot_id: int, entries: list[Entry]
) -> tuple[dict[str, events.Placed], dict[str, events.Placed]]:
    """Close the runs the new list no longer continues, and open runs for what is new.

    Return where the list before and the new one placed each app (monitor.events).
    """
    rows = db.execute(
        """SELECT r.rank, a.app_id, l.name, l.developer, a.icon_url, r.app, r.label
           FROM runs r JOIN apps a ON a.id = r.app JOIN labels l ON l.id = r.label
           WHERE r.chart_id = ? AND r.last_snapshot = ?""",
        [chart_id, OPEN],
    ).fetchall()
    current = {rank: (app_id, name, developer) for rank, app_id, name, developer, *_ in rows}
    icons = {app_id: icon for _, app_id, _, _, icon, *_ in rows}
    placed_before = {app_id: (rank, app, label) for rank, app_id, _, _, _, app, label in rows}
    held = {rank: (app, label) for rank, *_, app, label in rows}
    changed = {
        rank: entry
        for rank, entry in enumerate(entries, 1)
        if current.get(rank) != (entry.app_id, entry.name, entry.developer or "")
    }
    _close_runs(
        db,
        chart_id,
        snapshot_id,
        [rank for rank in current if rank in changed or rank > len(entries)],
    )
    _save_apps(
        db,
        store,
        [
            e
            for rank, e in enumerate(entries, 1)
            if rank in changed or (e.icon_url and icons.get(e.app_id) != e.icon_url)
        ],
    )
    held.update(_open_runs(db, store, chart_id, snapshot_id, changed))
    placed_after = {e.app_id: (rank, *held[rank]) for rank, e in enumerate(entries, 1)}
    return placed_before, placed_after


def _close_runs(db: Database, chart_id: int, snapshot_id: int, ranks: list[int]) -> None:
    """End the current runs at these ranks with the chart's previous observation."""
    if not ranks:
        return
    previous = db.execute(
        "SELECT MAX(id) FROM snapshots WHERE chart_id = ? AND id < ?", [chart_id, snapshot_id]
    ).fetchone()[0]
    db.conn.executemany(
        "UPDATE runs SET last_snapshot = ? WHERE chart_id = ? AND last_snapshot = ? AND rank = ?",
        [(previous, chart_id, OPEN, rank) for rank in ranks],
    )


def _open_runs(
    db: Database, store: str, chart_id: int, snapshot_id: int, entries: dict[int, Entry]
) -> dict[int, tuple[int, int]]:
    """Start a run for each entry (by rank) with this observation; return, by rank, the
    ids of the app and name each holds."""
    if not entries:
        return {}
    apps = _app_ids(db, store, list(entries.values()))
    labels = _label_ids(db, list(entries.values()))
    new_runs = [
        (chart_id, OPEN, rank, snapshot_id, apps[e.app_id], labels[(e.name, e.developer or "")])
        for rank, e in entries.items()
    ]
    db.conn.executemany(
        "INSERT INTO runs (chart_id, last_snapshot, rank, first_snapshot, app, label) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        new_runs,
    )
    db.conn.executemany(
        "INSERT OR IGNORE INTO app_labels (label, app) VALUES (?, ?)",
        [(label, app) for *_, app, label in new_runs],
    )
    return {rank: (app, label) for _, _, rank, _, app, label in new_runs}


def _save_apps(db: Database, store: str, entries: list[Entry]) -> None:
    """Add apps not seen before, and keep each app's latest icon."""
    if not entries:
        return
    db.conn.executemany(
        "INSERT OR IGNORE INTO apps (store, app_id, icon_url) VALUES (?, ?, ?)",
        [(store, e.app_id, e.icon_url) for e in entries],
    )
    db.conn.executemany(
        "UPDATE apps SET icon_url = ? WHERE store = ? AND app_id = ? AND icon_url IS NOT ?",
        [(e.icon_url, store, e.app_id, e.icon_url) for e in entries if e.icon_url],
    )


def _app_ids(db: Database, store: str, entries: list[Entry]) -> dict[str, int]:
    ids = [e.app_id for e in entries]
    rows = db.execute(
        f"SELECT app_id, id FROM apps WHERE store = ? AND app_id IN ({_marks(ids)})",
        [store, *ids],
    )
    return dict(rows.fetchall())


def _label_ids(db: Database, entries: list[Entry]) -> dict[tuple[str, str], int]:
    pairs = {(e.name, e.developer or "") for e in entries}
    db.table("labels").insert_all(({"name": n, "developer": d} for n, d in pairs), ignore=True)
    names = [n for n, _ in pairs]
    rows = db.execute(
        f"SELECT name, developer, id FROM labels WHERE name IN ({_marks(names)})", names
    )
    return {(n, d): i for n, d, i in rows.fetchall() if (n, d) in pairs}


def _chart_id(db: Database, req: ChartRequest) -> int:
    key = {
        "store": req.store,
        "chart": req.chart,
        "device": req.device,
        "genre": req.genre,
        "country": req.country,
    }
    # IS, not =, so that a NULL device or genre matches itself.
    row = db.execute(
        "SELECT id FROM charts WHERE " + " AND ".join(f"{c} IS ?" for c in key),
        list(key.values()),
    ).fetchone()
    return int(row[0]) if row else _insert(db, "charts", key)


def _insert(db: Database, table: str, row: dict[str, Any]) -> int:
    """Insert one row into a table of the hot path, without introspecting it."""
    columns = ", ".join(row)
    cursor = db.execute(
        f"INSERT INTO {table} ({columns}) VALUES ({_marks(list(row))})", list(row.values())
    )
    if cursor.lastrowid is None:
        raise RuntimeError(f"insert into {table} returned no row id")
    return cursor.lastrowid


def _marks(values: list[str]) -> str:
    return ", ".join("?" for _ in values)
