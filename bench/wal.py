"""Measure how large the write-ahead log grows while readers never stop reading.

A writer takes a sweep every --interval seconds: the default chart in every
storefront, each observation through monitor's own write path, with the charts of
bench/storage.py's simulation changing as they do hour by hour. Reader threads query
the file without pause, as Datasette's do, one of them with a slow query that
Datasette's 1 s time limit ends. The log's size is sampled every 20 ms.

The same load runs twice in one run: with SQLite's defaults (checkpoint every 1000
pages, no size limit, no checkpoint of monitor's own), the baseline, and as monitor
runs (checkpoint every megabyte, a size limit, the log truncated between charts once
past 4 MB and after each sweep).

    python bench/wal.py                      # 60 s each, 4 readers, a sweep every 2 s
    python bench/wal.py --seconds 20 --readers 2
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import closing, suppress
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from sqlite_utils import Database
from storage import observations

from monitor import schema, storage
from monitor.charts import FetchResult
from monitor.reference import storefronts_175

READS = (
    # What a page of the latest US chart asks.
    """SELECT * FROM rankings WHERE snapshot_id = (SELECT MAX(s.id) FROM snapshots s
       JOIN charts c ON c.id = s.chart_id WHERE c.country = 'us') ORDER BY rank""",
    "SELECT * FROM fetches ORDER BY id DESC LIMIT 100",
)
TIME_LIMIT = 1.0  # Datasette's sql_time_limit_ms
SLOW_READ = "SELECT app_name, COUNT(*) FROM rankings GROUP BY app_name ORDER BY 2 DESC LIMIT 5"


@dataclass
class Outcome:
    """What one configuration gave."""

    name: str
    sweeps: int = 0
    reads: int = 0
    largest: int = 0
    last: int = 0


def sweeps(countries: list[str]) -> Iterator[list[FetchResult]]:
    """Yield the simulation's observations a sweep at a time, for as long as asked."""
    batch: list[FetchResult] = []
    hour = 0
    for observed_hour, result in observations(365, countries, seed=7):
        if observed_hour != hour and batch:
            yield batch
            batch, hour = [], observed_hour
        batch.append(result)


def read_forever(path: Path, sql: str, stop: threading.Event, outcome: Outcome) -> None:
    """Query the file without pause until stopped, as a reader of Datasette's would.

    Like Datasette, end a query that runs past the time limit.
    """
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        while not stop.is_set():
            deadline = time.monotonic() + TIME_LIMIT
            conn.set_progress_handler(lambda end=deadline: time.monotonic() > end, 1000)
            with suppress(sqlite3.OperationalError):  # interrupted at the time limit
                conn.execute(sql).fetchall()
            outcome.reads += 1


def sample_log(path: Path, stop: threading.Event, outcome: Outcome) -> None:
    log = path.with_name(path.name + "-wal")
    while not stop.is_set():
        size = log.stat().st_size if log.exists() else 0
        outcome.largest = max(outcome.largest, size)
        outcome.last = size
        time.sleep(0.02)


def run(name: str, monitors_own: bool, args: argparse.Namespace, folder: Path) -> Outcome:
    """Sweep every interval under constant reads for args.seconds; measure the log."""
    path = folder / f"{name.replace(' ', '-')}.db"
    db = schema.open_db(path)
    if not monitors_own:
        db.execute("PRAGMA wal_autocheckpoint = 1000")
        db.execute("PRAGMA journal_size_limit = -1")
    outcome, stop = Outcome(name), threading.Event()
    batches = sweeps(sorted(storefronts_175()))
    _sweep(db, next(batches), monitors_own)  # readers start on a file with a chart in it
    workers = [
        threading.Thread(target=read_forever, args=(path, sql, stop, outcome))
        for sql in [SLOW_READ, *(READS[i % len(READS)] for i in range(args.readers - 1))]
    ]
    workers.append(threading.Thread(target=sample_log, args=(path, stop, outcome)))
    for worker in workers:
        worker.start()
    deadline = time.monotonic() + args.seconds
    while time.monotonic() < deadline:
        started = time.monotonic()
        _sweep(db, next(batches), monitors_own)
        if monitors_own:
            storage.checkpoint(db, wait=schema.BUSY_TIMEOUT_MS / 1000)
        outcome.sweeps += 1
        time.sleep(max(0.0, args.interval - (time.monotonic() - started)))
    stop.set()
    for worker in workers:
        worker.join()
    db.close()
    return outcome


def _sweep(db: Database, batch: list[FetchResult], monitors_own: bool) -> None:
    """Store a sweep as the collector does; trim the log between charts as it does too."""
    sweep_id = storage.begin_sweep(db, batch[0].started_at)
    trim_log = storage.LogTrimmer()
    for result in batch:
        storage.record(db, sweep_id, result)
        if monitors_own:
            trim_log(db)
    end = storage.SweepEnd(batch[-1].fetched_at, "finished", None, len(batch), 0, 0)
    storage.finish_sweep(db, sweep_id, end)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60, help="How long each run lasts.")
    parser.add_argument("--readers", type=int, default=4, help="Reader threads.")
    parser.add_argument("--interval", type=float, default=2, help="Seconds between sweeps.")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        results = [
            run(name, own, args, Path(folder))
            for name, own in (("SQLite defaults", False), ("monitor", True))
        ]
    print(f"{args.readers} readers, a sweep every {args.interval:g}s, {args.seconds:g}s each:")
    for r in results:
        print(
            f"  {r.name:16} {r.sweeps:4} sweeps {r.reads:8,} reads   "
            f"log at most {r.largest / 1e6:8.2f} MB, at the end {r.last / 1e6:8.2f} MB"
        )
    baseline, ours = results
    print(f"largest log monitor/baseline: {ours.largest / max(baseline.largest, 1):.3f}")


if __name__ == "__main__":
    main()
