"""The real ``monitor collect`` against the stand-in on 127.0.0.1."""

from __future__ import annotations

import itertools

from helpers import query
from monitor.reference import storefronts_175
from standin import TRICKY_NAMES


def test_default_sweep_stores_every_storefront_exactly_as_served(run_monitor, stand_in):
    result = run_monitor("collect")
    assert result.returncode == 0, result.stderr
    assert "175 charts ok, 0 failed, 17,500 ranked entries" in result.stdout

    rows = query(
        run_monitor.db,
        "SELECT country, rank, app_id, app_name, developer, store, "
        "chart, device, genre FROM rankings ORDER BY country, rank",
    )
    assert len(rows) == 175 * 100
    served = [
        (cc, rank, app.app_id, app.name, app.developer, "apple", "top-free", "iphone", None)
        for cc in sorted(storefronts_175())
        for rank, app in enumerate(stand_in.chart(cc, "top-free", "iphone", None, 100), 1)
    ]
    assert rows == served
    names = {row[3] for row in rows}
    for tricky in TRICKY_NAMES:
        assert any(name.startswith(tricky) for name in names), tricky
    assert query(run_monitor.db, "SELECT status, COUNT(*) FROM fetches GROUP BY status") == [
        ("ok", 175)
    ]


def test_identical_second_sweep_is_observed_but_barely_grows_the_file(run_monitor):
    assert run_monitor("collect").returncode == 0
    first = run_monitor.db.stat().st_size
    assert run_monitor("collect").returncode == 0
    second = run_monitor.db.stat().st_size
    assert second - first < 0.01 * first
    assert query(run_monitor.db, "SELECT COUNT(DISTINCT snapshot_id), COUNT(*) FROM rankings") == [
        (350, 35_000)
    ]
    assert query(run_monitor.db, "SELECT COUNT(*) FROM runs") == [(17_500,)]


def test_a_changed_chart_is_stored_as_its_new_order(run_monitor, stand_in):
    assert run_monitor("collect", "--country", "us").returncode == 0
    stand_in.version = 3
    assert run_monitor("collect", "--country", "us").returncode == 0
    latest = query(
        run_monitor.db,
        "SELECT app_id FROM rankings WHERE snapshot_id = "
        "(SELECT MAX(snapshot_id) FROM rankings) ORDER BY rank",
    )
    assert [r[0] for r in latest] == [
        a.app_id for a in stand_in.chart("us", "top-free", "iphone", None, 100)
    ]
    changed = query(run_monitor.db, "SELECT COUNT(*) FROM runs WHERE first_snapshot = 2")
    assert 0 < changed[0][0] <= 6


FAULTS = {
    "jp": ("500", "HTTP 500"),
    "fr": ("429", "HTTP 429"),
    "de": ("html", "HTML or XML, not JSON"),
    "br": ("malformed", "malformed or truncated JSON"),
    "in": ("truncated", "without sending complete message body"),
    "kr": ("duplicate", "appears twice, at ranks 3 and 5"),
    "mx": ("missing-id", "entry at rank 7 has no valid app id"),
    "gb": ("timeout", "timed out"),
}


def test_faults_give_error_rows_and_complete_charts_everywhere_else(run_monitor, stand_in):
    stand_in.faults = {cc: fault for cc, (fault, _) in FAULTS.items()}
    stand_in.hang_seconds = 3
    result = run_monitor("collect", "--retries", "1", "--timeout", "1")
    assert result.returncode == 1, result.stderr
    assert "167 charts ok, 8 failed" in result.stdout

    errors = dict(
        query(run_monitor.db, "SELECT country, error FROM fetches WHERE status = 'error'")
    )
    assert set(errors) == set(FAULTS)
    for cc, (_, message) in FAULTS.items():
        assert message in errors[cc], (cc, errors[cc])
        assert f"/{cc}: " in result.stderr
    assert query(
        run_monitor.db,
        "SELECT COUNT(*) FROM fetches WHERE status = 'error' AND snapshot_id IS NOT NULL",
    ) == [(0,)]
    sizes = query(run_monitor.db, "SELECT country, COUNT(*) FROM rankings GROUP BY country")
    assert len(sizes) == 167
    assert {size for _, size in sizes} == {100}
    assert not set(FAULTS) & {cc for cc, _ in sizes}


def test_429_retry_after_is_honoured(run_monitor, stand_in):
    stand_in.faults = {"fr": "429"}  # answers 429 with Retry-After: 1
    result = run_monitor("collect", "--country", "fr", "--retries", "2")
    assert result.returncode == 1
    assert stand_in.requests.count("/api/v2/fr/apps/top-free/100/apps.json") == 3
    gaps = [b - a for a, b in itertools.pairwise(stand_in.arrivals)]
    assert min(gaps) >= 0.95
    assert query(run_monitor.db, "SELECT status, http_status FROM fetches") == [("error", 429)]


def test_selection_flags_route_to_the_legacy_feed(run_monitor, stand_in):
    result = run_monitor(
        "collect",
        "--chart",
        "top-grossing",
        "--device",
        "ipad",
        "--genre",
        "6014",
        "--country",
        "us,jp",
        "--country",
        "GB",
        "--depth",
        "10",
    )
    assert result.returncode == 0, result.stderr
    assert sorted(stand_in.requests) == [
        f"/{cc}/rss/topgrossingipadapplications/limit=10/genre=6014/json"
        for cc in ("gb", "jp", "us")
    ]
    assert query(
        run_monitor.db,
        "SELECT country, chart, device, genre, COUNT(*) FROM rankings "
        "GROUP BY 1, 2, 3, 4 ORDER BY 1",
    ) == [(cc, "top-grossing", "ipad", "6014", 10) for cc in ("gb", "jp", "us")]


def test_unknown_country_exits_2_and_says_how_to_list_codes(run_monitor, stand_in):
    result = run_monitor("collect", "--country", "us,zz")
    assert result.returncode == 2
    assert "zz" in result.stderr
    assert "monitor countries" in result.stderr
    assert stand_in.requests == []


def test_status_shows_sweeps_failures_and_size(run_monitor, stand_in):
    stand_in.faults = {"jp": "500"}
    run_monitor("collect", "--country", "us,jp", "--retries", "0")
    result = run_monitor("status")
    assert result.returncode == 0, result.stderr
    assert "MB, 1 chart observations" in result.stdout
    assert "apple http_status: 1 failed in 1 storefront: jp" in result.stdout
    assert "HTTP 500" in result.stdout
