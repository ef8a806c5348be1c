from __future__ import annotations

import json
import re
from importlib.resources import files
from urllib.parse import parse_qs

import httpx
import pytest

from conftest import FIXTURES
from helpers import play_chart
from monitor.errors import Blocked, FetchError, InvalidFeed, RateLimited
from monitor.sources import play
from monitor.validate import check_listing
from play_payloads import (
    app_entry,
    build_inner,
    build_response,
    captcha_page,
    capture_bytes,
    capture_frame,
    capture_token,
    chart_token,
    consent_page,
    drifted_response,
    empty_chart_response,
    frames_body,
    inner_body,
    parse_form,
    rate_limited_response,
    rejected_response,
    request_template,
    sample_apps,
    vyae2_frame,
)

CAPTURE = FIXTURES / "play" / "MrAdex77_topfree-game_en-us_vyAe2_rtc.txt"
APPS = sample_apps(3)


def raises(error: type[Exception], message: str):
    return pytest.raises(error, match=re.escape(message))


def test_capture_parses_to_100_entries_in_rank_order():
    listing = play.STORE.parse(play_chart(), CAPTURE.read_bytes())
    entries = listing.entries
    assert len(entries) == 100
    assert listing.updated is None
    assert [(e.app_id, e.name, e.developer, e.score) for e in entries[:3]] == [
        ("com.oakever.meowdoku", "Meowdoku: Brain Puzzle Games", "Oakever Games", 4.6152463),
        ("com.moonactive.holestars", "Hole Stars: Puzzle Game", "Moon Active", 4.8056793),
        ("com.roblox.client", "Roblox", "Roblox Corporation", 4.1827126),
    ]
    assert entries[0].icon_url == (
        "https://play-lh.googleusercontent.com/1vD3Jl37OTth18x__EkbpMZRAmDlGB5mlqKvveWumothf52"
        "-1HZXhAy5HGkGLzW_HYoz-rj2q0HBaxu5_8kyVQ"
    )
    # The store gives a path, not a whole URL.
    assert entries[2].url == "/store/apps/details?id=com.roblox.client"
    assert all(e.icon_url and e.url and e.score for e in entries)
    assert entries[-1].app_id == "com.media720.games2020"
    assert check_listing(play_chart(), listing) is listing


def test_capture_keeps_non_ascii_titles():
    names = {e.name for e in play.STORE.parse(play_chart(), CAPTURE.read_bytes()).entries}
    fullwidth_colon = "\uff1a"
    assert {
        "Pokémon GO",
        "Call of Duty®: Mobile",
        f"Block Craft 3D{fullwidth_colon}Building Game",
    } <= names


def test_capture_token_names_its_chart():
    assert play.chart_echo(capture_token()) == "topselling_free_GAME"
    # Without padding, or in the URL-safe alphabet, it still decodes.
    assert play.chart_echo(capture_token().rstrip("=")) == "topselling_free_GAME"
    assert play.chart_echo(chart_token("topgrossing_GAME_ACTION").replace("+", "-")) == (
        "topgrossing_GAME_ACTION"
    )
    assert play.chart_echo("not base64 at all!") is None
    assert play.chart_echo("qgIMCgoKBlNUUkVBTRoA") is None  # the capture's other token


@pytest.mark.parametrize(
    ("req", "asked"),
    [
        (play_chart(chart="top-paid"), "topselling_paid_GAME"),
        (play_chart(genre="GAME_ACTION"), "topselling_free_GAME_ACTION"),
        (play_chart(genre=None), "topselling_free_APPLICATION"),
    ],
)
def test_capture_is_not_taken_for_another_chart(req, asked):
    with raises(InvalidFeed, f"asked for {asked}, the response is for topselling_free_GAME"):
        play.STORE.parse(req, CAPTURE.read_bytes())


def test_a_token_naming_only_the_collection_is_accepted():
    inner = build_inner(APPS, "topselling_free", "GAME")
    inner[0][1][0][3] = [chart_token("topselling_free")]
    assert len(play.STORE.parse(play_chart(genre="GAME_ACTION"), inner_body(inner)).entries) == 3


def test_a_chart_without_token_is_accepted():
    inner = build_inner(APPS, "topselling_free", "GAME")
    inner[0][1][0][3] = None
    assert len(play.STORE.parse(play_chart(), inner_body(inner)).entries) == 3


def test_capture_with_fewer_entries_asked_for_is_rejected():
    req = play_chart(depth=50)
    with raises(InvalidFeed, "asked for at most 50 entries, got 100"):
        check_listing(req, play.STORE.parse(req, CAPTURE.read_bytes()))


def test_helpers_rebuild_the_capture_byte_for_byte():
    assert frames_body([capture_frame()]) == capture_bytes() == CAPTURE.read_bytes()
    assert chart_token("topselling_free_GAME") == capture_token()


def test_shipped_request_template_is_the_fixture():
    shipped = files("monitor.sources").joinpath("play_request.json").read_text("utf-8")
    template = request_template()
    assert json.loads(shipped) == template
    assert template[0][1][0] == [8, [20, 0]]
    assert template[0][2] == [2, "${collection}", "${category}"]


