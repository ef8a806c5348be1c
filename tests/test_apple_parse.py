from __future__ import annotations

import json

import httpx
import pytest

from conftest import FIXTURES
from helpers import chart
from monitor.charts import Entry, Listing
from monitor.errors import InvalidFeed
from monitor.sources import apple
from monitor.validate import check_listing

APPLE = FIXTURES / "apple"
V2_US = "v2_us_apps_top-free_50_first_entry_only_2023-10-05.json"
LEGACY_JP = "legacy_jp_topgrossingapplications_limit1_single_entry_2016.json"


def read(name: str) -> bytes:
    return (APPLE / name).read_bytes()


def test_v2_capture_parses_with_string_id_and_utc_updated():
    listing = apple.STORE.parse(chart(depth=50), read(V2_US))
    assert [(e.app_id, e.name, e.developer) for e in listing.entries] == [
        ("1577705074", "EPIK - AI Photo Editor", "SNOW Corporation")
    ]
    assert listing.entries[0].icon_url.endswith("/100x100bb.png")
    assert listing.updated == "2023-10-05T19:57:28Z"


@pytest.mark.parametrize(
    ("feed", "updated"),
    [
        ("v2", "Fri, 31 Dec 9999 23:59:59 -2359"),  # past datetime's last year once in UTC
        ("legacy", "0001-01-01T00:00:00+23:59"),  # before its first
    ],
)
def test_a_feed_time_beyond_the_calendar_leaves_the_chart_without_one(feed, updated):
    document = json.loads(read(V2_US if feed == "v2" else LEGACY_JP))
    if feed == "v2":
        document["feed"]["updated"] = updated
    else:
        document["feed"]["updated"]["label"] = updated
    req = chart(depth=50) if feed == "v2" else chart(country="jp", chart="top-grossing", depth=1)
    listing = apple.STORE.parse(req, json.dumps(document).encode())
    assert listing.updated is None and len(listing.entries) == 1


def test_names_keep_a_lone_surrogate_as_a_replacement_mark_and_ids_may_not_hold_one():
    body = '{"feed": {"results": [{"id": "12", "name": "A\\ud83d", "artistName": "\\udc00D"}]}}'
    listing = check_listing(chart(), apple.STORE.parse(chart(), body.encode()))
    assert [(e.name, e.developer) for e in listing.entries] == [("A\ufffd", "\ufffdD")]
    pair = '{"feed": {"results": [{"id": "12", "name": "A\\ud83d\\ude00", "artistName": "D"}]}}'
    listing = check_listing(chart(), apple.STORE.parse(chart(), pair.encode()))
    assert listing.entries[0].name == "A\U0001f600"  # a whole pair is the one character
    with pytest.raises(InvalidFeed, match="at rank 1 has an app id that is not whole text"):
        check_listing(chart(), Listing([Entry("1\ud800", "A", "D")], None))  # any store's


def test_v2_capture_for_another_storefront_is_rejected():
    with pytest.raises(InvalidFeed, match="asked for storefront 'gb', feed is for 'us'"):
        apple.STORE.parse(chart(country="gb"), read(V2_US))


def test_v2_capture_for_another_chart_is_rejected():
    with pytest.raises(InvalidFeed, match="asked for top-paid"):
        apple.STORE.parse(
            chart(chart="top-paid"),
            read(V2_US),
        )


def test_v2_feed_that_does_not_state_its_storefront_or_chart_is_taken_as_asked():
    body = b'{"feed": {"results": [{"id": "12", "name": "A", "artistName": "D"}]}}'
    assert [e.app_id for e in apple.STORE.parse(chart(chart="top-paid"), body).entries] == ["12"]


def test_legacy_single_entry_object_hk_free():
    req = chart(country="hk", chart="top-free", device="ipad")
    body = read("legacy_hk_topfreeapplications_limit1_single_entry_2018.json")
    # The capture is the iPhone feed; the iPad request must notice.
    with pytest.raises(InvalidFeed, match="asked for topfreeipadapplications in 'hk'"):
        apple.STORE.parse(req, body)
    listing = apple.parse_legacy(chart(country="hk", depth=1), json.loads(body))
    assert [(e.app_id, e.name, e.developer) for e in listing.entries] == [
        ("310633997", "WhatsApp Messenger", "WhatsApp Inc.")
    ]
    assert listing.updated == "2018-01-10T02:59:03Z"


def test_legacy_single_entry_jp_grossing_keeps_japanese_name():
    req = chart(country="jp", chart="top-grossing", depth=1)
    listing = apple.STORE.parse(req, read(LEGACY_JP))
    assert [(e.app_id, e.name) for e in listing.entries] == [("658511662", "モンスターストライク")]
    assert listing.updated == "2016-04-22T04:01:19Z"


