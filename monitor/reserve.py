"""Room kept beside the database, so that a sweep can always say how it ended.

A disk can fill in the middle of a sweep, and the sweep's row must still say so
("failed: disk full"), which takes a few pages of the write-ahead log. So each sweep
keeps a small file beside the database, ``<database>.reserve``. When storage finds the
disk full, the file is removed, and its room takes the sweep's ending. The next sweep
that finds room keeps it again; one that finds no room for it fetches nothing, since
its charts would take the room that its record needs.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from sqlite_utils import Database

from monitor.schema import database_file

RESERVE_BYTES = 256 * 1024


def _path(db: Database) -> Path | None:
    filename = database_file(db)
    return Path(f"{filename}.reserve") if filename else None  # none in memory


NO_ROOM = (
    f"disk full: no room for the {RESERVE_BYTES // 1024} KB kept beside the database for "
    "the sweep's record, so no chart was fetched"
)
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)


def keep(db: Database) -> bool:
    """Make sure the reserve is on disk; say False only where the disk has no room for it.

    Another failure to write it (a folder that refuses new files, say) leaves the sweep
    without a reserve, as in memory: that disk is not known to be full.
    """
    path = _path(db)
    if path is None or (path.is_file() and path.stat().st_size == RESERVE_BYTES):
        return True
    try:
        # Bytes that no filesystem compresses or leaves sparse.
        path.write_bytes(os.urandom(RESERVE_BYTES))
    except OSError as error:
        path.unlink(missing_ok=True)
        return error.errno not in _NO_SPACE
    return True


def release(db: Database) -> bool:
    """Give the reserve's room back to the disk; say whether there was a reserve."""
    path = _path(db)
    if path is None or not path.exists():
        return False
    path.unlink()
    return True
