"""The SQLite schema, as ordered migrations applied whenever the database opens.

A chart's history is stored as *runs*: one row per app holding one rank, under one
name, in one chart, across consecutive observations (``first_snapshot`` to
``last_snapshot``). A run still open has ``last_snapshot = OPEN``. An observation
that sees the same list as before adds a ``snapshots`` row and nothing else; a
changed list closes the runs that changed and opens new ones. The ``rankings`` view
expands runs back into one row per observation and rank.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import quote

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from monitor import events, reference
from monitor.errors import NotMonitorDatabase
from monitor.locks import migration_lock
from monitor.queries import covers, records_its_fetch

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 30_000
JOURNAL_SIZE_LIMIT = 2**20
# Past this, the log is truncated between observations whenever no reader holds it.
LOG_LIMIT = 4 * 2**20
OPEN = 2**63 - 1
SWEEP_ENDINGS = ("running", "finished", "stopped", "failed", "interrupted")
INTERRUPTED = "the process ended before the sweep did (killed, or the machine stopped)"
migrations = Migrations("monitor")

RANKINGS_VIEW = f"""SELECT s.id AS snapshot_id, c.store, c.country, c.chart, c.device, c.genre,
       s.fetched_at, r.rank, a.app_id, l.name AS app_name, NULLIF(l.developer, '') AS developer
FROM snapshots s
JOIN charts c ON c.id = s.chart_id
JOIN runs r ON r.chart_id = s.chart_id AND {covers("r", "s.id")}
JOIN apps a ON a.id = r.app
JOIN labels l ON l.id = r.label"""

# A successful fetch is recorded by its observation (the snapshot, with when it started and
# its HTTP status); attempts keeps the failed ones, each a row of its own, and the
# successful ones of before (m012), whose snapshots have no start.
FETCHES_VIEW = f"""SELECT t.id, c.store, c.country, c.chart, c.device, c.genre, t.started_at,
       t.status, t.http_status, t.error, t.snapshot_id, t.error_kind, t.sweep_id
FROM attempts t
JOIN charts c ON c.id = t.chart_id
UNION ALL
SELECT NULL, c.store, c.country, c.chart, c.device, c.genre, s.started_at,
       'ok', s.http_status, NULL, s.id, NULL, s.sweep_id
FROM snapshots s
JOIN charts c ON c.id = s.chart_id
WHERE {records_its_fetch("s")}"""
# An earlier error message, read for its kind: the messages have kept these shapes.
_KIND_OF_MESSAGE = """CASE
  WHEN http_status = 429 OR error LIKE 'rate limited%' THEN 'rate_limited'
  WHEN error LIKE 'HTTP %' THEN 'http_status'
  WHEN error LIKE 'request to % timed out %' THEN 'timeout'
  WHEN error LIKE 'request to % failed %' THEN 'transport'
  WHEN error LIKE 'blocked by %' THEN 'blocked'
  WHEN error LIKE '%structure drifted%' OR error LIKE 'the vyAe2 payload is %' THEN 'drift'
  ELSE 'invalid_feed' END"""


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
    db.create_view(
        "fetches",
        """SELECT t.id, c.store, c.country, c.chart, c.device, c.genre, t.started_at,
       t.status, t.http_status, t.error, t.snapshot_id
FROM attempts t
JOIN charts c ON c.id = t.chart_id""",
        ignore=True,
    )


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


@migrations()
def m005_error_kinds_and_sweep_endings(db: Database) -> None:
    """Say why each attempt failed, as a word, and how each sweep ended, and why."""
    db.table("attempts").add_column("error_kind", str)
    db.execute(f"UPDATE attempts SET error_kind = {_KIND_OF_MESSAGE} WHERE status = 'error'")
    db.table("sweeps").add_column("status", str)
    db.table("sweeps").add_column("reason", str)
    db.execute("UPDATE sweeps SET status = 'finished' WHERE finished_at IS NOT NULL")
    db.execute(
        "UPDATE sweeps SET status = 'interrupted', reason = ? WHERE finished_at IS NULL",
        [INTERRUPTED],
    )
    db.create_view(
        "fetches",
        """SELECT t.id, c.store, c.country, c.chart, c.device, c.genre, t.started_at,
       t.status, t.http_status, t.error, t.snapshot_id, t.error_kind
