"""Export the history as Parquet files that DuckDB, Spark or Trino read where they lie.

The layout under the export's folder, partitioned the Hive way (``key=value`` folders)
by store, chart and month (of ``fetched_at``, or of a fetch's ``started_at``):

    observations/store=apple/chart=top-free/month=2026-01/part-<first>-<last>.parquet
    rankings/store=apple/chart=top-free/month=2026-01/part-<first>-<last>.parquet
    fetches/store=apple/chart=top-free/month=2026-01/part-<first>-<last>.parquet
    fetches/store=apple/chart=top-free/month=2026-01/ok-<first>-<last>.parquet
    charts/part-<first>-<last>.parquet   one row per chart kind and storefront
    apps/part-<first>-<last>.parquet     one row per app
    names/part-<first>-<last>.parquet    one row per name and developer as shown
    storefronts.parquet                  the storefronts' codes and names
    _export.json                         the last id of each table written

An observation is one successful fetch of one chart; a ranking, one rank in it, as in
the ``rankings`` view; a fetch, one attempt, ok or not, as in the ``fetches`` view.
Stored history only grows, so each export writes the rows whose ids are past those of
the export before, in parts named by the ids they hold: an export with nothing new
writes nothing. A successful fetch is recorded by its snapshot, so its part is named by
snapshot ids (``ok-``); a failed one's, by attempt ids (``part-``). Parts are written
under a temporary name and renamed when whole, and ``_export.json`` is replaced last;
the parts of an export cut short, past what it records, are removed by the next.

The whole export reads one moment of the database, while a service goes on writing.
Writing needs pyarrow: ``pip install 'monitor[parquet]'``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar

from monitor import schema
from monitor.errors import MonitorError
from monitor.locks import exclusive
from monitor.queries import records_its_fetch

STATE = "_export.json"
# Rows read from SQLite at a time, and the most that wait in memory for their files.
ROWS = 250_000
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

# Each partitioned table: its columns, as Arrow types by name (see _table).
OBSERVATION_COLUMNS = {
    "snapshot_id": "int64",
    "country": "string",
    "device": "string",
    "genre": "string",
    "fetched_at": "time",
    "feed_updated": "string",
    "depth": "int16",
    "size": "int16",
    "sweep_id": "int64",
}
RANKING_COLUMNS = {
    "snapshot_id": "int64",
    "country": "string",
    "device": "string",
    "genre": "string",
    "fetched_at": "time",
    "rank": "int16",
    "app_id": "string",
    "name_id": "int64",
}
FETCH_COLUMNS = {
    "id": "int64",
    "country": "string",
    "device": "string",
    "genre": "string",
    "started_at": "time",
    "status": "string",
    "http_status": "int16",
    "error": "string",
    "error_kind": "string",
    "snapshot_id": "int64",
    "sweep_id": "int64",
}
# The database table whose ids a partitioned table's parts are named by, by the table
# and the parts' prefix; a dimension's parts are named by its own ids.
PART_IDS = {
    ("observations", "part"): "snapshots",
    ("rankings", "part"): "snapshots",
    ("fetches", "ok"): "snapshots",
    ("fetches", "part"): "attempts",
}
# Each table exported whole, by id: the query of the rows past an id, and their columns.
DIMENSIONS = {
    "charts": (
        "SELECT id, store, chart, device, genre, country FROM charts WHERE id > ? ORDER BY id",
        {"id": "int64", "store": "string", "chart": "string", "device": "string"}
        | {"genre": "string", "country": "string"},
    ),
    "apps": (
        "SELECT id, store, app_id FROM apps WHERE id > ? ORDER BY id",
        {"id": "int64", "store": "string", "app_id": "string"},
    ),
    "names": (
        "SELECT id, name, NULLIF(developer, '') FROM labels WHERE id > ? ORDER BY id",
        {"id": "int64", "name": "string", "developer": "string"},
    ),
}


class ExportError(MonitorError):
    """An export that cannot be made: no pyarrow, or a folder in use or not an export."""


@dataclass
class Exported:
    """What one export wrote: rows by table, and the parts (files) added."""

    rows: dict[str, int] = field(default_factory=dict)
    files: int = 0

    def describe(self) -> str:
        """Say what was written, in a line."""
        if not self.files:
            return "nothing new to export"
        counts = ", ".join(f"{n:,} {table}" for table, n in self.rows.items() if n)
        return f"wrote {counts} in {self.files} file{'s' if self.files > 1 else ''}"


def export_parquet(
    db_path: str | Path,
    folder: str | Path,
    progress: Callable[[int, int], None] = lambda done, total: None,
) -> Exported:
    """Write what the database holds beyond the folder's last export, as Parquet parts.

    ``progress`` hears of each chart done, and of how many there are.
    """
    pa = _pyarrow()
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    _read_state(root)  # refuses a folder that is not an export before leaving a lock in it
    busy = f"{root} is being exported to by another process"
    with exclusive(root / "_export.lock", lambda pid: ExportError(f"{busy} (pid {pid})")):
        done = _read_state(root)
        _remove_unfinished(root, done)
        with closing(sqlite3.connect(schema.read_only_uri(db_path), uri=True)) as conn:
            conn.execute("BEGIN")  # one moment of the database, for every table
            exported, state = _export_all(pa, conn, root, done, progress)
            conn.rollback()
        _write_state(root, state)
    return exported


def _export_all(
    pa: Any,
    conn: sqlite3.Connection,
    root: Path,
    done: dict[str, int],
    progress: Callable[[int, int], None],
) -> tuple[Exported, dict[str, int]]:
    exported, state = Exported(), dict(done)
    if not (root / "storefronts.parquet").exists():
        cursor = conn.execute("SELECT * FROM storefronts ORDER BY code")
        names = [column[0] for column in cursor.description]
        table = pa.Table.from_pylist([dict(zip(names, row, strict=True)) for row in cursor])
        with _Part(pa, root, "storefronts.parquet") as part:
            part.write(table)
        exported.files += 1
    for name, (sql, columns) in DIMENSIONS.items():
        written = _export_dimension(pa, conn, root / name, sql, columns, done.get(name, 0))
        if written:
            exported.rows[name], state[name] = written
            exported.files += 1
    fills: dict[str, Callable[[sqlite3.Connection, Partitions, int, int], None]] = {
        "snapshots": partial(_export_observations, progress=progress),
        "attempts": _export_fetches,
    }
    for table, fill in fills.items():
        first = done.get(table, 0)
        last = conn.execute(f"SELECT coalesce(MAX(id), 0) FROM {table}").fetchone()[0]
        if last > first:
            part_names = {
                t: _part_name(first + 1, last, kind)
                for (t, kind), source in PART_IDS.items()
                if source == table
            }
            with Partitions(pa, root, part_names) as parts:
                fill(conn, parts, first, last)
            for name, rows in parts.rows.items():
                exported.rows[name] = exported.rows.get(name, 0) + rows
            exported.files += parts.files
            state[table] = last
    return exported, state


def _export_observations(
    conn: sqlite3.Connection,
    parts: Partitions,
    first: int,
    last: int,
    progress: Callable[[int, int], None],
) -> None:
    """Add every observation in (first, last], its rankings and its fetch, chart by chart."""
    for chart in _charts_observed(conn, first, progress):
        _export_chart(conn, parts, chart, first, last)


def _export_fetches(conn: sqlite3.Connection, parts: Partitions, first: int, last: int) -> None:
    """Add every attempt in (first, last] (a failure; or, stored before successful fetches
    were recorded by their snapshots, a success) as the fetches view has it."""
    rows = conn.execute(
        """SELECT c.store, c.chart, t.id, c.country, c.device, c.genre, t.started_at, t.status,
             t.http_status, t.error, t.error_kind, t.snapshot_id, t.sweep_id
           FROM attempts t JOIN charts c ON c.id = t.chart_id
           WHERE t.id > ? AND t.id <= ? ORDER BY t.id""",
        [first, last],
    )
    while batch := rows.fetchmany(ROWS):
        for store, chart, *fetch in batch:
            parts.add("fetches", (store, chart, fetch[4][:7]), [tuple(fetch)])


def _export_dimension(
    pa: Any, conn: sqlite3.Connection, folder: Path, sql: str, columns: dict[str, str], after: int
) -> tuple[int, int] | None:
    """Write a table's rows past the id ``after`` as one part, a row group at a time;
    return how many and the last id, or None where there are none."""
    rows = conn.execute(sql, [after])
    batch = rows.fetchmany(ROWS)
    if not batch:
        return None
    first, count = batch[0][0], 0
    with _Part(pa, folder) as part:
        while batch:
            part.write(_table(pa, columns, list(zip(*batch, strict=True))))
            count, last = count + len(batch), batch[-1][0]
            batch = rows.fetchmany(ROWS)
        part.name = _part_name(first, last)
    return count, last


class _Part:
    """One Parquet file written a row group at a time under a temporary name, and
    renamed to ``name`` when whole; removed if anything fails first."""

    def __init__(self, pa: Any, folder: Path, name: str = "") -> None:
        self.pa, self.folder, self.name = pa, folder, name
        self.temporary = _temporary(folder / (name or "writing.parquet"))
        self.writer: Any = None

    def write(self, table: Any) -> None:
        if self.writer is None:
            self.writer = self.pa.parquet.ParquetWriter(self.temporary, table.schema)
        self.writer.write_table(table)

    def finish(self, keep: bool) -> None:
        """Close the file, and rename it into place (keep) or remove it."""
        if self.writer is None:
            return
        self.writer.close()
        if keep:
            self.temporary.rename(self.folder / self.name)
        else:
            self.temporary.unlink(missing_ok=True)

    def __enter__(self) -> _Part:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        self.finish(keep=kind is None)


@dataclass(frozen=True)
class Chart:
    """A chart of one storefront, as the export needs it."""

    id: int
    store: str
    chart: str
    device: str | None
    genre: str | None
    country: str


def _charts_observed(
    conn: sqlite3.Connection, after: int, progress: Callable[[int, int], None]
) -> Iterator[Chart]:
    """The charts with observations past the snapshot id ``after``."""
    rows = conn.execute(
        """SELECT c.id, c.store, c.chart, c.device, c.genre, c.country FROM charts c
           WHERE c.id IN (SELECT DISTINCT chart_id FROM snapshots WHERE id > ?) ORDER BY c.id""",
        [after],
    ).fetchall()
    for done, row in enumerate(rows):
        progress(done, len(rows))
        yield Chart(*row)
    progress(len(rows), len(rows))


def _export_chart(
    conn: sqlite3.Connection, parts: Partitions, chart: Chart, first: int, last: int
) -> None:
    """Add a chart's observations in (first, last], their rankings and their fetches to
    the parts."""
    observations = conn.execute(
        f"""SELECT id, fetched_at, feed_updated, depth, size, sweep_id, http_status, started_at,
             {records_its_fetch("snapshots")} FROM snapshots
           WHERE chart_id = ? AND id > ? AND id <= ? ORDER BY id""",
        [chart.id, first, last],
    ).fetchall()
    # The runs that hold a rank in any of those observations, by their first.
    runs = conn.execute(
        """SELECT r.first_snapshot, r.last_snapshot, r.rank, a.app_id, r.label FROM runs r
           JOIN apps a ON a.id = r.app
           WHERE r.chart_id = ? AND r.last_snapshot > ? AND r.first_snapshot <= ?
           ORDER BY r.first_snapshot""",
        [chart.id, first, last],
    ).fetchall()
    held: dict[int, tuple[int, int, int, str, int]] = {}  # rank: the latest run begun
    begun = 0
    where = (chart.country, chart.device, chart.genre)
    for (
        snapshot_id,
        fetched_at,
        feed_updated,
        depth,
        size,
        sweep_id,
        status,
        started_at,
        its_fetch,
    ) in observations:
        while begun < len(runs) and runs[begun][0] <= snapshot_id:
            held[runs[begun][2]] = runs[begun]
            begun += 1
        key = (chart.store, chart.chart, fetched_at[:7])
        parts.add(
            "observations",
            key,
            [(snapshot_id, *where, fetched_at, feed_updated, depth, size, sweep_id)],
        )
        ranking = []
        for rank in range(1, size + 1):
            run = held.get(rank)
            if run is None or run[1] < snapshot_id:
                raise ExportError(f"observation {snapshot_id} has no app at rank {rank}")
            ranking.append((snapshot_id, *where, fetched_at, rank, run[3], run[4]))
        parts.add("rankings", key, ranking)
        if its_fetch:  # else its fetch is an attempt of its own
            fetch = (None, *where, started_at, "ok", status, None, None, snapshot_id, sweep_id)
            parts.add("fetches", (chart.store, chart.chart, started_at[:7]), [fetch])


class Partitions:
    """The files one export adds to the partitioned tables: one per table and partition
    (store, chart, month), named by ``names`` (by table). Rows wait in memory, ROWS at
    most in all, and then go to their files as row groups."""

    COLUMNS: ClassVar = {
        "observations": OBSERVATION_COLUMNS,
        "rankings": RANKING_COLUMNS,
        "fetches": FETCH_COLUMNS,
    }

    def __init__(self, pa: Any, root: Path, names: dict[str, str]) -> None:
        self.pa, self.root, self.names = pa, root, names
        self.waiting: dict[tuple[str, tuple[str, str, str]], list[tuple[Any, ...]]] = {}
        self.parts: dict[tuple[str, tuple[str, str, str]], _Part] = {}
        self.rows: dict[str, int] = {}
        self.held = 0

    @property
    def files(self) -> int:
        """The number of files written."""
        return len(self.parts)

    def add(self, table: str, key: tuple[str, str, str], rows: list[tuple[Any, ...]]) -> None:
        """Add rows to a table's partition, key being its store, chart and month."""
        self.waiting.setdefault((table, key), []).extend(rows)
        self.rows[table] = self.rows.get(table, 0) + len(rows)
        self.held += len(rows)
        if self.held >= ROWS:
            self._flush()

    def _flush(self) -> None:
        for (table, key), rows in self.waiting.items():
            part = self.parts.get((table, key))
            if part is None:
                store, chart, month = key
                folder = self.root / table / f"store={store}" / f"chart={chart}" / f"month={month}"
                part = self.parts[(table, key)] = _Part(self.pa, folder, self.names[table])
            part.write(_table(self.pa, self.COLUMNS[table], list(zip(*rows, strict=True))))
        self.waiting.clear()
        self.held = 0

    def __enter__(self) -> Partitions:
        return self

    def __exit__(self, kind: type[BaseException] | None, *exc: object) -> None:
        if kind is None:
            self._flush()
        for part in self.parts.values():
            part.finish(keep=kind is None)


