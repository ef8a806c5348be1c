"""Chart events: what changed for an app from one observation of a chart to the next, and
worldwide milestones, recorded with what caused them.

- A chart event compares an observation with the chart's previous successful one: a
  failed or missing fetch is no change, and the first observation of a chart has
  nothing to compare with. Ranks are compared down to the shallower of the two lists,
  so that a shorter list makes no app leave the chart.
- A milestone is the number of storefronts where an app is No. 1 (or in the top 10) in
  a chart crossing a threshold upward from the end of one sweep to the end of the next,
  counted as a claim counts at those instants (observed within the maximum age).

A chart event is written in the transaction of its observation, so that it is never
lost. A sweep's end marks its milestones due in the end's transaction; they are
recorded in one of their own, so that deriving them can never cost the sweep its
record, and where they cannot be (a full disk) the next sweep's end records them.
Unique indexes keep an event from being recorded twice. Events are stored by reference
in ``event_log`` (ids ascending in time, but for milestones recorded late) and read
through the ``events`` view.
"""

from __future__ import annotations

import logging
import sqlite3
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from sqlite_utils import Database

from monitor import queries
from monitor.writes import writing

log = logging.getLogger(__name__)

# (name, the lowest rank that holds it): entered_no1, left_top10...; "chart" is the list.
BANDS = (("no1", 1), ("top10", 10))
KINDS = tuple(
    f"{move}_{band}" for band, _ in (*BANDS, ("chart", 0)) for move in ("entered", "left")
)
MILESTONES = {"milestone_no1": "number_one", "milestone_top10": "top_10"}
THRESHOLDS = (1, 10, 25, 50, 100)

# An app where an observation placed it: its rank, and the ids of the app and its name.
Placed = tuple[int, int, int]


@dataclass(frozen=True)
class Change:
    """One app's move between two observations of a chart."""

    kind: str
    app_id: str
    rank_before: int | None
    rank_after: int | None


def changes(before: Mapping[str, int], after: Mapping[str, int], depth: int) -> list[Change]:
    """Compare the ranks (app id: rank) of two observations, each down to depth."""
    seen_before = {app: rank for app, rank in before.items() if rank <= depth}
    seen_after = {app: rank for app, rank in after.items() if rank <= depth}
    found = []
    for app in sorted(seen_before.keys() | seen_after.keys()):
        was, now = seen_before.get(app), seen_after.get(app)
        if was == now:  # most apps, most of the time
            continue
        for band, lowest in (*BANDS, ("chart", depth)):
            held_before = was is not None and was <= lowest
            held_after = now is not None and now <= lowest
            if held_before != held_after:
                found.append(Change(f"{'entered' if held_after else 'left'}_{band}", app, was, now))
    return found


@dataclass(frozen=True)
class Observed:
    """One observation of a chart: the apps it placed (app id: Placed), or those of them
    that moved."""

    snapshot_id: int
    size: int
    placed: Mapping[str, Placed]


def change_rows(
    chart_id: int, sweep_id: int, before: Observed, after: Observed
) -> list[dict[str, Any]]:
    """The event_log rows of the chart events between two observations of a chart."""
    ranks_before = {app: placed[0] for app, placed in before.placed.items()}
    ranks_after = {app: placed[0] for app, placed in after.placed.items()}
    return [
        {
            "kind": change.kind,
            "sweep_id": sweep_id,
            "chart_id": chart_id,
            "snapshot_before": before.snapshot_id,
            "snapshot_after": after.snapshot_id,
            "rank_before": change.rank_before,
            "rank_after": change.rank_after,
            # The app, under the name it was shown: after the move, or else before it.
            "app": (after.placed.get(change.app_id) or before.placed[change.app_id])[1],
            "label": (after.placed.get(change.app_id) or before.placed[change.app_id])[2],
        }
        for change in changes(ranks_before, ranks_after, min(before.size, after.size))
    ]


def record_changes(
    db: Database, chart_id: int, sweep_id: int, before: Observed, after: Observed
) -> None:
    """Record the chart events between two observations of a chart."""
    _insert(db, change_rows(chart_id, sweep_id, before, after))


