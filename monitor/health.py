"""Whether the collector keeps up: the last finished sweep, and how long ago it ended.

``monitor health``, the compose health checks and Datasette's ``/-/health`` all read
this: healthy while a sweep finished within twice the interval (plus the jitter).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from monitor.config import Schedule

LAST_FINISHED = """SELECT id, started_at, finished_at, charts_ok, charts_failed, entries
FROM sweeps WHERE status = 'finished' ORDER BY id DESC LIMIT 1"""


def max_sweep_age(schedule: Schedule) -> float:
    """Return the longest a healthy collector goes without finishing a sweep, in seconds."""
    return 2 * schedule.interval + schedule.jitter


DEFAULT_MAX_AGE = max_sweep_age(Schedule())


@dataclass(frozen=True)
class Health:
    """The last finished sweep, its age, and whether that age is within the limit."""

    max_age: float
    last_sweep: dict[str, Any] | None
    age: float | None

    @property
    def healthy(self) -> bool:
        return self.age is not None and self.age <= self.max_age

    def to_json(self) -> dict[str, Any]:
        return {
            "status": "ok" if self.healthy else "stale",
            "last_sweep": self.last_sweep,
            "age_seconds": None if self.age is None else round(self.age, 1),
            "max_age_seconds": self.max_age,
        }

    def describe(self) -> str:
        if self.last_sweep is None or self.age is None:
            return "no sweep has finished yet"
        sweep = self.last_sweep
        return (
            f"sweep {sweep['id']} finished {self.age:,.0f}s ago at {sweep['finished_at']} "
            f"({sweep['charts_ok']} charts ok, {sweep['charts_failed']} failed); "
            f"the limit is {self.max_age:,.0f}s"
        )


def read_health(conn: sqlite3.Connection, max_age: float, now: datetime | None = None) -> Health:
    """Read the last finished sweep and measure its age against ``max_age`` seconds."""
    cursor = conn.execute(LAST_FINISHED)
    row = cursor.fetchone()
    if row is None:
        return Health(max_age, None, None)
    sweep = dict(zip([c[0] for c in cursor.description], row, strict=True))
    finished = datetime.fromisoformat(sweep["finished_at"])
    age = ((now or datetime.now(UTC)) - finished).total_seconds()
    return Health(max_age, sweep, max(age, 0.0))
