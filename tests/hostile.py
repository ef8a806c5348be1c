"""Hostile answers for the stand-in: transport tricks, oversized and malformed bodies.

A test names one of ``TRANSPORT_FAULTS`` or ``BODY_FAULTS`` in ``StoreStandIn.faults``.
The stand-in's handlers hand every request to ``intercept`` first, which serves the
transport faults and the redirect targets; its body builders call ``apple_answer`` and
``play_body`` for the body faults. Every loop here ends when the client hangs up or the
stand-in's stop event is set, so no thread outlives the stand-in for long.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import select
import socket
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any

import play_payloads

if TYPE_CHECKING:
    from standin import StoreStandIn

Answer = tuple[int, dict[str, str], bytes]

JSON = "application/json; charset=utf-8"
# Where redirect-home sends a client; the stand-in serves the original path under it.
MOVED = "/moved"
OTHER_STOREFRONT = "zz"
BLOCK = 64 * 1024
BOMB_SIZE = 512 * 2**20
DEPTH = 100_000
HUGE_NUMBER = "9" * 5_000
LONG_NAME_SIZE = 2**20
# How often a blocked write or a wait looks at the stop event and the client.
POLL = 0.1
# The invalid bytes replace three ASCII characters after the body is built, so that
# Content-Length and batchexecute's length prefixes still count the body right.
BAD_BYTES = b"\xff\xfe\xfa"
BAD_MARK = "~^~"
# A string that a body's JSON carries where a number too long for json.dumps goes.
NUMBER_MARK = "~#~"
# Where a name is to end in a lone UTF-16 surrogate, which JSON text can carry as an
# escape (a name cut between the two halves of an emoji's pair), and no UTF-8 can hold.
SURROGATE_MARK = "~$$$$~"  # as long as the escape, which takes its place
FILLER_HEAD = b'{"feed": {"results": ['
# Where build_inner puts a Play chart's entries; an entry's score is at e[0][4][1].
PLAY_ENTRIES = (0, 1, 0, 28, 0)


@dataclass
class Exchange:
    """One request being answered by hand: the handler, its stand-in and a POST's body."""

    handler: BaseHTTPRequestHandler
    stand_in: StoreStandIn
    form: bytes | None

    def __post_init__(self) -> None:
        # A timeout lets a write to a client that stopped reading look at the stop event.
        self.sock.settimeout(POLL)

    @property
    def sock(self) -> socket.socket:
        """The connection's socket."""
        return self.handler.connection

    def healthy(self, path: str | None = None) -> Answer:
        """Build what a healthy stand-in answers to this request, or to another path."""
        path = path or self.handler.path
        if self.form is None:
            return self.stand_in.answer(path, faulty=False)
        return self.stand_in.answer_play(path, self.form, faulty=False)

    def head(self, status: int, headers: dict[str, str], version: str | None = None) -> bytes:
        """Build a status line and header block as BaseHTTPRequestHandler writes them."""
        reason = self.handler.responses[status][0]
        lines = [f"{version or self.handler.protocol_version} {status} {reason}"]
        lines += [f"Server: {self.handler.version_string()}"]
        lines += [f"Date: {self.handler.date_time_string()}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """Send a whole response at once, its Content-Length the body's."""
        headers = {**headers, "Content-Length": str(len(body))}
        self.send(self.head(status, headers) + body)

    def send(self, data: bytes) -> bool:
        """Write data; False if the stand-in stopped first."""
        view = memoryview(data)
        while view:
            if self.stand_in.stop.is_set():
                return False
            try:
                view = view[self.sock.send(view) :]
            except TimeoutError:
                continue  # the client is not reading; look at the stop event again
        return True

    def stream(self, blocks: Iterable[bytes]) -> None:
        """Write blocks until they run out, the client hangs up or the stand-in stops."""
        for block in blocks:
            if not self.send(block):
                return

    def trickle(self, data: bytes) -> bool:
        """Write data one byte per trickle interval; False if the client or stand-in quit."""
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(data)):
            if not self.send(data[i : i + 1]):
                return False
            if self.stand_in.stop.wait(self.stand_in.trickle_interval) or self.gone():
                return False
        return True

    def gone(self) -> bool:
        """Whether the client has hung up: its end of the connection reads as closed."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            return bool(readable) and not self.sock.recv(1, socket.MSG_PEEK)
        except OSError:
            return True


def intercept(handler: BaseHTTPRequestHandler, stand_in: StoreStandIn, form: bytes | None) -> bool:
    """Answer a request here if it is a redirect target or has a transport fault."""
    path = handler.path
    if path.startswith(MOVED + "/"):
        serve = _moved
    else:
        fault = stand_in.fault_of(path)
        if fault not in TRANSPORT:
            return False
        serve = TRANSPORT[fault]
    # A client that gives up hangs up mid-answer; that is the point of these faults.
    with contextlib.suppress(ConnectionError):
        serve(Exchange(handler, stand_in, form))
    handler.close_connection = True
    return True


def other_handler(stand_in: StoreStandIn) -> type[BaseHTTPRequestHandler]:
    """Build the handler of the other origin redirect-away points to: always healthy."""

    class OtherOrigin(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._answer(None)

        def do_POST(self) -> None:
            self._answer(self.rfile.read(int(self.headers.get("Content-Length", 0))))

        def _answer(self, form: bytes | None) -> None:
            stand_in.other_requests.append(self.path)
            exchange = Exchange(self, stand_in, form)
            with contextlib.suppress(ConnectionError):
                exchange.respond(*exchange.healthy())
            self.close_connection = True

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return OtherOrigin


def _moved(ex: Exchange) -> None:
    """Serve a redirect-home target exactly as its original path, without the fault."""
    ex.respond(*ex.healthy(ex.handler.path[len(MOVED) :]))


def _reset(ex: Exchange) -> None:
    """Abort the connection with a RST, the request read and never answered."""
    # Lingering on with a zero timeout makes close() send RST instead of FIN.
    ex.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    ex.handler.rfile.close()  # the reader holds the socket open past close() otherwise
    ex.sock.close()


def _silent(ex: Exchange) -> None:
    """Send nothing until the client hangs up, the stand-in stops or hang_seconds pass."""
    deadline = time.monotonic() + ex.stand_in.hang_seconds
    while not ex.gone() and (left := deadline - time.monotonic()) > 0:
        if ex.stand_in.stop.wait(min(POLL, left)):
            return


def _split_head(ex: Exchange) -> tuple[bytes, bytes, bytes]:
    """The healthy answer as its status line, header block and body."""
    status, headers, body = ex.healthy()
    head = ex.head(status, {**headers, "Content-Length": str(len(body))})
    end = head.index(b"\r\n") + 2
    return head[:end], head[end:], body


def _trickle_status(ex: Exchange) -> None:
    """Trickle the status line, then send the rest of the healthy answer at once."""
    status_line, headers, body = _split_head(ex)
    if ex.trickle(status_line):
        ex.send(headers + body)


def _trickle_headers(ex: Exchange) -> None:
    """Send the status line, trickle the header block, then send the body."""
    status_line, headers, body = _split_head(ex)
    if ex.send(status_line) and ex.trickle(headers):
        ex.send(body)


def _trickle_body(ex: Exchange) -> None:
    """Send the head with the real Content-Length, then trickle the body."""
    status_line, headers, body = _split_head(ex)
    if ex.send(status_line + headers):
        ex.trickle(body)


def _filler(size: int | None) -> Iterator[bytes]:
    """JSON-ish filler in blocks: an opened feed, then spaces; endless if size is None."""
    first = FILLER_HEAD + b" " * (BLOCK - len(FILLER_HEAD))
    blocks = itertools.chain([first], itertools.repeat(b" " * BLOCK))
    if size is None:
        yield from blocks
        return
    for block in blocks:
        if size <= 0:
            return
        yield block[:size]
        size -= len(block)


def _huge(ex: Exchange) -> None:
    """Announce and really send huge_bytes of filler."""
    size = ex.stand_in.huge_bytes
    if ex.send(ex.head(200, {"Content-Type": JSON, "Content-Length": str(size)})):
        ex.stream(_filler(size))


def _huge_unannounced(ex: Exchange) -> None:
    """Send huge_bytes of filler delimited only by closing the connection."""
    if ex.send(ex.head(200, {"Content-Type": JSON, "Connection": "close"})):
        ex.stream(_filler(ex.stand_in.huge_bytes))


def _endless(ex: Exchange) -> None:
    """Send a chunked body whose last chunk never comes."""
    # Chunked coding is HTTP/1.1; the stand-in otherwise speaks HTTP/1.0.
    head = ex.head(200, {"Content-Type": JSON, "Transfer-Encoding": "chunked"}, "HTTP/1.1")
    if ex.send(head):
        ex.stream(b"%x\r\n%s\r\n" % (len(block), block) for block in _filler(None))


_BOMB_LOCK = threading.Lock()


def gzip_bomb(layers: int) -> bytes:
    """Return 512 MiB of spaces gzipped layers times over, built once per process."""
    with _BOMB_LOCK:
        return _bomb(layers)


@cache
def _bomb(layers: int) -> bytes:
    """Build the bomb; callers hold the lock, so that it is built once."""
    if layers > 1:
        return _gzip([_bomb(layers - 1)])
    # The same 1 MiB block 512 times: the 512 MiB never sit in memory.
    return _gzip(itertools.repeat(b" " * 2**20, BOMB_SIZE // 2**20))


def _gzip(blocks: Iterable[bytes]) -> bytes:
    """Gzip a stream of blocks."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [compressor.compress(block) for block in blocks]
    return b"".join([*parts, compressor.flush()])


