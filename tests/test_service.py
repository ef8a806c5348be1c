"""``monitor run`` as a real process: schedule, Datasette, signals, locks and crashes."""

from __future__ import annotations

import itertools
import os
import select
import signal
import socket
import sqlite3
import threading
import time
from contextlib import closing

import httpx

from conftest import free_port, wait_for
from helpers import count
from monitor import schema


def count_or_zero(db, sql):
    """Count, or 0 while the service has not yet created the file or its tables."""
    try:
        return count(db, sql) if db.exists() else 0
    except sqlite3.OperationalError:
        return 0


def finished_sweeps(db):
    return count_or_zero(db, "SELECT COUNT(*) FROM sweeps WHERE finished_at IS NOT NULL")


def snapshots(db):
    return count_or_zero(db, "SELECT COUNT(*) FROM snapshots")


def said(process, text):
    """Tell whether process has logged text so far, reading what came without blocking.

    Reads the pipe itself, not through Python's buffer, where a line read along with
    an earlier one would wait unseen by select; what came is kept on the process.
    """
    fd = process.stderr.fileno()
    while select.select([fd], [], [], 0)[0]:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        process.logged = getattr(process, "logged", "") + chunk.decode(errors="replace")
    return text in getattr(process, "logged", "")


def incomplete_snapshots(db):
    """Snapshots whose ranks are not exactly 1..size."""
    return count(
        db,
        """
        SELECT COUNT(*) FROM (
            SELECT s.id FROM snapshots s
            LEFT JOIN runs r ON r.chart_id = s.chart_id
                AND r.first_snapshot <= s.id AND r.last_snapshot >= s.id
            GROUP BY s.id
            HAVING COUNT(r.rank) != s.size OR MIN(r.rank) != 1 OR MAX(r.rank) != s.size)""",
    )


def test_sweeps_repeat_while_datasette_answers(spawn_monitor, db_path):
    port = free_port()
    service = spawn_monitor("run", "--interval", "2s", "--port", str(port))
    url = f"http://127.0.0.1:{port}/rankings/rankings.json?_size=5"
    statuses = []
    deadline = time.monotonic() + 60
    while finished_sweeps(db_path) < 2 and time.monotonic() < deadline:
        try:
            statuses.append(httpx.get(url, timeout=10).status_code)
        except httpx.TransportError:
            statuses.append(None)  # not listening yet
        time.sleep(0.05)
    assert finished_sweeps(db_path) >= 2
    answered = [s for s in statuses if s is not None]
    assert len(answered) >= 5
    assert all(s == 200 for s in answered), set(answered)
    assert count(db_path, "SELECT COUNT(*) FROM snapshots") >= 350
    assert incomplete_snapshots(db_path) == 0

    service.send_signal(signal.SIGTERM)
    started = time.monotonic()
    assert service.wait(timeout=10) == 0
    assert time.monotonic() - started < 10
    assert "sweep 1: 175 charts ok, 0 failed" in service.stderr.read()


def test_sigterm_mid_sweep_stops_within_10s_leaving_whole_charts(spawn_monitor, stand_in, db_path):
    stand_in.hold_after = 20  # the rest of the sweep waits on the store
    service = spawn_monitor("run", "--no-serve", "--interval", "1h")
    wait_for(lambda: snapshots(db_path), 30, "the first charts")
    service.send_signal(signal.SIGINT)
    assert service.wait(timeout=10) == 0
    stored = count(db_path, "SELECT COUNT(*) FROM snapshots")
    assert 0 < stored < 175
    assert incomplete_snapshots(db_path) == 0
    assert "stopped (SIGINT received; " in service.stderr.read()


def test_a_second_service_on_the_same_file_is_refused(spawn_monitor, run_monitor, db_path):
    first = spawn_monitor("run", "--no-serve", "--interval", "1h")
    wait_for(lambda: finished_sweeps(db_path), 30, "the first sweep")
    second = run_monitor("run", "--no-serve", "--interval", "1h", timeout=30)
    assert second.returncode == 2
    assert f"pid {first.pid}" in second.stderr
    assert first.poll() is None


