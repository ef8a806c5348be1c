"""The real ``monitor collect --store play`` against the stand-in on 127.0.0.1."""

from __future__ import annotations

import itertools
import json
import zlib

from helpers import query
from standin import TRICKY_NAMES


def test_play_game_chart_is_stored_exactly_as_served(run_monitor, stand_in):
    result = run_monitor(
        "collect",
        "--store",
        "play",
        "--chart",
        "top-free",
        "--genre",
        "GAME",
        "--country",
        "us,jp",
        "--play-interval",
        "0",
    )
    assert result.returncode == 0, result.stderr
    assert "2 charts ok, 0 failed, 200 ranked entries" in result.stdout
    for cc in ("us", "jp"):
        rows = query(
            run_monitor.db,
            "SELECT rank, app_id, app_name, developer, store, chart, "
            "device, genre FROM rankings WHERE country = ? ORDER BY rank",
            (cc,),
        )
        served = stand_in.play_chart(cc, "top-free", "GAME", 100)
        assert rows == [
            (rank, a.app_id, a.name, a.developer, "play", "top-free", None, "GAME")
            for rank, a in enumerate(served, 1)
        ]
    names = {row[0] for row in query(run_monitor.db, "SELECT app_name FROM rankings")}
    assert any(name.startswith(TRICKY_NAMES[0]) for name in names)


def test_play_overall_chart_asks_for_the_application_category(run_monitor, stand_in):
    result = run_monitor(
        "collect",
        "--store",
        "play",
        "--chart",
        "top-grossing",
        "--country",
        "gb",
        "--depth",
        "50",
        "--play-interval",
        "0",
    )
    assert result.returncode == 0, result.stderr
    assert query(run_monitor.db, "SELECT chart, genre, COUNT(*) FROM rankings") == [
        ("top-grossing", None, 50)
    ]


FAULTS = {
    "jp": ("drifted", "structure drifted: inner[0][1][0][28][0] breaks at [0]"),
    "de": ("consent", "blocked by a consent page"),
    "fr": ("captcha", "blocked by a captcha page"),
    "gb": ("rate-limited", "rate limited: Google Play answered with a PlayGatewayError"),
    "kr": ("rejected", "Google Play rejected the request: the vyAe2 payload is null"),
    "br": ("empty", "the chart is empty"),
    "in": ("429", "HTTP 429"),
    "mx": ("500", "HTTP 500"),
}


def test_play_failures_are_distinct_errors_with_no_rows(run_monitor, stand_in):
    stand_in.faults = {cc: fault for cc, (fault, _) in FAULTS.items()}
    countries = ",".join([*FAULTS, "us"])
    result = run_monitor(
        "collect",
        "--store",
        "play",
        "--country",
        countries,
        "--play-interval",
        "0",
        "--retries",
        "0",
    )
    assert result.returncode == 1
    assert "1 charts ok, 8 failed" in result.stdout
    errors = dict(
        query(run_monitor.db, "SELECT country, error FROM fetches WHERE status = 'error'")
    )
    assert set(errors) == set(FAULTS)
    for cc, (_, message) in FAULTS.items():
        assert message in errors[cc], (cc, errors[cc])
    assert len(set(errors.values())) == len(FAULTS)
    assert query(run_monitor.db, "SELECT DISTINCT country FROM rankings") == [("us",)]


def test_a_response_that_fails_to_parse_is_kept_compressed(run_monitor, stand_in):
    stand_in.faults = {"jp": "drifted", "mx": "500"}
    run_monitor(
        "collect", "--store", "play", "--country", "jp,mx", "--play-interval", "0", "--retries", "0"
    )
    kept = query(
        run_monitor.db,
        "SELECT f.country, r.size, r.kept, r.body FROM raw_responses r "
        "JOIN fetches f ON f.id = r.attempt_id",
    )
    assert [(cc, size == kept) for cc, size, kept, _ in kept] == [("jp", True)]
    body = zlib.decompress(kept[0][3])
    assert body.startswith(b")]}'") and len(body) == kept[0][1]


def test_play_requests_go_one_at_a_time_and_paced(run_monitor, stand_in):
    stand_in.delay = 0.1  # each answer takes a while, so overlapping requests would show
    result = run_monitor(
        "collect",
        "--store",
        "play",
        "--country",
        "us,gb,fr,de",
        "--depth",
        "5",
        "--play-interval",
        "0.4",
    )
    assert result.returncode == 0, result.stderr
    assert stand_in.most_in_flight == 1
    gaps = [b - a for a, b in itertools.pairwise(stand_in.arrivals)]
    assert len(gaps) == 3
    assert min(gaps) >= 0.4


def test_claim_for_a_play_app(run_monitor, stand_in):
    assert (
        run_monitor(
            "collect", "--store", "play", "--country", "us", "--play-interval", "0"
        ).returncode
        == 0
    )
    top = stand_in.play_chart("us", "top-free", None, 100)[0]
    result = run_monitor("claim", top.app_id, "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["app"]["store"] == "play"
    assert answer["charts"][0]["number_one"] == ["us"]
    assert answer["charts"][0]["device"] is None


def test_play_selection_errors(run_monitor, stand_in):
    device = run_monitor("collect", "--store", "play", "--device", "ipad")
    assert (
        device.returncode == 2
        and "device applies to App Store only, not to Google Play" in device.stderr
    )
    genre = run_monitor("collect", "--store", "play", "--genre", "GAMES")
    assert genre.returncode == 2 and "monitor genres --store play" in genre.stderr
    china = run_monitor("collect", "--store", "play", "--country", "cn")
    assert china.returncode == 2 and "for Google Play: cn" in china.stderr
    deep = run_monitor("collect", "--store", "play", "--depth", "201")
    assert deep.returncode == 2 and "between 1 and 200 for Google Play" in deep.stderr
    assert stand_in.requests == []
