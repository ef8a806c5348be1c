"""Measure how compactly monitor stores a month of hourly default sweeps.

Simulates hourly sweeps of the default chart (top-free iPhone, 100 ranks) in every
storefront. In half the hours a chart is unchanged; in the others it differs by
about 10 local moves and 2 new entrants. Every observation goes through monitor's
own write path into a real SQLite file. A naive baseline, one denormalised row per
observed entry with every field as text, is written in the same run.

Reports bytes on disk (tables plus indexes) per observed ranked entry for both, what
the first sweep added, and what a sweep adds that sees every chart unchanged, on
average over UNCHANGED_SWEEPS such sweeps at the end, as pages fill a few at a time
(their bytes are in the project's total, their entries not among those observed), and
ends with the ratio.

    python bench/storage.py                 # 30 days x 175 storefronts
    python bench/storage.py --days 2 --storefronts 20
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from monitor import claims, queries, schema, storage
from monitor.charts import ChartRequest, Entry, FetchResult, Listing
from monitor.reference import storefronts_175

DEPTH = 100
UNCHANGED_SWEEPS = 10  # at the end, each seeing every chart as the month's last did
POOL = 5_000
NAIVE_COLUMNS = (
    "snapshot_id",
    "store",
    "country",
    "chart",
    "device",
    "genre",
    "fetched_at",
    "feed_updated",
    "rank",
    "app_id",
    "app_name",
    "developer",
)


def catalogue(rng: random.Random) -> list[tuple[str, str, str]]:
    """Make a pool of apps with realistic id, name and developer lengths."""
    words = [
        "Photo",
        "Editor",
        "AI",
        "Chat",
        "Video",
        "Music",
        "Puzzle",
        "Run",
        "Bank",
        "Maps",
        "Fit",
        "Shop",
        "Scan",
        "Notes",
        "Weather",
        "Translate",
        "Learn",
        "Quest",
    ]
    return [
        (
            str(rng.randrange(300_000_000, 6_800_000_000)),
            " ".join(rng.sample(words, rng.randint(2, 4))) + f" {i}",
            f"{rng.choice(words)} {rng.choice(['Inc.', 'Ltd', 'LLC', 'GmbH', 'Studio'])} {i % 700}",
        )
        for i in range(POOL)
    ]


def localised(app: tuple[str, str, str], country: str) -> Entry:
    """Give about a fifth of the apps a storefront-specific name."""
    app_id, name, developer = app
    if int(app_id) % 5 == 0:
        name = f"{name} ({country.upper()})"
    return Entry(app_id, name, developer, f"https://is1-ssl.mzstatic.com/{app_id}/100x100bb.png")


def evolve(rng: random.Random, chart: list[int]) -> list[int]:
    """Apply about 10 local moves and 2 new entrants to a chart of pool indexes."""
    chart = chart[:]
    for _ in range(10):
        i = rng.randrange(DEPTH - 1)
        j = min(DEPTH - 1, i + rng.randint(1, 3))
        chart[i], chart[j] = chart[j], chart[i]
    present = set(chart)
    for _ in range(2):
        newcomer = rng.choice([p for p in rng.sample(range(POOL), 5) if p not in present] or [0])
        if newcomer not in present:
            chart[rng.randrange(DEPTH)] = newcomer
            present.add(newcomer)
    return chart


def observations(days: int, countries: list[str], seed: int) -> Iterator[tuple[int, FetchResult]]:
    """Yield (hour, observation) for every storefront and hour of the simulation."""
    rng = random.Random(seed)
    apps = catalogue(rng)
    charts = {cc: rng.sample(range(POOL), DEPTH) for cc in countries}
    shown = {cc: {} for cc in countries}  # pool index -> Entry, per storefront
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for hour in range(days * 24):
        at = (start + timedelta(hours=hour)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for cc in countries:
            if rng.random() < 0.5:
                charts[cc] = evolve(rng, charts[cc])
            req = ChartRequest("apple", "top-free", "iphone", None, cc, DEPTH)
            for i in charts[cc]:
                if i not in shown[cc]:
                    shown[cc][i] = localised(apps[i], cc)
            listing = Listing([shown[cc][i] for i in charts[cc]], at)
            yield hour, FetchResult(req, at, at, listing, http_status=200)


def bytes_used(path: Path) -> dict[str, int]:
    """Return bytes on disk per table and index, from SQLite's dbstat."""
    with sqlite3.connect(path) as conn:
        rows = conn.execute(
            "SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC"
        ).fetchall()
    return dict(rows)