FROM attempts t
JOIN charts c ON c.id = t.chart_id""",
        replace=True,
    )


# What each filter of the rankings view needs: a filter that matches nothing answers from
# the index at once, where a scan of the runs takes seconds on a month of history.
RANKINGS_FILTER_INDEXES = {
    "idx_charts_country": "charts (country)",
    "idx_charts_chart": "charts (chart)",
    "idx_charts_device": "charts (device)",
    "idx_charts_genre": "charts (genre)",
    "idx_snapshots_fetched_at": "snapshots (fetched_at)",
    "idx_runs_rank": "runs (rank)",
    "idx_runs_label": "runs (label)",
    # The view's developer column is this expression, which the filter repeats.
    "idx_labels_developer": "labels (NULLIF(developer, ''))",
}


@migrations()
def m006_rankings_filter_indexes(db: Database) -> None:
    """Index every column the rankings view filters on, beyond those indexed already."""
    for name, target in RANKINGS_FILTER_INDEXES.items():
        db.execute(f"CREATE INDEX {name} ON {target}")


@migrations()
def m007_storefronts(db: Database) -> None:
    """Publish the storefronts by name, for pages and SQL to join on country codes."""
    db.table("storefronts").insert_all(
        reference.storefront_rows(),
        pk="code",
        columns={"iso_name": str, "iso_numeric": str, "apple_storefront_id": int},
    )


@migrations()
def m008_notes(db: Database) -> None:
    """Keep notes on apps' timelines: what happened when (an update, a story, a price)."""
    db.table("notes").create(
        {
            "id": int,
            "store": str,
            "app_id": str,
            "at": str,
            "text": str,
            "url": str,
            "created_at": str,
        },
        pk="id",
        not_null={"store", "app_id", "at", "text", "created_at"},
    )
    db.table("notes").create_index(["store", "app_id", "at"])


# Each event with what it is about, by name: an app's move in one chart (its time is its
# observation's), or a milestone of a chart kind across storefronts (at the sweep's end).
EVENTS_VIEW = """SELECT e.id, e.kind, coalesce(e.at, s.fetched_at) AS at,
  coalesce(c.store, e.store) AS store, coalesce(c.chart, e.chart) AS chart,
  coalesce(c.device, e.device) AS device, coalesce(c.genre, e.genre) AS genre,
  c.country, a.app_id, l.name AS app_name, e.rank_before, e.rank_after,
  e.snapshot_before, e.snapshot_after, b.fetched_at AS observed_before,
  e.threshold, e.countries, e.countries_before, e.sweep_id
FROM event_log e
JOIN apps a ON a.id = e.app
JOIN labels l ON l.id = e.label
LEFT JOIN snapshots s ON s.id = e.snapshot_after
LEFT JOIN snapshots b ON b.id = e.snapshot_before
LEFT JOIN charts c ON c.id = e.chart_id"""


