"""What ``monitor status`` reports: recent sweeps, failures by storefront, file size."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from monitor.errors import SWEEP_KINDS


@dataclass(frozen=True)
class Status:
    """A summary of the database's recent history."""

    path: str
    size_bytes: int
    snapshots: int
    sweeps: list[dict[str, Any]]
    failures: list[dict[str, Any]]


def database_size(path: str | Path) -> int:
    """Return the bytes on disk of the database, its WAL and shared-memory files."""
    base = Path(path)
    files = [base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-shm")]
    return sum(f.stat().st_size for f in files if f.exists())


def read_status(db: Database, path: str | Path, sweeps: int = 10) -> Status:
    """Summarise the last sweeps and, per storefront, their failed fetches.

    The charts a sweep ended without (stopped, or failed for want of disk) are told by
    the sweep's own line, not listed storefront by storefront.
    """
    recent = list(
        db.query(
            "SELECT id, started_at, finished_at, status, reason, charts_ok, charts_failed, "
            "entries FROM sweeps ORDER BY id DESC LIMIT ?",
            [sweeps],
        )
    )
    oldest = recent[-1]["id"] if recent else 0
    failures = list(
        db.query(
            # With one MAX() in the select, SQLite takes the bare columns from that row.
            """SELECT c.store, c.country, COUNT(*) AS failures, MAX(t.id) AS last_id,
                      t.started_at AS last_at, t.error AS last_error, t.error_kind AS last_kind
               FROM attempts t JOIN charts c ON c.id = t.chart_id
               WHERE t.sweep_id >= ? AND t.status = 'error'
                 AND coalesce(t.error_kind, '') NOT IN (SELECT value FROM json_each(?))
               GROUP BY c.store, c.country ORDER BY failures DESC, c.country""",
            [oldest, json.dumps(SWEEP_KINDS)],
        )
    )
    snapshots = db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
    return Status(str(path), database_size(path), snapshots, recent, failures)