def _gzip_answer(ex: Exchange, layers: int) -> None:
    """Send a gzip bomb with an honest Content-Encoding and Content-Length."""
    encoding = ", ".join(["gzip"] * layers)
    ex.respond(200, {"Content-Type": JSON, "Content-Encoding": encoding}, gzip_bomb(layers))


def _bad_gzip(ex: Exchange) -> None:
    """Send the healthy body uncompressed under Content-Encoding: gzip."""
    status, headers, body = ex.healthy()
    ex.respond(status, {**headers, "Content-Encoding": "gzip"}, body)


def _redirect(ex: Exchange, location: str) -> None:
    """Redirect; 307 for a POST, so that a client following it keeps the method and body."""
    status = 302 if ex.form is None else 307
    ex.respond(status, {"Location": location, "Content-Type": "text/plain"}, b"Moved")


def _too_many_requests(ex: Exchange) -> None:
    """Answer 429 asking for an hour's wait."""
    ex.respond(429, {"Retry-After": "3600", "Content-Type": "text/plain"}, b"Too Many Requests")


def _unavailable(ex: Exchange) -> None:
    """Answer 503 with the stand-in's Retry-After."""
    headers = {"Retry-After": ex.stand_in.retry_after, "Content-Type": "text/plain"}
    ex.respond(503, headers, b"Service Unavailable")