def record_due_milestones(db: Database, thresholds: Sequence[int] = THRESHOLDS) -> None:
    """Record the milestones of every sweep whose end marked them due, oldest first, each
    sweep's in a transaction of its own. Where the database cannot take them (a full
    disk), they stay due, and the next sweep's end records them."""
    due = db.execute(
        "SELECT d.sweep_id, s.finished_at FROM milestones_due d "
        "JOIN sweeps s ON s.id = d.sweep_id ORDER BY d.sweep_id"
    ).fetchall()
    for sweep_id, finished_at in due:
        try:
            with writing(db):
                record_milestones(db, sweep_id, finished_at, thresholds)
                db.execute("DELETE FROM milestones_due WHERE sweep_id = ?", [sweep_id])
        except sqlite3.Error as error:
            log.warning(
                "milestones of sweep %d not recorded yet (%s): the next sweep's end records them",
                sweep_id,
                error,
            )
            return


def record_milestones(
    db: Database, sweep_id: int, at: str, thresholds: Sequence[int] = THRESHOLDS
) -> None:
    """Record the milestones of the sweep that ended at ``at``: the counts of storefronts
    crossed upward since the end of the sweep before it."""
    previous = db.execute(
        "SELECT id, finished_at FROM sweeps WHERE finished_at IS NOT NULL AND id < ? "
        "ORDER BY id DESC LIMIT 1",
        [sweep_id],
    ).fetchone()
    if previous is not None:  # else nothing to cross from
        before, after = _counts(db, *previous), _counts(db, sweep_id, at)
        _insert(db, list(_crossings(before, after, thresholds)))


_KEY = ("store", "chart", "device", "genre", "app")


def _counts(db: Database, sweep_id: int, at: str) -> dict[tuple[Any, ...], dict[str, Any]]:
    """Per chart kind and app: its storefronts at No. 1 and in the top 10 at ``at``, the
    end of the sweep."""
    counted = db.query(queries.with_max_age(queries.BAND_COUNTS), {"at": at, "sweep": sweep_id})
    return {tuple(row[k] for k in _KEY): {**row, "sweep_id": sweep_id, "at": at} for row in counted}


def _crossings(
    before: Mapping[tuple[Any, ...], Mapping[str, Any]],
    after: Mapping[tuple[Any, ...], Mapping[str, Any]],
    thresholds: Sequence[int],
) -> Iterator[dict[str, Any]]:
    for key, now in after.items():
        for kind, column in MILESTONES.items():
            was = before.get(key, {}).get(column, 0)
            for threshold in thresholds:
                if was < threshold <= now[column]:
                    yield {
                        "kind": kind,
                        "sweep_id": now["sweep_id"],
                        "at": now["at"],
                        **dict(zip(_KEY, key, strict=True)),
                        "label": now["label"],
                        "threshold": threshold,
                        "countries": now[column],
                        "countries_before": was,
                    }


COLUMNS = (
    "kind", "sweep_id", "app", "label", "chart_id", "snapshot_before", "snapshot_after",
    "rank_before", "rank_after", "at", "store", "chart", "device", "genre", "threshold",
    "countries", "countries_before",
)  # fmt: skip
_INSERT = (
    f"INSERT OR IGNORE INTO event_log ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in COLUMNS)})"
)


def _insert(db: Database, rows: list[dict[str, Any]]) -> None:
    """Record rows in event_log; one already there (the same cause) is left as it was."""
    if rows:
        db.conn.executemany(_INSERT, [tuple(row.get(c) for c in COLUMNS) for row in rows])


def derive_history(db: Database, thresholds: Sequence[int] = THRESHOLDS) -> None:
    """Record the events of the history already stored, as if each had been recorded
    when it happened: in the order of their time, as the ids of live ones are."""
    db.execute("CREATE TEMP TABLE derived AS SELECT *, NULL AS at_order FROM event_log LIMIT 0")
    for chart in db.execute("SELECT id FROM charts ORDER BY id").fetchall():
        _derive(db, _chart_rows(db, chart[0]))
    counts: dict[tuple[Any, ...], dict[str, Any]] | None = None
    for sweep_id, finished_at in db.execute(
        "SELECT id, finished_at FROM sweeps WHERE finished_at IS NOT NULL ORDER BY id"
    ).fetchall():
        now = _counts(db, sweep_id, finished_at)
        if counts is not None:
            _derive(
                db, [{**row, "at_order": row["at"]} for row in _crossings(counts, now, thresholds)]
            )
        counts = now
    columns = ", ".join(COLUMNS)
    db.execute(
        f"INSERT OR IGNORE INTO event_log ({columns}) SELECT {columns} FROM derived "
        "ORDER BY at_order, threshold IS NOT NULL, snapshot_after, sweep_id, rowid"
    )
    db.execute("DROP TABLE derived")


