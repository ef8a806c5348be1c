"""Build chart histories directly through monitor's write path, at chosen times."""

from __future__ import annotations

from monitor import storage
from monitor.charts import ChartRequest, Entry, FetchResult, Listing


def observe(db, sweep: int, req: ChartRequest, at: str, apps: list[tuple[str, str]]) -> int:
    """Store one observation of req at time at; apps are (app_id, name) in rank order."""
    entries = [
        Entry(app_id, name, f"Dev of {app_id}", f"http://127.0.0.1/{app_id}.png")
        for app_id, name in apps
    ]
    result = FetchResult(req, at, at, Listing(entries, at), http_status=200)
    return storage.record(db, sweep, result)


def fail(db, sweep: int, req: ChartRequest, at: str) -> None:
    """Store a failed fetch of req at time at."""
    failure = FetchResult(req, at, at, error="HTTP 503", http_status=503, error_kind="http_status")
    storage.record(db, sweep, failure)


def finish(db, sweep: int, at: str) -> None:
    """Record sweep as finished at time at (its counts are not kept)."""
    storage.finish_sweep(db, sweep, storage.SweepEnd(at, "finished", None, 0, 0, 0))


def filler(count: int, prefix: str = "9") -> list[tuple[str, str]]:
    """Return count made-up apps to pad a chart."""
    return [(f"{prefix}{i:04d}", f"Filler {prefix}{i:04d}") for i in range(count)]


def ranked(app: tuple[str, str], rank: int, size: int = 30) -> list[tuple[str, str]]:
    """Return a chart of size apps with app at rank."""
    apps = filler(size - 1)
    return [*apps[: rank - 1], app, *apps[rank - 1 :]]


def app_sweep(db, at, app, ranks, thresholds=(1, 2, 3), failing=()):
    """One finished sweep at time at of the iPhone top-free charts: app at ranks[country]
    (0: a chart without it), the failing storefronts failed. Return its id."""
    sweep_id = storage.begin_sweep(db, at)
    for country, rank in ranks.items():
        observe(db, sweep_id, _chart(country), at, ranked(app, rank) if rank else filler(30))
    for country in failing:
        fail(db, sweep_id, _chart(country), at)
    end = storage.SweepEnd(at, "finished", None, len(ranks), len(failing), 0)
    storage.finish_sweep(db, sweep_id, end, thresholds)
    return sweep_id


def _chart(country):
    return ChartRequest("apple", "top-free", "iphone", None, country, 100)
