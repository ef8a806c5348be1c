"""The SQLite schema, as ordered migrations applied whenever the database opens.

A chart's history is stored as *runs*: one row per app holding one rank, under one
name, in one chart, across consecutive observations (``first_snapshot`` to
``last_snapshot``). A run still open has ``last_snapshot = OPEN``. An observation
that sees the same list as before adds a ``snapshots`` row and nothing else; a
changed list closes the runs that changed and opens new ones. The ``rankings`` view
expands runs back into one row per observation and rank.
"""

from __future__ import annotations

from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from monitor.locks import migration_lock

BUSY_TIMEOUT_MS = 30_000
OPEN = 2**63 - 1
migrations = Migrations("monitor")

RANKINGS_VIEW = """SELECT s.id AS snapshot_id, c.store, c.country, c.chart, c.device, c.genre,
       s.fetched_at, r.rank, a.app_id, l.name AS app_name, NULLIF(l.developer, '') AS developer
FROM snapshots s
JOIN charts c ON c.id = s.chart_id
JOIN runs r ON r.chart_id = s.chart_id AND r.last_snapshot >= s.id AND r.first_snapshot <= s.id
JOIN apps a ON a.id = r.app
JOIN labels l ON l.id = r.label"""

FETCHES_VIEW = """SELECT t.id, c.store, c.country, c.chart, c.device, c.genre, t.started_at,
       t.status, t.http_status, t.error, t.snapshot_id
FROM attempts t
JOIN charts c ON c.id = t.chart_id"""


@migrations()
def m001_initial(db: Database) -> None:
    """Create the dimensions, the runs, the snapshots and the fetch log."""
    charts = db.table("charts")
    charts.create(
        {"id": int, "store": str, "chart": str, "device": str, "genre": str, "country": str},
        pk="id",
    )
    charts.create_index(["store", "chart", "device", "genre", "country"], unique=True)
    apps = db.table("apps")
    apps.create({"id": int, "store": str, "app_id": str, "icon_url": str}, pk="id")
    apps.create_index(["store", "app_id"], unique=True)
    apps.create_index(["app_id"])
    # An absent developer is stored as '' so that the unique index can see it.
    labels = db.table("labels")
    labels.create(
        {"id": int, "name": str, "developer": str}, pk="id", not_null={"name", "developer"}
    )
    labels.create_index(["name", "developer"], unique=True)
    db.table("sweeps").create(
        {
            "id": int,
            "started_at": str,
            "finished_at": str,
            "charts_ok": int,
            "charts_failed": int,
            "entries": int,
        },
        pk="id",
    )
    snapshots = db.table("snapshots")
    snapshots.create(
        {
            "id": int,
            "chart_id": int,
            "sweep_id": int,
            "fetched_at": str,
            "feed_updated": str,
            "depth": int,
            "size": int,
        },
        pk="id",
        foreign_keys=[("chart_id", "charts"), ("sweep_id", "sweeps")],
    )
    snapshots.create_index(["chart_id", "fetched_at"])
    snapshots.create_index(["chart_id", "id"])
    # Clustered by the question "which runs were current at snapshot S of chart C".
    db.execute(
        """CREATE TABLE runs (
            chart_id INTEGER NOT NULL REFERENCES charts(id),
            last_snapshot INTEGER NOT NULL,
            rank INTEGER NOT NULL,
            first_snapshot INTEGER NOT NULL REFERENCES snapshots(id),
            app INTEGER NOT NULL REFERENCES apps(id),
            label INTEGER NOT NULL REFERENCES labels(id),
            PRIMARY KEY (chart_id, last_snapshot, rank)
        ) WITHOUT ROWID"""
    )
    db.table("runs").create_index(["app", "chart_id", "first_snapshot"])
    attempts = db.table("attempts")
    attempts.create(
        {
            "id": int,
            "sweep_id": int,
            "chart_id": int,
            "started_at": str,
            "status": str,
            "http_status": int,
            "error": str,
            "snapshot_id": int,
        },
        pk="id",
        foreign_keys=[("chart_id", "charts"), ("sweep_id", "sweeps"), ("snapshot_id", "snapshots")],
    )
    attempts.create_index(["sweep_id"])
    attempts.create_index(["chart_id", "started_at"])
    db.create_view("rankings", RANKINGS_VIEW, ignore=True)
    db.create_view("fetches", FETCHES_VIEW, ignore=True)


@migrations()
def m002_app_labels_and_number_ones(db: Database) -> None:
    """Index which names each app was shown under, and the runs at No. 1."""
    db.execute(
        """CREATE TABLE app_labels (
            label INTEGER NOT NULL REFERENCES labels(id),
            app INTEGER NOT NULL REFERENCES apps(id),
            PRIMARY KEY (label, app)
        ) WITHOUT ROWID"""
    )
    db.table("app_labels").create_index(["app"])
    db.execute("INSERT INTO app_labels (label, app) SELECT DISTINCT label, app FROM runs")
    db.execute(
        "CREATE INDEX idx_runs_number_one ON runs (app, chart_id, first_snapshot) WHERE rank = 1"
    )


@migrations()
def m003_raw_responses(db: Database) -> None:
    """Keep the body of a response that failed to parse, so drift can be studied."""
    db.table("raw_responses").create(
        {"attempt_id": int, "size": int, "kept": int, "body": bytes},
        pk="attempt_id",
        foreign_keys=[("attempt_id", "attempts")],
    )


@migrations()
def m004_charts_unique_with_nulls(db: Database) -> None:
    """Make the charts key unique even where device or genre is NULL."""
    db.execute("DROP INDEX idx_charts_store_chart_device_genre_country")
    db.execute(
        "CREATE UNIQUE INDEX idx_charts_key ON charts "
        "(store, chart, coalesce(device, ''), coalesce(genre, ''), country)"
    )


def open_db(path: str | Path) -> Database:
    """Open (creating if need be) the database in WAL mode, with migrations applied."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Processes that open a new file at once (a service and its Datasette) must not
    # both create the schema.
    with migration_lock(path):
        db = Database(path)
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")
        migrations.apply(db)
    return db
