"""Datasette in process: metadata, every canned query, and untrusted names as text."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from urllib.parse import parse_qsl, quote, unquote

import feedparser
import pytest

import scenario
from helpers import chart, get, query, rows
from history import fail, finish, observe
from monitor import history_pages, publish, queries, schema, storage
from monitor.collector import now
from monitor.queries import CANNED


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
    path = scenario.build(tmp_path_factory.mktemp("datasette") / "rankings.db")
    datasette = publish.datasette(path, publish.Listen("127.0.0.1", 0))
    yield datasette
    publish.close(datasette)


def test_every_canned_query_is_published(ds):
    published = set(ds.metadata("queries", database="rankings"))
    assert (
        published
        == set(CANNED)
        == {
            "claim",
            "claim_summary",
            "top_chart",
            "app_history",
            "number_ones",
            "movers",
            "events_feed",
            "coverage",
        }
    )


def test_every_canned_query_page_hides_its_sql_until_asked(ds):
    for name in CANNED:
        page = get(ds, f"/rankings/{name}").text
        assert f'(<a href="/rankings/{name}?_show_sql=1">show</a>)' in page, name
        assert '<pre id="sql-query">' not in page, name
        shown = get(ds, f"/rankings/{name}?_show_sql=1").text
        assert '<pre id="sql-query">' in shown, name


def test_claim_between_the_phases(ds):
    answer = rows(ds, "claim", app=scenario.APP_ID, at=scenario.T1)
    free = [r for r in answer if (r["chart"], r["device"]) == ("top-free", "iphone")]
    observed = {r["country"]: r["rank"] for r in free if r["coverage"] == "observed"}
    assert observed == {"ca": 1, "gb": 1, "jp": 5, "us": 1, "fr": None}
    assert {r["country"]: r["coverage"] for r in free if r["coverage"] != "observed"} == {
        "de": "never observed"
    }
    assert all(r["observed_at"] <= scenario.T1 for r in free if r["observed_at"])


def test_claim_after_phase_two_marks_the_stale_country(ds):
    answer = rows(ds, "claim", app=scenario.APP_ID, at=scenario.T2)
    free = {r["country"]: r for r in answer if (r["chart"], r["device"]) == ("top-free", "iphone")}
    assert free["ca"]["coverage"] == "not observed: too old"
    assert free["ca"]["rank"] is None
    assert sorted(cc for cc, r in free.items() if r["rank"] == 1) == ["de", "jp", "us"]


def test_top_chart_as_it_stood(ds):
    chart = rows(ds, "top_chart", country="US", chart="top-free", device="iphone", at=scenario.T1)
    assert [r["rank"] for r in chart] == list(range(1, 31))
    assert (chart[0]["app_id"], chart[0]["app_name"]) == (scenario.APP_ID, scenario.NEW_NAME)
    assert chart[0]["observed_at"] == scenario.T1
    assert chart[0]["icon"].endswith(f"/{scenario.APP_ID}.png")
    assert (
        rows(
            ds,
            "top_chart",
            country="us",
            chart="top-free",
            device="iphone",
            at="2025-01-26T07:00:00Z",
        )
        == []
    )


def test_app_history_in_one_country(ds):
    history = rows(ds, "app_history", app=scenario.APP_ID, country="gb")
    assert [(r["fetched_at"], r["rank"], r["app_name"]) for r in history] == [
        (scenario.T0, 1, scenario.OLD_NAME),
        (scenario.T1, 1, scenario.OLD_NAME),
        (scenario.T2, 20, scenario.NEW_NAME),
    ]


def test_number_ones_at_a_time(ds):
    ones = rows(ds, "number_ones", at=scenario.T2)
    free = {
        r["country"]: r["app_id"]
        for r in ones
        if (r["chart"], r["device"]) == ("top-free", "iphone")
    }
    assert free == {
        "de": scenario.APP_ID,
        "jp": scenario.APP_ID,
        "us": scenario.APP_ID,
        "fr": "90000",
        "gb": "90000",
    }


def test_number_ones_seeks_each_charts_runs_by_key_whatever_the_history(ds):
    """Not through the index of ranks, which grows with every run at No. 1 ever."""
    conn = sqlite3.connect(ds.get_database("rankings").path)
    queries.prepare(conn)
    sql = queries.with_max_age(queries.NUMBER_ONES)
    steps = [row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", {"at": ""})]
    conn.close()
    assert "SEARCH r USING PRIMARY KEY (chart_id=? AND last_snapshot>?)" in steps
    assert not [step for step in steps if "idx_runs_rank" in step]


def test_movers_compare_with_hours_before(ds):
    moves = rows(ds, "movers", hours=24)
    jp = [r for r in moves if r["country"] == "jp" and r["app_id"] == scenario.APP_ID]
    assert jp == [{**jp[0], "rank_before": 5, "rank_now": 1, "movement": "climb", "places": 4}]
    fr = [r for r in moves if r["country"] == "fr" and r["app_id"] == scenario.APP_ID]
    assert fr[0]["movement"] == "new entry" and fr[0]["rank_now"] == 8


def test_movers_say_the_window_and_filter_by_app_and_storefront(ds):
    moves = rows(ds, "movers", hours=24, app="deepseek - ai", country="JP")
    assert [(r["country"], r["country_name"], r["app_id"], r["movement"]) for r in moves] == [
        ("jp", "Japan", scenario.APP_ID, "climb")
    ]
    assert (moves[0]["compared_from"], moves[0]["compared_to"]) == (scenario.T1, scenario.T2)
    assert (moves[0]["move"], moves[0]["moves"], moves[0]["link"]) == (1, 1, None)
    assert rows(ds, "movers", hours=24, app="deepseek - ai", country="JP", at=scenario.T1) == []
    assert [r["note"] for r in rows(ds, "movers", hours=24, app="no such app")] == [
        "no app has the id or a name containing 'no such app'"
    ]


def test_movers_of_a_name_several_apps_had_list_them_with_links(ds):
    answer = rows(ds, "movers", hours=24, app="deepseek", at=scenario.T2)
    assert {r["app_id"]: r["link"] for r in answer} == {
        app: f"?hours=24&country=&at={quote(scenario.T2)}&app={app}"
        for app in (scenario.APP_ID, "1111111111")
    }
    assert {r["note"] for r in answer} == {
        "one of 2 apps with a name containing 'deepseek': ask for one by its id"
    }
    html = get(ds, f"/rankings/movers?hours=24&app=deepseek&at={scenario.T2}").text
    assert f'&amp;app={scenario.APP_ID}">permalink</a>' in html


def test_the_feed_of_a_name_several_apps_had_lists_them_and_has_no_entry(ds):
    answer = rows(ds, "events_feed", app="deepseek", country="", chart="", kind="")
    asked = "&country=&chart=&kind="
    assert {r["app_id"]: r["link"] for r in answer} == {
        app: f"?app={app}{asked}" for app in (scenario.APP_ID, "1111111111")
    }
    assert {r["atom_id"] for r in answer} == {None}
    page = get(ds, f"/rankings/events_feed?app=deepseek{asked}").text
    assert f'<a href="?app={scenario.APP_ID}{asked.replace("&", "&amp;")}">this app</a>' in page
    feed = feedparser.parse(get(ds, f"/rankings/events_feed.atom?app=deepseek{asked}").text)
    assert not feed.bozo and feed.entries == []
    (none,) = rows(ds, "events_feed", app="no such app", country="", chart="", kind="")
    assert none["note"] == "no app has the id or a name containing 'no such app'"
    one = rows(ds, "events_feed", app=scenario.APP_ID, country="", chart="", kind="")
    assert one and {r["app_id"] for r in one} == {scenario.APP_ID}


def test_movers_page_on_without_stopping(tmp_path, served):
    db = schema.open_db(tmp_path / "rankings.db")
    apps = [(f"{7000 + i}", f"App {i}") for i in range(600)]
    sweep = storage.begin_sweep(db, scenario.T1)
    observe(db, sweep, chart("us", depth=600), scenario.T1, apps)
    sweep = storage.begin_sweep(db, scenario.T2)
    observe(db, sweep, chart("us", depth=600), scenario.T2, apps[::-1])
    db.close()
    ds = served(tmp_path / "rankings.db")
    first = rows(ds, "movers", hours=24)
    assert [r["move"] for r in first] == list(range(1, 501))
    assert {r["moves"] for r in first} == {600}
    at = quote(first[0]["at"])
    assert [r["link"] for r in first if r["link"]] == [f"?hours=24&country=&at={at}&app=&page=2"]
    # Asked a moment later, the page pins its own "now" in its link (a second may have
    # passed since the rows above).
    page = get(ds, "/rankings/movers?hours=24").text
    link = r'<a href="\?hours=24&amp;country=&amp;at=([^&"]+)&amp;app=&amp;page=2">next page</a>'
    (pinned,) = re.findall(link, page)
    assert first[0]["at"] <= unquote(pinned) <= now()
    second = rows(ds, "movers", **dict(parse_qsl(first[-1]["link"][1:], keep_blank_values=True)))
    assert [r["move"] for r in second] == list(range(501, 601))
    assert [r["link"] for r in second if r["link"]] == []
    moved = {(r["app_id"], r["rank_before"], r["rank_now"]) for r in first + second}
    assert moved == {(f"{7000 + i}", i + 1, 600 - i) for i in range(600)}


def test_coverage_leaves_out_sweeps_older_than_30_days(ds):
    # The scenario lies in the past; coverage covers the last 30 days of sweeps.
    assert rows(ds, "coverage") == []


def test_coverage_of_recent_sweeps(tmp_path, served):
    db = schema.open_db(tmp_path / "rankings.db")
    at = now()
    sweep = storage.begin_sweep(db, at)
    observe(db, sweep, chart("us"), at, [("1", "A")])
    fail(db, sweep, chart("jp"), at)
    fail(db, sweep, chart("jp", chart="top-paid"), at)
    ds = served(tmp_path / "rankings.db")
    coverage = {
        r["country"]: (r["ok"], r["errors"], r["success_percent"]) for r in rows(ds, "coverage")
    }
    assert coverage == {"us": (1, 0, 100.0), "jp": (0, 2, 0.0)}


def test_metadata_describes_every_table_and_column(ds):
    published = get(ds, "/-/metadata.json").json()
    assert published["title"].startswith("monitor")
    tables = published["databases"]["rankings"]["tables"]
    db = ds.get_database("rankings")
    names = asyncio.run(db.table_names()) + asyncio.run(db.view_names())
    for name in names:
        assert tables[name]["description"], name
        if name.startswith("_"):
            continue
        columns = asyncio.run(db.table_columns(name))
        assert set(columns) <= set(tables[name]["columns"]), name


def test_untrusted_names_show_as_text_everywhere(ds):
    pages = [
        f"/rankings/top_chart?country=us&chart=top-paid&device=iphone&at={scenario.T2}",
        "/rankings/rankings?app_id=1111111111",
        "/rankings/labels",
        f"/rankings/claim?app=1111111111&at={scenario.T2}",
    ]
    for page in pages:
        html = get(ds, page).text
        assert "DeepSeek Helper &lt;b&gt;&amp;&lt;/b&gt;" in html, page
        assert "<b>&</b>" not in html, page


def test_names_link_to_store_pages_and_icons_show(ds):
    html = get(
        ds, f"/rankings/top_chart?country=us&chart=top-free&device=iphone&at={scenario.T2}"
    ).text
    assert f'<a href="https://apps.apple.com/us/app/id{scenario.APP_ID}">DeepSeek</a>' in html
    assert f'<img src="http://127.0.0.1/{scenario.APP_ID}.png"' in html
    assert '<a href="/rankings/rankings?snapshot_id=' in html


def test_table_pages_name_each_country_beside_its_code(ds):
    for page in (
        "/rankings/rankings?country=jp",
        "/rankings/fetches?country=jp",
        "/rankings/events?country=jp",
    ):
        html = get(ds, page).text
        assert 'jp <span class="country-name">Japan</span>' in html, page
    # Names in the data, not only on the page: JSON keeps the code alone.
    shown = get(ds, "/rankings/rankings.json?_shape=array&country=jp&_size=1").json()
    assert shown[0]["country"] == "jp"


def test_rankings_opens_on_the_latest_complete_sweep(tmp_path, served):
    path = scenario.build(tmp_path / "rankings.db")
    db = schema.open_db(path)
    for sweep, started_at in db.execute("SELECT id, started_at FROM sweeps").fetchall():
        finish(db, sweep, started_at)
    (first,) = db.execute(
        "SELECT MIN(id) FROM snapshots WHERE fetched_at >= ?", [scenario.T2]
    ).fetchone()
    db.close()
    ds = served(path)
    opened = asyncio.run(ds.client.get("/rankings/rankings"))
    assert opened.status_code == 302
    assert opened.headers["location"] == f"/rankings/rankings?snapshot_id__gte={first}"
    shown = get(ds, f"/rankings/rankings.json?_shape=array&snapshot_id__gte={first}").json()
    assert shown and {row["fetched_at"] for row in shown} == {scenario.T2}
    conn = sqlite3.connect(path)
    plan = conn.execute(f"EXPLAIN QUERY PLAN {history_pages.LATEST_SWEEP_FIRST}").fetchall()
    conn.close()
    assert [  # a range of it, not a scan in its order
        step
        for step in plan
        if step[-1].startswith("SEARCH") and "idx_snapshots_fetched_at (fetched_at>?)" in step[-1]
    ]
    # Asked for anything, or as JSON, the page is what was asked.
    assert asyncio.run(ds.client.get("/rankings/rankings?rank=1")).status_code == 200
    assert asyncio.run(ds.client.get("/rankings/rankings.json")).status_code == 200


def test_rankings_offers_only_the_sorts_its_indexes_serve(ds):
    page = get(ds, "/rankings/rankings").text
    offered = set(re.findall(r'href="/rankings/rankings\?[^"]*_sort(?:_desc)?=(\w+)"', page))
    assert offered == {"snapshot_id", "fetched_at", "rank"}
    # Each offered sort reads an index in its order: no sort of the whole history.
    conn = sqlite3.connect(ds.get_database("rankings").path)
    for column in offered:
        for order in ("", " DESC"):
            plan = conn.execute(
                f"EXPLAIN QUERY PLAN SELECT * FROM rankings ORDER BY {column}{order} LIMIT 101"
            ).fetchall()
            assert not [step for step in plan if "TEMP B-TREE" in step[-1]], (column, order)
    conn.close()


def test_pages_of_the_history_leave_out_their_row_count(ds):
    for table in history_pages.HISTORY:
        answer = get(ds, f"/rankings/{table}.json?_size=1").json()
        assert answer["filtered_table_rows_count"] is None, table
    assert get(ds, "/rankings/storefronts.json").json()["filtered_table_rows_count"] == 175
    asked = get(ds, "/rankings/snapshots.json?_nocount=&_size=1").json()
    assert (
        asked["filtered_table_rows_count"]
        == query(ds.get_database().path, "SELECT COUNT(*) FROM snapshots")[0][0]
    )


@pytest.mark.parametrize(
    "page",
    ["/rankings/sweeps.atom", "/rankings/rankings.atom", "/rankings/claim.atom?app=deepseek"],
)
def test_an_atom_feed_of_rows_that_are_not_entries_is_not_found(ds, page):
    answer = asyncio.run(ds.client.get(page))
    assert answer.status_code == 404
    assert "These rows are not feed entries: no Atom feed here." in answer.text


@pytest.mark.parametrize(
    "sql",
    [
        "select randomblob(999999999)",
        "select length(randomblob(900000000))",
        "select length(zeroblob(100000000))",
    ],
)
def test_a_reader_cannot_make_sqlite_build_huge_values(ds, sql):
    started = time.monotonic()
    response = asyncio.run(ds.client.get("/rankings.json", params={"sql": sql}))
    assert response.status_code == 400
    assert response.json()["error"] == "string or blob too big"
    assert time.monotonic() - started < 1


def statuses(ds, paths):
    return [asyncio.run(ds.client.get(path)).status_code for path in paths]


PUBLIC_PATHS = [
    "/rankings/rankings.json?_size=2",
    f"/rankings/claim.json?app={scenario.APP_ID}",
    "/rankings/fetches",
    "/rankings.json?sql=select+1",
    "/rankings/raw_responses.json",
    "/rankings/rankings.csv?_stream=1",
]


def test_public_mode_serves_pages_and_canned_queries_but_no_sql_or_raw_bodies(ds, served):
    public = served(ds.get_database("rankings").path, public=True)
    assert statuses(public, PUBLIC_PATHS) == [200, 200, 200, 403, 403, 400]
    assert statuses(ds, PUBLIC_PATHS) == [200, 200, 200, 200, 200, 200]


def test_public_mode_can_allow_sql_and_still_hides_raw_bodies(ds, served):
    public = served(ds.get_database("rankings").path, public=True, public_sql=True)
    assert statuses(public, PUBLIC_PATHS) == [200, 200, 200, 200, 403, 400]


def test_the_app_page_takes_a_name_too_long_to_search_without_failing(ds):
    answer = asyncio.run(ds.client.get(f"/-/dashboards/app?app={'x' * 300}&chart=top-free"))
    assert answer.status_code == 200


def test_the_index_is_a_front_door(ds):
    page = get(ds, "/").text
    assert '<form class="monitor-find" action="/-/dashboards/app" method="get">' in page
    assert '<a href="/rankings/number_ones">Today\'s No. 1 in each storefront</a>' in page
    assert '<a href="/rankings/events_feed">What changed</a>' in page
    listed = re.findall(r'<dt><a href="/rankings/(\w+)">', page)
    assert listed[:5] == ["rankings", "fetches", "events", "storefronts", "notes"]
    assert "raw_responses" in listed and "app_labels" not in listed
    answer = get(ds, "/rankings/claim_summary.json?_shape=array&app=deepseek+-+ai&at=").json()
    assert {row["app_id"] for row in answer} == {scenario.APP_ID}


def test_the_public_index_leaves_out_what_it_does_not_serve(tmp_path, served):
    public = served(scenario.build(tmp_path / "rankings.db"), public=True)
    page = asyncio.run(public.client.get("/")).text
    assert "/rankings/rankings" in page and "raw_responses" not in page
    # The app page draws with SQL, which the public is refused: the box asks the headline.
    assert '<form class="monitor-find" action="/rankings/claim_summary" method="get">' in page
    assert "/-/dashboards/app" not in page
