"""monitor backup: a consistent, self-contained copy of a database a service is writing."""

from __future__ import annotations

import os
import pty
import re
import shlex
import signal
import sqlite3
import subprocess
import sys
from contextlib import closing

import click
import pytest
from click.testing import CliRunner

from conftest import needs_mount_namespace, wait_for
from helpers import query
from monitor.backup import back_up
from monitor.cli import cli

SUMMARY = re.compile(
    r"backed up [\d,]+\.\d MB \(([\d,]+) chart observations\) to (.+) in \d+\.\ds\n"
    r"to restore: stop monitor \(run and serve\), copy \2 over (.+),"
    r" delete any \3-wal and -shm, and start monitor again\n"
)


def scalar(path, sql, params=()):
    return query(path, sql, params)[0][0]


def scalar_or_zero(path, sql):
    """Read one value, or 0 while the service has not yet created the file or its tables."""
    try:
        return scalar(path, sql) if path.exists() else 0
    except sqlite3.OperationalError:
        return 0


def max_snapshot(path):
    return scalar_or_zero(path, "SELECT COALESCE(MAX(id), 0) FROM snapshots")


def incomplete_snapshots(path, up_to):
    """Snapshots up to an id whose ranks in the rankings view are not exactly 1..size."""
    return query(
        path,
        """SELECT s.id, s.size, COUNT(DISTINCT r.rank), MIN(r.rank), MAX(r.rank)
           FROM snapshots s LEFT JOIN rankings r ON r.snapshot_id = s.id
           WHERE s.id <= ?
           GROUP BY s.id
           HAVING COUNT(r.rank) != s.size OR COUNT(DISTINCT r.rank) != s.size
               OR MIN(r.rank) != 1 OR MAX(r.rank) != s.size""",
        (up_to,),
    )


def leftovers(folder, dest):
    """Files a backup to dest may have left in folder: its partial copies."""
    return [name for name in os.listdir(folder) if name.startswith(f".{dest.name}.")]


@pytest.fixture
def collected(run_monitor):
    result = run_monitor("collect", "--country", "us,jp,gb")
    assert result.returncode == 0, result.stderr
    return run_monitor.db


def test_a_backup_during_back_to_back_sweeps_holds_every_committed_observation(
    spawn_monitor, run_monitor, stand_in, db_path, tmp_path
):
    stand_in.delay = 0.1  # a sweep takes about 2 s, against a 1 s interval
    service = spawn_monitor("run", "--no-serve", "--interval", "1s")
    wait_for(lambda: max_snapshot(db_path) > 175, 60, "the second sweep under way")
    stand_in.version += 1  # the sweeps from now on close and open runs in every chart
    copy = tmp_path / "backups" / "copy.db"
    copy.parent.mkdir()

    before = max_snapshot(db_path)
    result = run_monitor("backup", str(copy))
    after = max_snapshot(db_path)

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""  # no progress bar where stderr is not a terminal
    assert after > before, "the service did not write around the backup"
    assert service.poll() is None
    assert scalar(copy, "PRAGMA integrity_check") == "ok"
    assert scalar(copy, "PRAGMA journal_mode") == "delete"
    assert sorted(os.listdir(copy.parent)) == ["copy.db"]
    committed = query(db_path, "SELECT id, size FROM snapshots WHERE id <= ?", (before,))
    assert len(committed) >= 175
    assert query(copy, "SELECT id, size FROM snapshots WHERE id <= ?", (before,)) == committed
    assert incomplete_snapshots(copy, up_to=2**62) == []

    stated = SUMMARY.fullmatch(result.stdout)
    assert stated, result.stdout
    assert stated.group(2, 3) == (str(copy), str(db_path))
    observations = scalar(copy, "SELECT COUNT(*) FROM snapshots")
    assert int(stated.group(1).replace(",", "")) == observations >= len(committed)
    status = run_monitor("status", "--db", str(copy))
    assert status.returncode == 0, status.stderr
    assert f"{observations:,} chart observations" in status.stdout

    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=30) == 0


def test_the_copy_is_the_database_as_it_stood_when_the_copy_began(
    spawn_monitor, stand_in, db_path, tmp_path
):
    stand_in.delay = 0.05
    service = spawn_monitor("run", "--no-serve", "--interval", "1s")
    wait_for(lambda: max_snapshot(db_path) > 175, 60, "the second sweep under way")
    stand_in.version += 1
    steps, seen = [], []

    def progress(copied, total):
        if not steps:
            # A sweep commits while the copy is under way, between its steps.
            seen.append(max_snapshot(db_path))
            wait_for(lambda: max_snapshot(db_path) > seen[0], 30, "a commit during the copy")
        steps.append((copied, total))

    copy = tmp_path / "copy.db"
    done = back_up(db_path, copy, progress=progress, step_pages=1)

    assert service.poll() is None
    # One page a step, never starting over: the commits did not restart the copy.
    assert len(steps) > 100
    assert [copied for copied, _ in steps] == list(range(1, len(steps) + 1))
    assert {total for _, total in steps} == {len(steps)}
    last = scalar(copy, "SELECT MAX(id) FROM snapshots")
    assert last <= seen[0] < max_snapshot(db_path)
    assert done.snapshots == scalar(copy, "SELECT COUNT(*) FROM snapshots")
    assert done.size_bytes == copy.stat().st_size
    assert scalar(copy, "PRAGMA integrity_check") == "ok"
    assert incomplete_snapshots(copy, up_to=last) == []
    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=30) == 0


