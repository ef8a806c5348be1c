"""Time a sweep against a store with latency: against the ideal, and against one at a time.

Serves the tests' loopback stand-in (``tests/standin.py``: the charts of the 175
storefronts in the real shapes) on 127.0.0.1 from a process of its own, as a store is
another machine, each answer delayed by ``--latency`` seconds, and sweeps the iPhone
top-free chart of ``--charts`` storefronts with
monitor's collector, in process, into a new database:

- at ``--concurrency`` (8): its wall time against the ideal,
  ceil(charts / concurrency) x latency, which no sweep can beat;
- at concurrency 1, the baseline: a sequential sweep of the same charts.

With ``--everything``, it then runs the real ``monitor collect --chart all --device all
--genre all`` (all of the App Store: 48,300 charts) in a child process at
``--everything-latency`` and ``--everything-concurrency``, and reports its wall time
against the ideal (the iTunes host serves all but 350 of the charts, so its share sets
the ideal), its peak memory (RSS), and whether every chart was stored whole. Its
sequential baseline is measured on the first ``--sample`` charts and scaled, since a
sequential sweep of everything would take hours.

    python bench/sweep.py --latency 0.15 --charts 175 --everything
"""

from __future__ import annotations

import argparse
import math
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor import collector, schema, selection
from monitor.charts import ChartRequest
from monitor.config import ChartSpec
from monitor.reference import storefronts_175
from monitor.settings import build
from monitor.sources import ENDPOINTS
from monitor.sources.apple import uses_v2

TESTS = Path(__file__).resolve().parent.parent / "tests"
# The stand-in in a process of its own: it prints its URL, then serves until killed.
SERVE = """
import sys, threading
sys.path.insert(0, sys.argv[2])
from standin import StoreStandIn
with StoreStandIn(delay=float(sys.argv[1])) as store:
    print(store.url, flush=True)
    threading.Event().wait()
"""


@contextmanager
def stand_in(latency: float) -> Iterator[str]:
    """Serve the stand-in with that latency from a child process; yield its URL."""
    child = subprocess.Popen(
        [sys.executable, "-c", SERVE, str(latency), str(TESTS)], stdout=subprocess.PIPE, text=True
    )
    try:
        yield child.stdout.readline().strip() if child.stdout else ""
    finally:
        child.kill()
        child.wait()


def sweep_seconds(url: str, charts: int, concurrency: int, folder: Path) -> float:
    """Sweep the first ``charts`` storefronts at ``concurrency``; return the wall time."""
    settings = build({**{e.key: url for e in ENDPOINTS}, "concurrency": concurrency}).settings
    requests = tuple(
        ChartRequest("apple", "top-free", "iphone", None, country, 100)
        for country in list(storefronts_175())[:charts]
    )
    path = folder / f"concurrency-{concurrency}.db"
    schema.open_db(path).close()  # the schema is made before the clock starts
    started = time.perf_counter()
    report = collector.sweep_once(path, requests, settings, lambda _: None, lambda _: None)
    seconds = time.perf_counter() - started
    if report.ok != charts:
        raise SystemExit(f"the sweep did not store every chart: {report.summary()}")
    return seconds


EVERYTHING = ("--chart", "all", "--device", "all", "--genre", "all")


def collect_everything(url: str, concurrency: int, folder: Path, *limit: str) -> tuple[float, int]:
    """Run ``monitor collect`` of every Apple chart (or the first of them, with limit's
    --country); return its wall time and peak RSS in bytes, checking every chart whole."""
    path = folder / f"everything-{concurrency}-{len(limit)}.db"
    schema.open_db(path).close()
    env = {**os.environ, "MONITOR_DB": str(path)}
    env.update({key: url for key in ("MONITOR_APPLE_RSS_URL", "MONITOR_ITUNES_URL")})
    command = [sys.executable, "-m", "monitor", "collect", *EVERYTHING, *limit]
    started = time.perf_counter()
    child = subprocess.Popen(
        [*command, "--concurrency", str(concurrency)], env=env, stdout=subprocess.PIPE
    )
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    output = child.stdout.read().decode() if child.stdout else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"monitor collect failed: {output}")
    check_whole(path)
    return seconds, usage.ru_maxrss * 1024


