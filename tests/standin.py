"""A stand-in for the App Store feeds on 127.0.0.1, building charts in the real shapes.

It serves RSS v2 and the iTunes legacy RSS for every storefront, can inject a fault
into chosen storefronts, and can tell a test exactly what it served.
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import hostile
import play_payloads
from play_payloads import parse_form

V2_PATH = re.compile(r"^/api/v2/([a-z]{2})/apps/(top-free|top-paid)/(\d+)/apps\.json$")
LEGACY_PATH = re.compile(r"^/([a-z]{2})/rss/([a-z]+)/limit=(\d+)(?:/genre=(\d+))?/json$")
LEGACY_CHARTS = {
    "topfreeapplications": ("top-free", "iphone"),
    "toppaidapplications": ("top-paid", "iphone"),
    "topgrossingapplications": ("top-grossing", "iphone"),
    "topfreeipadapplications": ("top-free", "ipad"),
    "toppaidipadapplications": ("top-paid", "ipad"),
    "topgrossingipadapplications": ("top-grossing", "ipad"),
}
PLAY_PATH = "/_/PlayStoreUi/data/batchexecute"
PLAY_COLLECTIONS = {
    "top-free": "topselling_free",
    "top-paid": "topselling_paid",
    "top-grossing": "topgrossing",
}
# Names that must survive storage byte for byte.
TRICKY_NAMES = [
    '<script>alert("pwned")</script> & <b>bold</b>',
    "'; DROP TABLE rankings; --",
    "Ünïcødé 🚀 中文 العربية עברית",
    'Quote " Backslash \\ Tab\tEnd',
    "  leading and trailing spaces  ",
]


@dataclass(frozen=True)
class App:
    """One ranked app as the stand-in serves it."""

    app_id: str
    name: str
    developer: str


@dataclass
class StoreStandIn:
    """The stand-in server; use it as a context manager."""

    faults: dict[str, str] = field(default_factory=dict)
    version: int = 0
    hang_seconds: float = 5.0
    delay: float = 0.0
    requests: list[str] = field(default_factory=list)
    arrivals: list[float] = field(default_factory=list)
    in_flight: int = 0
    most_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    # For the hostile faults (see hostile.py).
    trickle_interval: float = 0.5
    huge_bytes: int = 200 * 2**20
    retry_after: str = "2"
    other_requests: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)
    # Requests after the first hold_after wait (up to a minute) until released is set.
    hold_after: int | None = None
    released: threading.Event = field(default_factory=threading.Event)
    # An app placed in the iPhone top-free charts: {storefront: its rank there}.
    placed: App | None = None
    placed_ranks: dict[str, int] = field(default_factory=dict)

    def __enter__(self) -> StoreStandIn:
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with stand_in.lock:
                    stand_in.requests.append(self.path)
                    number = len(stand_in.requests)
                stand_in.arrivals.append(time.monotonic())
                time.sleep(stand_in.delay)
                if stand_in.hold_after is not None and number > stand_in.hold_after:
                    stand_in.released.wait(60)
                if hostile.intercept(self, stand_in, None):
                    return
                status, headers, body = stand_in.answer(self.path)
                self.send_response(status)
                headers.setdefault("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)
                self.close_connection = int(headers["Content-Length"]) != len(body)

            def do_POST(self) -> None:
                stand_in.requests.append(self.path)
                stand_in.arrivals.append(time.monotonic())
                with stand_in.lock:
                    stand_in.in_flight += 1
                    stand_in.most_in_flight = max(stand_in.most_in_flight, stand_in.in_flight)
                time.sleep(stand_in.delay)
                form = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                try:
                    if hostile.intercept(self, stand_in, form):
                        return
                    status, headers, body = stand_in.answer_play(self.path, form)
                finally:
                    with stand_in.lock:
                        stand_in.in_flight -= 1
                self.send_response(status)
                for name, value in {**headers, "Content-Length": str(len(body))}.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.stop.clear()
        self.released.clear()
        self._server = _serve(Handler)
        # The other origin that redirect-away points to.
        self._other = _serve(hostile.other_handler(self))
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()  # ends the hostile handlers still trickling, streaming or waiting
        self.released.set()
        for server in (self._server, self._other):
            server.shutdown()
            server.server_close()

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def other_url(self) -> str:
        """The origin redirect-away sends clients to; it serves every chart healthy."""
        host, port = self._other.server_address[:2]
        return f"http://{host}:{port}"

    def fault_of(self, path: str) -> str | None:
        """Return the fault injected into the storefront a request path names, if any."""
        match = V2_PATH.match(path) or LEGACY_PATH.match(path)
        country = match.group(1) if match else parse_qs(urlsplit(path).query).get("gl", [""])[0]
        return self.faults.get(country)

    def chart(
        self, country: str, chart: str, device: str, genre: str | None, depth: int
    ) -> list[App]:
        """Return the apps this stand-in serves for a chart, in rank order."""
        seed = int(hashlib.sha256(f"{country}/{chart}/{device}/{genre}".encode()).hexdigest(), 16)
        pool = [1_400_000_000 + (seed + i * 7919) % 100_000 for i in range(depth + 10)]
        ids = list(dict.fromkeys(pool))[:depth]
        for step in range(self.version):
            a, b = (seed + step) % depth, (seed + 3 * step + 1) % depth
            ids[a], ids[b] = ids[b], ids[a]
        apps = [_app(country, app_id, rank) for rank, app_id in enumerate(ids, 1)]
        rank = self.placed_ranks.get(country)
        if self.placed and rank and (chart, device, genre) == ("top-free", "iphone", None):
            apps = [*apps[: rank - 1], self.placed, *apps[rank - 1 : depth - 1]]
        return apps

    def answer(self, path: str, faulty: bool = True) -> tuple[int, dict[str, str], bytes]:
        """Build the status, headers and body for one request path; faulty=False: no fault."""
        v2, legacy = V2_PATH.match(path), LEGACY_PATH.match(path)
        if v2:
            country, chart, depth = v2.group(1), v2.group(2), int(v2.group(3))
            device, genre = "iphone", None
        elif legacy and legacy.group(2) in LEGACY_CHARTS:
            country, depth, genre = legacy.group(1), int(legacy.group(3)), legacy.group(4)
            chart, device = LEGACY_CHARTS[legacy.group(2)]
        else:
            return 404, {"Content-Type": "text/plain"}, b"not found"
        fault = self.faults.get(country) if faulty else None
        if fault in ("500", "429", "html", "timeout"):
            return self._transport_fault(fault)
        if fault in hostile.BODY_FAULTS:

            def build_feed(cc: str, size: int) -> dict[str, Any]:
                apps = self.chart(cc, chart, device, genre, size)
                own_path = f"/{cc}{path[3:]}"  # a legacy path starts with its storefront
                return v2_feed(cc, chart, depth, apps) if v2 else legacy_feed(own_path, apps)

            return hostile.apple_answer(fault, country, depth, build_feed)
        apps = self.chart(country, chart, device, genre, depth)
        feed = v2_feed(country, chart, depth, apps) if v2 else legacy_feed(path, apps)
        body = json.dumps(_corrupt(feed, fault, bool(v2)), ensure_ascii=False).encode()
        headers = {"Content-Type": "application/json; charset=utf-8"}
        if fault == "malformed":
            body = body.replace(b'"feed":', b'"feed" ', 1)
        elif fault == "truncated":
            # The connection drops halfway through the promised body.
            headers["Content-Length"] = str(len(body))
            body = body[: len(body) // 2]
        return 200, headers, body

    def play_chart(self, country: str, chart: str, category: str | None, depth: int) -> list[App]:
        """Return the apps this stand-in serves for a Google Play chart, in rank order."""
        return [
            App(f"com.example.app{a.app_id}", a.name, a.developer)
            for a in self.chart(country, chart, "play", category, depth)
        ]

    def answer_play(
        self, path: str, form: bytes, faulty: bool = True
    ) -> tuple[int, dict[str, str], bytes]:
        """Build the answer to one batchexecute call, in the real shape or a fault's."""
        if not path.startswith(PLAY_PATH):
            return 404, {"Content-Type": "text/plain"}, b"not found"
        country = parse_qs(urlsplit(path).query)["gl"][0]
        collection, category, num = parse_form(form)
        fault = self.faults.get(country) if faulty else None
        if fault in ("500", "429", "timeout"):
            return self._transport_fault(fault)
        chart = {v: k for k, v in PLAY_COLLECTIONS.items()}[collection]
        category_or_none = None if category == "APPLICATION" else category

        def apps_for(size: int) -> list[play_payloads.App]:
            return [
                (a.app_id, a.name, a.developer)
                for a in self.play_chart(country, chart, category_or_none, size)
            ]

        apps = apps_for(num)
        if fault in hostile.PLAY_BODY_FAULTS:
            body = hostile.play_body(fault, apps_for, num, collection, category)
            return 200, {"Content-Type": "application/json; charset=utf-8"}, body
        faults = {
            "drifted": lambda: play_payloads.drifted_response(apps, collection, category),
            "rejected": play_payloads.rejected_response,
            "empty": lambda: play_payloads.empty_chart_response(collection, category),
            "rate-limited": play_payloads.rate_limited_response,
            "consent": play_payloads.consent_page,
            "captcha": play_payloads.captcha_page,
            "error-frame": hostile.play_error_frame,
        }
        build = faults.get(
            fault or "", lambda: play_payloads.build_response(apps, collection, category)
        )
        kind = "text/html" if fault in ("consent", "captcha") else "application/json"
        return 200, {"Content-Type": f"{kind}; charset=utf-8"}, build()

    def _transport_fault(self, fault: str) -> tuple[int, dict[str, str], bytes]:
        if fault == "500":
            return 500, {"Content-Type": "text/plain"}, b"Internal Server Error"
        if fault == "429":
            return 429, {"Retry-After": "1", "Content-Type": "text/plain"}, b"Too Many Requests"
        if fault == "timeout":
            time.sleep(self.hang_seconds)
        page = b"<!DOCTYPE html><html><body><h1>Service unavailable</h1></body></html>"
        return 200, {"Content-Type": "text/html"}, page


