"""Chart events and milestones: recorded with the observation or sweep end that caused
them, never for a failed fetch, never twice, and derived alike for an existing history."""

from __future__ import annotations

import html
import json
import re
import subprocess
import sys
from urllib.parse import urlsplit
from xml.etree import ElementTree

import feedparser
import pytest

from helpers import get, rows
from history import app_sweep
from monitor import events, queries, schema
from monitor.reference import storefronts_175

APP = ("6737597349", "DeepSeek")
T = [f"2025-01-27T{hour:02d}:00:00Z" for hour in range(10)]
COLUMNS = "kind, country, app_id, app_name, rank_before, rank_after, threshold, countries"


def test_changes_compare_each_band_down_to_the_shallower_list():
    found = events.changes({"a": 2, "b": 9, "c": 30, "d": 60}, {"a": 1, "b": 12, "e": 5}, 50)
    assert [(c.kind, c.app_id, c.rank_before, c.rank_after) for c in found] == [
        ("entered_no1", "a", 2, 1),
        ("left_top10", "b", 9, 12),
        ("left_chart", "c", 30, None),
        ("entered_top10", "e", None, 5),
        ("entered_chart", "e", None, 5),
    ]  # d, at 60, is below the shallower list: it neither left nor stayed


@pytest.fixture
def db(tmp_path):
    database = schema.open_db(tmp_path / "rankings.db")
    yield database
    database.close()


def sweep(db, at, ranks, thresholds=(1, 2, 3), failing=()):
    return app_sweep(db, at, APP, ranks, thresholds, failing)


def recorded(db, since=0):
    sql = f"SELECT {COLUMNS} FROM events WHERE id > ? AND app_id = ? ORDER BY id"
    return db.execute(sql, [since, APP[0]]).fetchall()


def test_a_climb_is_recorded_with_its_observations_and_milestones(db):
    sweep(db, T[0], {"us": 3, "gb": 1, "jp": 0})
    assert recorded(db) == []  # a first observation has nothing to compare with
    sweep(db, T[1], {"us": 1, "gb": 1, "jp": 1})
    change = (APP[0], APP[1])
    assert recorded(db) == [
        ("entered_no1", "us", *change, 3, 1, None, None),
        ("entered_no1", "jp", *change, None, 1, None, None),
        ("entered_top10", "jp", *change, None, 1, None, None),
        ("entered_chart", "jp", *change, None, 1, None, None),
        # No. 1 in 1 storefront, then 3; in the top 10 in 2, then 3.
        ("milestone_no1", None, *change, None, None, 2, 3),
        ("milestone_no1", None, *change, None, None, 3, 3),
        ("milestone_top10", None, *change, None, None, 3, 3),
    ]
    (row,) = db.execute(
        "SELECT snapshot_before, snapshot_after, observed_before, at, sweep_id FROM events "
        "WHERE kind = 'entered_no1' AND country = 'us'"
    ).fetchall()
    assert row[2:] == (T[0], T[1], 2)
    assert db.execute(
        "SELECT rank FROM rankings WHERE snapshot_id = ? AND app_id = ?", [row[1], APP[0]]
    ).fetchone() == (1,)


def test_a_failed_fetch_is_no_change_and_the_next_compares_with_the_last_success(db):
    sweep(db, T[0], {"us": 1, "gb": 1})
    sweep(db, T[1], {"us": 1}, failing=["gb"])
    assert recorded(db) == []  # no left_no1 for gb: it was not observed
    first = db.execute("SELECT MAX(id) FROM event_log").fetchone()[0] or 0
    sweep(db, T[2], {"us": 1, "gb": 4})
    assert recorded(db, first) == [("left_no1", "gb", APP[0], APP[1], 1, 4, None, None)]


def test_nothing_is_recorded_twice(db):
    sweep(db, T[0], {"us": 2})
    sweep_id = sweep(db, T[1], {"us": 1})
    before = db.execute("SELECT COUNT(*) FROM event_log").fetchone()
    events.record_milestones(db, sweep_id, T[1], (1, 2, 3))  # again, as after a restart
    assert db.execute("SELECT COUNT(*) FROM event_log").fetchone() == before