@pytest.mark.parametrize(
    ("req", "asked"),
    [
        (play_chart(), ("topselling_free", "GAME", 100)),
        (
            play_chart(chart="top-paid", genre=None, depth=200),
            ("topselling_paid", "APPLICATION", 200),
        ),
        (
            play_chart(chart="top-grossing", genre="GAME_ACTION", depth=5),
            ("topgrossing", "GAME_ACTION", 5),
        ),
    ],
)
def test_request_asks_batchexecute_for_the_chart(req, asked):
    endpoints = {"play_url": "http://play/"}
    built = play.STORE.http_request(httpx.AsyncClient(), req, endpoints)
    assert built.method == "POST"
    assert built.url.copy_with(query=None) == "http://play/_/PlayStoreUi/data/batchexecute"
    assert dict(built.url.params) == {
        "rpcids": "vyAe2",
        "source-path": "/store/apps",
        "hl": "en",
        "gl": req.country,
    }
    assert built.headers["content-type"] == "application/x-www-form-urlencoded"
    body = built.read()
    assert list(parse_qs(body.decode())) == ["f.req"]
    assert parse_form(body) == asked


def test_request_body_keeps_the_template_but_the_chart():
    outer = json.loads(play.request_form(play_chart(depth=7)))
    assert outer[0][0][0] == "vyAe2"
    assert outer[0][0][2:] == [None, "generic"]
    inner = json.loads(outer[0][0][1])
    template = request_template()
    template[0][1][0][1][1] = 7
    template[0][2] = [2, "topselling_free", "GAME"]
    assert inner == template


@pytest.mark.parametrize("rt_c", [True, False])
def test_built_chart_parses_with_and_without_rtc_framing(rt_c):
    body = build_response(APPS, "topselling_paid", "APPLICATION", rt_c=rt_c)
    assert body.startswith(b")]}'\n\n")
    assert (b"\n[[" in body[6:]) is rt_c  # rt=c puts a length line before each chunk
    listing = play.STORE.parse(play_chart(chart="top-paid", genre=None), body)
    assert [(e.app_id, e.name, e.developer) for e in listing.entries] == APPS
    assert listing.entries[1].url == "/store/apps/details?id=com.example.app2"


def test_full_depth_chart_parses():
    apps = sample_apps(play.STORE.max_depth)
    body = build_response(apps, "topgrossing", "GAME_ACTION")
    req = play_chart(chart="top-grossing", genre="GAME_ACTION", depth=play.STORE.max_depth)
    assert [e.app_id for e in play.STORE.parse(req, body).entries] == [a[0] for a in apps]


def test_tricky_names_survive():
    apps = [
        ("com.a.b", 'Quote " Backslash \\ <b>&amp;</b> = \u2028 line', "Dév 🚀"),
        ("com.a.c", "Before you continue: unusual traffic at /sorry/", "consent.google.com"),
    ]
    entries = play.STORE.parse(
        play_chart(), build_response(apps, "topselling_free", "GAME")
    ).entries
    assert [(e.app_id, e.name, e.developer) for e in entries] == apps


def test_missing_score_is_none():
    inner = build_inner(APPS, "topselling_free", "GAME")
    inner[0][1][0][28][0][1][0][4] = None
    entries = play.STORE.parse(play_chart(), inner_body(inner)).entries
    assert [e.score for e in entries] == [4.263158, None, 4.263158]


def test_rejected_call():
    with raises(
        InvalidFeed, "Google Play rejected the request: the vyAe2 payload is null (error [3])"
    ):
        play.STORE.parse(play_chart(), rejected_response())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b')]}\'\n\n[["di",23]]', "no vyAe2 frame in the response (it starts with"),
        (
            b')]}\'\n104\n[["er",null,null,null,null,400,null,null,null,3],["di",23]]\n',
            "no vyAe2 frame in the response: Google Play sent an error (status 400)",
        ),
        (b"<html><body>Service unavailable</body></html>", "it starts with '<html><body>"),
        (CAPTURE.read_bytes()[:5000], "the vyAe2 frame is malformed or truncated"),
        (b"\xff\xfe)]}'", "response is not UTF-8 text"),
    ],
)
def test_missing_frame(body, message):
    with raises(InvalidFeed, message):
        play.STORE.parse(play_chart(), body)


def test_payload_that_is_not_json():
    body = frames_body([vyae2_frame("[[null,[[")])
    with raises(InvalidFeed, "the vyAe2 payload is not valid JSON"):
        play.STORE.parse(play_chart(), body)


def test_empty_chart():
    message = (
        "the chart is empty: Google Play has no topselling_free in category GAME for 'us'"
        " (inner[0][1] is null)"
    )
    with raises(InvalidFeed, message):
        play.STORE.parse(play_chart(), empty_chart_response("topselling_free", "GAME"))


def test_chart_with_no_entries():
    with raises(InvalidFeed, "the chart is empty: Google Play listed no apps in topselling_free"):
        play.STORE.parse(play_chart(), build_response([], "topselling_free", "GAME"))