class _QuietServer(ThreadingHTTPServer):
    """Stays quiet when a client hangs up early, as clients that time out do."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


def _serve(handler: type[BaseHTTPRequestHandler]) -> _QuietServer:
    """Start a quiet server on a free port of 127.0.0.1, in a daemon thread."""
    server = _QuietServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _app(country: str, app_id: int, rank: int) -> App:
    name = TRICKY_NAMES[app_id % len(TRICKY_NAMES)] if app_id % 11 == 0 else f"App {app_id}"
    return App(str(app_id), f"{name} ({country})", f"Developer {app_id % 97}")


def v2_feed(country: str, chart: str, depth: int, apps: list[App]) -> dict[str, Any]:
    """Build an RSS v2 body as Apple shapes it."""
    url = f"https://rss.marketingtools.apple.com/api/v2/{country}/apps/{chart}/{depth}/apps.json"
    return {
        "feed": {
            "title": "Top Free Apps",
            "id": url,
            "links": [{"self": url}],
            "country": country,
            "updated": "Thu, 5 Oct 2023 19:57:28 +0000",
            "results": [
                {
                    "artistName": a.developer,
                    "id": a.app_id,
                    "name": a.name,
                    "releaseDate": "2021-08-14",
                    "kind": "apps",
                    "genres": [],
                    "artworkUrl100": f"https://is1-ssl.mzstatic.com/{a.app_id}/100x100bb.png",
                    "url": f"https://apps.apple.com/{country}/app/id{a.app_id}",
                }
                for a in apps
            ],
        }
    }


def legacy_feed(path: str, apps: list[App]) -> dict[str, Any]:
    """Build an iTunes legacy RSS body as Apple shapes it, one entry an object."""
    entries = [
        {
            "im:name": {"label": a.name},
            "im:image": [
                {
                    "label": f"https://is1.mzstatic.com/{a.app_id}/100x100bb.png",
                    "attributes": {"height": "100"},
                }
            ],
            "id": {
                "label": f"https://itunes.apple.com/app/id{a.app_id}",
                "attributes": {"im:id": a.app_id, "im:bundleId": f"com.example.{a.app_id}"},
            },
            "im:artist": {"label": a.developer},
            "link": {
                "attributes": {"rel": "alternate", "href": f"https://itunes.apple.com/id{a.app_id}"}
            },
        }
        for a in apps
    ]
    return {
        "feed": {
            "updated": {"label": "2018-01-09T19:59:03-07:00"},
            "link": [{"attributes": {"rel": "self", "href": f"https://itunes.apple.com{path}"}}],
            "entry": entries[0] if len(entries) == 1 else entries,
        }
    }


def _corrupt(feed: dict[str, Any], fault: str | None, v2: bool) -> dict[str, Any]:
    entries = feed["feed"]["results" if v2 else "entry"]
    if fault == "duplicate":
        entries[4] = entries[2]
    elif fault == "missing-id":
        del entries[6]["id"]
    return feed