def test_milestones_that_cannot_be_recorded_cost_the_sweep_nothing_and_wait(db, caplog):
    sweep(db, T[0], {"us": 3, "gb": 1, "jp": 0})
    db.execute(
        "CREATE TRIGGER full BEFORE INSERT ON event_log WHEN NEW.kind LIKE 'milestone%' "
        "BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END"
    )
    second = sweep(db, T[1], {"us": 1, "gb": 1, "jp": 1})
    ended = db.execute("SELECT status, finished_at FROM sweeps WHERE id = ?", [second])
    assert ended.fetchone() == ("finished", T[1])
    kinds = [row[0] for row in recorded(db)]
    assert kinds == ["entered_no1", "entered_no1", "entered_top10", "entered_chart"]
    assert f"milestones of sweep {second} not recorded yet" in caplog.text
    assert db.execute("SELECT sweep_id FROM milestones_due").fetchall() == [(second,)]
    said = monitor("status", "--db", schema.database_file(db))
    told = f"milestones of sweeps {second} not recorded yet: the next sweep's end records them"
    assert told in said
    db.execute("DROP TRIGGER full")
    sweep(db, T[2], {"us": 1, "gb": 1, "jp": 1})  # crosses nothing itself
    change = (APP[0], APP[1])
    assert recorded(db)[4:] == [
        ("milestone_no1", None, *change, None, None, 2, 3),
        ("milestone_no1", None, *change, None, None, 3, 3),
        ("milestone_top10", None, *change, None, None, 3, 3),
    ]
    milestones = "SELECT DISTINCT sweep_id, at FROM events WHERE kind LIKE 'milestone%'"
    assert db.execute(milestones).fetchall() == [(second, T[1])]  # as if recorded at its end
    assert db.execute("SELECT COUNT(*) FROM milestones_due").fetchone() == (0,)
    assert "not recorded yet" not in monitor("status", "--db", schema.database_file(db))


def test_the_history_already_stored_gives_the_events_recorded_live(db):
    sweep(db, T[0], {"us": 3, "gb": 1, "jp": 0, "fr": 40})
    sweep(db, T[1], {"us": 1, "gb": 1, "jp": 1}, failing=["fr"])
    sweep(db, T[2], {"us": 1, "gb": 12, "jp": 1, "fr": 0})
    sweep(db, T[3], {"us": 2, "gb": 0, "jp": 1, "fr": 5})
    live = db.execute("SELECT * FROM events ORDER BY id").fetchall()
    assert len(live) > 10
    db.execute("DELETE FROM event_log")
    events.derive_history(db, (1, 2, 3))
    derived = db.execute("SELECT * FROM events ORDER BY id").fetchall()
    assert [row[1:] for row in derived] == [row[1:] for row in live]


def monitor(*args):
    result = subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_monitor_events_lists_them_by_app_kind_and_storefront(tmp_path):
    path = tmp_path / "rankings.db"
    db = schema.open_db(path)
    sweep(db, T[0], {"us": 3, "gb": 1, "jp": 0})
    sweep(db, T[1], {"us": 1, "gb": 1, "jp": 1})
    db.close()
    listed = monitor("events", "--db", str(path), "--app", "deepseek", "--kind", "entered_no1")
    assert listed.splitlines() == [
        f"{T[1]}  apple top-free iphone us  DeepSeek ({APP[0]}): entered_no1 3 -> 1",
        f"{T[1]}  apple top-free iphone jp  DeepSeek ({APP[0]}): entered_no1 - -> 1",
    ]
    milestones = monitor("events", "--db", str(path), "--kind", "milestone_no1", "--json")
    assert [json.loads(line)["threshold"] for line in milestones.splitlines()] == [2, 3]
    latest = monitor(
        "events", "--db", str(path), "--country", "JP", "--app", APP[0], "--limit", "1"
    )
    assert latest.splitlines() == [
        f"{T[1]}  apple top-free iphone jp  DeepSeek ({APP[0]}): entered_chart - -> 1"
    ]
    db = schema.open_db(path)
    sweep(db, T[2], {"us": 2, "gb": 1, "jp": 1})
    db.close()
    since = monitor("events", "--db", str(path), "--app", APP[0], "--since", T[2])
    assert since.splitlines() == [
        f"{T[2]}  apple top-free iphone us  DeepSeek ({APP[0]}): left_no1 1 -> 2"
    ]
    day = monitor("events", "--db", str(path), "--app", APP[0], "--since", T[1], "--json")
    assert {json.loads(line)["at"] for line in day.splitlines()} == {T[1], T[2]}


