"""Time every page people reach, on databases of growing length: p50 and p95 of each.

Serves each database with ``monitor serve --public --public-sql`` (the compose file's
mode, with the SQL the app page draws with), then times, one request at a time:

- every page the index links to, and the app page, which opens on the app at No. 1 in
  the most storefronts;
- the data requests of each of the app page's charts, as the browser sends them;
- every canned query, asked about that app (by its id, and by a part of its name);
- the rankings and fetches views sorted and faceted the ways they offer.

Reports each page's p50 and p95 per database, the ratio of each database's p50 to the
first's (a database 4 times longer shows how pages grow), and any page that failed or
ran into the time limit, which makes the exit status 1. ``python bench/storage.py --dir
DIR --days N`` builds them.

    python bench/pages.py --db /tmp/month/project.db --db /tmp/month4/project.db
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import statistics
import time
from contextlib import closing
from pathlib import Path

import httpx
from server import free_port, start_server

from monitor import dashboard, queries

# What a page says when it ran into a time limit.
_TIMED_OUT = re.compile(r"SQL Interrupted|These facets timed out")
_SKIPPED = re.compile(r"^/-/(static|monitor-static|static-plugins)/|\.db$|^/-/(health|metrics)")


def top_app(db: Path) -> tuple[str, str]:
    """Return the id and a name of the app at No. 1 in the most storefronts now."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        queries.prepare(conn)
        params = {"at": "", "chart": "", "device": ""}
        (app_id,) = conn.execute(queries.with_max_age(queries.TOP_APP), params).fetchone()
        (name,) = conn.execute(
            "SELECT l.name FROM runs r JOIN labels l ON l.id = r.label "
            "JOIN apps a ON a.id = r.app WHERE a.app_id = ? LIMIT 1",
            [app_id],
        ).fetchone()
    return app_id, name


def pages(client: httpx.Client, db: Path) -> list[tuple[str, str]]:
    """Return (label, path) for every page to time, the same labels for every database."""
    name = db.stem
    app_id, app_name = top_app(db)
    index = client.get("/").text
    linked = sorted(
        {href for href in re.findall(r'href="(/[^"#]*)"', index) if not _SKIPPED.search(href)}
    )
    found = [(href.replace(f"/{name}", "/DB", 1), href) for href in linked]
    canned = {
        "claim": f"app={app_id}",
        "claim_summary": f"app={app_id}",
        "claim_summary by a part of its name": str(httpx.QueryParams({"app": app_name[:12]})),
        "top_chart": "country=us&chart=top-free&device=iphone",
        "app_history": f"app={app_id}&country=us",
        "number_ones": "",
        "movers": "",
        "movers of the app": f"app={app_id}",
        "events_feed": "",
        "events_feed of the app": f"app={app_id}",
        "events_feed.atom of the app": f"app={app_id}",
        "events_feed of a storefront": "country=us",
        "events_feed of a storefront with none": "country=zz",
        "coverage": "",
    }
    asked = [
        (
            f"/DB/{query} ({_masked(params, app_id, app_name[:12]) or 'blank'})",
            f"/{name}/{query.split()[0]}?{params}",
        )
        for query, params in canned.items()
    ]
    views = [
        (f"/DB/{view}?{q.replace(app_id, '(the app)')}", f"/{name}/{view}?{q}")
        for view, q in (
            ("rankings", "_sort=rank"),
            ("rankings", "_sort_desc=fetched_at"),
            ("rankings", "rank=1&_facet=country"),
            ("rankings", f"app_id={app_id}&_facet=country"),
            ("fetches", "_sort_desc=started_at"),
            ("fetches", "country=us&_sort_desc=started_at"),
            ("fetches", "status=error&_facet=error_kind"),
        )
    ]
    return found + asked + views + app_page(name, app_id)


def _masked(params: str, app_id: str, name: str) -> str:
    """The parameters as a label that is the same for every database."""
    return params.replace(app_id, "(the app)").replace(str(httpx.QueryParams({"a": name}))[2:], "…")


def app_page(name: str, app_id: str) -> list[tuple[str, str]]:
    """The app page and its charts' data requests, as datasette-dashboards sends them."""
    filters = {"app": app_id, "at": "", "chart": "top-free", "device": "iphone", "days": "7"}
    page = [("app page", f"/-/dashboards/{dashboard.SLUG}?{httpx.QueryParams(filters)}")]
    charts = dashboard.dashboards(name)[dashboard.SLUG]["charts"]
    data = {**filters, "countries": "", "_shape": "objects"}
    return page + [
        (f"app page: {slug}", f"/{name}.json?{httpx.QueryParams({'sql': chart['query'], **data})}")
        for slug, chart in charts.items()
    ]


def time_pages(db: Path, runs: int) -> dict[str, tuple[float, float, str]]:
    """Serve db and time each page runs times; return label: (p50 ms, p95 ms, problem)."""
    port = free_port()
    server = start_server(db, port, public_sql=True)
    timed: dict[str, tuple[float, float, str]] = {}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120) as client:
            listed = pages(client, db)
            print(f"{db}: {len(listed)} pages, {runs} times each", flush=True)
            for label, path in listed:
                times, problem = [], ""
                for run in range(runs + 1):  # the first warms the caches
                    started = time.perf_counter()
                    response = client.get(path, follow_redirects=True)
                    if run:
                        times.append((time.perf_counter() - started) * 1000)
                    if response.status_code != 200:
                        problem = f"HTTP {response.status_code}"
                    elif _TIMED_OUT.search(response.text):
                        problem = "time limit"
                cuts = statistics.quantiles(times, n=20, method="inclusive")
                timed[label] = (statistics.median(times), cuts[18], problem)
    finally:
        server.terminate()
        server.wait(timeout=30)
    return timed


def report(databases: list[Path], results: list[dict[str, tuple[float, float, str]]]) -> None:
    base = results[0]
    head = "".join(f"{db.parent.name + '/' + db.name:>26}" for db in databases)
    print(f"\n{'page':<58}{head}   p50 vs the first")
    print(f"{'':<58}" + "".join(f"{'p50 ms':>13}{'p95 ms':>13}" for _ in databases))
    for label in base:
        cells = ""
        ratios = []
        for timed in results:
            p50, p95, problem = timed.get(label, (float("nan"), float("nan"), "missing"))
            cells += f"{p50:13.1f}{p95:13.1f}"
            ratios.append(f"{p50 / base[label][0]:.2f}" + (f" ({problem})" if problem else ""))
        print(f"{label[:57]:<58}{cells}   {' / '.join(ratios)}")
    slowest = [max(t[1] for t in timed.values()) for timed in results]
    print("\nslowest p95 per database: " + ", ".join(f"{ms:.0f} ms" for ms in slowest))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--db", type=Path, action="append", required=True, help="a database (repeat)"
    )
    parser.add_argument("--runs", type=int, default=7, help="times each page is timed (7)")
    args = parser.parse_args()
    for db in args.db:
        if not db.is_file():
            parser.error(f"no database at {db}; bench/storage.py --dir DIR makes one")
    results = [time_pages(db, args.runs) for db in args.db]
    report(args.db, results)
    failed = sorted({label for timed in results for label, t in timed.items() if t[2]})
    for label in failed:
        print(f"failed or timed out: {label}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
