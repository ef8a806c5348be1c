"""The SQLite file: schema, migrations, and one short transaction per observation.

A chart's list is stored once per distinct content (``lists`` and ``list_entries``)
and every observation (``snapshots``) points at one. A sweep that sees the same list
again adds a snapshot row and nothing else, so unchanged charts barely grow the file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from monitor.charts import ChartRequest, Entry, FetchResult

BUSY_TIMEOUT_MS = 30_000
migrations = Migrations("monitor")


@migrations()
def m001_initial(db: Database) -> None:
    """Create the dimension tables, the content-addressed lists and the logs."""
    db.table("charts").create(
        {"id": int, "store": str, "chart": str, "device": str, "genre": str, "country": str},
        pk="id",
    )
    db.table("charts").create_index(["store", "chart", "device", "genre", "country"], unique=True)
    db.table("apps").create({"id": int, "store": str, "app_id": str, "icon_url": str}, pk="id")
    db.table("apps").create_index(["store", "app_id"], unique=True)
    db.table("apps").create_index(["app_id"])
    db.table("labels").create(
        {"id": int, "name": str, "developer": str}, pk="id", not_null={"name"}
    )
    db.table("labels").create_index(["name", "developer"], unique=True)
    db.table("lists").create({"id": int, "digest": bytes, "size": int}, pk="id")
    db.table("lists").create_index(["digest"], unique=True)
    db.execute(
        """CREATE TABLE list_entries (
            list_id INTEGER NOT NULL REFERENCES lists(id),
            rank INTEGER NOT NULL,
            app INTEGER NOT NULL REFERENCES apps(id),
            label INTEGER NOT NULL REFERENCES labels(id),
            PRIMARY KEY (list_id, rank)
        ) WITHOUT ROWID"""
    )
    db.table("list_entries").create_index(["app", "list_id"])
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
    db.table("snapshots").create(
        {
            "id": int,
            "chart_id": int,
            "sweep_id": int,
            "fetched_at": str,
            "feed_updated": str,
            "list_id": int,
        },
        pk="id",
        foreign_keys=[("chart_id", "charts"), ("sweep_id", "sweeps"), ("list_id", "lists")],
    )
    db.table("snapshots").create_index(["chart_id", "fetched_at"])
    db.table("snapshots").create_index(["list_id"])
    db.table("attempts").create(
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
    db.table("attempts").create_index(["sweep_id"])
    db.table("attempts").create_index(["chart_id", "started_at"])
    db.create_view(
        "rankings",
        """SELECT s.id AS snapshot_id, c.store, c.country, c.chart, c.device, c.genre,
       s.fetched_at, e.rank, a.app_id, l.name AS app_name,
       NULLIF(l.developer, '') AS developer
FROM snapshots s
JOIN charts c ON c.id = s.chart_id
JOIN list_entries e ON e.list_id = s.list_id
JOIN apps a ON a.id = e.app
JOIN labels l ON l.id = e.label""",
        ignore=True,
    )
    db.create_view(
        "fetches",
        """SELECT t.id, c.store, c.country, c.chart, c.device, c.genre, t.started_at,
       t.status, t.http_status, t.error, t.snapshot_id
FROM attempts t
JOIN charts c ON c.id = t.chart_id""",
        ignore=True,
    )


def open_db(path: str | Path) -> Database:
    """Open (creating if need be) the database in WAL mode, with migrations applied."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    db = Database(path)
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.enable_wal()
    db.execute("PRAGMA synchronous = NORMAL")
    migrations.apply(db)
    return db


def begin_sweep(db: Database, started_at: str) -> int:
    """Record the start of a sweep and return its id."""
    with db.atomic():
        return _insert(db, "sweeps", {"started_at": started_at})


def finish_sweep(
    db: Database, sweep_id: int, finished_at: str, ok: int, failed: int, entries: int
) -> None:
    """Record a sweep's end and its counts."""
    with db.atomic():
        db.table("sweeps").update(
            sweep_id,
            {
                "finished_at": finished_at,
                "charts_ok": ok,
                "charts_failed": failed,
                "entries": entries,
            },
        )


def record(db: Database, sweep_id: int, result: FetchResult) -> int | None:
    """Store one fetch in one transaction: a whole chart and its snapshot, or an error row.

    Return the snapshot id, or None for a failure.
    """
    with db.atomic():
        chart_id = _chart_id(db, result.req)
        snapshot_id = None
        if result.listing is not None:
            snapshot_id = _insert(
                db,
                "snapshots",
                {
                    "chart_id": chart_id,
                    "sweep_id": sweep_id,
                    "fetched_at": result.fetched_at,
                    "feed_updated": result.listing.updated,
                    "list_id": _list_id(db, result.req.store, result.listing.entries),
                },
            )
        db.table("attempts").insert(
            {
                "sweep_id": sweep_id,
                "chart_id": chart_id,
                "started_at": result.started_at,
                "status": "error" if snapshot_id is None else "ok",
                "http_status": result.http_status,
                "error": result.error,
                "snapshot_id": snapshot_id,
            }
        )
    return snapshot_id


def _insert(db: Database, table: str, row: dict[str, Any]) -> int:
    pk = db.table(table).insert(row).last_pk
    if pk is None:
        raise RuntimeError(f"insert into {table} returned no primary key")
    return int(pk)


def _chart_id(db: Database, req: ChartRequest) -> int:
    return int(
        db.table("charts").lookup(
            {
                "store": req.store,
                "chart": req.chart,
                "device": req.device,
                "genre": req.genre,
                "country": req.country,
            }
        )
    )


def list_digest(store: str, entries: list[Entry]) -> bytes:
    """Hash a list's content: the same apps, names and developers in the same order."""
    digest = hashlib.blake2b(store.encode(), digest_size=16)
    for entry in entries:
        digest.update(f"\x1e{entry.app_id}\x1f{entry.name}\x1f{entry.developer or ''}".encode())
    return digest.digest()


def _list_id(db: Database, store: str, entries: list[Entry]) -> int:
    digest = list_digest(store, entries)
    row = db.execute("SELECT id FROM lists WHERE digest = ?", [digest]).fetchone()
    if row:
        return int(row[0])
    apps = _app_ids(db, store, entries)
    labels = _label_ids(db, entries)
    list_id = _insert(db, "lists", {"digest": digest, "size": len(entries)})
    db.table("list_entries").insert_all(
        {
            "list_id": list_id,
            "rank": rank,
            "app": apps[e.app_id],
            "label": labels[(e.name, e.developer or "")],
        }
        for rank, e in enumerate(entries, 1)
    )
    return list_id


def _app_ids(db: Database, store: str, entries: list[Entry]) -> dict[str, int]:
    db.table("apps").insert_all(
        ({"store": store, "app_id": e.app_id, "icon_url": e.icon_url} for e in entries),
        ignore=True,
    )
    db.conn.executemany(
        "UPDATE apps SET icon_url = ? WHERE store = ? AND app_id = ? AND icon_url IS NOT ?",
        [(e.icon_url, store, e.app_id, e.icon_url) for e in entries if e.icon_url],
    )
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


def _marks(values: list[str]) -> str:
    return ", ".join("?" for _ in values)
