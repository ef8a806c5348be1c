"""The schema and the write path, on real SQLite files."""

from __future__ import annotations

import re
import sqlite3

import pytest
from sqlite_utils import Database

from helpers import chart
from monitor import schema, storage
from monitor.charts import Entry, FetchResult, Listing

REQ = chart("us")


def ok(entries, req=REQ, at="2026-01-01T00:00:00Z"):
    return FetchResult(req, at, at, Listing(entries, "2026-01-01T00:00:00Z"), http_status=200)


def apps(*names):
    return [Entry(str(i), name, "Dev") for i, name in enumerate(names, 1)]


@pytest.fixture
def db(tmp_path):
    return schema.open_db(tmp_path / "sub" / "r.db")


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


def test_reopening_applies_no_migration_twice(tmp_path, caplog):
    def applied():
        db = schema.open_db(tmp_path / "r.db")
        names = [name for (name,) in db.execute("SELECT name FROM _sqlite_migrations")]
        db.close()
        return names

    first = applied()
    assert applied() == first
    defined = [name for name in vars(schema) if re.fullmatch(r"m\d{3}_\w+", name)]
    assert sorted(first) == sorted(defined) and len(defined) >= 6
    assert caplog.messages == []  # a new database is no upgrade to speak of


def rankings(db):
    return db.execute(
        "SELECT snapshot_id, rank, app_id, app_name FROM rankings ORDER BY 1, 2"
    ).fetchall()


