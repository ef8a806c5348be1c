"""Room kept beside the database, so that a sweep can always say how it ended.

A disk can fill in the middle of a sweep, and the sweep's row must still say so
("failed: disk full"), which takes a few pages of the write-ahead log. So each sweep
keeps a small file beside the database, ``<database>.reserve``. When storage finds the
disk full, the file is removed, and its room takes the sweep's ending. The next sweep
that finds room keeps it again.
"""

from __future__ import annotations

import os
from pathlib import Path

from sqlite_utils import Database

from monitor.schema import database_file

RESERVE_BYTES = 256 * 1024


def _path(db: Database) -> Path | None:
    filename = database_file(db)
    return Path(f"{filename}.reserve") if filename else None  # none in memory


def keep(db: Database) -> None:
    """Make sure the reserve is on disk, where the disk has room for it."""
    path = _path(db)
    if path is None or (path.is_file() and path.stat().st_size == RESERVE_BYTES):
        return
    try:
        # Bytes that no filesystem compresses or leaves sparse.
        path.write_bytes(os.urandom(RESERVE_BYTES))
    except OSError:
        path.unlink(missing_ok=True)


def release(db: Database) -> bool:
    """Give the reserve's room back to the disk; say whether there was a reserve."""
    path = _path(db)
    if path is None or not path.exists():
        return False
    path.unlink()
    return True