def test_a_second_service_through_a_symlink_is_refused(
    spawn_monitor, run_monitor, db_path, tmp_path
):
    first = spawn_monitor("run", "--no-serve", "--interval", "1h")
    wait_for(lambda: finished_sweeps(db_path), 30, "the first sweep")
    link = tmp_path / "elsewhere" / "link.db"
    link.parent.mkdir()
    link.symlink_to(db_path)
    second = run_monitor("run", "--no-serve", "--interval", "1h", "--db", str(link), timeout=30)
    assert second.returncode == 2
    assert f"pid {first.pid}" in second.stderr
    assert first.poll() is None


def test_collect_waits_for_the_sweep_in_progress(spawn_monitor, run_monitor, stand_in, db_path):
    stand_in.hold_after = 20  # the service's sweep then waits on the store until released
    spawn_monitor("run", "--no-serve", "--interval", "1h")
    wait_for(lambda: snapshots(db_path), 30, "the service's sweep to start")
    collect = spawn_monitor("collect", "--country", "us")
    wait_for(lambda: said(collect, "waiting for the sweep in progress"), 30, "collect to wait")
    stand_in.released.set()
    assert collect.wait(timeout=60) == 0
    with closing(sqlite3.connect(db_path)) as conn:
        spans = conn.execute(
            "SELECT sweep_id, MIN(id), MAX(id), COUNT(*) FROM snapshots GROUP BY sweep_id"
        ).fetchall()
    # The service's whole sweep was stored before the collect sweep's one chart.
    assert len(spans) == 2
    (service_sweep, _, service_last, service_charts), (_, collect_first, _, collect_charts) = spans
    assert (service_sweep, service_charts, collect_charts) == (1, 175, 1)
    assert service_last < collect_first


def test_kill_9_mid_sweep_then_restart_leaves_a_sound_file(spawn_monitor, stand_in, db_path):
    stand_in.delay = 0.1
    victim = spawn_monitor("run", "--no-serve", "--interval", "1h")
    wait_for(lambda: snapshots(db_path) >= 20, 60, "a sweep under way")
    victim.kill()
    victim.wait(timeout=10)
    assert finished_sweeps(db_path) == 0

    stand_in.delay = 0
    survivor = spawn_monitor("run", "--no-serve", "--interval", "1h")
    wait_for(lambda: finished_sweeps(db_path), 60, "a sweep after the restart")
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=10) == 0
    with closing(sqlite3.connect(db_path)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert incomplete_snapshots(db_path) == 0
    assert count(db_path, "SELECT COUNT(*) FROM snapshots WHERE sweep_id = 2") == 175
    # The killed sweep is shown as interrupted, with the counts it had reached.
    with closing(sqlite3.connect(db_path)) as conn:
        killed = conn.execute(
            "SELECT s.status, s.charts_ok, (SELECT COUNT(*) FROM snapshots WHERE sweep_id = 1) "
            "FROM sweeps s WHERE id = 1"
        ).fetchone()
    assert killed[0] == "interrupted" and killed[1] == killed[2] >= 20


def test_sweeps_longer_than_the_interval_never_overlap(spawn_monitor, stand_in, db_path):
    stand_in.delay = 0.1  # about 2 s a sweep, against a 1 s interval
    service = spawn_monitor("run", "--no-serve", "--interval", "1s")
    wait_for(lambda: finished_sweeps(db_path) >= 3, 60, "three sweeps")
    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=10) == 0
    with closing(sqlite3.connect(db_path)) as conn:
        spans = conn.execute(
            "SELECT MIN(id), MAX(id), COUNT(*) FROM snapshots GROUP BY sweep_id ORDER BY sweep_id"
        ).fetchall()
    # Overlapping sweeps would interleave their snapshots.
    for (_, last, _), (first, _, _) in itertools.pairwise(spans):
        assert last < first
    assert all(size == 175 for _, _, size in spans[:3])
    assert incomplete_snapshots(db_path) == 0


