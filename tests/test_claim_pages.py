"""The published claim answers by itself: apps found by any name, the instant it answers
for and a link pinning it, countries by name, stale answers said so, and the headline."""

from __future__ import annotations

import json

import pytest

import scenario
from helpers import chart, get, rows
from history import fail, finish, observe, ranked
from monitor import publish, queries, schema, storage

T3 = "2025-01-27T10:00:00Z"
T4 = "2025-01-27T11:00:00Z"
LOCAL_NAME = "ディープシーク - AIアシスタント"


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    """The scenario, then two finished sweeps: jp shows a localised name, then de fails."""
    path = scenario.build(tmp_path_factory.mktemp("claims") / "rankings.db")
    db = schema.open_db(path)
    sweep = storage.begin_sweep(db, T3)
    for country in ("us", "de", "fr", "gb"):
        rank = {"us": 1, "de": 1, "fr": 8, "gb": 20}[country]
        observe(db, sweep, chart(country), T3, ranked((scenario.APP_ID, scenario.NEW_NAME), rank))
    observe(db, sweep, chart("jp"), T3, ranked((scenario.APP_ID, LOCAL_NAME), 1))
    finish(db, sweep, T3)
    sweep = storage.begin_sweep(db, T4)
    for country in ("us", "fr", "gb", "jp"):
        rank = {"us": 2, "fr": 8, "gb": 20, "jp": 1}[country]
        observe(db, sweep, chart(country), T4, ranked((scenario.APP_ID, scenario.NEW_NAME), rank))
    fail(db, sweep, chart("de"), T4)
    finish(db, sweep, T4)
    db.close()
    return path


@pytest.fixture(scope="module")
def ds(path):
    datasette = publish.datasette(path, publish.Listen("127.0.0.1", 0))
    yield datasette
    publish.close(datasette)


def iphone_free(answer):
    return [r for r in answer if (r["chart"], r["device"]) == ("top-free", "iphone")]


@pytest.mark.parametrize(
    "app", [scenario.APP_ID, "deepseek - AI", "DEEPSEEK - ai", "ディープシーク"]
)
def test_the_summary_finds_the_app_by_id_or_any_name(ds, app):
    (summary,) = iphone_free(rows(ds, "claim_summary", app=app, at=scenario.T2))
    assert summary["at"] == scenario.T2
    assert summary["app_id"] == scenario.APP_ID
    counts = [summary[k] for k in ("number_one", "top_10", "top_100", "observed", "not_observed")]
    assert counts == [3, 4, 5, 5, 1]
    assert summary["stale"] == 0
    assert summary["number_one_since"] == scenario.T2
    assert (summary["peak_number_one"], summary["peak_at"]) == (3, scenario.T0)


@pytest.mark.parametrize("app", ["deepseek - AI", "ディープシーク"])
def test_the_claim_finds_the_app_by_any_name_as_by_its_id(ds, app):
    by_id = rows(ds, "claim", app=scenario.APP_ID, at=scenario.T2)
    free = {r["country"]: (r["country_name"], r["rank"]) for r in iphone_free(by_id)}
    assert free == {
        "ca": ("Canada", None),  # last observed at T0, more than 6 hours before
        "de": ("Germany", 1),
        "fr": ("France", 8),
        "gb": ("United Kingdom", 20),
        "jp": ("Japan", 1),
        "us": ("United States", 1),
    }
    assert {r["at"] for r in by_id} == {scenario.T2}
    assert rows(ds, "claim", app=app, at=scenario.T2) == by_id


def test_a_permalink_gives_the_same_answer_after_later_sweeps(tmp_path, served):
    path = scenario.build(tmp_path / "rankings.db")
    db = schema.open_db(path)
    for sweep, started_at in db.execute("SELECT id, started_at FROM sweeps").fetchall():
        finish(db, sweep, started_at)
    db.close()
    ds = served(path)
    blank = rows(ds, "claim_summary", app="deepseek - ai", at="")
    (link,) = {r["link"] for r in blank}
    pinned = get(ds, f"/rankings/claim_summary.json?_shape=array&{link[1:]}").json()
    assert pinned == blank
    db = schema.open_db(path)
    for at in (T3, T4):  # the app falls out of No. 1 everywhere
        sweep = storage.begin_sweep(db, at)
        for country in ("us", "gb", "ca"):
            observe(db, sweep, chart(country), at, ranked((scenario.APP_ID, scenario.NEW_NAME), 7))
        finish(db, sweep, at)
    db.close()
    assert {r["at"] for r in rows(ds, "claim_summary", app="deepseek - ai", at="")} == {T4}
    again = get(ds, f"/rankings/claim_summary.json?_shape=array&{link[1:]}").json()
    # The same answer; only the link to the sweep after, which now exists, is new.
    assert {r.pop("later") for r in pinned} == {None}
    assert {r.pop("later") for r in again} == {f"?app={scenario.APP_ID}&at={T3}"}
    assert again == pinned
    assert iphone_free(again)[0]["number_one"] == 3


