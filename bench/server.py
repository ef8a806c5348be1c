"""Load-test ``monitor serve --public``: ordinary readers, alone and beside hostile clients.

Serves a database (a month of data: ``python bench/storage.py --dir DIR`` keeps one as
DIR/project.db) in public mode, then in public mode with SQL allowed. In each mode,
readers fetch the ordinary pages in a loop, first alone (the baseline), then while
hostile clients send runaway SQL and the costliest pages, and then while they send the
same and hang up on each after HANG_UP seconds. Reports the readers' p50, p95 and p99,
the ratio of p95 under attack to p95 alone, what the hostile requests got and how fast,
and the server's peak resident memory.

    python bench/server.py --db /tmp/month/project.db
    python bench/server.py --db /tmp/month/project.db --seconds 10 --hostile 6
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

import httpx

HOSTILE_SQL = [
    "select randomblob(999999999)",
    "select length(randomblob(900000000))",
    "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c",
    "select instr(printf('%.*c', 1000000, 'a'), printf('%.*c', 500000, 'a') || 'b')",
    "with recursive c(x) as (select 1 union all select x + 1 from c limit 1000) "
    "select zeroblob(1000000), zeroblob(1000000) from c",
    "select count(*) from runs a, runs b",
    "select * from runs order by random() limit 1",
]
HOSTILE_PAGES = [
    "/{db}/rankings?app_name__contains=zzz",
    "/{db}/rankings?_sort=app_name",
    "/{db}/rankings?_facet=app_name&_facet=country",
    "/{db}/rankings.json?_next=5000000",
    "/{db}/raw_responses.json",
    "/{db}.db",
    "/{db}/rankings.json?_nocount=&_size=1",
    "/{db}/rankings.atom",
    "/{db}/movers",
]
HANG_UP = 0.1  # seconds a client that hangs up waits for its answer


def ordinary_pages(db: Path) -> list[str]:
    """The pages a reader opens: the index, the views, a claim, a chart, a filter."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        (app_id,) = conn.execute(
            "SELECT a.app_id FROM runs r JOIN apps a ON a.id = r.app WHERE r.rank = 1 LIMIT 1"
        ).fetchone()
    pages = [
        "/",
        "/{db}",
        "/{db}/rankings?country=us&_size=20",
        "/{db}/rankings.json?country=zz",
        f"/{{db}}/claim?app={app_id}",
        "/{db}/top_chart?country=us&chart=top-free&device=iphone",
        "/{db}/fetches?country=gb",
    ]
    return [page.format(db=db.stem) for page in pages]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(db: Path, port: int, public_sql: bool) -> subprocess.Popen[bytes]:
    args = ["serve", "--db", str(db), "--port", str(port), "--public"]
    server = subprocess.Popen(
        [sys.executable, "-m", "monitor", *args, *(["--public-sql"] if public_sql else [])],
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/-/health", timeout=5)
            return server
        except httpx.TransportError:
            time.sleep(0.2)
    server.kill()
    raise SystemExit("the server did not start")


def peak_rss_mb(pid: int) -> float:
    """Return the process's peak resident memory so far (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def reader(client: httpx.AsyncClient, pages: list[str], until: float, times: list[float]):
    while time.monotonic() < until:
        for page in pages:
            started = time.monotonic()
            response = await client.get(page)
            if response.status_code != 200:
                raise SystemExit(f"an ordinary page failed: {page}: {response.status_code}")
            times.append((time.monotonic() - started) * 1000)


async def hostile(
    client: httpx.AsyncClient,
    db: str,
    offset: int,
    until: float,
    seen: Counter[str],
    hang_up: bool,
):
    requests = [(f"/{db}.json", {"sql": sql}) for sql in HOSTILE_SQL]
    requests += [(page.format(db=db), None) for page in HOSTILE_PAGES]
    turn = offset
    while time.monotonic() < until:
        path, params = requests[turn % len(requests)]
        turn += 1
        started = time.monotonic()
        try:
            async with asyncio.timeout(HANG_UP if hang_up else None):
                status = str((await client.get(path, params=params)).status_code)
        except TimeoutError:
            status = "hung up"
        except httpx.TimeoutException:
            status = "timeout"
        seen[f"{status} in {'<1s' if time.monotonic() - started < 1 else '>=1s'}"] += 1


async def phase(
    port: int,
    db: str,
    pages: list[str],
    readers: int,
    attackers: int,
    seconds: float,
    hang_up: bool,
):
    times: list[float] = []
    seen: Counter[str] = Counter()
    until = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=readers + attackers + 2)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=60, limits=limits
    ) as client:
        await asyncio.gather(
            *(reader(client, pages, until, times) for _ in range(readers)),
            *(hostile(client, db, i * 3, until, seen, hang_up) for i in range(attackers)),
        )
    return times, seen


def percentiles(times: list[float]) -> tuple[float, float, float]:
    cuts = statistics.quantiles(times, n=100)
    return cuts[49], cuts[94], cuts[98]


def measure(db: Path, public_sql: bool, args: argparse.Namespace) -> None:
    port = free_port()
    server = start_server(db, port, public_sql)
    pages = ordinary_pages(db)
    try:
        mode = "public, SQL allowed" if public_sql else "public"
        print(f"\n{mode}: {args.readers} readers, {args.seconds:g}s a phase", flush=True)
        idle, _ = asyncio.run(phase(port, db.stem, pages, args.readers, 0, args.seconds, False))
        print(f"  alone     {report(idle)}", flush=True)
        for hang_up in (False, True):
            busy, seen = asyncio.run(
                phase(port, db.stem, pages, args.readers, args.hostile, args.seconds, hang_up)
            )
            how = f"hanging up after {HANG_UP:g}s" if hang_up else "waiting for answers"
            print(f"  +{args.hostile} hostile, {how}: {report(busy)}")
            ratio = percentiles(busy)[1] / percentiles(idle)[1]
            print(f"    p95 under attack / alone: {ratio:.2f}")
            print(f"    hostile requests: {dict(sorted(seen.items()))}", flush=True)
        print(f"  server peak memory: {peak_rss_mb(server.pid):,.0f} MB")
    finally:
        server.terminate()
        server.wait(timeout=30)


def report(times: list[float]) -> str:
    p50, p95, p99 = percentiles(times)
    return f"{len(times):5} pages  p50 {p50:7.1f} ms  p95 {p95:7.1f} ms  p99 {p99:7.1f} ms"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", type=Path, required=True, help="the database to serve")
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase (20)")
    parser.add_argument("--readers", type=int, default=4, help="ordinary readers (4)")
    parser.add_argument("--hostile", type=int, default=6, help="hostile clients (6)")
    args = parser.parse_args()
    if not args.db.is_file():
        parser.error(f"no database at {args.db}; bench/storage.py --dir DIR makes one")
    for public_sql in (False, True):
        measure(args.db, public_sql, args)


if __name__ == "__main__":
    main()