def test_rate_limited():
    with raises(RateLimited, "rate limited: Google Play answered with a PlayGatewayError"):
        play.STORE.parse(play_chart(), rate_limited_response())


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (consent_page(), "blocked by a consent page: Google answered with 'consent.google.com'"),
        (captcha_page(), "blocked by a captcha page: Google answered with '/sorry/'"),
        (b"<p>Our systems have detected Unusual Traffic</p>", "blocked by a captcha page"),
    ],
)
def test_blocked(body, message):
    with raises(Blocked, message):
        play.STORE.parse(play_chart(), body)


def test_failures_are_fetch_errors_but_not_all_invalid_feeds():
    assert issubclass(RateLimited, FetchError) and not issubclass(RateLimited, InvalidFeed)
    assert issubclass(Blocked, FetchError) and not issubclass(Blocked, InvalidFeed)


def test_drifted_entries_path():
    message = "structure drifted: inner[0][1][0][28][0] breaks at [0], inner[0][1][0][28] is null"
    with raises(InvalidFeed, message):
        play.STORE.parse(play_chart(), drifted_response(APPS, "topselling_free", "GAME"))


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ((0, 1), [], "inner[0][1][0][28][0] breaks at [0], inner[0][1] is a list of length 0"),
        ((0,), [None], "inner[0][1] breaks at [1], inner[0] is a list of length 1"),
        ((0, 1, 0), "x", "inner[0][1][0][28][0] breaks at [28], inner[0][1][0] is a string"),
        ((0, 1, 0, 28, 0), {}, "inner[0][1][0][28][0] is an object, not a list"),
    ],
)
def test_drifted_structure_names_the_broken_step(path, value, message):
    inner = build_inner(APPS, "topselling_free", "GAME")
    parent = inner
    for index in path[:-1]:
        parent = parent[index]
    parent[path[-1]] = value
    with raises(InvalidFeed, "structure drifted: " + message):
        play.STORE.parse(play_chart(), inner_body(inner))


def test_drifted_entry_names_its_rank_and_step():
    inner = build_inner(APPS, "topselling_free", "GAME")
    inner[0][1][0][28][0][1] = [[None, None, None, "Title"]]
    message = "entry at rank 2: structure drifted: e[0][0][0] breaks at [0], e[0][0] is null"
    with raises(InvalidFeed, message):
        play.STORE.parse(play_chart(), inner_body(inner))


@pytest.mark.parametrize(
    ("app", "message"),
    [
        (
            ("Meowdoku", "T", "D"),
            "entry at rank 2 has an app id that is not a package name: 'Meowdoku'",
        ),
        (
            ("com.x.", "T", "D"),
            "entry at rank 2 has an app id that is not a package name: 'com.x.'",
        ),
        (("com.2x.y", "T", "D"), "not a package name: 'com.2x.y'"),
        ((123, "T", "D"), "entry at rank 2 has an app id that is not a package name: 123"),
        (
            ("com.x.y", 12, "D"),
            "entry at rank 2 (app com.x.y) has a title that is not a string: 12",
        ),
        (
            ("com.x.y", None, "D"),
            "entry at rank 2 (app com.x.y) has a title that is not a string: None",
        ),
        (("com.x.y", "", "D"), "entry at rank 2 (app com.x.y) has an empty title"),
        (("com.x.y", "T", ["D"]), "(app com.x.y) has a developer that is not a string: ['D']"),
    ],
)
def test_bad_entries(app, message):
    body = build_response([APPS[0], app, APPS[2]], "topselling_free", "GAME")
    with raises(InvalidFeed, message):
        play.STORE.parse(play_chart(), body)


def test_duplicate_app():
    body = build_response([*APPS, APPS[1]], "topselling_free", "GAME")
    with raises(InvalidFeed, "app com.example.app2 appears twice, at ranks 2 and 4"):
        check_listing(play_chart(), play.STORE.parse(play_chart(), body))


def test_too_many_entries():
    body = build_response(sample_apps(11), "topselling_free", "GAME")
    req = play_chart(depth=10)
    with raises(InvalidFeed, "asked for at most 10 entries, got 11"):
        check_listing(req, play.STORE.parse(req, body))


def test_built_entry_keeps_the_real_shape():
    entry = app_entry("com.example.x", "X", "Dev")
    assert (entry[0][0][0], entry[0][3], entry[0][14]) == ("com.example.x", "X", "Dev")
    assert entry[0][10][4][2] == "/store/apps/details?id=com.example.x"
    assert "eightytwoand0" not in json.dumps(entry[0][8])


def test_an_app_named_like_the_rate_limit_error_is_just_an_app():
    apps = [("com.example.gateway", "PlayGatewayError Simulator", "Dev"), *APPS[1:]]
    body = build_response(apps, "topselling_free", "GAME")
    names = [e.name for e in play.STORE.parse(play_chart(), body).entries]
    assert names[0] == "PlayGatewayError Simulator"