def test_the_summary_and_the_claim_agree_with_monitor_claim(ds, run_monitor, path):
    cli = json.loads(
        run_monitor("claim", scenario.APP_ID, "--at", T3, "--json", "--db", str(path)).stdout
    )
    (expected,) = [c for c in cli["charts"] if (c["chart"], c["device"]) == ("top-free", "iphone")]
    (summary,) = iphone_free(rows(ds, "claim_summary", app=scenario.APP_ID, at=T3))
    for band in ("number_one", "top_10", "top_100"):
        assert summary[band] == len(expected[band])
    assert summary["observed"] == expected["countries_observed"]
    assert summary["not_observed"] == len(expected["not_observed"])
    assert summary["number_one_since"] == min(expected["number_one_since"].values())
    claim = iphone_free(rows(ds, "claim", app=scenario.APP_ID, at=T3))
    assert {r["country"]: r["rank"] for r in claim if r["rank"]} == expected["ranks"]
    assert {r["country"]: r["country_name"] for r in claim} == expected["country_names"]


def test_a_name_several_apps_had_lists_them_with_links(ds):
    answer = rows(ds, "claim_summary", app="deepseek", at=scenario.T2)
    assert [(r["app_id"], r["app_name"], r["link"]) for r in answer] == [
        ("1111111111", "DeepSeek Helper <b>&</b>", f"?app=1111111111&at={scenario.T2}"),
        (scenario.APP_ID, scenario.NEW_NAME, f"?app={scenario.APP_ID}&at={scenario.T2}"),
    ]
    assert {r["note"] for r in answer} == {
        "one of 2 apps with a name containing 'deepseek': ask for one by its id"
    }
    followed = get(ds, f"/rankings/claim_summary.json?_shape=array&{answer[1]['link'][1:]}")
    assert iphone_free(followed.json())[0]["number_one"] == 3
    page = get(ds, "/rankings/claim_summary?app=deepseek").text
    assert f'<a href="?app=1111111111&amp;at={T4}">permalink</a>' in page
    assert "DeepSeek Helper &lt;b&gt;&amp;&lt;/b&gt;" in page


def test_a_name_no_app_had_says_so(ds):
    for query in ("claim", "claim_summary", "app_history"):
        (row,) = rows(ds, query, app="no such app")
        assert row["note"] == "no app has the id or a name containing 'no such app'"
    for wildcard in ("%", "_"):  # LIKE's wildcards are plain characters here
        (row,) = rows(ds, "claim", app=wildcard)
        assert row["note"] == f"no app has the id or a name containing '{wildcard}'"


def test_a_blank_time_is_the_end_of_the_latest_complete_sweep_and_the_link_pins_it(ds, path):
    answer = iphone_free(rows(ds, "claim", app=scenario.APP_ID, at=""))
    assert {r["at"] for r in answer} == {T4}
    assert {r["link"] for r in answer} == {f"?app={scenario.APP_ID}&at={T4}"}
    pinned = rows(ds, "claim_summary", app=scenario.APP_ID, at=T3)
    db = schema.open_db(path)
    sweep = storage.begin_sweep(db, "2025-01-27T12:00:00Z")
    observe(db, sweep, chart("jp"), "2025-01-27T12:00:00Z", ranked((scenario.APP_ID, "x"), 9))
    db.close()  # a sweep under way: a blank time still answers for the last complete one
    assert {r["at"] for r in rows(ds, "claim_summary", app=scenario.APP_ID, at="")} == {T4}
    assert rows(ds, "claim_summary", app=scenario.APP_ID, at=T3) == pinned


