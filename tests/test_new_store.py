"""A store is one module behind the typed Store interface: a third one, defined only here,
installed as a package would install it, collects end to end through the real command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from helpers import query

# The whole store: what README's "Adding a store" asks of a new module, and no more.
TINY_STORE = '''
"""Tiny Store: one chart, two storefronts, answering JSON lists."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType

import httpx

from monitor.charts import ChartRequest, Entry, Listing
from monitor.config import FetchPolicy
from monitor.errors import InvalidFeed
from monitor.politeness import Politeness
from monitor.sources.store import Endpoint, Endpoints, Store

BASE = Endpoint("tiny_url", "https://tiny.invalid", "Tiny Store")


class TinyStore:
    name = "tiny"
    title = "Tiny Store"
    charts = ("top-free",)
    devices = ()
    device_titles: Mapping[str, str] = MappingProxyType({})
    max_depth = 10
    endpoints = (BASE,)
    genre_example = "1 (Tools)"

    def storefronts(self) -> Mapping[str, str]:
        return {"fr": "France", "us": "United States"}

    def categories(self) -> Mapping[str, str]:
        return {"1": "Tools"}

    def category(self, text: str) -> str:
        return text

    def chart_genres(self) -> tuple[str | None, ...]:
        return (None, "1")

    def politeness(self, policy: FetchPolicy) -> Politeness:
        return Politeness(policy.concurrency)

    def http_request(
        self, client: httpx.AsyncClient, req: ChartRequest, endpoints: Endpoints
    ) -> httpx.Request:
        url = f"{endpoints[BASE.key].rstrip('/')}/{req.country}/top.json"
        return client.build_request("GET", url, params={"n": req.depth})

    def parse(self, req: ChartRequest, body: bytes) -> Listing:
        try:
            apps = json.loads(body)
        except ValueError:
            raise InvalidFeed("not JSON") from None
        if not isinstance(apps, list):
            raise InvalidFeed("not a list")
        return Listing([Entry(app["id"], app["name"], app["by"]) for app in apps], None)

    def app_url(self, app_id: str, country: str | None) -> str:
        return f"https://tiny.invalid/app/{app_id}"


