"""File locks: one service per database, one sweep at a time, one export per folder.

The kernel drops a lock when its process dies, even by ``kill -9``, so a crash never
leaves a stale lock behind. Locks sit beside the real file, symlinks resolved, so that
every path that reaches a database shares its locks.
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from monitor.errors import MonitorError, Stopped


class AlreadyRunning(MonitorError):
    """Another ``monitor run`` already serves this database."""


@contextmanager
def service_lock(db_path: str | Path) -> Iterator[None]:
    """Hold the database's service lock, or raise AlreadyRunning naming its holder."""
    with exclusive(
        _beside(db_path, ".run.lock"),
        lambda pid: AlreadyRunning(
            f"{db_path} is already used by another 'monitor run' (pid {pid}); stop that one first"
        ),
    ):
        yield


@contextmanager
def sweep_lock(
    db_path: str | Path, on_wait: Callable[[str], None], stop: threading.Event | None = None
) -> Iterator[None]:
    """Hold the database's sweep lock, waiting for a sweep in progress to finish.

    Raise Stopped if stop is set while waiting.
    """
    stop = stop or threading.Event()
    fd = _open(_beside(db_path, ".sweep.lock"))
    try:
        if not _try_lock(fd):
            on_wait(f"waiting for the sweep in progress (pid {_holder(fd)}) to finish")
            while not _try_lock(fd):
                if stop.wait(0.2):
                    raise Stopped("stopped while waiting for another sweep to finish")
        if stop.is_set():
            raise Stopped("stopped before the sweep began")
        _claim(fd)
        yield
    finally:
        os.close(fd)


@contextmanager
def exclusive(path: Path, refusal: Callable[[str], MonitorError]) -> Iterator[None]:
    """Hold the lock file at path, or raise ``refusal`` of the holder's pid."""
    fd = _open(path)
    try:
        if not _try_lock(fd):
            raise refusal(_holder(fd))
        _claim(fd)
        yield
    finally:
        os.close(fd)


@contextmanager
def migration_lock(db_path: str | Path) -> Iterator[None]:
    """Hold the lock under which a database's schema is created or migrated."""
    fd = _open(_beside(db_path, ".migrate.lock"))
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _beside(db_path: str | Path, suffix: str) -> Path:
    """Name a lock file beside the database's real file, wherever a symlink points."""
    real = Path(os.path.realpath(db_path))
    return real.with_name(real.name + suffix)


def _open(path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    return os.open(path, os.O_RDWR | os.O_CREAT, 0o644)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(fd: int) -> str:
    return os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"


def _claim(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, str(os.getpid()).encode(), 0)