@dataclass
class Written:
    """What the simulation wrote: observed entries, and seconds spent in each writer."""

    observed: int = 0
    project_seconds: float = 0.0
    naive_seconds: float = 0.0
    first_sweep: int = 0  # bytes the first sweep added to the project's database
    unchanged_sweep: int = 0  # and, on average, last sweeps that saw every chart unchanged


def naive_rows(snapshot: int, result: FetchResult) -> list[tuple[str | None, ...]]:
    """One denormalised text row per observed entry, every field kept."""
    req, listing = result.req, result.listing
    assert listing is not None
    return [
        (
            str(snapshot),
            req.store,
            req.country,
            req.chart,
            req.device,
            req.genre,
            result.fetched_at,
            listing.updated,
            str(rank),
            e.app_id,
            e.name,
            e.developer,
        )
        for rank, e in enumerate(listing.entries, 1)
    ]


def write_both(
    project_db: Path, naive_db: Path, days: int, countries: list[str], seed: int
) -> Written:
    """Write each simulated observation through monitor's storage and the naive table."""
    db = schema.open_db(project_db)
    naive = sqlite3.connect(naive_db)
    naive.execute(f"CREATE TABLE rankings ({', '.join(c + ' TEXT' for c in NAIVE_COLUMNS)})")
    insert = f"INSERT INTO rankings VALUES ({', '.join('?' * len(NAIVE_COLUMNS))})"
    written, sweep, last_hour, last = Written(), 0, -1, None
    empty = stored_bytes(db)
    latest: dict[str, FetchResult] = {}  # each storefront's last observation
    for snapshot, (hour, result) in enumerate(observations(days, countries, seed), 1):
        clock = time.perf_counter()
        if hour != last_hour:
            if last:
                finish(db, sweep, last.fetched_at)
            if hour == 1:
                written.first_sweep = stored_bytes(db) - empty
            sweep, last_hour = storage.begin_sweep(db, result.started_at), hour
            progress(f"day {hour // 24 + 1}/{days}")
        storage.record(db, sweep, result)
        last = latest[result.req.country] = result
        middle = time.perf_counter()
        naive.executemany(insert, naive_rows(snapshot, result))
        written.project_seconds += middle - clock
        written.naive_seconds += time.perf_counter() - middle
        written.observed += len(result.listing.entries) if result.listing else 0
    if last:
        finish(db, sweep, last.fetched_at)
        before = stored_bytes(db)
        for hours in range(1, UNCHANGED_SWEEPS + 1):
            sweep_again(db, list(latest.values()), hours)
        written.unchanged_sweep = (stored_bytes(db) - before) // UNCHANGED_SWEEPS
    naive.commit()
    naive.close()
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return written


def stored_bytes(db) -> int:
    """Return the bytes of the database's pages, the log copied in first."""
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return int(db.execute("SELECT SUM(pgsize) FROM dbstat").fetchone()[0])