def _table(pa: Any, columns: dict[str, str], values: list[tuple[Any, ...]]) -> Any:
    """An Arrow table of the columns' values, with times parsed as UTC timestamps."""
    arrays = []
    for kind, column in zip(columns.values(), values, strict=True):
        if kind == "time":
            text = pa.array(column, pa.string())
            parsed = pa.compute.strptime(text, format=TIME_FORMAT, unit="s")
            arrays.append(parsed.cast(pa.timestamp("s", tz="UTC")))
        else:
            arrays.append(pa.array(column, getattr(pa, kind)()))
    return pa.Table.from_arrays(arrays, names=list(columns))


def _part_name(first: int, last: int, kind: str = "part") -> str:
    """A part's file name: its kind and the first and last ids it holds, padded to sort
    in order."""
    return f"{kind}-{first:012d}-{last:012d}.parquet"


def _temporary(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(path.name + ".tmp")


def _read_state(root: Path) -> dict[str, int]:
    path = root / STATE
    if not path.exists():
        if any(p.name != "_export.lock" for p in root.iterdir()):
            raise ExportError(f"{root} is not empty and holds no {STATE}: not an export folder")
        return {}
    try:
        state = json.loads(path.read_text())
        return {str(name): int(last) for name, last in state["last_ids"].items()}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise ExportError(f"{path} cannot be read ({error}); export to a new folder") from None


def _write_state(root: Path, state: dict[str, int]) -> None:
    path = root / STATE
    text = json.dumps({"format": 1, "last_ids": state}, indent=2) + "\n"
    _temporary(path).write_text(text)
    _temporary(path).rename(path)


def _remove_unfinished(root: Path, done: dict[str, int]) -> None:
    """Remove what an export cut short left: temporary files, and parts past the state."""
    for path in root.rglob("*.tmp"):
        path.unlink()
    for path in [*root.rglob("part-*.parquet"), *root.rglob("ok-*.parquet")]:
        table = path.relative_to(root).parts[0]
        kind, first = path.name.split("-")[:2]
        if int(first) > done.get(PART_IDS.get((table, kind), table), 0):
            path.unlink()


def _pyarrow() -> Any:
    """Import pyarrow and its Parquet and compute modules, or say how to install them."""
    try:
        import pyarrow as pa
        import pyarrow.compute
        import pyarrow.parquet  # for pa.parquet
    except ImportError:
        raise ExportError(
            "exporting Parquet needs pyarrow: pip install 'monitor[parquet]'"
        ) from None
    return pa
