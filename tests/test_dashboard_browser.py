"""The dashboard and the claim page in Debian's headless Chromium, against `monitor serve`.

Every request must stay on 127.0.0.1 (any other is aborted and fails the test), the
charts must draw, the console must stay free of errors, and names from the stores must
show as text. Screenshots go to $MONITOR_SCREENSHOTS, or to the test's tmp_path.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode, urlsplit

import pytest

import history
import scenario
from conftest import free_port, wait_for
from helpers import chart
from monitor import claims, dashboard, demo, notes, schema, storage

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BETWEEN = "2025-01-26T10:00:00Z"  # after phase one's sweeps, a day before phase two's
HOSTILE = ("2222222222", """<script>window.pwned = 1</script>"; DROP TABLE apps; -- It's""")
NOTE = '<img src=x onerror="window.pwned = 1"> Version 2 & a press story'
# The map's colours, as dashboard._BANDS gives them.
NO_1, TOP_10, NOT_RANKED, NOT_OBSERVED = "#08306b", "#2171b5", "#fff2b3", "#969696"

if not Path(CHROMIUM).exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    pytest.skip(f"no {CHROMIUM}: apt-get install chromium", allow_module_level=True)

sync_api = pytest.importorskip("playwright.sync_api")


@dataclass
class Visit:
    """What a page did: its console, its requests and the ones refused."""

    page: sync_api.Page
    base: str
    console: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)

    def assert_clean(self, warnings: bool = False) -> None:
        """Assert no console error or (unless allowed) warning, and no failed or outside request."""
        assert [m for m in self.console if warnings is False or not m.startswith("warning")] == []
        assert self.failed == []
        assert self.refused == []
        assert self.requests
        assert {urlsplit(url).hostname for url in self.requests} == {"127.0.0.1"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve the scenario, plus an app with a hostile name, with the real `monitor serve`."""
    path = scenario.build(tmp_path_factory.mktemp("dashboard") / "rankings.db")
    db = schema.open_db(path)
    sweep = storage.begin_sweep(db, scenario.T2)
    history.observe(db, sweep, chart("jp", chart="top-paid"), scenario.T2, [HOSTILE])
    for sweep, started_at in db.execute("SELECT id, started_at FROM sweeps").fetchall():
        history.finish(db, sweep, started_at)
    app = claims.find_app(db, scenario.APP_ID)
    notes.add_note(db, app, scenario.T1, NOTE, "https://example.com/story", scenario.T2)
    db.close()
    yield from serve(path)


@pytest.fixture(scope="module")
def demo_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Serve what `monitor demo` builds: a weekend in all 175 storefronts."""
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    demo.build(path)
    yield from serve(path)


def serve(path: Path) -> Iterator[str]:
    """Serve the database at path with the real `monitor serve`; yield its address."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "monitor", "serve", "--db", str(path), "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: _answers(base) or server.poll() is not None, 30, "monitor serve")
        assert server.poll() is None, server.communicate()
        yield base
    finally:
        server.terminate()
        try:
            server.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.communicate()


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MONITOR_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def visit(site: str, browser: sync_api.Browser) -> Iterator[Visit]:
    yield from visiting(site, browser)


@pytest.fixture
def demo_visit(demo_site: str, browser: sync_api.Browser) -> Iterator[Visit]:
    yield from visiting(demo_site, browser)


def visiting(site: str, browser: sync_api.Browser) -> Iterator[Visit]:
    """A fresh page that records what it does and refuses every request off 127.0.0.1.

    Its clock is 5:30 ahead of UTC (India's), so that a time shown or sent in the
    browser's own zone rather than in UTC shows.
    """
    context = browser.new_context(
        viewport={"width": 1400, "height": 1000}, timezone_id="Asia/Kolkata"
    )
    page = context.new_page()
    seen = Visit(page, site)

    def stay_local(route: sync_api.Route) -> None:
        if urlsplit(route.request.url).hostname == "127.0.0.1":
            route.continue_()
        else:
            seen.refused.append(route.request.url)
            route.abort()

    context.route("**/*", stay_local)
    page.on("request", lambda request: seen.requests.append(request.url))
    page.on("requestfailed", lambda request: seen.failed.append(request.url))
    page.on("response", lambda r: r.status >= 400 and seen.failed.append(f"{r.status} {r.url}"))
    page.on(
        "console",
        lambda m: m.type in ("error", "warning") and seen.console.append(f"{m.type}: {m.text}"),
    )
    page.on("pageerror", lambda error: seen.console.append(f"uncaught: {error}"))
    yield seen
    context.close()


def test_dashboard_draws_headline_countries_history_map_and_runs(visit: Visit, shots: Path) -> None:
    page = open_dashboard(visit, app=scenario.APP_ID, at=BETWEEN)
    page.screenshot(path=shots / "dashboard.png", full_page=True)

    # us, gb and ca at No. 1 (ca from an observation 2 h old), jp 5th; fr is observed
    # without the app, de never answered.
    assert headline(page) == (
        "DeepSeek - AI Assistant, top free iPhone apps, at 2025-01-26 10:00 UTC: No. 1 in 3 "
        "of 5 observed storefronts, top 10 in 4, top 100 in 4. Not observed in 1."
    )
    # One line each for us, gb, ca and jp; a point for each of their 7 observations.
    assert page.locator("#chart-history g.mark-line.role-mark path").count() == 4
    assert page.locator("#chart-history g.mark-symbol.role-mark path").count() == 7
    assert map_fills(page) == {NO_1: 3, TOP_10: 1, NOT_RANKED: 1, NOT_OBSERVED: 1}
    spans = page.locator("#chart-spans tbody tr").all_inner_texts()
    assert [row.split("\t")[0] for row in spans] == ["Canada", "United Kingdom", "United States"]
    assert names(page) == ["DeepSeek - AI Assistant", "DeepSeek"]
    assert f"{dashboard.STATIC_URL}countries-110m.json" in {
        urlsplit(url).path for url in visit.requests
    }
    visit.assert_clean()


def test_the_rank_chart_reads_time_in_utc_whatever_the_browsers_zone(visit: Visit) -> None:
    page = open_dashboard(visit, app=scenario.APP_ID, at=scenario.T2)
    labels = page.eval_on_selector_all(
        "#chart-history g.role-axis-label text", "texts => texts.map(t => t.textContent)"
    )
    times = [label for label in labels if " " in label]  # the other axis holds ranks
    # The first observation and the last are at T1 and T2, in UTC: the browser is not.
    assert (times[0], times[-1]) == ("26 Jan 09:00", "27 Jan 09:00"), times
    visit.assert_clean()


def test_each_country_links_to_the_observation_that_shows_its_rank(visit: Visit) -> None:
    page = open_dashboard(visit, app=scenario.APP_ID, at=BETWEEN)
    rows = page.locator("#chart-countries tbody tr").evaluate_all(
        """rows => rows.map(r => [...r.cells].map(c => c.textContent.trim())
                                .concat([r.querySelector('a')?.getAttribute('href') ?? '']))"""
    )
    assert [row[:2] for row in rows] == [
        ["Canada", "1"],
        ["United Kingdom", "1"],
        ["United States", "1"],
        ["Japan", "5"],
        ["France", "not ranked"],
        ["Germany", "never observed"],
    ]
    assert rows[-1][-1] == ""  # nothing to show for a storefront never observed
    for country, rank, *_, href in rows[:4]:
        page.goto(visit.base + href)
        cells = page.locator("table.rows-and-columns tbody tr").evaluate_all(
            "rows => rows.map(r => ({country: r.querySelector('.col-country').textContent.trim(),"
            " rank: r.querySelector('.col-rank').textContent.trim(),"
            " app: r.querySelector('.col-app_id').textContent.trim(),"
            " chart: r.querySelector('.col-snapshot_id a').getAttribute('href')}))"
        )
        assert [(c["rank"], c["app"]) for c in cells] == [(rank, scenario.APP_ID)], country
        page.goto(visit.base + cells[0]["chart"])  # the whole chart of that observation
        whole = page.locator("table.rows-and-columns tbody tr").evaluate_all(
            "rows => rows.map(r => [r.querySelector('.col-rank').textContent.trim(),"
            " r.querySelector('.col-app_id').textContent.trim()])"
        )
        assert len(whole) == 30 and [rank, scenario.APP_ID] in whole, country
    visit.assert_clean()


def test_around_the_world_draws_each_sweep_and_breaks_at_unobserved_time(
    visit: Visit, shots: Path
) -> None:
    page = open_dashboard(visit, app=scenario.APP_ID, at=scenario.T2)
    page.locator("#chart-world").screenshot(path=shots / "dashboard-world.png")
    # Two sweeps on the 26th, two at T2 a day later: for No. 1 and the top 10, a line
    # for each run of sweeps, broken across the day nothing was observed.
    points = page.locator("#chart-world g.mark-symbol.role-mark path")
    assert points.count() == 8
    assert page.locator("#chart-world g.mark-line.role-mark path").count() == 4
    visit.assert_clean()


def test_the_headline_is_pinned_and_steps_through_time(visit: Visit) -> None:
    page = open_dashboard(visit, app=scenario.APP_ID, at="")
    assert headline(page).startswith("DeepSeek, top free iPhone apps, at 2025-01-27 09:00 UTC:")
    links = page.locator("#chart-headline a")
    assert links.all_inner_texts() == ["permalink", "the sweep before"]
    permalink = links.first.get_attribute("href")
    assert "at=2025-01-27T09%3A00%3A00Z" in permalink
    links.nth(1).click()
    wait_for_charts(page)
    before = f"{scenario.OLD_NAME}, top free iPhone apps, at 2025-01-26 09:00 UTC:"
    assert headline(page).startswith(before)
    assert page.locator("#chart-headline a").all_inner_texts() == [
        "permalink",
        "the sweep before",
        "the sweep after",
    ]
    visit.assert_clean()


def test_the_app_page_finds_an_app_by_any_name(visit: Visit) -> None:
    page = open_dashboard(visit, app="deepseek - ai", at=BETWEEN)
    assert f"app={scenario.APP_ID}" in page.url
    assert headline(page).startswith("DeepSeek - AI Assistant, top free iPhone apps")
    visit.assert_clean()


def test_a_name_of_several_apps_lists_them_as_links(visit: Visit) -> None:
    visit.page.goto(f"{visit.base}/-/dashboards/{dashboard.SLUG}?app=DeepSeek&at={BETWEEN}")
    wait_for_tables(visit.page)
    said = "'DeepSeek' is no app's id, and names no one app: see Names, below."
    assert headline(visit.page) == said
    listed = visit.page.locator("#chart-names tbody a")
    assert listed.all_inner_texts() == [scenario.OTHER[1], "DeepSeek"]
    listed.nth(1).click()
    wait_for_charts(visit.page)
    assert f"app={scenario.APP_ID}" in visit.page.url
    visit.assert_clean(warnings=True)  # Vega warns of the infinite extent of no data


def test_dashboard_shows_html_in_a_name_as_text(visit: Visit, shots: Path) -> None:
    page = open_dashboard(visit, app=scenario.OTHER[0], at=scenario.T2, chart="top-paid")
    page.screenshot(path=shots / "dashboard-html-name.png", full_page=True)

    assert names(page) == [scenario.OTHER[1]]
    assert page.locator("#chart-names b").count() == 0
    # us has it at No. 1; jp's top-paid chart is observed without it.
    assert headline(page).startswith(f"{scenario.OTHER[1]}, top paid iPhone apps, at ")
    assert "No. 1 in 1 of 2 observed storefronts, top 10 in 1" in headline(page)
    assert map_fills(page) == {NO_1: 1, NOT_RANKED: 1}
    visit.assert_clean()


def test_dashboard_shows_a_script_in_a_name_as_text(visit: Visit, shots: Path) -> None:
    page = open_dashboard(visit, app=HOSTILE[0], at=scenario.T2, chart="top-paid")
    page.screenshot(path=shots / "dashboard-script-name.png", full_page=True)

    assert names(page) == [HOSTILE[1]]
    assert headline(page).startswith(HOSTILE[1])
    assert page.locator("#card-headline script, #chart-names script").count() == 0
    assert page.evaluate("window.pwned") is None
    visit.assert_clean()


def test_the_app_page_with_no_app_shows_the_app_at_no_1_in_most_storefronts(
    visit: Visit,
) -> None:
    visit.page.goto(f"{visit.base}/-/dashboards/{dashboard.SLUG}")
    wait_for_charts(visit.page)
    # At T2, the end of the latest sweep, it is No. 1 in us, jp and de.
    assert f"app={scenario.APP_ID}" in visit.page.url
    assert headline(visit.page).startswith("DeepSeek, top free iPhone apps, at 2025-01-27 09:00")
    assert visit.page.locator("#chart-history g.mark-line.role-mark path").count() > 0
    visit.assert_clean()


def test_a_name_of_no_app_says_so_without_errors(visit: Visit) -> None:
    visit.page.goto(f"{visit.base}/-/dashboards/{dashboard.SLUG}?app=Nothing+like+it")
    wait_for_tables(visit.page)
    visit.page.wait_for_load_state("networkidle")

    said = "'Nothing like it' is no app's id, and names no one app: see Names, below."
    assert headline(visit.page) == said
    assert names(visit.page) == ["No app has the id or a name containing 'Nothing like it'"]
    assert visit.page.locator("#chart-history g.mark-line.role-mark path").count() == 0
    assert visit.page.locator("#chart-world g.mark-line.role-mark path").count() == 0
    visit.assert_clean(warnings=True)  # Vega warns of the infinite extent of no data


def test_the_front_door_finds_an_app_by_a_local_name_and_maps_every_storefront(
    demo_visit: Visit, shots: Path
) -> None:
    page = demo_visit.page
    page.goto(demo_visit.base + "/")
    page.fill("#monitor-app", "エグザンプル")
    page.locator("form.monitor-find input[type=submit]").click()
    wait_for_charts(page)
    page.screenshot(path=shots / "demo-app-page.png", full_page=True)

    assert f"app={demo.APP[0]}" in page.url
    assert headline(page) == (
        f"{demo.APP[1]}, top free iPhone apps, at 2025-01-26 23:06 UTC: No. 1 in 50 of 175 "
        "observed storefronts, top 10 in 110, top 100 in 150. Stale in 3: the latest fetch "
        "failed."
    )
    assert page.locator("#chart-countries tbody tr").count() == 175
    # Every storefront on the map: a shape at 1:110m, or a dot where it has none.
    shapes, dots = map_fills(page), map_fills(page, layer=2)
    assert sum(shapes.values()) + sum(dots.values()) == 175
    assert shapes.get(NO_1, 0) + dots.get(NO_1, 0) == 50
    # Two points a sweep (No. 1 and the top 10) for the 72 hourly sweeps, in one line each.
    assert page.locator("#chart-world g.mark-symbol.role-mark path").count() == 2 * 72
    assert page.locator("#chart-world g.mark-line.role-mark path").count() == 2
    demo_visit.assert_clean()


def test_an_app_before_it_was_first_seen_says_so_without_errors(visit: Visit) -> None:
    query = urlencode({"app": scenario.OTHER[0], "at": scenario.T0, "chart": "top-paid"})
    visit.page.goto(f"{visit.base}/-/dashboards/{dashboard.SLUG}?{query}")
    wait_for_tables(visit.page)
    visit.page.wait_for_load_state("networkidle")
    assert names(visit.page) == ["Not seen up to the time"]
    assert headline(visit.page).startswith(f"{scenario.OTHER[0]}, top paid iPhone apps, at ")
    visit.assert_clean(warnings=True)  # Vega warns of the infinite extent of no data


def test_every_chart_query_fits_in_a_url() -> None:
    """Each chart's SQL goes in its data request's URL, which servers and proxies cap at 8 KB."""
    charts = dashboard.dashboards("rankings")[dashboard.SLUG]["charts"]
    for slug, spec in charts.items():
        assert len(quote(spec["query"], safe="-_.!~*'()")) < 7000, slug


@pytest.mark.parametrize(("app", "name"), [scenario.OTHER, HOSTILE])
def test_claim_page_shows_a_name_as_text(visit: Visit, shots: Path, app: str, name: str) -> None:
    visit.page.goto(f"{visit.base}/rankings/claim?{urlencode({'app': app, 'at': scenario.T2})}")
    visit.page.wait_for_load_state("networkidle")
    visit.page.screenshot(path=shots / f"claim-{app}.png", full_page=True)

    cells = visit.page.locator("table.rows-and-columns td.col-app_name")
    assert [text.strip() for text in cells.all_inner_texts() if text.strip()] == [name]
    assert visit.page.locator("table.rows-and-columns td.col-app_name :is(b, script)").count() == 0
    assert visit.page.evaluate("window.pwned") is None
    visit.assert_clean()


def test_every_time_field_is_a_date_time_input_in_utc(visit: Visit) -> None:
    query = urlencode({"app": scenario.APP_ID, "at": BETWEEN})
    visit.page.goto(f"{visit.base}/rankings/claim_summary?{query}")
    field = visit.page.locator("input[name=at]")
    assert field.get_attribute("type") == "datetime-local"
    assert field.input_value() == "2025-01-26T10:00"  # the browser leaves out :00 seconds
    field.fill("2025-01-26T08:30")
    visit.page.locator("form.sql input[type=submit]").click()
    visit.page.wait_for_load_state("networkidle")
    answered = visit.page.locator("table.rows-and-columns td.col-at").all_inner_texts()
    assert {text.strip() for text in answered} == {"2025-01-26T08:30:00Z"}
    for asked in ("claim", "movers", "events_feed"):
        assert at_field_of(visit.page, f"{visit.base}/rankings/{asked}") == BETWEEN_SHOWN, asked
    page = open_dashboard(visit, app=scenario.APP_ID, at=BETWEEN)
    assert page.locator("input[name=at]").get_attribute("type") == "datetime-local"
    visit.assert_clean()
    # These draw the test data's icons, which no server serves: their loads fail.
    for asked in ("number_ones", "top_chart"):
        assert at_field_of(visit.page, f"{visit.base}/rankings/{asked}") == BETWEEN_SHOWN, asked


BETWEEN_SHOWN = ("datetime-local", "2025-01-26T10:00")


def at_field_of(page: sync_api.Page, query: str) -> tuple[str | None, str]:
    """The type and value of a canned query's time field, asked at BETWEEN."""
    page.goto(f"{query}?{urlencode({'at': BETWEEN})}")
    field = page.locator("input[name=at]")
    return field.get_attribute("type"), field.input_value()


def test_the_rank_chart_draws_notes_as_text(visit: Visit, shots: Path) -> None:
    page = open_dashboard(visit, scenario.APP_ID, scenario.T2)
    page.locator("#chart-history").screenshot(path=shots / "dashboard-history-note.png")
    drawn = page.locator("#chart-history g.mark-text.role-mark text").all_text_contents()
    assert NOTE in drawn and "null" not in drawn
    assert page.locator("#chart-history g.mark-rule.role-mark line").count() == 2  # note, at
    assert visit.page.evaluate("window.pwned") is None
    visit.assert_clean()


def open_dashboard(visit: Visit, app: str, at: str, chart: str = "top-free") -> sync_api.Page:
    """Open the dashboard and wait until its charts and tables have drawn."""
    query = {"app": app, "at": at, "chart": chart, "device": "iphone", "countries": "", "days": 7}
    url = f"{visit.base}/-/dashboards/{dashboard.SLUG}?{urlencode(query, quote_via=quote)}"
    visit.page.goto(url)
    wait_for_charts(visit.page)
    return visit.page


def wait_for_tables(page: sync_api.Page) -> None:
    """Wait until each table of the page has a row."""
    page.wait_for_function(
        """() => ['headline', 'countries', 'names', 'spans'].every(
                   slug => document.querySelector(`#chart-${slug} tbody tr`))""",
        timeout=20_000,
    )


def wait_for_charts(page: sync_api.Page) -> None:
    """Wait until the tables, the map and the lines over time have drawn."""
    wait_for_tables(page)
    page.wait_for_function(
        """() => document.querySelectorAll('#chart-map g.mark-shape path').length > 1
              && document.querySelector('#chart-history g.mark-symbol.role-mark path')
              && document.querySelector('#chart-world g.mark-symbol.role-mark path')""",
        timeout=20_000,
    )
    page.wait_for_load_state("networkidle")


def headline(page: sync_api.Page) -> str:
    return page.locator("#chart-headline tbody td").first.inner_text().strip()


def map_fills(page: sync_api.Page, layer: int = 1) -> dict[str, int]:
    """Count the map's country shapes (layer 1) or dots (layer 2) by fill colour."""
    fills = page.locator(f"#chart-map g.layer_{layer}_marks path").evaluate_all(
        "paths => paths.map(p => p.getAttribute('fill'))"
    )
    return {fill: fills.count(fill) for fill in set(fills)}


def names(page: sync_api.Page) -> list[str]:
    """Return the text of the first column of the names table, as a person reads it."""
    return page.locator("#chart-names tbody tr td:first-child").evaluate_all(
        "cells => cells.map(c => c.textContent.trim())"
    )


def _answers(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/-/versions.json", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False