@migrations()
def m009_events(db: Database) -> None:
    """Record chart events and milestones (monitor.events), publish them as the events
    view, and derive those of the history already stored."""
    db.table("event_log").create(
        {
            "id": int,
            "kind": str,
            "sweep_id": int,
            "app": int,
            "label": int,
            # An app's move in one chart: the two observations compared, and its ranks.
            "chart_id": int,
            "snapshot_before": int,
            "snapshot_after": int,
            "rank_before": int,
            "rank_after": int,
            # A milestone: its chart kind, its time, and the counts of storefronts.
            "at": str,
            "store": str,
            "chart": str,
            "device": str,
            "genre": str,
            "threshold": int,
            "countries": int,
            "countries_before": int,
        },
        pk="id",
        not_null={"kind", "sweep_id", "app", "label"},
        foreign_keys=[("app", "apps", "id"), ("label", "labels", "id")],
    )
    # One event per cause: a chart event per observation, kind and app; a milestone per
    # sweep, kind, chart kind, app and threshold.
    db.execute(
        "CREATE UNIQUE INDEX idx_event_log_change ON event_log (snapshot_after, kind, app) "
        "WHERE snapshot_after IS NOT NULL"
    )
    db.execute(
        "CREATE UNIQUE INDEX idx_event_log_milestone ON event_log (sweep_id, kind, store, "
        "chart, coalesce(device, ''), coalesce(genre, ''), app, threshold) "
        "WHERE threshold IS NOT NULL"
    )
    db.table("event_log").create_index(["app"])
    db.table("event_log").create_index(["chart_id"])
    db.create_view("events", EVENTS_VIEW)
    events.derive_history(db)


@migrations()
def m010_alerts(db: Database) -> None:
    """Keep what webhooks are to send (outbox), how far each destination's events were
    taken (alert_cursors), and every try to send one (deliveries): monitor.alerts."""
    db.table("outbox").create(
        {"event_id": int, "destination": str, "state": str, "tries": int, "next_try_at": str},
        pk=("event_id", "destination"),
        not_null={"state", "tries", "next_try_at"},
    )
    db.table("outbox").create_index(["state", "next_try_at"])
    db.table("alert_cursors").create(
        {"destination": str, "event_id": int}, pk="destination", not_null={"event_id"}
    )
    db.table("deliveries").create(
        {
            "id": int,
            "event_id": int,
            "destination": str,
            "try": int,
            "tried_at": str,
            "status": str,
            "http_status": int,
            "error": str,
            "seconds": float,
        },
        pk="id",
        not_null={"event_id", "destination", "try", "tried_at", "status"},
    )
    db.table("deliveries").create_index(["destination", "event_id"])


@migrations()
def m011_sweep_hosts(db: Database) -> None:
    """Keep what each host got in each sweep: its limits, requests, rate and slow-downs
    (monitor.politeness)."""
    db.table("sweep_hosts").create(
        {
            "sweep_id": int,
            "store": str,
            "host": str,
            "limits": str,
            "requests": int,
            "seconds": float,
            "rate": float,
            "slowdowns": int,
            "fewest_in_flight": int,
        },
        pk=("sweep_id", "store", "host"),
        not_null={"limits", "requests", "seconds", "rate", "slowdowns", "fewest_in_flight"},
    )


@migrations()
def m012_successful_fetches_in_snapshots(db: Database) -> None:
    """Record a successful fetch by its observation alone: the snapshot keeps when the
    fetch started and its HTTP status, and attempts the failures. An observation then adds
    one row, not two, and fetches (which gains sweep_id) shows both as before. The
    successful attempts already stored stay as they are: their ids are in exports."""
    db.table("snapshots").add_column("started_at", str)
    db.table("snapshots").add_column("http_status", int)
    db.table("snapshots").create_index(["sweep_id"])
    db.create_view("fetches", FETCHES_VIEW, replace=True)


@migrations()
def m013_milestones_due(db: Database) -> None:
    """Record a sweep's milestones after its end, not in the same transaction: the sweep's
    end marks them due, and they are recorded, or stay due for the next sweep's end to
    record, in a transaction of their own (monitor.events)."""
    db.table("milestones_due").create({"sweep_id": int}, pk="sweep_id")