def test_legacy_self_link_names_the_storefront():
    req = chart(country="tw", chart="top-grossing", depth=1)
    with pytest.raises(InvalidFeed, match="topgrossingapplications in 'jp'"):
        apple.STORE.parse(req, read(LEGACY_JP))


def test_legacy_entry_array_hk_2019_keeps_chinese_names_in_order():
    raw = json.loads(read("legacy_hk_entries_array_9_entries_2019.json"))
    entries = apple.legacy_entries(raw)
    assert len(entries) == 9
    assert entries[0].app_id == "1444252195"
    assert entries[0].name == "全民小小兵"
    assert entries[0].developer == "PoseidonGames"
    assert [e.app_id for e in entries] == [item["id"]["attributes"]["im:id"] for item in raw]


def test_legacy_xml_capture_is_not_taken_for_a_chart():
    # The capture is the XML form, with HTTP headers; monitor only asks for JSON.
    with pytest.raises(InvalidFeed, match="not JSON"):
        apple.STORE.parse(
            chart(genre="6014", depth=10),
            read("legacy_us_newapplications_genre6014_limit10_xml_with_http_headers_2014.http.txt")
            .split(b"\r\n\r\n", 1)[-1]
            .lstrip(),
        )


def test_legacy_feed_that_ignored_limit_fails_validation():
    raw = json.loads(read("legacy_hk_entries_array_9_entries_2019.json"))
    body = json.dumps({"feed": {"entry": raw}}).encode()
    req = chart(country="hk", chart="top-grossing", depth=5)
    with pytest.raises(InvalidFeed, match="asked for at most 5 entries, got 9"):
        check_listing(req, apple.STORE.parse(req, body))


def test_legacy_feed_with_no_entry_is_an_empty_chart():
    req = chart(chart="top-grossing")
    with pytest.raises(InvalidFeed, match="the chart is empty"):
        check_listing(req, apple.STORE.parse(req, b'{"feed": {"updated": {"label": "x"}}}'))


def test_legacy_genre_mismatch_is_rejected():
    link = {
        "attributes": {
            "rel": "self",
            "href": "https://itunes.apple.com/us/rss/topfreeapplications/limit=10/json",
        }
    }
    body = json.dumps({"feed": {"link": [link], "entry": []}}).encode()
    with pytest.raises(InvalidFeed, match="asked for genre 6014"):
        apple.STORE.parse(chart(genre="6014", depth=10), body)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<!DOCTYPE html><html>Oops</html>", "HTML or XML, not JSON"),
        (b'{"feed": {"results": [', "malformed or truncated JSON"),
        (b"[]", "no 'feed' object"),
        (b'{"feed": {"country": "us", "id": "/apps/top-free/", "results": {}}}', "not a list"),
        (
            b'{"feed": {"country": "us", "id": "/apps/top-free/", "results": [{"name": "x"}]}}',
            "rank 1 has no valid app id",
        ),
        (
            b'{"feed": {"country": "us", "id": "/apps/top-free/", "results": [{"id": 12}]}}',
            "rank 1 has no valid app id",
        ),
        (
            b'{"feed": {"country": "us", "id": "/apps/top-free/", "results": [{"id": "12"}]}}',
            "rank 1 \\(app 12\\) has no name",
        ),
    ],
)
def test_v2_bad_bodies_give_readable_errors(body, message):
    with pytest.raises(InvalidFeed, match=message):
        apple.STORE.parse(chart(), body)


def test_duplicate_app_is_invalid():
    entries = [{"id": "1", "name": "A"}, {"id": "2", "name": "B"}, {"id": "1", "name": "A"}]
    body = json.dumps({"feed": {"country": "us", "id": "/apps/top-free/", "results": entries}})
    with pytest.raises(InvalidFeed, match="app 1 appears twice, at ranks 1 and 3"):
        check_listing(chart(), apple.STORE.parse(chart(), body.encode()))


@pytest.mark.parametrize(
    ("req", "url"),
    [
        (chart(), "http://rss/api/v2/us/apps/top-free/100/apps.json"),
        (chart(chart="top-paid", depth=10), "http://rss/api/v2/us/apps/top-paid/10/apps.json"),
        (chart(chart="top-grossing"), "http://it/us/rss/topgrossingapplications/limit=100/json"),
        (chart(device="ipad"), "http://it/us/rss/topfreeipadapplications/limit=100/json"),
        (
            chart(genre="6014", country="jp"),
            "http://it/jp/rss/topfreeapplications/limit=100/genre=6014/json",
        ),
    ],
)
def test_each_chart_goes_to_the_feed_that_serves_it(req, url):
    endpoints = {"apple_rss_url": "http://rss/", "itunes_url": "http://it"}
    assert str(apple.STORE.http_request(httpx.AsyncClient(), req, endpoints).url) == url
