"""Publish the database with Datasette, from a server thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.resources import files
from pathlib import Path
from typing import Any

import uvicorn
from datasette.app import Datasette

from monitor import datasette_plugin
from monitor.config import Access
from monitor.demo import is_demo
from monitor.errors import MonitorError
from monitor.health import DEFAULT_MAX_AGE
from monitor.metadata import metadata
from monitor.schema import read_only_uri, writable_folder

START_TIMEOUT = 30.0
# monitor's own pages: the index, as a front door.
TEMPLATES = files("monitor") / "templates"


@dataclass(frozen=True)
class Listen:
    """Where Datasette listens, whether for the public, and what its health allows."""

    host: str
    port: int
    access: Access = field(default_factory=Access)
    max_sweep_age: float = DEFAULT_MAX_AGE  # /-/health answers 503 past this


def datasette(db_path: str | Path, listen: Listen | None = None) -> Datasette:
    """Build the Datasette instance that serves the database.

    On a read-only mount with no writer's log beside it, SQLite can read the file only
    as immutable; Datasette is told so.
    """
    listen = listen or Listen("127.0.0.1", 0)
    immutable = not writable_folder(db_path) and "immutable=1" in read_only_uri(db_path)
    opened = {"immutables" if immutable else "files": [str(db_path)]}
    # Facet suggestions scan every column of a table page; on a history of millions
    # of rows they cost more than the page itself.
    settings: dict[str, Any] = {"suggest_facets": False}
    if listen.access.public:
        # The whole file holds raw bodies; a stream of every row is a load no page needs.
        settings |= {"allow_download": False, "allow_csv_stream": False}
    return Datasette(
        **opened,
        metadata=metadata(db_path, listen.access, listen.max_sweep_age, is_demo(db_path)),
        settings=settings,
        template_dir=str(TEMPLATES),
    )


def close(ds: Datasette) -> None:
    """Close every connection Datasette opened, to the files and to its own catalogue."""
    datasette_plugin.close_connections(ds)


@contextmanager
def serving(db_path: str | Path, listen: Listen) -> Iterator[uvicorn.Server]:
    """Serve Datasette from a background thread until the block exits.

    The thread leaves signals to the main thread, which decides how to stop.
    """
    ds = datasette(db_path, listen)
    config = uvicorn.Config(
        ds.app(), host=listen.host, port=listen.port, log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="datasette", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not server.started and thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if not server.started:
            raise MonitorError(
                f"could not serve Datasette on {listen.host}:{listen.port} (is the port in use?)"
            )
        yield server
    finally:
        server.should_exit = True
        thread.join(timeout=5)
        close(ds)