@migrations()
def m014_outbox_queued_at(db: Database) -> None:
    """Keep when each event entered the webhooks' outbox, for one waiting past a day to be
    given up on (monitor.alerts). An event queued before is taken as queued at its first
    try, or where it was never tried, when it was first due."""
    db.table("outbox").add_column("queued_at", str)
    db.execute(
        "UPDATE outbox SET queued_at = coalesce((SELECT MIN(tried_at) FROM deliveries "
        "WHERE deliveries.destination = outbox.destination "
        "AND deliveries.event_id = outbox.event_id), next_try_at)"
    )


def open_db(path: str | Path) -> Database:
    """Open (creating if need be) the database in WAL mode, with migrations applied.

    Raise NotMonitorDatabase for a file that is not SQLite, or holds another program's data.
    The connection may pass to another thread (a sweep's writer), one user at a time.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # Processes that open a new file at once (a service and its Datasette) must not
    # both create the schema.
    with migration_lock(path):
        db = Database(sqlite3.connect(path, check_same_thread=False))
        try:
            db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _check_is_monitors(db, path)
            db.enable_wal()
            db.execute("PRAGMA synchronous = NORMAL")
            # Checkpoint every megabyte rather than every four, so that the log can
            # start over more often between readers, and shrink back to that size.
            db.execute(f"PRAGMA wal_autocheckpoint = {JOURNAL_SIZE_LIMIT // 4096}")
            db.execute(f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}")
            _say_upgrade(db, path)
            migrations.apply(db)
        except BaseException:
            db.close()
            raise
    return db


def _say_upgrade(db: Database, path: str | Path) -> None:
    """Say so before bringing an existing database's schema up to date, which can take a
    while on a long history (deriving the events of every sweep), and holds up every
    other command that opens it."""
    if migrations.applied(db) and (pending := migrations.pending(db)):
        log.warning(
            "%s: bringing its schema up to date (%s); other commands on it wait until this is done",
            path,
            ", ".join(m.name for m in pending),
        )


def open_for_reading(path: str | Path) -> Database:
    """Open an existing database to read it, also where its folder cannot be written.

    Where it can be written, this is open_db. On a read-only mount, the file is read
    as it is: through the write-ahead log of a writer elsewhere if there is one, else
    as immutable.
    """
    if writable_folder(path):
        return open_db(path)
    db = Database(sqlite3.connect(read_only_uri(path), uri=True))
    if migrations.pending(db):
        db.close()
        raise NotMonitorDatabase(
            f"{path} was written by an older monitor, and on a read-only mount it cannot "
            "be brought up to date: open it once where it can be written"
        )
    return db


def writable_folder(path: str | Path) -> bool:
    """Tell whether the folder of the database's real file can be written (not read-only)."""
    return os.access(Path(os.path.realpath(path)).parent, os.W_OK)


def database_file(db: Database) -> str:
    """Return the file the connection's main database is in; "" for one in memory."""
    return str(db.execute("PRAGMA database_list").fetchone()[2])


def read_only_uri(path: str | Path) -> str:
    """Return the URI that reads the database without writing anything beside it."""
    base = f"file:{quote(str(Path(path).resolve()))}"
    for mode in ("mode=ro", "immutable=1"):
        try:
            with closing(sqlite3.connect(f"{base}?{mode}", uri=True)) as conn:
                _check_is_monitors(Database(conn), path)
            return f"{base}?{mode}"
        except sqlite3.OperationalError:
            continue
    raise NotMonitorDatabase(f"cannot open {path} to read it")


def _check_is_monitors(db: Database, path: str | Path) -> None:
    """Raise NotMonitorDatabase unless the file is empty or holds monitor's schema."""
    try:
        tables = db.table_names()
    except sqlite3.DatabaseError as error:
        if error.sqlite_errorcode != sqlite3.SQLITE_NOTADB:
            raise
        raise NotMonitorDatabase(f"{path} is not a SQLite database") from None
    if tables and not migrations.applied(db):
        listed = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
        raise NotMonitorDatabase(
            f"{path} is a SQLite database, but not monitor's (it holds {listed})"
        )
