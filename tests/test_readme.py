"""The README's examples say what the commands print today."""

from __future__ import annotations

import re
import shlex
import signal
from pathlib import Path

import pytest

import scenario
from conftest import wait_for
from helpers import count
from monitor.settings import SETTINGS

README = Path(__file__).parent.parent / "README.md"


# What differs from one run to the next, in the README's examples as in a run: the
# stand-in's port (not port 9, where nothing listens on purpose), the clock, the seconds a
# sweep took and the rate it reached, the database's path and size, and how far a sweep
# got before a signal.
VOLATILE = (
    (re.compile(r"127\.0\.0\.1:\d{4,5}"), "127.0.0.1:PORT"),
    (re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"), "TIME"),
    (re.compile(r" in \d+\.\ds$"), " in SECONDS"),
    (re.compile(r"^\S+: [\d.]+ MB, "), "DB: SIZE, "),
    (re.compile(r"^backed up [\d.]+ MB "), "backed up SIZE "),
    (re.compile(r" requests, [\d.]+/s "), " requests, RATE/s "),
)
STOPPED = re.compile(r"^sweep \d+ stopped ")
HOST = re.compile(r"^  (apple|play) ")


def example(command: str) -> list[str]:
    """Return the lines the README shows under ``$ monitor COMMAND`` ('...' elides)."""
    return session(command)[0]


def session(command: str) -> list[list[str]]:
    """Return what the README shows after each ``$ monitor`` line of the block that
    begins with ``$ monitor COMMAND``."""
    text = README.read_text(encoding="utf-8")
    block = re.search(rf"^\$ monitor {re.escape(command)}\n(.*?)^```", text, re.M | re.S)
    assert block, f"no example of 'monitor {command}' in the README"
    parts = re.split(r"^\$ monitor .*\n", block.group(1), flags=re.M)
    return [[line for line in part.splitlines() if line] for part in parts]


def normalised(lines: list[str]) -> list[str]:
    """Replace what differs from run to run (VOLATILE) with placeholders."""
    done = []
    stopped = False  # in a stopped sweep's lines: its summary, then its hosts'
    for line in lines:
        for pattern, placeholder in VOLATILE:
            line = pattern.sub(placeholder, line)
        stopped = bool(STOPPED.match(line) or (stopped and HOST.match(line)))
        done.append(re.sub(r"\d[\d,]*", "N", line) if stopped else line)
    return done


def in_order(shown: list[str], printed: list[str]) -> list[str]:
    """Return the shown lines missing from what was printed, or printed out of order."""
    missing, at = [], 0
    for line in shown:
        if line == "...":
            continue
        try:
            at = printed.index(line, at) + 1
        except ValueError:
            missing.append(line)
    return missing


def test_the_claim_example_is_what_claim_prints_on_the_scenario(run_monitor, db_path):
    scenario.build(db_path)
    command = 'claim "deepseek - ai" --at 2025-01-27T09:00:00Z'
    result = run_monitor(*shlex.split(command))
    assert result.returncode == 0, result.stderr
    assert in_order(example(command), result.stdout.splitlines()) == []


def test_a_line_the_claim_does_not_print_is_caught(run_monitor, db_path):
    scenario.build(db_path)
    result = run_monitor("claim", "deepseek - ai", "--at", "2025-01-27T09:00:00Z")
    stale = "  us          1  2025-01-27T09:00:00Z  2025-01-26T08:00:00Z  25h, 2025-01-26T08:00:00Z"
    assert in_order([stale], result.stdout.splitlines()) == [stale]


def printed(result) -> list[str]:
    """What a command printed, its errors first as a terminal shows them."""
    return normalised((result.stderr + result.stdout).splitlines())


def test_the_collect_examples_are_what_collect_prints(run_monitor, spawn_monitor, stand_in):
    shown = [normalised(lines) for lines in session("collect")]
    stand_in.faults = {"jp": "500"}
    first = run_monitor("collect")
    assert first.returncode == 1, first.stderr
    stand_in.hold_after = len(stand_in.requests) + 30  # the second sweep is stopped half way
    second = spawn_monitor("collect")
    wait_for(lambda: count(run_monitor.db, "SELECT COUNT(*) FROM snapshots") >= 200, 60, "charts")
    second.send_signal(signal.SIGINT)
    out, err = second.communicate(timeout=30)
    assert second.returncode == 130, err
    stand_in.released.set()
    third = run_monitor("collect")
    runs = [printed(first), normalised((err + out).splitlines()), printed(third)]
    assert runs == shown


def test_the_status_example_is_what_status_prints(run_monitor, stand_in):
    shown = example("status --sweeps 3")
    stand_in.faults = {"jp": "500", "kr": "500", "de": "duplicate"}
    # One request at a time and no retry, so that which failure is the last is always
    # the same.
    assert run_monitor("collect", "--concurrency", "1", "--retries", "0").returncode == 1
    assert run_monitor("collect", "--store", "play", "--country", "us,gb,jp").returncode == 1
    nowhere = ("--play-url", "http://127.0.0.1:9", "--retries", "0")
    assert run_monitor("collect", "--store", "play", "--country", "us,gb,jp", *nowhere).returncode
    result = run_monitor("status", "--sweeps", "3")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stdout.splitlines() if line]
    assert normalised(lines) == normalised(shown)


def test_the_backup_example_is_what_backup_prints(run_monitor, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the example's relative paths lie
    (tmp_path / "backups").mkdir()
    db = ("--db", "data/rankings.db")
    assert run_monitor("collect", *db).returncode == 0
    result = run_monitor("backup", "backups/final.db", *db)
    assert result.returncode == 0, result.stderr
    assert printed(result) == normalised(example("backup backups/final.db"))


def test_the_export_example_is_what_export_prints(run_monitor, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where the example's relative paths lie
    db = ("--db", "data/rankings.db")
    assert run_monitor("collect", *db).returncode == 0
    runs = [run_monitor("export", "parquet", "export/", *db) for _ in range(2)]
    assert [printed(result) for result in runs] == session("export parquet export/")


@pytest.mark.parametrize("setting", [s for s in SETTINGS if s.envvar], ids=lambda s: s.key)
def test_the_variables_table_is_the_settings(setting):
    row = f"| `{setting.envvar}` | "
    (line,) = [line for line in README.read_text().splitlines() if line.startswith(row)]
    assert f"(`{setting.key}`)" in line and line.endswith(f"| `{setting.default}` |")