def test_an_answer_a_later_fetch_failed_to_renew_says_so(ds, run_monitor, path):
    at = "2025-01-27T11:30:00Z"
    claim = {r["country"]: r for r in iphone_free(rows(ds, "claim", app=scenario.APP_ID, at=at))}
    assert claim["de"]["rank"] == 1 and claim["de"]["coverage"] == "observed"
    assert claim["de"]["age_seconds"] == 5400
    assert claim["de"]["note"] == (
        f"stale: last fetch failed at {T4}; showing the observation of {T3}"
    )
    assert [cc for cc, r in claim.items() if r["note"]] == ["de"]
    (summary,) = iphone_free(rows(ds, "claim_summary", app=scenario.APP_ID, at=at))
    assert (summary["stale"], summary["number_one"]) == (1, 2)
    shown = run_monitor("claim", scenario.APP_ID, "--at", at, "--db", str(path)).stdout
    assert f"  de: stale: last fetch failed at {T4}; showing the observation of {T3}" in shown
    assert "  de Germany                  1  2025-01-27T10:00:00Z" in shown


def test_countries_have_their_names_in_every_answer_and_a_table(ds):
    storefronts = rows(ds, "storefronts", _size="max")
    assert len(storefronts) == 175
    assert {r["code"]: r["name"] for r in storefronts}["ae"] == "United Arab Emirates"
    top = rows(ds, "top_chart", country="JP", device="iphone", at=T3)
    assert {(r["at"], r["country"], r["country_name"]) for r in top} == {(T3, "jp", "Japan")}
    ones = rows(ds, "number_ones", at=T3)
    assert {(r["country"], r["country_name"]) for r in ones} >= {("de", "Germany")}
    assert {r["at"] for r in ones} == {T3}
    history = rows(ds, "app_history", app=LOCAL_NAME, country="jp")
    assert {r["country_name"] for r in history} == {"Japan"}


def test_an_answer_steps_to_the_sweeps_before_and_after(ds):
    (at_t3,) = iphone_free(rows(ds, "claim_summary", app="deepseek - ai", at=T3))
    assert (at_t3["earlier"], at_t3["later"]) == (None, f"?app={scenario.APP_ID}&at={T4}")
    (after,) = iphone_free(
        get(ds, f"/rankings/claim_summary.json?_shape=array&{at_t3['later'][1:]}").json()
    )
    assert after["at"] == T4
    assert (after["earlier"], after["later"]) == (f"?app={scenario.APP_ID}&at={T3}", None)
    claim = iphone_free(rows(ds, "claim", app=scenario.APP_ID, at=T4))
    assert {r["earlier"] for r in claim} == {f"?app={scenario.APP_ID}&at={T3}"}
    page = get(ds, f"/rankings/claim?app={scenario.APP_ID}&at={T4}").text
    assert f'<a href="?app={scenario.APP_ID}&amp;at={T3}">the sweep before</a>' in page


def test_a_chart_and_the_no_1s_step_to_the_sweeps_before_and_after(ds):
    chart = rows(ds, "top_chart", country="JP", chart="", device="iphone", at=T3)
    asked = "?country=jp&chart=&device=iphone&at="
    assert {(r["link"], r["earlier"], r["later"]) for r in chart} == {
        (f"{asked}{T3}", None, f"{asked}{T4}")
    }
    later = get(ds, f"/rankings/top_chart.json?_shape=array&{chart[0]['later'][1:]}").json()
    assert {r["at"] for r in later} == {T4} and later[0]["app_id"] == scenario.APP_ID
    ones = rows(ds, "number_ones", at=T4)
    assert {(r["link"], r["earlier"], r["later"]) for r in ones} == {
        (f"?at={T4}", f"?at={T3}", None)
    }
    page = get(ds, f"/rankings/number_ones?at={T4}").text
    assert f'<a href="?at={T4}">permalink</a>' in page
    assert f'<a href="?at={T3}">the sweep before</a>' in page


def test_a_name_of_many_apps_lists_the_first_by_id_and_says_so(tmp_path, served):
    db = schema.open_db(tmp_path / "rankings.db")
    apps = [(f"{5000 + i}", f"Common {i}") for i in range(queries.FIND_LIMIT + 10)]
    sweep = storage.begin_sweep(db, scenario.T1)
    observe(db, sweep, chart("us", depth=len(apps)), scenario.T1, apps)
    finish(db, sweep, scenario.T1)
    db.close()
    ds = served(tmp_path / "rankings.db")
    for query in ("claim", "claim_summary", "app_history", "movers", "events_feed"):
        answer = rows(ds, query, app="common")
        assert [r["app_id"] for r in answer] == [app for app, _ in apps[: queries.FIND_LIMIT]]
        assert {r["note"] for r in answer} == {
            f"one of {len(apps)} apps with a name containing 'common': ask for one by its id "
            f"(the first {queries.FIND_LIMIT} by id are listed)"
        }, query
