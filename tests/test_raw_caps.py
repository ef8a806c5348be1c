"""Failed bodies kept within caps: per store and day, and in total, the oldest going first."""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing

from helpers import chart
from monitor import schema, storage
from monitor.charts import FetchResult
from monitor.config import RawCaps

BODY = 100_000  # random bytes: compressed, about as large


def fail_with_body(db, sweep, country, at, store="apple"):
    req = chart(country, store=store, device=None if store == "play" else "iphone")
    result = FetchResult(req, at, at, error="drifted", error_kind="drift", raw=os.urandom(BODY))
    storage.record(db, sweep, result, RawCaps(per_store_day=350_000, total=1_000_000))


def kept(db):
    return db.execute(
        """SELECT c.store, substr(t.started_at, 1, 10), COUNT(*), SUM(length(r.body))
           FROM raw_responses r JOIN attempts t ON t.id = r.attempt_id
           JOIN charts c ON c.id = t.chart_id GROUP BY 1, 2 ORDER BY 2, 1"""
    ).fetchall()


def test_a_store_keeps_bodies_up_to_its_daily_cap_and_the_others_keep_theirs(db_path):
    db = schema.open_db(db_path)
    sweep = storage.begin_sweep(db, "2026-03-01T00:00:00Z")
    for country in ("us", "gb", "fr", "de", "jp"):
        fail_with_body(db, sweep, country, "2026-03-01T00:00:00Z")
        fail_with_body(db, sweep, country, "2026-03-01T00:00:00Z", store="play")
    rows = kept(db)
    assert [(store, day, count) for store, day, count, _ in rows] == [
        ("apple", "2026-03-01", 3),
        ("play", "2026-03-01", 3),
    ]
    assert all(size <= 350_000 for *_, size in rows)
    # Every failure is still recorded, with or without its body.
    assert db.execute("SELECT COUNT(*) FROM attempts WHERE status = 'error'").fetchone() == (10,)
    db.close()


def test_the_oldest_bodies_make_room_within_the_total(db_path):
    db = schema.open_db(db_path)
    for day in range(1, 8):
        at = f"2026-03-{day:02d}T{day:02d}:00:00Z"  # 25 hours apart: one a day per chart
        sweep = storage.begin_sweep(db, at)
        for country in ("us", "gb", "fr"):
            fail_with_body(db, sweep, country, at)
    rows = kept(db)
    total = sum(size for *_, size in rows)
    assert total <= 1_000_000
    # 21 bodies were kept in turn; the 9 newest fit.
    assert [(day, count) for _, day, count, _ in rows] == [
        ("2026-03-05", 3),
        ("2026-03-06", 3),
        ("2026-03-07", 3),
    ]
    db.close()


def test_a_play_outage_keeps_at_most_the_daily_cap(run_monitor, stand_in):
    countries = ["us", "gb", "fr", "de", "jp", "mx", "br", "in"]
    stand_in.faults = dict.fromkeys(countries, "drifted")
    args = ["--store", "play", "--country", ",".join(countries), "--play-interval", "0"]
    run_monitor("collect", *args, "--raw-per-day", "0")
    with closing(sqlite3.connect(run_monitor.db)) as conn:
        assert conn.execute("SELECT COUNT(*) FROM raw_responses").fetchone() == (0,)
    config = run_monitor.db.parent / "monitor.toml"
    config.write_text('raw_per_day = "20KB"\n')
    run_monitor("collect", *args, "--config", str(config))
    with closing(sqlite3.connect(run_monitor.db)) as conn:
        count, size = conn.execute(
            "SELECT COUNT(*), SUM(length(body)) FROM raw_responses"
        ).fetchone()
    assert 0 < count < len(countries) and size <= 20 * 1024
    status = run_monitor("status", "--config", str(config))
    assert f"Failed bodies kept: {count}, " in status.stdout
    assert "(at most 0.0 MB a store)" in status.stdout  # 20 KB, as the config says
    raw = json.loads(run_monitor("status", "--json", "--config", str(config)).stdout)["raw"]
    assert (raw["count"], raw["bytes"], raw["today"]["play"]) == (count, size, size)
    assert raw["caps"] == {"per_store_day": 20 * 1024, "total": 64 * 2**20}
