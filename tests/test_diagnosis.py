"""An operator's view: failures grouped by store and cause, and a hint said once."""

from __future__ import annotations

import json
import signal

import pytest
from test_service import finished_sweeps

from conftest import free_port, wait_for
from monitor.diagnosis import storefront_list


@pytest.mark.parametrize(
    ("failed", "attempted", "said"),
    [
        (["us"], ["us", "gb"], "1 storefront: us"),
        (["us", "gb"], ["gb", "us"], "all 2 storefronts"),
        (["jp", "fr", "de"], ["de", "fr", "jp", "us"], "3 storefronts: de fr jp"),
        ([f"c{i:02d}" for i in range(1, 40)], [f"c{i:02d}" for i in range(40)], "39 of 40 "),
    ],
)
def test_storefronts_are_listed_compactly(failed, attempted, said):
    assert storefront_list(failed, attempted).startswith(said)
    if len(failed) == 39:
        assert storefront_list(failed, attempted).endswith("all but c00")


@pytest.fixture
def no_network(monitor_env):
    """Point every store at a loopback port where nothing listens."""
    closed = f"http://127.0.0.1:{free_port()}"
    for store in ("MONITOR_APPLE_RSS_URL", "MONITOR_ITUNES_URL", "MONITOR_PLAY_URL"):
        monitor_env[store] = closed
    return closed


def test_status_groups_a_whole_store_failing_and_says_what_to_check(no_network, run_monitor):
    assert run_monitor("collect", "--retries", "0").returncode == 1
    result = run_monitor("status")
    assert result.returncode == 0, result.stderr
    assert "apple transport: 175 failed in all 175 storefronts" in result.stdout
    assert result.stdout.count("failed in") == 1
    assert (
        "Hint: every apple chart failed (transport): check the network, the base URL "
        "(MONITOR_APPLE_RSS_URL and MONITOR_ITUNES_URL) and any proxy (HTTPS_PROXY)."
    ) in result.stdout
    state = json.loads(run_monitor("status", "--json").stdout)
    (group,) = state["failures"]
    assert (group["store"], group["kind"], group["failures"]) == ("apple", "transport", 175)
    assert len(group["storefronts"]) == 175 and group["storefronts"] == sorted(group["storefronts"])
    assert no_network.split("//")[1] in group["last_error"]
    assert set(state["hints"]) == {"apple"}
    assert state["sweeps"][0]["charts_failed"] == 175


def test_status_gives_no_hint_when_some_charts_of_the_store_were_stored(run_monitor, stand_in):
    stand_in.faults = {"jp": "500", "fr": "500", "de": "duplicate"}
    run_monitor("collect", "--country", "us,jp,fr,de", "--retries", "0")
    result = run_monitor("status")
    assert "apple http_status: 2 failed in 2 storefronts: fr jp" in result.stdout
    assert "apple invalid_feed: 1 failed in 1 storefront: de" in result.stdout
    assert "Hint" not in result.stdout
    assert json.loads(run_monitor("status", "--json").stdout)["hints"] == {}


def test_the_service_logs_a_few_failures_and_the_hint_once(no_network, spawn_monitor, db_path):
    service = spawn_monitor("run", "--no-serve", "--interval", "1s", "--retries", "0")
    wait_for(lambda: finished_sweeps(db_path) >= 3, 60, "three sweeps")
    service.send_signal(signal.SIGTERM)
    _, log = service.communicate(timeout=10)
    sweeps = log.count("charts ok, 175 failed")
    assert sweeps >= 3
    assert log.count("failed: apple/") == 3 * sweeps
    assert log.count("apple: 172 more charts failed (transport) in ") == sweeps
    assert log.count("every apple chart failed (transport): check the network") == 1
