"""``monitor demo``: a database to try monitor on without network, marked as a demo.

It replays a weekend of the App Store's iPhone top-free chart in the 175 storefronts,
hour by hour, through monitor's own write path. One app climbs from nowhere to No. 1 in
50 storefronts, the top 10 in 110 and the top 100 in 150, shown under local names in
three; a rival loses No. 1 to it; the others shuffle; and three storefronts fail in the
last sweep, so that their answers are stale. It is a file of its own, marked by its
``demo`` table, and never written over a database that is not a demo.
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Callable
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlite_utils import Database

from monitor import schema, storage
from monitor.charts import ChartRequest, Entry, FetchResult, Listing
from monitor.errors import MonitorError, NotMonitorDatabase
from monitor.reference import storefronts_175
from monitor.sources.payload import utc_iso

DEFAULT_PATH = "data/demo.db"
MARK = "demo"
APP = ("6700000001", "Example AI - Assistant")
LOCAL_NAMES = {
    "jp": "エグザンプルAI - アシスタント",
    "kr": "예시 AI - 어시스턴트",
    "cn": "示例AI - 助手",
}
RIVAL = ("6700000002", "Example Chat")
START = datetime(2025, 1, 24, tzinfo=UTC)  # a Friday, 00:00 UTC
HOURS = 72
DEPTH = 100
PEAK_HOUR = 60  # by Sunday noon the app is where it ends
BANDS = (50, 110, 150)  # storefronts where it ends at No. 1, in the top 10, in the top 100
FAILING = ("ng", "pk", "vn")  # their last fetch fails
DESCRIPTION = (
    "DEMO DATA made by 'monitor demo': a replay of a weekend, not observations of any "
    "store. One app, Example AI - Assistant, climbs to No. 1 in 50 storefronts."
)


class NotADemo(MonitorError):
    """A file monitor demo will not write over."""


def is_demo(path: str | Path) -> bool:
    """Tell whether the file is a database monitor demo made."""
    if not Path(path).is_file():
        return False
    try:
        with closing(sqlite3.connect(schema.read_only_uri(path), uri=True)) as conn:
            found = conn.execute("SELECT 1 FROM sqlite_master WHERE name = ?", [MARK])
            return found.fetchone() is not None
    except (sqlite3.Error, NotMonitorDatabase):
        return False


def build(path: str | Path, progress: Callable[[int], None] = lambda hour: None) -> int:
    """Write the demo database at path, replacing a demo there; return its observations."""
    if Path(path).exists():
        if not is_demo(path):
            raise NotADemo(
                f"{path} exists and is not a demo database: monitor demo writes only"
                " a file of its own"
            )
        for suffix in ("", "-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = schema.open_db(path)
    try:
        db.table(MARK).insert({"description": DESCRIPTION})
        observed = 0
        for hour in range(HOURS):
            observed += _sweep(db, hour)
            progress(hour + 1)
        return observed
    finally:
        db.close()


def _sweep(db: Database, hour: int) -> int:
    """Store one hourly sweep of every storefront; return the charts observed."""
    at = START + timedelta(hours=hour)
    sweep = storage.begin_sweep(db, utc_iso(at))
    observed = 0
    for place, country in enumerate(_adoption_order()):
        fetched = utc_iso(at + timedelta(seconds=2 * place))
        req = ChartRequest("apple", "top-free", "iphone", None, country, DEPTH)
        if hour == HOURS - 1 and country in FAILING:
            failure = FetchResult(
                req,
                fetched,
                fetched,
                error="HTTP 503 (demo)",
                http_status=503,
                error_kind="http_status",
            )
            storage.record(db, sweep, failure)
            continue
        listing = Listing(_chart(country, place, hour), fetched)
        storage.record(db, sweep, FetchResult(req, fetched, fetched, listing, http_status=200))
        observed += 1
    end = storage.SweepEnd(
        utc_iso(at + timedelta(minutes=6)),
        "finished",
        None,
        observed,
        len(FAILING) if hour == HOURS - 1 else 0,
        observed * DEPTH,
    )
    storage.finish_sweep(db, sweep, end)
    return observed


def _adoption_order() -> list[str]:
    """The storefronts in the order the app reaches them: a fixed shuffle."""
    return sorted(storefronts_175(), key=lambda cc: hashlib.sha256(cc.encode()).digest())


def _final_rank(place: int) -> int | None:
    """Where the app ends in the storefront at this place of the adoption order."""
    number_one, top_10, top_100 = BANDS
    if place < number_one:
        return 1
    if place < top_10:
        return 2 + (place - number_one) * 9 // (top_10 - number_one)
    if place < top_100:
        return 11 + (place - top_10) * 90 // (top_100 - top_10)
    return None


def _rank(place: int, hour: int) -> int | None:
    """The app's rank at this hour: out of the chart until it enters, then climbing."""
    final = _final_rank(place)
    enters = 6 + place % 36
    if final is None or hour < enters:
        return None
    if hour >= PEAK_HOUR:
        return final
    climbed = (hour - enters) / (PEAK_HOUR - enters)
    return max(final, round(DEPTH - (DEPTH - final) * climbed))


def _chart(country: str, place: int, hour: int) -> list[Entry]:
    """The storefront's whole chart at this hour."""
    others = [(f"68{place:03d}{k:05d}", f"Demo App {k}") for k in range(DEPTH)]
    a, b = (hour * 7 + place) % (DEPTH - 1), (hour * 13 + place * 3) % (DEPTH - 1)
    others[a], others[b] = others[b], others[a]  # a little movement every hour
    apps = [RIVAL, *others]
    rank = _rank(place, hour)
    if rank is not None:
        apps.insert(rank - 1, (APP[0], LOCAL_NAMES.get(country, APP[1])))
    return [Entry(app_id, name, "Demo Developer") for app_id, name in apps[:DEPTH]]