ATOM = "{http://www.w3.org/2005/Atom}"
RFC_3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def assert_atom(text):
    """The constraints RFC 4287 puts on a feed and its entries, as a validator checks them."""
    feed = ElementTree.fromstring(text)
    assert feed.tag == f"{ATOM}feed"

    def one(element, name):
        (found,) = element.findall(f"{ATOM}{name}")
        return found

    def check(element, where):
        assert urlsplit(one(element, "id").text).scheme in ("http", "https", "tag"), where
        assert one(element, "title").text, where
        assert RFC_3339.match(one(element, "updated").text), where
        alternates = [
            (link.get("type"), link.get("hreflang"))
            for link in element.findall(f"{ATOM}link")
            if link.get("rel", "alternate") == "alternate"
        ]
        assert len(alternates) == len(set(alternates)), where  # 4.1.1: one per type, language
        assert all(link.get("href") for link in element.findall(f"{ATOM}link")), where

    check(feed, "feed")
    assert one(one(feed, "author"), "name").text  # 4.1.1: an author, or one in each entry
    assert [link.get("rel") for link in feed.findall(f"{ATOM}link")].count("self") == 1
    for entry in feed.findall(f"{ATOM}entry"):
        check(entry, one(entry, "id").text)
        content = one(entry, "content")
        assert content.get("type") == "html" and content.text, one(entry, "id").text
    ids = [one(entry, "id").text for entry in feed.findall(f"{ATOM}entry")]
    assert len(ids) == len(set(ids))


def test_the_atom_feed_lists_an_apps_events_each_linked_to_its_evidence(tmp_path, served):
    path = tmp_path / "rankings.db"
    db = schema.open_db(path)
    sweep(db, T[0], {"us": 3, "gb": 1, "jp": 0})
    sweep(db, T[1], {"us": 1, "gb": 4, "jp": 1})
    expected = db.execute(
        "SELECT id, kind, country, rank_after, snapshot_after FROM events WHERE app_id = ? "
        "ORDER BY id DESC",
        [APP[0]],
    ).fetchall()
    db.close()
    ds = served(path)
    text = get(ds, "/rankings/events_feed.atom?app=deepseek&country=&chart=&kind=").text
    assert_atom(text)
    feed = feedparser.parse(text)
    assert not feed.bozo, feed.bozo_exception
    assert feed.feed.title == "What changed: an app's events, as a feed"
    assert [entry.id.split(":")[3:5] for entry in feed.entries] == [
        [str(event_id), kind] for event_id, kind, *_ in expected
    ]
    first = feed.entries[0]  # the newest: a milestone, linked to the app page at its time
    assert first.title == "DeepSeek: in the top 10 in 3 storefronts, top free iPhone apps"
    assert "/-/dashboards/app?app=6737597349&at=" in first.link
    for entry, (_, kind, country, rank, snapshot) in zip(feed.entries, expected, strict=True):
        assert entry.updated.replace("+00:00", "Z") == T[1]
        text = html.unescape(entry.summary)
        assert len(entry.links) == 1 and f'<a href="{entry.link}">the evidence</a>' in text
        if snapshot is not None:  # the text links to the app page too
            assert f'<a href="{first.link}">the app page</a>' in text
        if snapshot is None:
            continue
        link = urlsplit(entry.link)
        shown = get(ds, f"{link.path}.json?{link.query}&_shape=array")
        assert [(r["country"], r["rank"]) for r in shown.json()] == [(country, rank)], kind
    page = get(ds, "/rankings/events_feed?app=deepseek&country=&chart=&kind=").text
    assert (
        f'<a href="rankings?snapshot_id={expected[-1][4]}&amp;app_id={APP[0]}">evidence</a>' in page
    )
    nothing = feedparser.parse(
        get(ds, "/rankings/events_feed.atom?app=zzz&country=&chart=&kind=").text
    )
    assert not nothing.bozo and nothing.entries == []


