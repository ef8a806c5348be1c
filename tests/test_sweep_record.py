"""A sweep's record: every chart ends as an observation or an error row with its kind,
and the sweep says how it ended, whatever stopped it."""

from __future__ import annotations

import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from conftest import wait_for
from helpers import chart, query, settings_at
from monitor import collector, schema, selection, storage
from monitor.charts import Entry, FetchResult, Listing
from monitor.config import ChartSpec
from monitor.reference import storefronts_175
from monitor.sources import apple


def snapshots(db):
    try:
        return query(db, "SELECT COUNT(*) FROM snapshots")[0][0] if db.exists() else 0
    except sqlite3.OperationalError:
        return 0


def incomplete_snapshots(db):
    """Snapshots whose ranks are not exactly 1..size."""
    return query(
        db,
        """SELECT COUNT(*) FROM (
            SELECT s.id FROM snapshots s
            LEFT JOIN runs r ON r.chart_id = s.chart_id
                AND r.first_snapshot <= s.id AND r.last_snapshot >= s.id
            GROUP BY s.id
            HAVING COUNT(r.rank) != s.size OR MIN(r.rank) != 1 OR MAX(r.rank) != s.size)""",
    )[0][0]


def every_chart_has_one_row(db, sweep_id=1):
    rows = query(
        db,
        "SELECT country FROM fetches WHERE sweep_id = ?",
        (sweep_id,),
    )
    return sorted(cc for (cc,) in rows) == sorted(storefronts_175())


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_collect_and_the_record_says_so(
    spawn_monitor, stand_in, db_path, signum, code
):
    stand_in.hold_after = 20  # the rest of the sweep waits on the store
    process = spawn_monitor("collect")
    wait_for(lambda: snapshots(db_path) >= 5, 30, "the first charts")
    process.send_signal(signum)
    out, err = process.communicate(timeout=10)
    assert process.returncode == code, err
    name = signal.Signals(signum).name
    ((status, reason, ok, entries),) = query(
        db_path, "SELECT status, reason, charts_ok, entries FROM sweeps"
    )
    assert (status, reason) == ("stopped", f"{name} received; {175 - ok} charts not fetched")
    assert f"sweep 1 stopped ({reason}): {ok} charts ok, 0 failed" in out
    assert 0 < ok < 175 and entries == ok * 100
    kinds = dict(
        query(db_path, "SELECT coalesce(error_kind, status), COUNT(*) FROM fetches GROUP BY 1")
    )
    assert kinds == {"ok": ok, "stopped": 175 - ok}
    assert every_chart_has_one_row(db_path)
    assert incomplete_snapshots(db_path) == 0


def sweep_in_process(db, stand_in):
    return collector.sweep(db, selection.requests_for(ChartSpec()), settings_at(stand_in.url))


def test_a_stop_stores_every_chart_already_fetched_however_full_the_queue(
    tmp_path, stand_in, monkeypatch
):
    # One result waits at a time and the writer is slow: the workers fetch a chart each
    # and wait to hand it on, which is where the stop finds them.
    monkeypatch.setattr(collector, "RESULTS_WAITING", 1)
    store = collector._store

    def slowly(*args):
        time.sleep(0.2)  # on the writer thread
        return store(*args)

    monkeypatch.setattr(collector, "_store", slowly)
    stand_in.hold_after = 12  # the store answers 12 charts; the rest wait until the stop
    stop = threading.Event()
    stored = []

    def stop_at_the_third(result):
        stored.append(result)
        if len(stored) == 3:
            stop.set()

    db = schema.open_db(tmp_path / "r.db")
    try:
        report = collector.sweep(
            db,
            selection.requests_for(ChartSpec()),
            settings_at(stand_in.url),
            stop_at_the_third,
            stop,
        )
    finally:
        db.close()
    assert report.status == "stopped"
    # Every chart the store answered was stored: none is said to be "not fetched".
    assert report.ok == 12
    assert report.reason == "stopped; 163 charts not fetched"
    assert every_chart_has_one_row(tmp_path / "r.db")


def test_a_full_disk_fails_the_sweep_plainly_and_the_next_one_works(tmp_path, stand_in):
    db = schema.open_db(tmp_path / "r.db")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    # A few charts fit, then SQLite finds no more room, as on a full disk.
    db.execute(f"PRAGMA max_page_count = {pages + 60}")
    report = sweep_in_process(db, stand_in)
    assert report.status == "failed"
    assert report.reason.startswith("disk full: database or disk is full")
    assert 0 < report.ok < 175
    assert db.execute("SELECT status, reason, charts_ok FROM sweeps").fetchall() == [
        ("failed", report.reason, report.ok)
    ]
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert incomplete_snapshots(tmp_path / "r.db") == 0
    assert db.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0] == report.ok

    db.execute("PRAGMA max_page_count = 1000000")  # room again
    again = sweep_in_process(db, stand_in)
    assert (again.status, again.ok) == ("finished", 175)
    db.close()


