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
from monitor import claims, dashboard, notes, schema, storage

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
    app = claims.find_app(db, scenario.APP_ID)
    notes.add_note(db, app, scenario.T1, NOTE, "https://example.com/story", scenario.T2)
    db.close()
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
    """A fresh page that records what it does and refuses every request off 127.0.0.1."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
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


def test_dashboard_draws_figures_history_map_and_runs(visit: Visit, shots: Path) -> None:
    page = open_dashboard(visit, app=scenario.APP_ID, at=BETWEEN)
    page.screenshot(path=shots / "dashboard.png", full_page=True)

    # us, gb and ca at No. 1 (ca from an observation 2 h old), jp 5th; fr is observed
    # without the app, de never answered.
    assert metrics(page) == {"number_one": "3", "top_10": "4", "observed": "5"}
    # One line each for us, gb, ca and jp; a point for each of their 7 observations.
    assert page.locator("#chart-history g.mark-line.role-mark path").count() == 4
    assert page.locator("#chart-history g.mark-symbol.role-mark path").count() == 7
    assert map_fills(page) == {NO_1: 3, TOP_10: 1, NOT_RANKED: 1, NOT_OBSERVED: 1}
    spans = page.locator("#chart-spans tbody tr").all_inner_texts()
    assert [row.split("\t")[0] for row in spans] == ["ca", "gb", "us"]
    assert names(page) == ["DeepSeek - AI Assistant", "DeepSeek"]
    assert f"{dashboard.STATIC_URL}countries-110m.json" in {
        urlsplit(url).path for url in visit.requests
    }
    visit.assert_clean()


def test_dashboard_shows_html_in_a_name_as_text(visit: Visit, shots: Path) -> None:
    page = open_dashboard(visit, app=scenario.OTHER[0], at=scenario.T2, chart="top-paid")
    page.screenshot(path=shots / "dashboard-html-name.png", full_page=True)

    assert names(page) == [scenario.OTHER[1]]
    assert page.locator("#chart-names b").count() == 0
    # us has it at No. 1; jp's top-paid chart is observed without it.
    assert metrics(page) == {"number_one": "1", "top_10": "1", "observed": "2"}
    assert map_fills(page) == {NO_1: 1, NOT_RANKED: 1}
    visit.assert_clean()


def test_dashboard_shows_a_script_in_a_name_as_text(visit: Visit, shots: Path) -> None:
    page = open_dashboard(visit, app=HOSTILE[0], at=scenario.T2, chart="top-paid")
    page.screenshot(path=shots / "dashboard-script-name.png", full_page=True)

    assert names(page) == [HOSTILE[1]]
    assert page.locator("#chart-names script").count() == 0
    assert page.evaluate("window.pwned") is None
    visit.assert_clean()


def test_dashboard_with_no_app_says_so_without_errors(visit: Visit) -> None:
    visit.page.goto(f"{visit.base}/-/dashboards/{dashboard.SLUG}")  # redirects to the defaults
    visit.page.wait_for_function(
        """() => document.querySelector('#chart-names tbody tr')
              && document.querySelector('#chart-spans tbody tr')
              && document.querySelector('#chart-map g.mark-shape path')
              && document.querySelector('#chart-history svg')
              && document.querySelector('#chart-observed p')""",
        timeout=20_000,
    )
    visit.page.wait_for_load_state("networkidle")

    assert metrics(visit.page) == {"number_one": "0", "top_10": "0", "observed": "0"}
    assert names(visit.page) == ["No app has this id"]
    assert visit.page.locator("#chart-history g.mark-line.role-mark path").count() == 0
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
    visit.page.wait_for_function(
        """() => document.querySelectorAll('#chart-map g.mark-shape path').length > 1
              && document.querySelector('#chart-history g.mark-symbol.role-mark path')
              && document.querySelector('#chart-spans tbody tr')
              && document.querySelector('#chart-names tbody tr')
              && ['number_one', 'top_10', 'observed'].every(
                   slug => document.querySelector(`#chart-${slug} p`))""",
        timeout=20_000,
    )
    visit.page.wait_for_load_state("networkidle")
    return visit.page


def metrics(page: sync_api.Page) -> dict[str, str]:
    return {
        slug: page.locator(f"#chart-{slug} p").inner_text().strip()
        for slug in ("number_one", "top_10", "observed")
    }


def map_fills(page: sync_api.Page) -> dict[str, int]:
    """Count the map's country shapes by fill colour, leaving out the land underneath."""
    fills = page.locator("#chart-map g.layer_1_marks path").evaluate_all(
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