def test_serve_alone_publishes_with_metadata_and_stops_on_sigterm(spawn_monitor, run_monitor):
    assert run_monitor("collect", "--country", "us").returncode == 0
    port = free_port()
    server = spawn_monitor("serve", "--port", str(port))
    url = f"http://127.0.0.1:{port}"

    def answer(path):
        try:
            return httpx.get(url + path, timeout=10)
        except httpx.TransportError:
            return None

    rows = wait_for(
        lambda: answer("/rankings/rankings.json?_shape=array&_size=3"), 30, "Datasette to listen"
    ).json()
    assert [row["rank"] for row in rows] == [1, 2, 3]
    assert answer("/-/metadata.json").json()["title"].startswith("monitor")
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0


def test_serve_on_a_port_in_use_says_so(run_monitor):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = run_monitor("serve", "--port", str(busy.getsockname()[1]), timeout=60)
    assert result.returncode == 1
    assert "could not serve Datasette on 127.0.0.1" in result.stderr


def test_sigterm_while_waiting_for_another_sweep_stops_at_once(spawn_monitor, stand_in, db_path):
    stand_in.hold_after = 20  # the collect sweep then waits on the store until released
    collect = spawn_monitor("collect")
    wait_for(lambda: snapshots(db_path), 30, "the collect sweep to start")
    service = spawn_monitor("run", "--no-serve", "--interval", "1h")
    wait_for(lambda: said(service, "waiting for the sweep in progress"), 30, "the service to wait")
    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=3) == 0
    assert collect.poll() is None  # the other sweep is still going
    stand_in.released.set()
    assert collect.wait(timeout=60) == 0
    assert count(db_path, "SELECT COUNT(*) FROM sweeps") == 1


def test_the_log_stays_small_with_readers_that_never_pause(spawn_monitor, stand_in, db_path):
    port = free_port()
    service = spawn_monitor("run", "--interval", "1s", "--port", str(port))
    wal = db_path.with_name(db_path.name + "-wal")
    url = f"http://127.0.0.1:{port}/rankings/rankings.json?_size=100&country=us"
    stop, answered, largest = threading.Event(), [], [0]

    def read():
        with httpx.Client(timeout=10) as client:
            while not stop.is_set():
                try:
                    answered.append(client.get(url).status_code)
                except httpx.TransportError:
                    time.sleep(0.1)  # not listening yet

    readers = [threading.Thread(target=read) for _ in range(4)]
    for reader in readers:
        reader.start()
    deadline = time.monotonic() + 120
    try:
        while finished_sweeps(db_path) < 6 and time.monotonic() < deadline:
            stand_in.version += 1  # every chart changes, sweep after sweep
            largest[0] = max(largest[0], wal.stat().st_size if wal.exists() else 0)
            time.sleep(0.02)
            assert service.poll() is None
    finally:
        stop.set()
        for reader in readers:
            reader.join()
    service.send_signal(signal.SIGTERM)
    assert service.wait(timeout=30) == 0
    assert finished_sweeps(db_path) >= 6
    assert len(answered) > 100 and set(answered) == {200}
    # Without checkpoints that outwait the readers, it grows by every sweep's writes. With
    # them it stays under the limit, or twice it where a reader held on past the wait
    # (storage.LogTrimmer), give or take one chart's writes.
    assert largest[0] < 2 * schema.LOG_LIMIT + 2**20, largest[0]


def test_serve_in_public_mode_from_the_config_refuses_sql(spawn_monitor, run_monitor, tmp_path):
    assert run_monitor("collect", "--country", "us").returncode == 0
    config = tmp_path / "public.toml"
    config.write_text("public = true\n")
    port = free_port()
    server = spawn_monitor("serve", "--port", str(port), "--config", str(config))
    url = f"http://127.0.0.1:{port}/rankings"

    def answer(path):
        try:
            return httpx.get(url + path, timeout=10)
        except httpx.TransportError:
            return None

    assert wait_for(lambda: answer("/rankings.json?_size=1"), 30, "Datasette").status_code == 200
    assert answer(".json?sql=select+1").status_code == 403
    assert answer("/raw_responses.json").status_code == 403
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0