def test_an_interrupted_backup_leaves_nothing_under_its_name(collected, tmp_path):
    class Interrupted(Exception):
        pass

    def interrupt(copied, total):
        if copied >= total // 2:
            raise Interrupted

    dest = tmp_path / "copy.db"
    with pytest.raises(Interrupted):
        back_up(collected, dest, progress=interrupt, step_pages=1)
    assert not dest.exists()
    assert leftovers(tmp_path, dest) == []

    dest.write_bytes(b"an older backup")
    with pytest.raises(Interrupted):
        back_up(collected, dest, force=True, progress=interrupt, step_pages=1)
    assert dest.read_bytes() == b"an older backup"
    assert leftovers(tmp_path, dest) == []


def test_an_existing_dest_is_refused_unless_forced(collected, tmp_path):
    dest = tmp_path / "copy.db"
    dest.write_bytes(b"an older backup")
    refused = CliRunner().invoke(cli, ["backup", "--db", str(collected), str(dest)])
    assert refused.exit_code == 2, refused.output
    assert f"{dest} already exists; --force replaces it" in refused.output
    assert dest.read_bytes() == b"an older backup"

    forced = CliRunner().invoke(cli, ["backup", "--db", str(collected), "--force", str(dest)])
    assert forced.exit_code == 0, forced.output
    assert scalar(dest, "PRAGMA integrity_check") == "ok"
    assert scalar(dest, "SELECT COUNT(*) FROM snapshots") == 3
    assert "(3 chart observations)" in forced.output
    assert leftovers(tmp_path, dest) == []


@pytest.mark.parametrize("force", [[], ["--force"]])
@pytest.mark.parametrize("how", ["same path", "symlink", "hard link", "relative path"])
def test_the_database_itself_is_refused_as_dest(collected, tmp_path, monkeypatch, force, how):
    if how == "same path":
        dest = collected
    elif how == "symlink":
        dest = tmp_path / "elsewhere" / "link.db"
        dest.parent.mkdir()
        dest.symlink_to(collected)
    elif how == "hard link":
        dest = tmp_path / "hard.db"
        dest.hardlink_to(collected)
    else:
        monkeypatch.chdir(collected.parent)
        dest = collected.name
    before = collected.read_bytes()
    result = CliRunner().invoke(cli, ["backup", "--db", str(collected), *force, str(dest)])
    assert result.exit_code == 2, result.output
    assert f"{dest} is the database itself; back it up to another file" in result.output
    assert collected.read_bytes() == before


def foreign_database(path):
    with closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL)")
        conn.commit()


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda path: path.write_bytes(b"not a database at all" * 100), "is not a SQLite database"),
        (foreign_database, "is a SQLite database, but not monitor's (it holds invoices)"),
        (lambda path: None, None),
    ],
)
def test_a_file_that_is_not_a_monitor_database_exits_2_naming_it(tmp_path, make, message):
    path = tmp_path / "other.db"
    make(path)
    dest = tmp_path / "copy.db"
    result = CliRunner().invoke(cli, ["backup", "--db", str(path), str(dest)])
    assert result.exit_code == 2, result.output
    assert (f"{path} {message}" if message else f"no database at {path}") in result.output
    assert not dest.exists()
    assert leftovers(tmp_path, dest) == []
    assert path.exists() == (message is not None)


def test_a_dest_in_a_missing_folder_is_refused(collected, tmp_path):
    dest = tmp_path / "typo" / "copy.db"
    result = CliRunner().invoke(cli, ["backup", "--db", str(collected), str(dest)])
    assert result.exit_code == 2, result.output
    assert f"cannot write beside {dest}: No such file or directory" in result.output
    assert not dest.parent.exists()


@needs_mount_namespace
def test_a_database_on_a_read_only_mount_is_backed_up(collected, monitor_env, tmp_path_factory):
    folder, dest = collected.parent, tmp_path_factory.mktemp("out") / "copy.db"
    before = sorted(os.listdir(folder))
    inner = (
        f"mount --bind {shlex.quote(str(folder))} {shlex.quote(str(folder))} && "
        f"mount -o remount,bind,ro {shlex.quote(str(folder))} && "
        f"exec {shlex.quote(sys.executable)} -m monitor backup {shlex.quote(str(dest))}"
    )
    result = subprocess.run(
        ["unshare", "-rm", "sh", "-c", inner], env=monitor_env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert "(3 chart observations)" in result.stdout
    assert scalar(dest, "PRAGMA integrity_check") == "ok"
    assert sorted(os.listdir(folder)) == before  # nothing was written beside it


def test_a_terminal_sees_a_progress_bar(collected, monitor_env, tmp_path):
    dest = tmp_path / "copy.db"
    controller, terminal = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "monitor", "backup", "--db", str(collected), str(dest)],
        env={**monitor_env, "COLUMNS": "100"},
        stdout=subprocess.PIPE,
        stderr=terminal,
        text=True,
    ) as process:
        os.close(terminal)
        shown = b""
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal's other end closed: the process is done
                break
            if not chunk:
                break
            shown += chunk
        os.close(controller)
        stdout = process.stdout.read()
        assert process.wait(timeout=30) == 0
    assert b"Backing up" in shown and b"100%" in shown
    assert SUMMARY.fullmatch(stdout), stdout


def test_the_help_says_what_a_backup_is_and_how_it_is_made():
    result = CliRunner().invoke(cli, ["backup", "--help"])
    assert result.exit_code == 0
    assert "Usage: cli backup [OPTIONS] DEST" in result.output
    help_text = " ".join(result.output.split())
    for phrase in (
        "Write a consistent copy of the database to DEST, also while a service writes it.",
        "PRAGMA integrity_check",
        "renamed into place only when whole",
        "--force Replace DEST if it exists.",
        "--db FILE The SQLite file (or set MONITOR_DB).",
    ):
        assert phrase in help_text, phrase
    for param in cli.commands["backup"].params:
        if isinstance(param, click.Option):
            assert param.help, param.opts
