from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from datasette.app import Datasette
from sqlite_utils import Database

from monitor import publish
from monitor.config import Access
from standin import StoreStandIn

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def stand_in() -> Iterator[StoreStandIn]:
    with StoreStandIn() as server:
        yield server


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "rankings.db"


@pytest.fixture
def monitor_env(stand_in: StoreStandIn, db_path: Path) -> dict[str, str]:
    """The environment of a ``monitor`` command pointed at the stand-in."""
    return {
        **os.environ,
        "MONITOR_DB": str(db_path),
        "MONITOR_APPLE_RSS_URL": stand_in.url,
        "MONITOR_ITUNES_URL": stand_in.url,
        "MONITOR_PLAY_URL": stand_in.url,
    }


@pytest.fixture
def run_monitor(monitor_env: dict[str, str], db_path: Path):
    """Run the real ``monitor`` command to completion in a subprocess."""

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "monitor", *args],
            env=monitor_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    run.db = db_path
    return run


@pytest.fixture
def spawn_monitor(monitor_env: dict[str, str]) -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start the real ``monitor`` command in the background; kill leftovers at the end."""
    started: list[subprocess.Popen[str]] = []

    def spawn(*args: str) -> subprocess.Popen[str]:
        process = subprocess.Popen(
            [sys.executable, "-m", "monitor", *args],
            env=monitor_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        started.append(process)
        return process

    yield spawn
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    """Poll condition until it returns something truthy, or fail after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def can_unshare() -> bool:
    """Tell whether this machine lets a test make a mount namespace of its own."""
    if shutil.which("unshare") is None:
        return False
    return subprocess.run(["unshare", "-rm", "true"], capture_output=True).returncode == 0


# Real mounts (a read-only one, a small full one) in a namespace of the test's own.
needs_mount_namespace = pytest.mark.skipif(
    not can_unshare() and not os.environ.get("CI"),
    reason="needs unshare -rm for a mount of the test's own (runs under CI)",
)


@pytest.fixture(autouse=True)
def close_databases(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Close every sqlite-utils Database a test opened and left open, as the test ends.

    A fixture that hands a test an open database cannot close it itself before the test
    is done with it; this closes it after, so that no connection outlives its test.
    """
    opened: list[Database] = []
    init = Database.__init__

    def tracked(self: Database, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        opened.append(self)

    monkeypatch.setattr(Database, "__init__", tracked)
    yield
    for database in opened:
        database.close()


@pytest.fixture
def served() -> Iterator[Callable[..., Datasette]]:
    """Build the Datasette that ``monitor serve`` builds, in process; close it at the end."""
    built: list[Datasette] = []

    def build(path: Path, **listen: Any) -> Datasette:
        access = Access(listen.pop("public", False), listen.pop("public_sql", False))
        ds = publish.datasette(path, publish.Listen("127.0.0.1", 0, access, **listen))
        built.append(ds)
        return ds

    yield build
    for ds in built:
        publish.close(ds)
