"""Every chart, device and genre of a store with one setting, and the sweep's estimate."""

from __future__ import annotations

from helpers import query
from monitor import estimate, schema, selection, storage
from monitor.config import ChartSpec
from monitor.politeness import HostReport
from monitor.reference import ios_genres, play_categories
from monitor.settings import build, load_file

EVERYTHING = ChartSpec("apple", "all", "all", "all")


def test_all_of_apple_is_every_chart_device_and_genre_with_top_charts_in_175_storefronts():
    requests = selection.requests_for(EVERYTHING)
    assert len(requests) == len(set(requests)) == 175 * 3 * 2 * 46
    assert {(r.chart, r.device) for r in requests} == {
        (chart, device)
        for chart in ("top-free", "top-paid", "top-grossing")
        for device in ("iphone", "ipad")
    }
    genres = {r.genre for r in requests}
    names = ios_genres()
    assert None in genres and {"6014", "7001", "6000"} <= genres  # all, Games, Action, Business
    assert {names[g] for g in genres - {None}} >= {"Games", "Action", "Business", "Productivity"}
    assert "36" not in genres  # the root is the overall chart, None
    assert not genres & {"13001", "16001"}  # no Newsstand magazines, no stickers


def test_all_of_google_play_is_every_chart_and_category():
    requests = selection.requests_for(ChartSpec("play", "all", "all", "all"))
    categories = len(play_categories())  # the overall one, APPLICATION, is genre None
    assert len(requests) == len(set(requests)) == 174 * 3 * categories
    assert {r.device for r in requests} == {None}


def test_the_config_file_selects_everything_in_one_table(tmp_path):
    path = tmp_path / "all.toml"
    path.write_text('[[charts]]\nstore = "apple"\nchart = "all"\ndevice = "all"\ngenre = "all"\n')
    (spec,) = load_file(path).charts
    assert spec == ChartSpec("apple", "all", "all", "all", None, None)


def test_the_estimate_assumes_an_answer_time_then_uses_each_hosts_last_rate(tmp_path):
    db = schema.open_db(tmp_path / "r.db")
    requests = selection.requests_for(EVERYTHING)
    # Apple's two feeds on hosts of their own: each host has a gate of its own.
    urls = {"apple_rss_url": "http://rss.test", "itunes_url": "http://itunes.test"}
    settings = build(urls).settings
    first = estimate.estimate(db, requests, settings)
    assert first.seconds == 47_950 / 16  # 8 in flight, 0.5 s an answer
    assert first.describe() == (
        "a sweep of 48,300 charts takes about 50m: "
        "apple rss.test: 350 charts at about 16.0/s (8 in flight, taking 0.5 s an answer); "
        "apple itunes.test: 47,950 charts at about 16.0/s (8 in flight, taking 0.5 s an answer)"
    )
    assert first.overrun(3600) is None
    assert first.overrun(1800) == (
        "a sweep takes about 50m, longer than the interval of 30m: each sweep will start "
        "late, as the one before ends. Raise --concurrency or --rate, or select fewer charts."
    )
    sweep = storage.begin_sweep(db, "2026-12-01T00:00:00Z")
    hosts = [
        HostReport("apple", "itunes.test", "8 in flight", 1001, 40.0, 0, 8),  # 25/s
        HostReport("apple", "rss.test", "8 in flight", 101, 20.0, 0, 8),  # 5/s
    ]
    end = storage.SweepEnd("2026-12-01T00:01:00Z", "finished", None, 1100, 0, 0, hosts)
    storage.finish_sweep(db, sweep, end)
    measured = estimate.estimate(db, requests, settings)
    assert measured.seconds == 47_950 / 25  # the hosts side by side: the slower one's time
    assert "as the last sweep measured" in measured.describe()
    # Other limits than the measured ones: back to the assumption, capped by the rate.
    paced = estimate.estimate(db, requests, build({**urls, "concurrency": 4, "rate": 5}).settings)
    assert paced.seconds == 47_950 / 5
    db.close()


def test_collect_takes_every_chart_of_a_storefront_and_stores_each_whole(run_monitor, db_path):
    result = run_monitor(
        "collect", "--chart", "all", "--device", "all", "--genre", "all", "--country", "nz"
    )
    assert result.returncode == 0, result.stderr
    assert "276 charts ok, 0 failed, 27,600 ranked entries" in result.stdout
    assert query(
        db_path,
        "SELECT COUNT(DISTINCT chart || device || coalesce(genre, '')), COUNT(*) FROM rankings",
    ) == [(276, 27_600)]
    assert query(db_path, "SELECT COUNT(*) FROM fetches WHERE status != 'ok'") == [(0,)]
