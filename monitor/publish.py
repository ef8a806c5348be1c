"""Publish the database with Datasette, from a server thread."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn
from datasette.app import Datasette

from monitor.errors import MonitorError
from monitor.metadata import metadata
from monitor.schema import read_only_uri

START_TIMEOUT = 30.0


def datasette(db_path: str | Path) -> Datasette:
    """Build the Datasette instance that serves the database.

    On a read-only mount with no writer's log beside it, SQLite can read the file only
    as immutable; Datasette is told so.
    """
    immutable = not os.access(Path(os.path.realpath(db_path)).parent, os.W_OK) and (
        "immutable=1" in read_only_uri(db_path)
    )
    files = {"immutables" if immutable else "files": [str(db_path)]}
    # Facet suggestions scan every column of a table page; on a history of millions
    # of rows they cost more than the page itself.
    return Datasette(**files, metadata=metadata(db_path), settings={"suggest_facets": False})


@contextmanager
def serving(db_path: str | Path, host: str, port: int) -> Iterator[uvicorn.Server]:
    """Serve Datasette from a background thread until the block exits.

    The thread leaves signals to the main thread, which decides how to stop.
    """
    config = uvicorn.Config(
        datasette(db_path).app(), host=host, port=port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="datasette", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        server.should_exit = True
        raise MonitorError(f"could not serve Datasette on {host}:{port} (is the port in use?)")
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=5)