def test_charts_without_room_for_their_row_are_counted_in_the_reason(tmp_path, stand_in):
    db = schema.open_db(tmp_path / "r.db")
    assert sweep_in_process(db, stand_in).status == "finished"
    stand_in.version = 5  # changed charts need new runs, and so new pages
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    report = sweep_in_process(db, stand_in)
    assert report.status == "failed" and report.reason.startswith("disk full")
    kinds = dict(
        db.execute(
            "SELECT coalesce(error_kind, status), COUNT(*) FROM fetches WHERE sweep_id = 2 "
            "GROUP BY 1"
        ).fetchall()
    )
    assert set(kinds) <= {"ok", "disk_full"} and kinds.get("ok", 0) == report.ok
    without = re.search(r"(\d+) charts not fetched or not stored, with no row", report.reason)
    # Every chart has a row, or is counted among those the full disk left without one.
    assert sum(kinds.values()) + (int(without.group(1)) if without else 0) == 175
    assert db.execute("SELECT status, reason FROM sweeps WHERE id = 2").fetchall() == [
        ("failed", report.reason)
    ]
    db.close()


def test_a_worker_that_breaks_fails_the_sweep_and_every_chart_keeps_its_row(
    tmp_path, stand_in, monkeypatch
):
    fetch = collector.fetch

    async def fetch_or_break(client, gates, budget, req, settings):
        if req.country == "jp":
            raise RuntimeError("a worker broke")  # past the chart's own boundary
        return await fetch(client, gates, budget, req, settings)

    monkeypatch.setattr(collector, "fetch", fetch_or_break)
    db = schema.open_db(tmp_path / "r.db")
    with pytest.raises(RuntimeError, match="a worker broke"):
        sweep_in_process(db, stand_in)
    assert db.execute("SELECT status, reason FROM sweeps").fetchall() == [
        ("failed", "unexpected RuntimeError: a worker broke; 1 charts not fetched or not stored")
    ]
    db.close()
    assert every_chart_has_one_row(tmp_path / "r.db")


def test_an_unforeseen_error_in_one_chart_fails_that_chart_only(tmp_path, stand_in, monkeypatch):
    parse = apple.AppStore.parse

    def parse_or_break(store, req, body):
        if req.country == "jp":
            raise MemoryError("no memory left for this one")
        return parse(store, req, body)

    monkeypatch.setattr(apple.AppStore, "parse", parse_or_break)
    db = schema.open_db(tmp_path / "r.db")
    report = sweep_in_process(db, stand_in)
    assert (report.status, report.ok, report.failed) == ("finished", 174, 1)
    assert db.execute(
        "SELECT c.country, t.error_kind, t.error FROM attempts t JOIN charts c "
        "ON c.id = t.chart_id WHERE t.status = 'error'"
    ).fetchall() == [("jp", "unexpected", "unexpected MemoryError: no memory left for this one")]
    db.close()


def test_a_killed_sweep_is_marked_interrupted_by_the_next(tmp_path, stand_in):
    db = schema.open_db(tmp_path / "r.db")
    storage.begin_sweep(db, "2026-01-01T00:00:00Z")  # a process died during this sweep
    report = sweep_in_process(db, stand_in)
    assert report.sweep_id == 2
    assert db.execute(
        "SELECT id, status, reason, finished_at IS NOT NULL FROM sweeps"
    ).fetchall() == [(1, "interrupted", schema.INTERRUPTED, 0), (2, "finished", None, 1)]
    db.close()


def test_a_result_that_storing_cannot_take_ends_as_its_charts_failure_not_the_sweeps(tmp_path):
    db = schema.open_db(tmp_path / "rankings.db")
    sweep_id = storage.begin_sweep(db, "2026-01-01T00:00:00Z")
    at = ("2026-01-01T00:00:00Z", "2026-01-01T00:00:01Z")
    good = FetchResult(chart("us"), *at, listing=Listing([Entry("1", "A", "D")], None))
    # Past every check, a time that no UTF-8 can hold: SQLite refuses it, and not as a
    # database error.
    bad = FetchResult(chart("gb"), *at, listing=Listing([Entry("2", "B", "D")], "\ud800"))
    report = collector.SweepReport(sweep_id, dict.fromkeys([good.req, bad.req]))
    stored = collector._store(db, report, [good, bad], storage.DEFAULT_CAPS, storage.LogTrimmer())
    assert [(r.error, r.error_kind) for r in stored] == [
        (None, None),
        (
            "could not be stored: unexpected UnicodeEncodeError: 'utf-8' codec can't encode "
            "character '\\ud800' in position 0: surrogates not allowed",
            "unexpected",
        ),
    ]
    assert (report.ok, report.failed, report.pending) == (1, 1, {})
    assert db.execute(
        "SELECT country, status, error_kind FROM fetches ORDER BY country"
    ).fetchall() == [("gb", "error", "unexpected"), ("us", "ok", None)]
    db.close()


# A signal's handler runs in the main thread wherever it is: here, where the stop's own
# wait() holds the event's lock. Two come, as from a supervisor and a user's Ctrl-C.
SIGNALLED_INSIDE_THE_LOCK = """
import signal
from monitor.stopping import stop_on_signals
stop = stop_on_signals()
with stop._cond:
    signal.raise_signal(signal.SIGTERM)
    signal.raise_signal(signal.SIGINT)
print(stop.wait(5), stop.signal.name)
"""


def test_signals_that_come_while_the_stop_holds_its_lock_stop_it_all_the_same():
    script = [sys.executable, "-c", SIGNALLED_INSIDE_THE_LOCK]
    done = subprocess.run(script, capture_output=True, text=True, timeout=30)
    assert done.stdout.split() == ["True", "SIGTERM"], done.stderr
