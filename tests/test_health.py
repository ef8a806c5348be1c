"""Health and metrics: ``/-/health``, ``/-/metrics`` and ``monitor health``, on real files."""

from __future__ import annotations

import asyncio
import signal
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import free_port, wait_for
from helpers import chart
from history import fail, observe
from monitor import schema, storage
from monitor.sources.payload import utc_iso


def ago(seconds: float) -> str:
    return utc_iso(datetime.now(UTC) - timedelta(seconds=seconds))


def sweep(db, started: str, finished: str, ok: list[str], failed: list[str]) -> int:
    """Record one whole sweep: ok countries observed, failed ones with HTTP 503."""
    sweep_id = storage.begin_sweep(db, started)
    for country in ok:
        observe(db, sweep_id, chart(country), started, [("1", "One"), ("2", "Two")])
    for country in failed:
        fail(db, sweep_id, chart(country), started)
    end = storage.SweepEnd(finished, "finished", None, len(ok), len(failed), 2 * len(ok))
    storage.finish_sweep(db, sweep_id, end)
    return sweep_id


@pytest.fixture
def finished_ten_minutes_ago(db_path):
    db = schema.open_db(db_path)
    sweep(db, ago(3700), ago(3650), ["us", "gb"], [])
    sweep(db, ago(660), ago(600), ["us"], ["gb", "fr"])
    db.close()
    return db_path


def get(ds, path):
    return asyncio.run(ds.client.get(path))


def test_health_is_200_while_the_last_sweep_is_recent(finished_ten_minutes_ago, served):
    answer = get(served(finished_ten_minutes_ago, max_sweep_age=7200), "/-/health")
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "ok"
    assert body["last_sweep"]["id"] == 2
    assert (body["last_sweep"]["charts_ok"], body["last_sweep"]["charts_failed"]) == (1, 2)
    assert 600 <= body["age_seconds"] < 700
    assert answer.headers["cache-control"] == "no-store"


def test_health_is_503_once_the_last_sweep_is_too_old(finished_ten_minutes_ago, served):
    answer = get(served(finished_ten_minutes_ago, max_sweep_age=300), "/-/health")
    assert answer.status_code == 503
    assert answer.json()["status"] == "stale"
    assert answer.json()["max_age_seconds"] == 300


def test_health_is_503_before_any_sweep_finished(db_path, served):
    db = schema.open_db(db_path)
    storage.begin_sweep(db, ago(10))  # still running
    db.close()
    answer = get(served(db_path, max_sweep_age=7200), "/-/health")
    assert answer.status_code == 503
    assert answer.json()["last_sweep"] is None


def metric_samples(text):
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_metrics_parse_as_prometheus_text_with_the_collectors_figures(
    finished_ten_minutes_ago, served
):
    answer = get(served(finished_ten_minutes_ago, max_sweep_age=7200), "/-/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=0.0.4")
    samples = metric_samples(answer.text)
    assert samples[("monitor_sweeps_total", (("status", "finished"),))] == 2
    assert samples[("monitor_charts_total", (("result", "ok"),))] == 3
    assert samples[("monitor_charts_total", (("result", "failed"),))] == 2
    last = "monitor_last_sweep_charts"
    store_ok = (("error_kind", ""), ("result", "ok"), ("store", "apple"))
    store_failed = (("error_kind", "http_status"), ("result", "error"), ("store", "apple"))
    assert samples[(last, store_ok)] == 1
    assert samples[(last, store_failed)] == 2
    assert samples[("monitor_last_sweep_duration_seconds", ())] == pytest.approx(60, abs=1)
    finished = samples[("monitor_last_sweep_finished_timestamp_seconds", ())]
    assert time.time() - finished == pytest.approx(600, abs=60)
    success = samples[("monitor_last_success_timestamp_seconds", (("store", "apple"),))]
    assert time.time() - success == pytest.approx(660, abs=60)
    size = finished_ten_minutes_ago.stat().st_size
    assert samples[("monitor_database_bytes", ())] == size
    assert ("monitor_wal_bytes", ()) in samples


def test_monitor_health_exit_code_follows_the_interval(run_monitor, finished_ten_minutes_ago):
    fresh = run_monitor("health", "--interval", "10m")
    assert fresh.returncode == 0, fresh.stderr
    assert "sweep 2 finished" in fresh.stdout
    stale = run_monitor("health", "--interval", "4m")
    assert stale.returncode == 1
    assert "the limit is 480s" in stale.stdout
    # The jitter adds to the allowance: 2 x 4m + 3m.
    assert run_monitor("health", "--interval", "4m", "--jitter", "3m").returncode == 0


def test_monitor_health_reads_the_interval_from_the_config(
    run_monitor, finished_ten_minutes_ago, tmp_path
):
    config = tmp_path / "monitor.toml"
    config.write_text('interval = "4m"\n')
    assert run_monitor("health", "--config", str(config)).returncode == 1
    config.write_text('interval = "6m"\n')
    assert run_monitor("health", "--config", str(config)).returncode == 0


def test_monitor_health_without_a_database_is_refused(run_monitor):
    answer = run_monitor("health")
    assert answer.returncode == 2
    assert "no database" in answer.stderr


def test_health_turns_503_when_the_sweeps_stop(spawn_monitor, run_monitor, db_path):
    port = free_port()
    collector = spawn_monitor("run", "--no-serve", "--interval", "2s")
    server = spawn_monitor("serve", "--port", str(port), "--interval", "2s", "--public")
    url = f"http://127.0.0.1:{port}"

    def health():
        try:
            return httpx.get(f"{url}/-/health", timeout=5)
        except httpx.TransportError:
            return None

    wait_for(lambda: (h := health()) is not None and h.status_code == 200, 60, "a fresh sweep")
    assert run_monitor("health", "--interval", "2s").returncode == 0
    assert run_monitor("health", "--server", url).returncode == 0
    collector.send_signal(signal.SIGTERM)
    assert collector.wait(timeout=10) == 0
    stale = wait_for(lambda: (h := health()) is not None and h.status_code == 503 and h, 30, "503")
    assert stale.json()["status"] == "stale"
    assert run_monitor("health", "--interval", "2s").returncode == 1
    # Datasette still answers: its own check passes while the collector's fails.
    assert run_monitor("health", "--server", url).returncode == 0
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0
    assert run_monitor("health", "--server", url).returncode == 1
