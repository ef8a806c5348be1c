"""The schema and the write path, on real SQLite files."""

from __future__ import annotations

import sqlite3

import pytest

from monitor import storage
from monitor.charts import ChartRequest, Entry, FetchResult, Listing

REQ = ChartRequest("apple", "top-free", "iphone", None, "us", 100)


def ok(entries, req=REQ, at="2026-01-01T00:00:00Z"):
    return FetchResult(req, at, at, Listing(entries, "2026-01-01T00:00:00Z"), http_status=200)


def apps(*names):
    return [Entry(str(i), name, "Dev") for i, name in enumerate(names, 1)]


@pytest.fixture
def db(tmp_path):
    return storage.open_db(tmp_path / "sub" / "r.db")


def test_open_creates_the_file_in_wal_mode_with_the_public_surface(db, tmp_path):
    assert (tmp_path / "sub" / "r.db").exists()
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert set(db.view_names()) >= {"rankings", "fetches"}
    assert db["rankings"].columns_dict.keys() == {
        "snapshot_id",
        "store",
        "country",
        "chart",
        "device",
        "genre",
        "fetched_at",
        "rank",
        "app_id",
        "app_name",
        "developer",
    }
    assert set(db["fetches"].columns_dict) >= {
        "store",
        "country",
        "chart",
        "device",
        "genre",
        "started_at",
        "status",
        "http_status",
        "error",
        "snapshot_id",
    }


def test_reopening_applies_no_migration_twice(tmp_path):
    storage.open_db(tmp_path / "r.db").close()
    db = storage.open_db(tmp_path / "r.db")
    assert db.execute("SELECT COUNT(*) FROM _sqlite_migrations").fetchone()[0] == 1


def test_same_list_again_adds_a_snapshot_and_no_list(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    first = storage.record(db, sweep, ok(apps("A", "B")))
    second = storage.record(db, sweep, ok(apps("A", "B"), at="2026-01-01T01:00:00Z"))
    assert first != second
    assert db["lists"].count == 1
    assert db["list_entries"].count == 2
    assert db.execute("SELECT COUNT(*) FROM rankings").fetchone()[0] == 4


def test_a_rename_is_a_new_list_and_both_names_are_kept(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    storage.record(db, sweep, ok(apps("Old name")))
    storage.record(db, sweep, ok(apps("New name"), at="2026-01-02T00:00:00Z"))
    rows = db.execute("SELECT fetched_at, app_id, app_name FROM rankings ORDER BY 1").fetchall()
    assert rows == [
        ("2026-01-01T00:00:00Z", "1", "Old name"),
        ("2026-01-02T00:00:00Z", "1", "New name"),
    ]
    assert db["apps"].count == 1


def test_failure_is_an_error_row_and_never_a_snapshot(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    failed = FetchResult(
        REQ, "2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z", error="HTTP 500", http_status=500
    )
    assert storage.record(db, sweep, failed) is None
    assert db.execute(
        "SELECT status, http_status, error, snapshot_id, genre FROM fetches"
    ).fetchall() == [("error", 500, "HTTP 500", None, None)]
    assert db["snapshots"].count == 0


def test_an_observation_that_cannot_be_written_leaves_nothing_behind(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    # Fail on the snapshot, after the apps, labels and list have been written.
    db.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON snapshots "
        "BEGIN SELECT RAISE(ABORT, 'disk went away'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="disk went away"):
        storage.record(db, sweep, ok(apps("A", "B")))
    for table in ("apps", "labels", "lists", "list_entries", "snapshots", "attempts"):
        assert db[table].count == 0, table


def test_null_genre_and_device_map_to_one_chart_row(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    storage.record(db, sweep, ok(apps("A")))
    storage.record(db, sweep, ok(apps("B")))
    assert db["charts"].count == 1


def test_queries_by_app_and_by_chart_use_indexes(db):
    plans = {
        "app": "SELECT * FROM rankings WHERE app_id = '1'",
        "chart": "SELECT * FROM rankings WHERE snapshot_id = (SELECT id FROM snapshots "
        "WHERE chart_id = 1 AND fetched_at <= '2026' ORDER BY fetched_at DESC LIMIT 1)",
    }
    for name, sql in plans.items():
        plan = " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))
        assert "SCAN s" not in plan and "SCAN e" not in plan, (name, plan)