TRANSPORT: dict[str, Callable[[Exchange], None]] = {
    "reset": _reset,
    "silent": _silent,
    "trickle-status": _trickle_status,
    "trickle-headers": _trickle_headers,
    "trickle-body": _trickle_body,
    "huge": _huge,
    "huge-unannounced": _huge_unannounced,
    "endless": _endless,
    "gzip-bomb": lambda ex: _gzip_answer(ex, 1),
    "gzip-bomb-nested": lambda ex: _gzip_answer(ex, 2),
    "bad-gzip": _bad_gzip,
    "redirect-away": lambda ex: _redirect(ex, ex.stand_in.other_url + ex.handler.path),
    "redirect-home": lambda ex: _redirect(ex, MOVED + ex.handler.path),
    "redirect-loop": lambda ex: _redirect(ex, ex.handler.path),
    "retry-after-long": _too_many_requests,
    "503-retry-after": _unavailable,
}
TRANSPORT_FAULTS = frozenset(TRANSPORT)
BODY_FAULTS = frozenset(
    {
        "deep-nesting",
        "huge-number",
        "invalid-utf8",
        "too-many",
        "long-names",
        "non-numeric-id",
        "other-storefront",
        "lone-surrogate",
    }
)
# A Play answer names no storefront, so a Play storefront with this fault stays healthy.
PLAY_BODY_FAULTS = BODY_FAULTS - {"other-storefront"}