def test_same_list_again_adds_a_snapshot_and_no_run(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    first = storage.record(db, sweep, ok(apps("A", "B")))
    second = storage.record(db, sweep, ok(apps("A", "B"), at="2026-01-01T01:00:00Z"))
    assert db["runs"].count == 2
    assert rankings(db) == [
        (first, 1, "1", "A"),
        (first, 2, "2", "B"),
        (second, 1, "1", "A"),
        (second, 2, "2", "B"),
    ]


def test_a_change_closes_only_the_runs_that_changed(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    one = storage.record(
        db, sweep, ok([Entry("1", "A", "D"), Entry("2", "B", "D"), Entry("3", "C", "D")])
    )
    two = storage.record(
        db, sweep, ok([Entry("1", "A", "D"), Entry("3", "C", "D"), Entry("2", "B", "D")])
    )
    three = storage.record(db, sweep, ok([Entry("9", "Z", "D")]))
    assert db["runs"].count == 6
    assert rankings(db) == [
        (one, 1, "1", "A"),
        (one, 2, "2", "B"),
        (one, 3, "3", "C"),
        (two, 1, "1", "A"),
        (two, 2, "3", "C"),
        (two, 3, "2", "B"),
        (three, 1, "9", "Z"),
    ]


def test_failures_and_other_charts_between_observations_do_not_break_runs(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    gb = chart("gb")
    first = storage.record(db, sweep, ok(apps("A", "B")))
    storage.record(db, sweep, ok(apps("X"), req=gb))
    storage.record(db, sweep, FetchResult(REQ, "t", "t", error="HTTP 500"))
    second = storage.record(db, sweep, ok(apps("A", "B")))
    third = storage.record(db, sweep, ok(apps("A")))
    us = db.execute(
        "SELECT snapshot_id, rank, app_id FROM rankings WHERE country = 'us' ORDER BY 1, 2"
    ).fetchall()
    assert us == [
        (first, 1, "1"),
        (first, 2, "2"),
        (second, 1, "1"),
        (second, 2, "2"),
        (third, 1, "1"),
    ]


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


def test_a_success_is_recorded_by_its_snapshot_and_fetches_shows_it_as_an_attempt(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    started, arrived = "2026-01-01T00:59:58Z", "2026-01-01T01:00:03Z"
    fetched = FetchResult(REQ, started, arrived, Listing(apps("A"), None), http_status=203)
    snapshot = storage.record(db, sweep, fetched)
    assert db["attempts"].count == 0
    assert db.execute(
        "SELECT id, started_at, status, http_status, error, snapshot_id, sweep_id FROM fetches"
    ).fetchall() == [(None, started, "ok", 203, None, snapshot, sweep)]
    assert db.execute("SELECT started_at, fetched_at FROM snapshots").fetchall() == [
        (started, arrived)
    ]


def test_fetches_stored_before_snapshots_recorded_them_read_as_they_did(tmp_path, caplog):
    path = tmp_path / "older.db"
    older = Database(sqlite3.connect(path))
    schema.migrations.apply(older, stop_before="m012_successful_fetches_in_snapshots")
    older.execute("INSERT INTO sweeps (id, status) VALUES (1, 'finished')")
    older.execute(
        "INSERT INTO charts (id, store, chart, device, country) "
        "VALUES (1, 'apple', 'top-free', 'iphone', 'us')"
    )
    older.execute(
        "INSERT INTO snapshots (id, chart_id, sweep_id, fetched_at, depth, size) "
        "VALUES (1, 1, 1, '2026-01-01T00:00:02Z', 100, 0)"
    )
    older.execute(
        "INSERT INTO attempts (id, sweep_id, chart_id, started_at, status, http_status, "
        "snapshot_id) VALUES (1, 1, 1, '2026-01-01T00:00:00Z', 'ok', 200, 1)"
    )
    older.conn.commit()
    older.close()
    db = schema.open_db(path)
    # The upgrade is said before it starts: on a long history it takes a while.
    (said,) = caplog.messages
    assert said.startswith(
        f"{path}: bringing its schema up to date (m012_successful_fetches_in_snapshots, "
    )
    sweep = storage.begin_sweep(db, "2026-01-01T01:00:00Z")
    storage.record(db, sweep, ok(apps("A"), at="2026-01-01T01:00:00Z"))
    failed = FetchResult(REQ, "2026-01-01T02:00:00Z", "2026-01-01T02:00:01Z", error="HTTP 500")
    storage.record(db, sweep, failed)
    # The attempt stored before keeps its id, and an id is never given twice.
    assert db.execute(
        "SELECT id, started_at, status, snapshot_id, sweep_id FROM fetches ORDER BY started_at"
    ).fetchall() == [
        (1, "2026-01-01T00:00:00Z", "ok", 1, 1),
        (None, "2026-01-01T01:00:00Z", "ok", 2, 2),
        (2, "2026-01-01T02:00:00Z", "error", None, 2),
    ]


def test_an_observation_that_cannot_be_written_leaves_nothing_behind(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    # Fail on the last write, the names of the apps, after the chart, snapshot, apps,
    # labels and runs have been written.
    db.execute(
        "CREATE TRIGGER fail BEFORE INSERT ON app_labels "
        "BEGIN SELECT RAISE(ABORT, 'disk went away'); END"
    )
    with pytest.raises(sqlite3.IntegrityError, match="disk went away"):
        storage.record(db, sweep, ok(apps("A", "B")))
    for table in ("charts", "apps", "labels", "app_labels", "runs", "snapshots", "attempts"):
        assert db[table].count == 0, table


def test_null_genre_and_device_map_to_one_chart_row(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    storage.record(db, sweep, ok(apps("A")))
    storage.record(db, sweep, ok(apps("B")))
    assert db["charts"].count == 1


def plan(db, sql):
    return " | ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN {sql}"))


def test_an_apps_history_is_read_through_indexes(db):
    steps = plan(db, "SELECT * FROM rankings WHERE app_id = '1'")
    assert "SCAN" not in steps
    assert "idx_runs_app_chart_id_first_snapshot (app=?)" in steps
    assert "idx_snapshots_chart_id_id (chart_id=? AND id>? AND id<?)" in steps


def test_a_chart_at_time_t_is_read_through_indexes(db):
    steps = plan(
        db,
        "SELECT * FROM rankings WHERE snapshot_id = (SELECT id FROM snapshots "
        "WHERE chart_id = 1 AND fetched_at <= '2026' ORDER BY fetched_at DESC "
        "LIMIT 1)",
    )
    assert "SCAN" not in steps
    assert "r USING PRIMARY KEY (chart_id=? AND last_snapshot>?)" in steps


def test_failed_bodies_are_kept_once_a_day_per_chart(db):
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    gb = chart("gb")
    for req, at in [
        (REQ, "2026-01-01T00:00:00Z"),
        (REQ, "2026-01-01T23:00:00Z"),
        (gb, "2026-01-01T23:00:00Z"),
        (REQ, "2026-01-02T01:00:00Z"),
    ]:
        storage.record(db, sweep, FetchResult(req, at, at, error="bad", raw=b"<html>" * 10))
    kept = db.execute(
        "SELECT f.country, f.started_at, r.size FROM raw_responses r "
        "JOIN fetches f ON f.id = r.attempt_id ORDER BY r.attempt_id"
    ).fetchall()
    assert kept == [
        ("us", "2026-01-01T00:00:00Z", 60),
        ("gb", "2026-01-01T23:00:00Z", 60),
        ("us", "2026-01-02T01:00:00Z", 60),
    ]


def test_a_write_from_another_connection_never_fails_a_store(tmp_path, monkeypatch):
    path = tmp_path / "r.db"
    db = schema.open_db(path)
    sweep = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    storage.record(db, sweep, ok(apps("A", "B")))  # the chart is known: the next store reads
    other = sqlite3.connect(path, timeout=0)  # a writer that does not wait: it says so
    tries = []
    chart_id = storage._chart_id

    def meddled(db, req):  # after the store's first read, another connection writes
        found = chart_id(db, req)
        try:
            with other:
                other.execute("INSERT INTO alert_cursors VALUES ('newsroom', 0)")
            tries.append("written")
        except sqlite3.OperationalError as error:
            tries.append(str(error))
        return found

    monkeypatch.setattr(storage, "_chart_id", meddled)
    # With a deferred BEGIN, the other write went through, and the store's first write
    # failed at once: "database is locked".
    storage.record(db, sweep, ok(apps("B", "A"), at="2026-01-01T01:00:00Z"))
    assert tries == ["database is locked"]  # the store held the lock from its start
    assert db.execute("SELECT COUNT(*) FROM rankings").fetchone() == (4,)
    other.close()
    db.close()