def test_a_long_feed_pages_on_to_every_event(tmp_path, served):
    path = tmp_path / "rankings.db"
    db = schema.open_db(path)
    countries = list(storefronts_175())
    sweep(db, T[0], dict.fromkeys(countries, 0))
    sweep(db, T[1], dict.fromkeys(countries, 1))  # into the chart, top 10 and No. 1 in 175
    expected = [
        f"{event_id}:{kind}"
        for event_id, kind in db.execute(
            "SELECT id, kind FROM events WHERE app_id = ? ORDER BY id DESC", [APP[0]]
        )
    ]
    db.close()
    assert len(expected) > queries.FEED_LIMIT
    ds = served(path)
    listed, page = [], "/rankings/events_feed.atom?app=deepseek&country=&chart=&kind="
    while page:
        text = get(ds, page).text
        assert_atom(text)
        feed = feedparser.parse(text)
        assert not feed.bozo, feed.bozo_exception
        assert 0 < len(feed.entries) <= queries.FEED_LIMIT
        listed += [":".join(entry.id.split(":")[3:5]) for entry in feed.entries]
        older = [link.href for link in feed.feed.links if link.rel == "next"]
        page = urlsplit(older[0])._replace(scheme="", netloc="").geturl() if older else ""
    assert listed == expected
    html_page = get(ds, "/rankings/events_feed?app=deepseek&country=&chart=&kind=").text
    oldest = expected[queries.FEED_LIMIT - 1].split(":")[0]
    assert f'&amp;before={oldest}">older events</a>' in html_page


def test_a_storefronts_feed_is_found_through_its_charts(tmp_path, served):
    path = tmp_path / "rankings.db"
    db = schema.open_db(path)
    sweep(db, T[0], {"us": 0, "gb": 3, "jp": 1})
    sweep(db, T[1], {"us": 1, "gb": 1, "jp": 12})
    sweep(db, T[2], {"us": 12, "gb": 1, "jp": 1})

    def expected(country, kind="", before=1 << 62):
        sql = (
            "SELECT id, kind FROM events WHERE country = ? AND (? = '' OR kind = ?) "
            "AND id < ? ORDER BY id DESC"
        )
        return db.execute(sql, [country, kind, kind, before]).fetchall()

    assert len(expected("us")) >= 4 and len(expected("jp", "entered_no1")) >= 1
    conn = db.conn
    queries.prepare(conn)
    blank = dict.fromkeys(("app", "country", "chart", "kind", "before", "at"), "")
    plan = conn.execute(f"EXPLAIN QUERY PLAN {queries.EVENTS_FEED}", blank)
    steps = " | ".join(row[-1] for row in plan)
    assert "SEARCH x USING INDEX idx_event_log_chart_id (chart_id=?)" in steps
    ds = served(path)
    for country, kind, before in [("us", "", ""), (" JP ", "entered_no1", ""), ("gb", "", "7")]:
        asked = {"app": "", "country": country, "chart": "", "kind": kind, "before": before}
        found = [(r["id"], r["kind"]) for r in rows(ds, "events_feed", **asked)]
        bound = int(before) if before else 1 << 62
        assert found == expected(country.strip().lower(), kind, bound), asked
    assert rows(ds, "events_feed", app="", country="zz", chart="", kind="", before="") == []
    db.close()


def test_events_are_written_to_every_column_of_the_log(db):
    assert ["id", *events.COLUMNS] == [c.name for c in db.table("event_log").columns]
