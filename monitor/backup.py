"""monitor backup: a consistent copy of a live database, as one self-contained file."""

from __future__ import annotations

import os
import secrets
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from sqlite_utils import Database

from monitor import schema
from monitor.errors import MonitorError

# Pages copied per step of the online backup: a megabyte at SQLite's default page size,
# so that progress moves on a large file and each step stays short.
STEP_PAGES = 256

Progress = Callable[[int, int], None]


class BackupError(MonitorError):
    """A backup that cannot be made as asked, or whose copy came out unsound."""


@dataclass(frozen=True)
class Backup:
    """What a finished backup wrote."""

    dest: str
    size_bytes: int
    snapshots: int
    seconds: float


def back_up(
    db_path: str | Path,
    dest: str | Path,
    *,
    force: bool = False,
    progress: Progress | None = None,
    step_pages: int = STEP_PAGES,
) -> Backup:
    """Copy the database to dest as it stands now, while a service may be writing it.

    progress, if given, is called after each step with the pages copied and the total.
    Raise BackupError if dest exists (unless force) or is the database itself, and
    NotMonitorDatabase if the file is not monitor's.
    """
    started = time.monotonic()
    dest = Path(dest)
    _check_paths(Path(db_path), dest, force)
    with closing(_open_source(db_path)) as source:
        partial = _partial_beside(dest)
        try:
            with closing(sqlite3.connect(partial)) as copy:
                _copy(source.conn, copy, step_pages, progress or (lambda copied, total: None))
                snapshots = _seal(copy, dest)
            _sync(partial)
            # Only a whole, checked copy ever carries dest's name.
            os.replace(partial, dest)
        except (sqlite3.Error, OSError) as error:
            _remove(partial)
            raise BackupError(f"could not back up to {dest}: {error}") from None
        except BaseException:
            _remove(partial)
            raise
    _sync(dest.parent)
    return Backup(str(dest), dest.stat().st_size, snapshots, time.monotonic() - started)


def _check_paths(db_path: Path, dest: Path, force: bool) -> None:
    """Refuse a missing database, a dest that is the database, or one in the way."""
    if not db_path.is_file():
        raise BackupError(f"no database at {db_path}")
    same = os.path.realpath(dest) == os.path.realpath(db_path) or (
        dest.exists() and os.path.samefile(dest, db_path)
    )
    if same:
        raise BackupError(f"{dest} is the database itself; back it up to another file")
    if dest.is_dir():
        raise BackupError(f"{dest} is a directory; name the file to write")
    if os.path.lexists(dest) and not force:
        raise BackupError(f"{dest} already exists; --force replaces it")


def _open_source(db_path: str | Path) -> Database:
    """Open the database to read it, saying plainly why it cannot be."""
    try:
        return schema.open_for_reading(db_path)
    except sqlite3.Error as error:
        raise BackupError(f"cannot read {db_path}: {error}") from None


def _partial_beside(dest: Path) -> Path:
    """Create an empty file to copy into, beside dest, under a name of its own."""
    # Beside dest so that the rename stays within one file system; opened with 0o666 so
    # that the umask decides its mode, as for any new file (mkstemp's would be 0o600).
    partial = dest.with_name(f".{dest.name}.{secrets.token_hex(4)}.partial")
    try:
        os.close(os.open(partial, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
    except OSError as error:
        raise BackupError(f"cannot write beside {dest}: {error.strerror}") from None
    return partial


def _copy(
    source: sqlite3.Connection, copy: sqlite3.Connection, step_pages: int, progress: Progress
) -> None:
    """Copy every page of source into copy, in steps, from one read transaction."""
    # Holding one read transaction across the steps pins the snapshot the copy is of:
    # a sweep that commits meanwhile neither changes it nor, as it would between
    # transactions, makes SQLite start the copy over.
    source.execute("BEGIN")
    try:
        source.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        source.backup(
            copy,
            pages=step_pages,
            progress=lambda status, remaining, total: progress(total - remaining, total),
        )
    finally:
        source.rollback()


def _seal(copy: sqlite3.Connection, dest: Path) -> int:
    """Make the copy one self-contained file, check it, and return its observations."""
    # The copy inherits the source's WAL mode; a backup must not need files beside it.
    mode = copy.execute("PRAGMA journal_mode = DELETE").fetchone()[0]
    if mode != "delete":
        raise BackupError(f"the copy for {dest} stayed in journal mode {mode}")
    problems = [row[0] for row in copy.execute("PRAGMA integrity_check")]
    if problems != ["ok"]:
        raise BackupError(f"the copy for {dest} failed its integrity check: {problems[0]}")
    count: int = copy.execute("SELECT COUNT(*) FROM snapshots").fetchone()[0]
    return count


def _sync(path: Path) -> None:
    """Flush a file or folder to disk, so that a rename is not seen before its data."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(partial: Path) -> None:
    """Remove an unfinished copy and any journal SQLite left beside it."""
    for suffix in ("", "-journal", "-wal", "-shm"):
        Path(f"{partial}{suffix}").unlink(missing_ok=True)
