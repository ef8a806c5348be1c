"""A two-phase history for one app, with a rename, a failing storefront and a stale one."""

from __future__ import annotations

from pathlib import Path

from helpers import chart
from history import fail, filler, observe, ranked
from monitor import schema, storage

T0 = "2025-01-26T08:00:00Z"
T1 = "2025-01-26T09:00:00Z"
T2 = "2025-01-27T09:00:00Z"
APP_ID = "6737597349"
OLD_NAME = "DeepSeek - AI Assistant"
NEW_NAME = "DeepSeek"
OTHER = ("1111111111", "DeepSeek Helper <b>&</b>")


def build(path: Path) -> Path:
    """Write the scenario into a new database at path."""
    db = schema.open_db(path)
    old, new = (APP_ID, OLD_NAME), (APP_ID, NEW_NAME)
    sweep = storage.begin_sweep(db, T0)
    observe(db, sweep, chart("us"), T0, ranked(old, 1))
    observe(db, sweep, chart("gb"), T0, ranked(old, 1))
    observe(db, sweep, chart("jp"), T0, ranked(old, 5))
    observe(db, sweep, chart("fr"), T0, filler(30))
    fail(db, sweep, chart("de"), T0)
    observe(db, sweep, chart("ca"), T0, ranked(old, 1))
    sweep = storage.begin_sweep(db, T1)
    observe(db, sweep, chart("us"), T1, ranked(new, 1))
    observe(db, sweep, chart("gb"), T1, ranked(old, 1))
    observe(db, sweep, chart("jp"), T1, ranked(old, 5))
    observe(db, sweep, chart("fr"), T1, filler(30))
    fail(db, sweep, chart("de"), T1)
    sweep = storage.begin_sweep(db, T2)
    observe(db, sweep, chart("us"), T2, ranked(new, 1))
    observe(db, sweep, chart("gb"), T2, ranked(new, 20))
    observe(db, sweep, chart("jp"), T2, ranked(new, 1))
    observe(db, sweep, chart("fr"), T2, ranked(new, 8))
    observe(db, sweep, chart("de"), T2, ranked(new, 1))
    observe(db, sweep, chart("us", device="ipad"), T2, ranked(new, 2))
    observe(db, sweep, chart("us", chart="top-paid"), T2, ranked(OTHER, 1))
    db.close()
    return path