def check_whole(path: Path) -> None:
    """Every chart attempted is stored whole: one ok fetch, 100 ranks."""
    with sqlite3.connect(path) as db:
        charts, ranks, failed = db.execute(
            "SELECT COUNT(DISTINCT snapshot_id), COUNT(*), "
            "(SELECT COUNT(*) FROM fetches WHERE status != 'ok') FROM rankings"
        ).fetchone()
        attempted = db.execute("SELECT COUNT(*) FROM fetches").fetchone()[0]
    if failed or charts != attempted or ranks != charts * 100:
        raise SystemExit(f"not every chart stored whole: {charts}, {ranks}, {failed}")


def everything(args: argparse.Namespace, url: str, folder: Path) -> None:
    requests = selection.requests_for(ChartSpec("apple", "all", "all", "all"))
    legacy = sum(not uses_v2(req) for req in requests)
    latency, concurrency = args.everything_latency, args.everything_concurrency
    ideal = math.ceil(legacy / concurrency) * latency
    seconds, rss = collect_everything(url, concurrency, folder)
    # The sample: the first storefronts' every chart, one at a time, scaled to them all.
    countries = list(storefronts_175())[: args.sample]
    sample, _ = collect_everything(url, 1, folder, "--country", ",".join(countries))
    sequential = sample * len(storefronts_175()) / len(countries)
    print(
        f"all of the App Store: {len(requests):,} charts ({legacy:,} from iTunes), "
        f"{latency:g} s to each answer, {concurrency} in flight per host"
    )
    print(f"  ideal                  {ideal:7.1f} s")
    print(f"  sweep                  {seconds:7.1f} s   {seconds / ideal:5.2f} x the ideal")
    print(
        f"  one at a time          {sequential:7.1f} s   {sequential / seconds:5.2f} x the "
        f"sweep's time (measured on {len(countries)} storefronts, scaled)"
    )
    print(f"  peak memory (RSS)      {rss / 2**20:7.1f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.15, help="seconds to each answer (0.15)")
    parser.add_argument("--charts", type=int, default=175, help="storefronts, 1 to 175 (175)")
    parser.add_argument("--concurrency", type=int, default=8, help="requests in flight (8)")
    parser.add_argument("--everything", action="store_true", help="also all of the App Store")
    parser.add_argument(
        "--everything-latency", type=float, default=0.05, help="its seconds to each answer (0.05)"
    )
    parser.add_argument(
        "--everything-concurrency", type=int, default=32, help="its requests in flight (32)"
    )
    parser.add_argument(
        "--sample", type=int, default=2, help="storefronts its sequential baseline takes (2)"
    )
    args = parser.parse_args()
    if not 1 <= args.charts <= len(storefronts_175()):
        parser.error("--charts must be from 1 to 175")
    ideal = math.ceil(args.charts / args.concurrency) * args.latency
    with tempfile.TemporaryDirectory() as folder:
        with stand_in(args.latency) as url:
            concurrent = sweep_seconds(url, args.charts, args.concurrency, Path(folder))
            sequential = sweep_seconds(url, args.charts, 1, Path(folder))
        if args.everything:
            with stand_in(args.everything_latency) as url:
                everything(args, url, Path(folder))
    print(f"{args.charts} charts, {args.latency:g} s to each answer, {args.concurrency} in flight")
    print(f"  ideal                  {ideal:7.2f} s")
    print(f"  sweep                  {concurrent:7.2f} s   {concurrent / ideal:5.2f} x the ideal")
    print(
        f"  one at a time          {sequential:7.2f} s   "
        f"{sequential / concurrent:5.2f} x the sweep's time"
    )


if __name__ == "__main__":
    main()
