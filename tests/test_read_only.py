"""status, claim and serve read a database on a read-only mount.

The mount is real: a read-only bind mount in a mount namespace of the test's own
(``unshare``), where even root cannot write. Without unshare the tests are skipped,
except under CI, where they fail.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys

import httpx
import pytest

from conftest import free_port, needs_mount_namespace, wait_for

pytestmark = needs_mount_namespace


def read_only(folder, *args: str) -> list[str]:
    """A command line that runs monitor with folder mounted read-only over itself."""
    inner = (
        f"mount --bind {shlex.quote(str(folder))} {shlex.quote(str(folder))} && "
        f"mount -o remount,bind,ro {shlex.quote(str(folder))} && "
        f"exec {shlex.quote(sys.executable)} -m monitor " + " ".join(map(shlex.quote, args))
    )
    return ["unshare", "-rm", "sh", "-c", inner]


@pytest.fixture
def collected(run_monitor, stand_in):
    assert run_monitor("collect", "--country", "us,jp").returncode == 0
    return run_monitor.db


def run_read_only(folder, env, *args):
    return subprocess.run(read_only(folder, *args), env=env, capture_output=True, text=True)


def test_status_and_claim_read_a_read_only_mount(collected, monitor_env, stand_in):
    before = sorted(os.listdir(collected.parent))
    status = run_read_only(collected.parent, monitor_env, "status")
    assert status.returncode == 0, status.stderr
    assert "2 chart observations" in status.stdout
    assert "finished" in status.stdout

    top = stand_in.chart("us", "top-free", "iphone", None, 100)[0]
    claim = run_read_only(collected.parent, monitor_env, "claim", "--json", top.app_id)
    assert claim.returncode == 0, claim.stderr
    assert json.loads(claim.stdout)["charts"][0]["number_one"] == ["us"]
    assert sorted(os.listdir(collected.parent)) == before  # nothing was written beside it


def test_serve_publishes_a_read_only_mount(collected, monitor_env):
    port = free_port()
    server = subprocess.Popen(
        read_only(collected.parent, "serve", "--port", str(port)),
        env=monitor_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def rows():
            try:
                url = f"http://127.0.0.1:{port}/rankings/rankings.json?_shape=array&snapshot_id=1&_sort=rank&_size=3"
                return httpx.get(url, timeout=10).json()
            except httpx.TransportError:
                return None

        answer = wait_for(rows, 30, "Datasette on the read-only mount")
        assert [row["rank"] for row in answer] == [1, 2, 3]
    finally:
        server.send_signal(signal.SIGTERM)
        _, err = server.communicate(timeout=10)
    assert server.returncode == 0, err
