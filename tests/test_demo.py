"""monitor demo: a weekend to try every page on, without network, marked as a demo, and
never written over a database of the user's."""

from __future__ import annotations

import asyncio
import hashlib
import os
import subprocess
import sys

import pytest

from helpers import query
from monitor import demo, publish, schema


def monitor(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo") / "demo.db"
    result = monitor("demo", "--db", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"demo database at {path}: 72 hourly sweeps, 12,597 charts")
    return path


def test_the_demo_tells_the_claim_it_was_built_for(built):
    try_it = monitor("claim", "Example AI", "--db", str(built))
    assert try_it.returncode == 0, try_it.stderr
    assert "No. 1 in 50: " in try_it.stdout
    assert "observed in 175 countries, not observed in 0" in try_it.stdout
    for country in demo.FAILING:
        assert f"  {country}: stale: last fetch failed at 2025-01-26T23:0" in try_it.stdout


def test_datasette_says_it_is_a_demo_and_answers_by_a_local_name(built):
    ds = publish.datasette(built, publish.Listen("127.0.0.1", 0))
    try:
        home = asyncio.run(ds.client.get("/")).text
        assert "DEMO DATA, not observations" in home
        summary = asyncio.run(
            ds.client.get("/demo/claim_summary.json?_shape=array&app=エグザンプル&at=")
        ).json()
    finally:
        publish.close(ds)
    (chart,) = summary
    counts = [chart[k] for k in ("number_one", "top_10", "top_100", "observed", "stale")]
    assert counts == [50, 110, 150, 175, 3]
    assert chart["at"] == "2025-01-26T23:06:00Z"
    assert query(built, "SELECT COUNT(*) FROM sweeps WHERE status = 'finished'") == [(72,)]


def fingerprint(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_it_never_writes_over_a_database_that_is_not_a_demo(tmp_path):
    real = tmp_path / "rankings.db"
    schema.open_db(real).close()
    before = fingerprint(real)
    refused = monitor("demo", "--db", str(real))
    assert refused.returncode == 2
    assert "exists and is not a demo database" in refused.stderr
    assert fingerprint(real) == before
    other = tmp_path / "notes.txt"
    other.write_text("mine")
    assert monitor("demo", "--db", str(other)).returncode == 2
    assert other.read_text() == "mine"


def test_it_never_writes_to_monitor_db(tmp_path):
    target = tmp_path / "new.db"
    refused = monitor("demo", "--db", str(target), env={"MONITOR_DB": str(target)})
    assert refused.returncode == 2 and "is MONITOR_DB" in refused.stderr
    assert not target.exists()
