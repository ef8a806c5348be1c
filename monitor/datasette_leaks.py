"""Close the connections Datasette 0.65.5 opens and drops.

Two of its helpers open an in-memory SQLite connection and never close it: the check
for JSON support behind every table page's facets, and the first lookup of SQLite's
version. Python 3.13 warns of each such connection (ResourceWarning). A fix is proposed
upstream (simonw/datasette#2615), in no 0.65 release yet; until one has it, these
stand-ins answer the same and close what they open.
"""

from __future__ import annotations

from contextlib import closing
from typing import Any

import datasette.facets
import datasette.utils.sqlite


def detect_json1(conn: Any = None) -> bool:
    """Tell whether SQLite has its JSON functions, as Datasette's own check does."""
    if conn is not None:
        return bool(datasette.utils.detect_json1(conn))
    with closing(datasette.utils.sqlite.sqlite3.connect(":memory:")) as own:
        return bool(datasette.utils.detect_json1(own))


def sqlite_version() -> tuple[int, ...]:
    """Return the version of the SQLite library Datasette uses, with no connection."""
    return tuple(datasette.utils.sqlite.sqlite3.sqlite_version_info)


def close_them() -> None:
    """Put the stand-ins where Datasette 0.65.5 looks its helpers up."""
    datasette.facets.detect_json1 = detect_json1
    datasette.utils.sqlite._sqlite_version = sqlite_version