def apple_answer(fault: str, country: str, depth: int, feed: Callable[[str, int], Any]) -> Answer:
    """Build an App Store answer with a body fault; feed(country, size) builds a healthy one."""
    if fault == "deep-nesting":
        body = b'{"feed": ' + b"[" * DEPTH + b"]" * DEPTH + b"}"
        return 200, {"Content-Type": JSON}, body
    if fault == "other-storefront":
        data = feed(OTHER_STOREFRONT, depth)
    else:
        data = feed(country, depth * 10 if fault == "too-many" else depth)
    entries = _apple_entries(data)
    if entries:
        one = entries[len(entries) // 2]
        if fault == "huge-number":
            _set_apple_id(entries[0], NUMBER_MARK)
        elif fault == "invalid-utf8":
            _set_apple_name(one, _marked(_apple_name(one)))
        elif fault == "long-names":
            _set_apple_name(one, _long_name())
        elif fault == "non-numeric-id":
            _set_apple_id(one, "abc123")
        elif fault == "lone-surrogate":
            _set_apple_name(one, _apple_name(one) + SURROGATE_MARK)
    body = _unmark(json.dumps(data, ensure_ascii=False)).encode()
    return 200, {"Content-Type": JSON}, body.replace(BAD_MARK.encode(), BAD_BYTES)


def _apple_entries(data: Any) -> list[dict[str, Any]]:
    """The entries of an RSS v2 or legacy feed; a legacy feed's lone entry is an object."""
    feed = data["feed"]
    entries = feed["results"] if "results" in feed else feed["entry"]
    return entries if isinstance(entries, list) else [entries]


def _apple_name(entry: dict[str, Any]) -> str:
    """An entry's app name, in either feed."""
    name: str = entry["im:name"]["label"] if "im:name" in entry else entry["name"]
    return name


def _set_apple_name(entry: dict[str, Any], name: str) -> None:
    """Replace an entry's app name, in either feed."""
    if "im:name" in entry:
        entry["im:name"]["label"] = name
    else:
        entry["name"] = name


def _set_apple_id(entry: dict[str, Any], app_id: str) -> None:
    """Replace an entry's app id where the parser reads it, in either feed."""
    if "im:name" in entry:
        entry["id"]["attributes"]["im:id"] = app_id
    else:
        entry["id"] = app_id


def play_body(
    fault: str, apps_for: Callable[[int], list[Any]], num: int, collection: str, category: str
) -> bytes:
    """Build a batchexecute answer with a body fault; apps_for(size) lists a healthy chart."""
    if fault == "deep-nesting":
        payload = "[" * DEPTH + "]" * DEPTH
        return play_payloads.frames_body([play_payloads.vyae2_frame(payload)])
    apps = apps_for(num * 10 if fault == "too-many" else num)
    if apps:
        one = len(apps) // 2
        app_id, name, developer = apps[one]
        if fault == "invalid-utf8":
            apps[one] = (app_id, _marked(name), developer)
        elif fault == "long-names":
            apps[one] = (app_id, _long_name(), developer)
        elif fault == "non-numeric-id":
            apps[one] = ("not a package!", name, developer)
        elif fault == "lone-surrogate":
            apps[one] = (app_id, name, developer + SURROGATE_MARK)
    inner = play_payloads.build_inner(apps, collection, category)
    if apps and fault == "huge-number":
        entries = inner
        for step in PLAY_ENTRIES:
            entries = entries[step]
        entries[0][0][4][1] = NUMBER_MARK  # the first app's score
    # The number goes into the payload string, whose length the frames then count.
    payload = _unmark(play_payloads.google_json(inner))
    body = play_payloads.frames_body([play_payloads.vyae2_frame(payload)])
    return body.replace(BAD_MARK.encode(), BAD_BYTES)


def play_error_frame() -> bytes:
    """A Google Play answer with no chart, only an error frame whose status is a text a
    million characters long, with a lone surrogate in it."""
    status = f"oops{SURROGATE_MARK}" + "x" * 1_000_000
    body = play_payloads.frames_body([["er", None, None, None, None, status]])
    return body.replace(SURROGATE_MARK.encode(), rb"\ud800")


def _marked(name: str) -> str:
    """A name with the invalid-bytes mark inside it."""
    return name[:3] + BAD_MARK + name[3:]


def _long_name() -> str:
    """An app name 1 MiB long, in characters and in UTF-8 bytes."""
    return ("Long name " * (LONG_NAME_SIZE // 10 + 1))[:LONG_NAME_SIZE]


def _unmark(text: str) -> str:
    """Put the bare 5,000-digit number where JSON text carries the number mark, and the
    escape of a lone surrogate where it carries the surrogate mark."""
    return text.replace(json.dumps(NUMBER_MARK), HUGE_NUMBER).replace(SURROGATE_MARK, r"\ud800")