def sweep_again(db, results: list[FetchResult], hours: int) -> None:
    """Record a sweep hours after the month's last that sees every chart as it was then.

    It is not counted among the observed entries: it measures, it is not the month.
    """
    at = (datetime.fromisoformat(results[0].fetched_at) + timedelta(hours=hours)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    sweep = storage.begin_sweep(db, at)
    for result in results:
        storage.record(db, sweep, FetchResult(result.req, at, at, result.listing, http_status=200))
    finish(db, sweep, at)


def finish(db, sweep: int, at: str) -> None:
    """End a sweep as the collector does, with its counts, as it was when its last chart came."""
    ok, failed, entries = db.execute(
        "SELECT SUM(status = 'ok'), SUM(status = 'error'), "
        "(SELECT coalesce(SUM(size), 0) FROM snapshots WHERE sweep_id = ?) "
        "FROM fetches WHERE sweep_id = ?",
        [sweep, sweep],
    ).fetchone()
    storage.finish_sweep(db, sweep, storage.SweepEnd(at, "finished", None, ok, failed, entries))


def progress(message: str) -> None:
    if sys.stderr.isatty():
        print(f"\r{message}   ", end="", file=sys.stderr, flush=True)


def timed(run: Callable[[], object], repeat: int) -> float:
    """Return the median wall time of run, in milliseconds."""
    samples = []
    for _ in range(repeat):
        clock = time.perf_counter()
        run()
        samples.append((time.perf_counter() - clock) * 1000)
    return statistics.median(samples)


NAIVE_CLAIM = """SELECT country, rank FROM rankings
WHERE app_id = :app AND (country, fetched_at) IN (
  SELECT country, MAX(fetched_at) FROM rankings WHERE fetched_at <= :at GROUP BY country
  HAVING MAX(fetched_at) >= strftime('%Y-%m-%dT%H:%M:%SZ', :at, '-6 hours'))"""
NAIVE_HISTORY = "SELECT fetched_at, country, rank FROM rankings WHERE app_id = :app"


def time_queries(project_db: Path, naive_db: Path, days: int) -> list[tuple[str, float, float]]:
    """Time a claim and an app's history on both databases; return (question, ms, ms)."""
    db = schema.open_db(project_db)
    naive = sqlite3.connect(naive_db)
    app_id = db.execute(
        "SELECT a.app_id FROM runs r JOIN apps a ON a.id = r.app WHERE r.rank = 1 "
        "GROUP BY r.app ORDER BY COUNT(*) DESC LIMIT 1"
    ).fetchone()[0]
    app = claims.find_app(db, app_id)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    moments = [
        (start + timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M:%SZ")
        for h in (1, days * 12, days * 24 - 1)
    ]
    params = {"app": app_id, "at": moments[1], "country": "us"}

    def naive_ms(sql: str, **extra: str) -> float:
        # One run: each scans the whole naive table.
        return timed(lambda: naive.execute(sql, {**params, **extra}).fetchall(), 1)

    def ours_ms(sql: str, **extra: str) -> float:
        return timed(lambda: db.execute(sql, {**params, **extra}).fetchall(), 5)

    results = [
        (
            f"claim at {at}",
            timed(lambda at=at: claims.claim(db, app, at), 5),
            naive_ms(NAIVE_CLAIM, at=at),
        )
        for at in moments
    ]
    results.append(
        (
            "app history, all countries",
            ours_ms(queries.APP_HISTORY, country=""),
            naive_ms(NAIVE_HISTORY),
        )
    )
    results.append(
        (
            "app history, one country",
            ours_ms(queries.APP_HISTORY),
            naive_ms(NAIVE_HISTORY + " AND country = :country"),
        )
    )
    db.close()
    naive.close()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--days", type=int, default=30, help="days of hourly sweeps (30)")
    parser.add_argument("--storefronts", type=int, default=175, help="how many storefronts (175)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (1)")
    parser.add_argument("--dir", type=Path, help="keep the databases here")
    args = parser.parse_args()
    countries = list(storefronts_175())[: args.storefronts]
    folder = args.dir or Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    folder.mkdir(parents=True, exist_ok=True)
    project_db, naive_db = folder / "project.db", folder / "naive.db"
    for path in (project_db, naive_db):
        path.unlink(missing_ok=True)

    print(
        f"{args.days} days x 24 hourly sweeps x {len(countries)} storefronts "
        f"x {DEPTH} ranks, in {folder}"
    )
    written = write_both(project_db, naive_db, args.days, countries, args.seed)
    progress("")
    project, naive = bytes_used(project_db), bytes_used(naive_db)
    print(f"observed ranked entries: {written.observed:,}")
    print("project schema, bytes by table and index:")
    for name, size in project.items():
        print(f"  {name:40} {size:>14,}")
    print("query times in ms, project (median of 5) vs naive table without indexes (1 run):")
    for question, ours, theirs in time_queries(project_db, naive_db, args.days):
        print(f"  {question:40} {ours:8.2f} ms  {theirs:10.1f} ms  ({theirs / ours:,.0f}x)")
    project_total, naive_total = sum(project.values()), sum(naive.values())
    for name, total, seconds in (
        ("project", project_total, written.project_seconds),
        ("naive", naive_total, written.naive_seconds),
    ):
        print(
            f"{name + ':':9}{total:>14,} bytes  {total / written.observed:8.2f} bytes/entry"
            f"  written in {seconds:.0f}s"
        )
    print(f"write time project/naive: {written.project_seconds / written.naive_seconds:.1f}x")
    print(
        f"first sweep added {written.first_sweep:,} bytes; a sweep in which nothing changed,"
        f" {written.unchanged_sweep:,} bytes"
        f" ({written.unchanged_sweep / written.first_sweep:.2%} of the first)"
    )
    print(
        f"ratio project/naive: {project_total / naive_total:.4f} "
        f"(1/{naive_total / project_total:.1f})"
    )


if __name__ == "__main__":
    main()
