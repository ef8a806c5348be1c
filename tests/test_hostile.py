"""The real ``monitor`` against a hostile store on 127.0.0.1 (tests/hostile.py).

Each fault is injected into some storefronts of a sweep. Whatever those answer, they
must end as failure rows with the right kind, every other chart must be stored whole,
the sweep must be recorded as finished, and the wall time and the peak memory of the
``monitor`` process must stay within bounds.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass

import pytest

from conftest import needs_mount_namespace, wait_for
from helpers import query
from monitor.reference import storefronts_175

FAULTED = ("de", "jp")
SMALL = ("us", "gb", "fr", "it", *FAULTED)
# Per attempt, and one retry: a fault that costs the whole deadline fails in about 5 s.
BOUNDS = ("--timeout", "2", "--retries", "1")

KINDS = {
    "reset": "transport",
    "silent": "timeout",
    "trickle-status": "timeout",
    "trickle-headers": "timeout",
    "trickle-body": "timeout",
    "huge": "too_large",
    "huge-unannounced": "too_large",
    "endless": "too_large",
    "gzip-bomb": "too_large",
    "gzip-bomb-nested": "invalid_feed",
    "bad-gzip": "invalid_feed",
    "redirect-away": "redirect",
    "redirect-loop": "redirect",
    "retry-after-long": "rate_limited",
    "503-retry-after": "http_status",
    "deep-nesting": "invalid_feed",
    "huge-number": "invalid_feed",
    "invalid-utf8": "invalid_feed",
    "too-many": "invalid_feed",
    "long-names": "invalid_feed",
    "non-numeric-id": "invalid_feed",
    "other-storefront": "invalid_feed",
}
# A Play answer does not name its storefront; ten times a Play chart passes the size cap.
PLAY_KINDS = {
    **{fault: kind for fault, kind in KINDS.items() if fault != "other-storefront"},
    "too-many": "too_large",
}


@dataclass
class Measured:
    """A finished ``monitor`` process: exit code, output, wall time and peak memory."""

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    peak_mb: float


# Starts monitor from a small process of its own and reports its peak memory: Linux
# counts in a child's peak the memory of the process it was forked from (pytest here).
LAUNCHER = """
import os, sys
pid = os.posix_spawn(sys.executable, [sys.executable, "-m", "monitor", *sys.argv[1:]], os.environ)
_, status, usage = os.wait4(pid, 0)
sys.stderr.write(f"\\npeak_kb={usage.ru_maxrss}\\n")
sys.exit(os.waitstatus_to_exitcode(status))
"""


@pytest.fixture
def measure(monitor_env):
    """Run the real ``monitor`` to completion, measuring its wall time and peak RSS."""

    def run(*args: str, timeout: float = 120) -> Measured:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-c", LAUNCHER, *args],
            env=monitor_env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        seconds = time.monotonic() - started
        stderr, _, peak = done.stderr.rpartition("\npeak_kb=")
        return Measured(done.returncode, done.stdout, stderr, seconds, int(peak) / 1024)

    return run


def check_record(db, stand_in, countries, faulted, kind, store="apple"):
    """Failure rows for exactly the faulted charts, whole charts elsewhere, sweep finished."""
    failures = query(db, "SELECT country, error_kind, error FROM fetches WHERE status = 'error'")
    assert {cc for cc, _, _ in failures} == set(faulted), failures
    assert {k for _, k, _ in failures} == ({kind} if faulted else set()), failures
    assert all(error for _, _, error in failures)
    for cc in set(countries) - set(faulted):
        stored = query(db, "SELECT app_id FROM rankings WHERE country = ? ORDER BY rank", (cc,))
        served = (
            stand_in.chart(cc, "top-free", "iphone", None, 100)
            if store == "apple"
            else stand_in.play_chart(cc, "top-free", None, 100)
        )
        assert [a for (a,) in stored] == [a.app_id for a in served], cc
    assert query(db, "SELECT status, reason FROM sweeps") == [("finished", None)]
    assert query(db, "PRAGMA integrity_check") == [("ok",)]


def hostile(stand_in, fault, faulted=FAULTED):
    stand_in.faults = dict.fromkeys(faulted, fault)
    stand_in.hang_seconds = 10  # past every deadline here
    stand_in.retry_after = "1"


@pytest.mark.parametrize("fault", sorted(KINDS))
def test_each_fault_fails_only_its_charts(measure, run_monitor, stand_in, fault):
    hostile(stand_in, fault)
    result = measure("collect", "--country", ",".join(SMALL), *BOUNDS)
    assert result.returncode == 1, result.stderr
    assert f"{len(SMALL) - 2} charts ok, 2 failed" in result.stdout
    check_record(run_monitor.db, stand_in, SMALL, FAULTED, KINDS[fault])
    assert result.seconds < 20, result.seconds
    assert result.peak_mb < 150, result.peak_mb


@pytest.mark.parametrize("fault", sorted(PLAY_KINDS))
def test_each_fault_fails_only_its_play_charts(measure, run_monitor, stand_in, fault):
    hostile(stand_in, fault)
    result = measure(
        "collect", "--store", "play", "--country", ",".join(SMALL), "--play-interval", "0", *BOUNDS
    )
    assert result.returncode == 1, result.stderr
    check_record(run_monitor.db, stand_in, SMALL, FAULTED, PLAY_KINDS[fault], store="play")
    # Play goes one request at a time: two charts may each cost their whole deadlines.
    assert result.seconds < 30, result.seconds
    assert result.peak_mb < 150, result.peak_mb


@pytest.mark.parametrize("store", ["apple", "play"])
def test_a_name_ending_in_half_a_surrogate_pair_is_kept_with_a_replacement_mark(
    run_monitor, stand_in, store
):
    hostile(stand_in, "lone-surrogate")
    play = ("--store", "play", "--play-interval", "0") if store == "play" else ()
    result = run_monitor("collect", "--country", ",".join(SMALL), *play, *BOUNDS)
    assert result.returncode == 0, result.stderr
    check_record(run_monitor.db, stand_in, SMALL, (), None, store)
    column = "developer" if store == "play" else "app_name"
    for cc in FAULTED:
        stored = query(
            run_monitor.db,
            f"SELECT {column} FROM rankings WHERE country = ? ORDER BY rank",
            (cc,),
        )
        served = (
            [a.developer for a in stand_in.play_chart(cc, "top-free", None, 100)]
            if play
            else [a.name for a in stand_in.chart(cc, "top-free", "iphone", None, 100)]
        )
        served[50] += "\ufffd"  # where the lone surrogate was: U+FFFD, as for a broken byte
        assert [text for (text,) in stored] == served


def test_a_play_error_frame_of_any_length_is_kept_short_and_whole(run_monitor, stand_in):
    stand_in.faults = dict.fromkeys(FAULTED, "error-frame")
    result = run_monitor(
        "collect", "--store", "play", "--country", ",".join(SMALL), "--play-interval", "0"
    )
    assert result.returncode == 1, result.stderr
    check_record(run_monitor.db, stand_in, SMALL, FAULTED, "invalid_feed", store="play")
    said = "no vyAe2 frame in the response: Google Play sent an error (status oops\ufffd"
    whole = len(f"{said}{'x' * 1_000_000})")
    for (error,) in query(run_monitor.db, "SELECT error FROM fetches WHERE status = 'error'"):
        assert error == f"{said}{'x' * (1_000 - len(said))}… ({whole:,} characters)"
    assert len(result.stdout) + len(result.stderr) < 10_000


def test_a_chart_from_another_origin_is_never_stored_or_kept(measure, run_monitor, stand_in):
    hostile(stand_in, "redirect-away")
    result = measure("collect", "--country", ",".join(SMALL), *BOUNDS)
    assert result.returncode == 1
    assert stand_in.other_requests == []
    errors = dict(
        query(run_monitor.db, "SELECT country, error FROM fetches WHERE status = 'error'")
    )
    for cc in FAULTED:
        assert f"redirected to another origin, {stand_in.other_url}/" in errors[cc]
    assert query(run_monitor.db, "SELECT COUNT(*) FROM raw_responses") == [(0,)]


def test_a_redirect_within_the_origin_is_followed_and_stored(measure, run_monitor, stand_in):
    hostile(stand_in, "redirect-home")
    result = measure("collect", "--country", ",".join(SMALL), *BOUNDS)
    assert result.returncode == 0, result.stderr
    assert f"{len(SMALL)} charts ok, 0 failed" in result.stdout
    check_record(run_monitor.db, stand_in, SMALL, (), None)


def test_a_long_retry_after_fails_at_once_and_never_holds_a_slot(measure, stand_in):
    hostile(stand_in, "retry-after-long")
    result = measure("collect", "--country", ",".join(SMALL))  # default retries
    assert result.returncode == 1
    assert "asked to wait 3600s, more than the 60s allowed" in result.stderr
    assert result.seconds < 10


def test_waits_to_retry_leave_the_other_charts_at_full_speed(measure, run_monitor, stand_in):
    # Eight storefronts ask, twice, to come back in 5 s: with concurrency 8, holding
    # their slots while they wait would hold back every other chart for 10 s.
    slow = sorted(storefronts_175())[:8]
    stand_in.faults = dict.fromkeys(slow, "503-retry-after")
    stand_in.retry_after = "5"
    result = measure("collect", "--retries", "2")
    assert result.returncode == 1
    assert "167 charts ok, 8 failed" in result.stdout
    assert result.seconds >= 10  # the slow ones did wait, twice
    ((healthy_done,),) = query(
        run_monitor.db,
        "SELECT (julianday(MAX(s.fetched_at)) - julianday(w.started_at)) * 86400 "
        "FROM snapshots s JOIN sweeps w ON w.id = s.sweep_id",
    )
    assert healthy_done < 7, healthy_done


def test_a_full_sweep_with_every_fault_at_once(measure, run_monitor, stand_in):
    countries = sorted(storefronts_175())
    faults = sorted(KINDS)
    stand_in.faults = {countries[i * 7]: fault for i, fault in enumerate(faults)}
    stand_in.hang_seconds = 10
    stand_in.retry_after = "1"
    result = measure("collect", *BOUNDS, timeout=180)
    assert result.returncode == 1, result.stderr
    ok = 175 - len(faults)
    assert f"{ok} charts ok, {len(faults)} failed" in result.stdout
    kinds = dict(
        query(run_monitor.db, "SELECT country, error_kind FROM fetches WHERE status = 'error'")
    )
    assert kinds == {cc: KINDS[fault] for cc, fault in stand_in.faults.items()}
    assert query(
        run_monitor.db,
        "SELECT COUNT(*), MIN(n), MAX(n) FROM (SELECT COUNT(*) AS n "
        "FROM rankings GROUP BY snapshot_id)",
    ) == [(ok, 100, 100)]
    assert query(run_monitor.db, "SELECT status FROM sweeps") == [("finished",)]
    assert result.seconds < 30, result.seconds
    assert result.peak_mb < 300, result.peak_mb


def finished_sweeps(db):
    try:
        return query(db, "SELECT COUNT(*) FROM sweeps WHERE status = 'finished'")[0][0]
    except sqlite3.OperationalError:
        return 0


def test_a_faulty_storefront_never_stops_the_others_sweep_after_sweep(
    spawn_monitor, stand_in, db_path
):
    stand_in.faults = {"jp": "trickle-body", "de": "endless", "fr": "silent"}
    stand_in.hang_seconds = 10
    service = spawn_monitor("run", "--no-serve", "--interval", "1s", *BOUNDS)
    wait_for(lambda: finished_sweeps(db_path) >= 3, 90, "three sweeps")
    service.terminate()
    assert service.wait(timeout=30) == 0
    per_sweep = query(
        db_path,
        "SELECT sweep_id, SUM(status = 'ok'), GROUP_CONCAT(CASE WHEN status = 'error' "
        "THEN country END) FROM fetches WHERE sweep_id <= 3 GROUP BY sweep_id",
    )
    for sweep_id, ok, failed in per_sweep:
        assert ok == 172, (sweep_id, ok)
        assert sorted(failed.split(",")) == ["de", "fr", "jp"]


@needs_mount_namespace
def test_a_full_disk_is_said_plainly_and_the_next_sweep_works(tmp_path, monitor_env):
    """A 1 MB filesystem fills during the first sweep; then it gets room again."""
    mount = tmp_path / "small"
    mount.mkdir()
    monitor = f"{sys.executable} -m monitor"
    script = f"""
        mount -t tmpfs -o size=1m tmpfs {mount}
        {monitor} collect > {tmp_path}/first.out 2>&1; echo $? > {tmp_path}/first.rc
        {monitor} status > {tmp_path}/status.out 2>&1
        mount -o remount,size=64m {mount}
        {monitor} collect > {tmp_path}/second.out 2>&1; echo $? > {tmp_path}/second.rc
        cp {mount}/rankings.db {tmp_path}/after.db
    """
    env = {**monitor_env, "MONITOR_DB": str(mount / "rankings.db")}
    subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, check=True, timeout=120)

    def read(name):
        return (tmp_path / name).read_text()

    assert read("first.rc").strip() == "3", read("first.out")
    assert "sweep 1 failed (disk full: " in read("first.out")
    assert "Traceback" not in read("first.out")
    status = read("status.out")
    assert "failed" in status and "disk full: database or disk is full" in status
    assert read("second.rc").strip() == "0", read("second.out")
    after = tmp_path / "after.db"
    assert query(after, "PRAGMA integrity_check") == [("ok",)]
    sweeps = query(after, "SELECT id, status, charts_ok FROM sweeps ORDER BY id")
    assert [(i, s) for i, s, _ in sweeps] == [(1, "failed"), (2, "finished")]
    assert sweeps[1][2] == 175
    # Nothing partial: every stored chart of the failed sweep is whole.
    assert query(
        after,
        "SELECT COUNT(*) FROM (SELECT snapshot_id FROM rankings GROUP BY snapshot_id "
        "HAVING COUNT(*) != 100)",
    ) == [(0,)]


@needs_mount_namespace
def test_a_sweep_without_room_for_its_record_fetches_nothing(tmp_path, monitor_env):
    """After a sweep that finished (its log truncated, so SQLite needs no room of its own
    to begin), its reserve is gone, as a sweep that found the disk full leaves it, and
    another file leaves 200 KB free: less than the 256 KB kept for a sweep's record,
    enough for the rows that say why each chart was not fetched."""
    mount = tmp_path / "small"
    mount.mkdir()
    monitor = f"{sys.executable} -m monitor"
    script = f"""
        mount -t tmpfs -o size=16m tmpfs {mount}
        {monitor} collect > /dev/null 2>&1
        rm {mount}/rankings.db.reserve
        dd if=/dev/zero of={mount}/filler bs=4k 2> /dev/null; truncate -s -200K {mount}/filler
        {monitor} collect > {tmp_path}/full.out 2>&1; echo $? > {tmp_path}/full.rc
        rm {mount}/filler
        {monitor} collect > /dev/null 2>&1
        cp {mount}/rankings.db {tmp_path}/after.db
    """
    env = {**monitor_env, "MONITOR_DB": str(mount / "rankings.db")}
    subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, check=True, timeout=120)
    full = (tmp_path / "full.out").read_text()
    assert (tmp_path / "full.rc").read_text().strip() == "3", full
    assert "no chart was fetched" in full
    after = tmp_path / "after.db"
    sweeps = query(after, "SELECT id, status, charts_ok FROM sweeps ORDER BY id")
    assert sweeps == [(1, "finished", 175), (2, "failed", 0), (3, "finished", 175)]
    assert query(after, "SELECT error_kind, COUNT(*) FROM fetches WHERE sweep_id = 2") == [
        ("disk_full", 175)
    ]


@needs_mount_namespace
def test_a_disk_full_before_a_sweep_starts_still_gets_its_record(tmp_path, monitor_env):
    """Another program fills the disk between sweeps, while a reader (as Datasette) holds
    the database open: the reserve holds the sweep's record."""
    mount = tmp_path / "small"
    mount.mkdir()
    monitor = f"{sys.executable} -m monitor"
    reader = (
        f"import sqlite3, time; c = sqlite3.connect('{mount}/rankings.db'); "
        "c.execute('SELECT COUNT(*) FROM sweeps').fetchall(); time.sleep(60)"
    )
    script = f"""
        mount -t tmpfs -o size=16m tmpfs {mount}
        {monitor} collect --country us --country gb > /dev/null 2>&1
        ls {mount} > {tmp_path}/kept.txt
        {sys.executable} -c "{reader}" & reader=$!
        sleep 1
        dd if=/dev/zero of={mount}/filler bs=4k 2> /dev/null
        {monitor} collect > {tmp_path}/full.out 2>&1; echo $? > {tmp_path}/full.rc
        kill $reader
        rm {mount}/filler
        {monitor} collect --country us > /dev/null 2>&1; echo $? > {tmp_path}/room.rc
        ls {mount} > {tmp_path}/again.txt
        cp {mount}/rankings.db {tmp_path}/after.db
    """
    env = {**monitor_env, "MONITOR_DB": str(mount / "rankings.db")}
    subprocess.run(["unshare", "-rm", "sh", "-c", script], env=env, check=True, timeout=120)

    def read(name):
        return (tmp_path / name).read_text()

    assert "rankings.db.reserve" in read("kept.txt").split()
    assert read("full.rc").strip() == "3", read("full.out")
    sweeps = query(tmp_path / "after.db", "SELECT id, status, reason FROM sweeps ORDER BY id")
    ended = [(i, s) for i, s, _ in sweeps]
    assert ended == [(1, "finished"), (2, "failed"), (3, "finished")], read("full.out")
    assert sweeps[1][2].startswith("disk full: database or disk is full"), sweeps[1][2]
    # No room for charts: the sweep fetches none, and each of them has its row.
    assert sweeps[1][2].endswith("; 175 charts not fetched or not stored"), sweeps[1][2]
    assert query(
        tmp_path / "after.db",
        "SELECT error_kind, COUNT(*) FROM attempts WHERE sweep_id = 2 GROUP BY error_kind",
    ) == [("disk_full", 175)]
    assert read("room.rc").strip() == "0"
    assert "rankings.db.reserve" in read("again.txt").split()
