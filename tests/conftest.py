from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from standin import StoreStandIn

FIXTURES = Path(__file__).parent / "fixtures"


@pytest.fixture
def stand_in() -> Iterator[StoreStandIn]:
    with StoreStandIn() as server:
        yield server


@pytest.fixture
def run_monitor(stand_in: StoreStandIn, tmp_path: Path):
    """Run the real ``monitor`` command in a subprocess, pointed at the stand-in."""
    db = tmp_path / "rankings.db"

    def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "MONITOR_DB": str(db),
            "MONITOR_APPLE_RSS_URL": stand_in.url,
            "MONITOR_ITUNES_URL": stand_in.url,
            "MONITOR_PLAY_URL": stand_in.url,
        }
        return subprocess.run(
            [sys.executable, "-m", "monitor", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    run.db = db
    return run