STORE: Store = TinyStore()
'''
CHARTS = {
    "us": [
        {"id": "t1", "name": "Hammer", "by": "Tools Inc"},
        {"id": "t2", "name": "Saw", "by": ""},
    ],
    "fr": [{"id": "t2", "name": "Scie", "by": ""}, {"id": "t1", "name": "Marteau", "by": "T"}],
}


@pytest.fixture
def tiny_server() -> Iterator[tuple[str, list[str]]]:
    """Serve Tiny Store's charts on loopback; yield its URL and the paths asked for."""
    asked: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            url = urlsplit(self.path)
            asked.append(self.path)
            country = url.path.strip("/").split("/")[0]
            depth = int(parse_qs(url.query)["n"][0])
            body = json.dumps(CHARTS[country][:depth]).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", asked
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """Install Tiny Store as a package would: its module and its entry point."""
    site = tmp_path / "site"
    (site / "tiny_store-1.0.dist-info").mkdir(parents=True)
    (site / "tiny_store.py").write_text(TINY_STORE)
    (site / "tiny_store-1.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: tiny-store\nVersion: 1.0\n"
    )
    (site / "tiny_store-1.0.dist-info" / "entry_points.txt").write_text(
        "[monitor.stores]\ntiny = tiny_store:STORE\n"
    )
    return site


def monitor(site: Path, url: str, db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "MONITOR_TINY_URL": url, "MONITOR_DB": str(db)}
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_a_third_store_collects_end_to_end(installed, tiny_server, tmp_path):
    url, asked = tiny_server
    db = tmp_path / "r.db"
    result = monitor(installed, url, db, "collect", "--store", "tiny", "--depth", "2")
    assert result.returncode == 0, result.stderr
    assert "2 charts ok, 0 failed, 4 ranked entries" in result.stdout
    assert sorted(asked) == ["/fr/top.json?n=2", "/us/top.json?n=2"]
    rows = query(
        db,
        "SELECT store, country, chart, device, rank, app_id, app_name FROM rankings "
        "ORDER BY country, rank",
    )
    assert rows == [
        ("tiny", "fr", "top-free", None, 1, "t2", "Scie"),
        ("tiny", "fr", "top-free", None, 2, "t1", "Marteau"),
        ("tiny", "us", "top-free", None, 1, "t1", "Hammer"),
        ("tiny", "us", "top-free", None, 2, "t2", "Saw"),
    ]
    claim = monitor(installed, url, db, "claim", "Hammer", "--json")
    assert claim.returncode == 0, claim.stderr
    (answer,) = json.loads(claim.stdout)["charts"]
    assert (answer["store"], answer["number_one"], answer["top_10"]) == (
        "tiny",
        ["us"],
        ["fr", "us"],
    )


def test_what_a_third_store_lacks_is_a_usage_error(installed, tiny_server, tmp_path):
    url, asked = tiny_server
    db = tmp_path / "r.db"
    chart = monitor(installed, url, db, "collect", "--store", "tiny", "--chart", "top-paid")
    assert chart.returncode == 2
    assert "chart on Tiny Store must be one of top-free, not 'top-paid'" in chart.stderr
    device = monitor(installed, url, db, "collect", "--store", "tiny", "--device", "ipad")
    assert device.returncode == 2
    assert "device applies to App Store only, not to Tiny Store" in device.stderr
    deep = monitor(installed, url, db, "collect", "--store", "tiny", "--depth", "11")
    assert deep.returncode == 2 and "depth must be between 1 and 10 for Tiny Store" in deep.stderr
    assert asked == []


def test_the_help_and_the_lists_know_a_third_store(installed, tiny_server, tmp_path):
    url, _ = tiny_server
    db = tmp_path / "r.db"
    help_text = " ".join(monitor(installed, url, db, "collect", "--help").stdout.split())
    assert "[apple|play|tiny]" in help_text
    assert "10 on Tiny Store" in help_text
    assert "--tiny-url URL Base URL of Tiny Store (or MONITOR_TINY_URL)." in help_text
    listed = monitor(installed, url, db, "countries", "--store", "tiny")
    assert listed.stdout == "fr\tFrance\nus\tUnited States\n"


@pytest.mark.parametrize(
    ("target", "refusal"),
    [
        ("tiny_store:BASE", "tiny_store:BASE (monitor.stores tiny) is not a Store"),
        ("monitor.sources.play:STORE", "monitor.sources.play:STORE names a store that exists"),
    ],
)
def test_an_installed_entry_point_that_is_no_new_store_is_refused(installed, target, refusal):
    (installed / "tiny_store-1.0.dist-info" / "entry_points.txt").write_text(
        f"[monitor.stores]\ntiny = {target}\n"
    )
    result = monitor(installed, "http://127.0.0.1:9", installed / "r.db", "countries")
    assert result.returncode == 1
    assert refusal in result.stderr


def mypy(path: Path, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--strict", str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
        env={**os.environ, "MYPY_CACHE_DIR": str(tmp_path / "mypy-cache")},
    )


def test_mypy_accepts_the_store_and_refuses_one_missing_a_method(installed, tmp_path):
    complete = mypy(installed / "tiny_store.py", tmp_path)
    assert complete.returncode == 0, complete.stdout
    source = TINY_STORE.replace("    def app_url(", "    def page_url(")
    incomplete = installed / "incomplete_store.py"
    incomplete.write_text(textwrap.dedent(source))
    refused = mypy(incomplete, tmp_path)
    assert refused.returncode == 1
    assert 'Incompatible types in assignment (expression has type "TinyStore"' in refused.stdout
    assert '"TinyStore" is missing following "Store" protocol member:' in refused.stdout
    assert "app_url" in refused.stdout