def _derive(db: Database, rows: list[dict[str, Any]]) -> None:
    """Keep derived rows aside, each with the time it happened (at_order), to be ordered."""
    if rows:
        db.table("derived").insert_all(rows)


def _chart_rows(db: Database, chart_id: int) -> list[dict[str, Any]]:
    """Replay one chart's observations where its runs start or end."""
    snapshots = db.execute(
        "SELECT id, size, sweep_id, fetched_at FROM snapshots WHERE chart_id = ? ORDER BY id",
        [chart_id],
    ).fetchall()
    starts: dict[int, dict[str, Placed]] = defaultdict(dict)
    ends: dict[int, dict[str, Placed]] = defaultdict(dict)
    for first, last, rank, app_id, app, label in db.execute(_RUNS, [chart_id]).fetchall():
        starts[first][app_id] = ends[last][app_id] = (rank, app, label)
    rows = []
    for (before_id, before_size, *_), (after_id, after_size, sweep_id, at) in pairwise(snapshots):
        # An app whose run goes on through both observations held its rank.
        left, came = ends.get(before_id, {}), starts.get(after_id, {})
        if left or came:
            before, after = (
                Observed(before_id, before_size, left),
                Observed(after_id, after_size, came),
            )
            rows += [
                {**row, "at_order": at} for row in change_rows(chart_id, sweep_id, before, after)
            ]
    return rows


_RUNS = """SELECT r.first_snapshot, r.last_snapshot, r.rank, a.app_id, r.app, r.label
FROM runs r JOIN apps a ON a.id = r.app WHERE r.chart_id = ?"""


@dataclass(frozen=True)
class Wanted:
    """Which events to list: all, or those of one app, storefront, kind, since a time."""

    store: str | None = None
    app_id: str | None = None
    country: str | None = None
    kinds: tuple[str, ...] = ()
    since: str | None = None
    limit: int = 100


def listed(db: Database, wanted: Wanted) -> list[dict[str, Any]]:
    """Return the latest ``wanted.limit`` events that match, oldest first."""
    where, params = ["1"], []
    for column, value in (("store", wanted.store), ("app_id", wanted.app_id)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if wanted.country is not None:
        where.append("country = ?")
        params.append(wanted.country.lower())
    if wanted.kinds:
        where.append(f"kind IN ({', '.join('?' for _ in wanted.kinds)})")
        params += wanted.kinds
    if wanted.since is not None:
        where.append("at >= ?")
        params.append(wanted.since)
    return list(
        db.query(
            f"SELECT * FROM (SELECT * FROM events WHERE {' AND '.join(where)} "
            "ORDER BY id DESC LIMIT ?) ORDER BY id",
            [*params, wanted.limit],
        )
    )


def describe(event: Mapping[str, Any]) -> str:
    """One event as a line for people (names as the store gave them: print them escaped)."""
    where = " ".join(
        str(event[k]) for k in ("store", "chart", "device", "genre", "country") if event[k]
    )
    app = f"{event['app_name']} ({event['app_id']})"
    if event["threshold"] is not None:
        band = "No. 1" if event["kind"] == "milestone_no1" else "in the top 10"
        countries = event["countries"]
        what = (
            f"{band} in {countries} storefront{'' if countries == 1 else 's'} "
            f"(from {event['countries_before']}; threshold {event['threshold']})"
        )
    else:
        ranks = [
            str(r) if r is not None else "-" for r in (event["rank_before"], event["rank_after"])
        ]
        what = f"{event['kind']} {' -> '.join(ranks)}"
    return f"{event['at']}  {where}  {app}: {what}"
