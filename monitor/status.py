"""What ``monitor status`` reports: recent sweeps, failures by store and cause, what to
check when a whole store fails, and the sizes on disk."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from monitor import alerts
from monitor.config import RawCaps
from monitor.diagnosis import store_hints, storefront_list
from monitor.errors import SWEEP_KINDS
from monitor.sources.payload import utc_iso
from monitor.storage import DEFAULT_CAPS, kept_today

# The charts a sweep ended without (stopped, or failed for want of disk) are told by the
# sweep's own line, not counted as failures of their storefronts.
_FAILED = (
    "t.status = 'error' AND coalesce(t.error_kind, '') NOT IN (SELECT value FROM json_each(?))"
)


@dataclass(frozen=True)
class FailureGroup:
    """The failures of one store with one kind of error, and where they happened."""

    store: str
    kind: str
    failures: int
    storefronts: list[str]
    last_at: str
    last_error: str


@dataclass(frozen=True)
class RawKept:
    """The failed bodies kept, compressed, against their caps."""

    count: int
    bytes: int
    today: dict[str, int]  # per store, the bytes kept on the current UTC day
    caps: RawCaps


@dataclass(frozen=True)
class Status:
    """A summary of the database's recent history."""

    path: str
    size_bytes: int
    snapshots: int
    sweeps: list[dict[str, Any]]
    failures: list[FailureGroup]
    attempted: dict[str, list[str]]  # per store, the storefronts these sweeps attempted
    hints: dict[str, str]  # per store every chart of which failed alike in the last sweep
    raw: RawKept
    # Per webhook destination (by name), its events by state: pending, delivered, failed,
    # expired.
    deliveries: dict[str, dict[str, int]]
    # What each host got in the last sweep that ended: limits, rate, slow-downs.
    hosts: list[dict[str, Any]]
    # The sweeps whose milestones could not be recorded yet (monitor.events).
    milestones_due: list[int]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def where(self, group: FailureGroup) -> str:
        """Name the group's storefronts compactly, against those its store attempted."""
        return storefront_list(group.storefronts, self.attempted[group.store])


def database_size(path: str | Path) -> int:
    """Return the bytes on disk of the database, its WAL and shared-memory files."""
    base = Path(path)
    files = [base, base.with_name(base.name + "-wal"), base.with_name(base.name + "-shm")]
    return sum(f.stat().st_size for f in files if f.exists())


def read_status(
    db: Database, path: str | Path, sweeps: int = 10, caps: RawCaps = DEFAULT_CAPS
) -> Status:
    """Summarise the last sweeps, their failures by store and cause, and the hints."""
    recent = list(
        db.query(
            "SELECT id, started_at, finished_at, status, reason, charts_ok, charts_failed, "
            "entries FROM sweeps ORDER BY id DESC LIMIT ?",
            [sweeps],
        )
    )
    oldest = recent[-1]["id"] if recent else 0
    attempted = _attempted(db, oldest)
    failures = _failure_groups(db, oldest)
    ended = next((s["id"] for s in recent if s["status"] != "running"), None)
    snapshots = db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
    return Status(
        str(path),
        database_size(path),
        snapshots,
        recent,
        failures,
        attempted,
        _hints(db, ended) if ended else {},
        _raw_kept(db, caps),
        _deliveries(db),
        _hosts(db, ended) if ended else [],
        [row[0] for row in db.execute("SELECT sweep_id FROM milestones_due ORDER BY sweep_id")],
    )


def _hosts(db: Database, sweep_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(
            "SELECT sweep_id, store, host, limits, requests, seconds, rate, slowdowns, "
            "fewest_in_flight FROM sweep_hosts WHERE sweep_id = ? ORDER BY store, host",
            [sweep_id],
        )
    )


def _deliveries(db: Database) -> dict[str, dict[str, int]]:
    found: dict[str, dict[str, int]] = {}
    for destination, state, count in db.execute(
        "SELECT destination, state, COUNT(*) FROM outbox GROUP BY destination, state"
    ):
        found.setdefault(destination, dict.fromkeys(alerts.STATES, 0))[state] = count
    return found


def _raw_kept(db: Database, caps: RawCaps) -> RawKept:
    count, kept = db.execute(
        "SELECT COUNT(*), coalesce(SUM(length(body)), 0) FROM raw_responses"
    ).fetchone()
    today = utc_iso(datetime.now(UTC))
    stores = [row[0] for row in db.execute("SELECT DISTINCT store FROM charts ORDER BY store")]
    return RawKept(count, kept, {s: kept_today(db, s, today) for s in stores}, caps)


def _attempted(db: Database, oldest: int) -> dict[str, list[str]]:
    attempted: dict[str, list[str]] = {}
    for store, country in db.execute(
        "SELECT DISTINCT store, country FROM fetches WHERE sweep_id >= ? ORDER BY 1, 2",
        [oldest],
    ):
        attempted.setdefault(store, []).append(country)
    return attempted


def _failure_groups(db: Database, oldest: int) -> list[FailureGroup]:
    rows = db.execute(
        # With one MAX() in the select, SQLite takes the bare columns from that row.
        f"""SELECT c.store, coalesce(t.error_kind, 'error'), COUNT(*),
                   json_group_array(DISTINCT c.country), MAX(t.id), t.started_at, t.error
            FROM attempts t JOIN charts c ON c.id = t.chart_id
            WHERE t.sweep_id >= ? AND {_FAILED}
            GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2""",
        [oldest, json.dumps(SWEEP_KINDS)],
    ).fetchall()
    return [
        FailureGroup(store, kind, count, sorted(json.loads(countries)), at, error)
        for store, kind, count, countries, _, at, error in rows
    ]


def _hints(db: Database, sweep_id: int) -> dict[str, str]:
    return store_hints(
        db.execute(
            """SELECT DISTINCT store,
                      CASE WHEN status = 'ok' THEN NULL ELSE coalesce(error_kind, 'error') END
               FROM fetches WHERE sweep_id = ?""",
            [sweep_id],
        ).fetchall()
    )
