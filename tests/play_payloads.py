"""Google Play batchexecute answers in the real shapes, for tests and the stand-in server.

Every chart is built from the captured one: its own structure, with only the entries,
the chart token or a frame changed, and written the way Google writes it (the helpers
rebuild the capture byte for byte, which the tests check). The failure pages and the
rate-limit frame were not captured; they are written by hand around known markers.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

PLAY_FIXTURES = Path(__file__).parent / "fixtures" / "play"
CAPTURE = PLAY_FIXTURES / "MrAdex77_topfree-game_en-us_vyAe2_rtc.txt"
REQUEST_TEMPLATE = PLAY_FIXTURES / "facundoolano_list_vyAe2_freq_inner_template.txt"
RPC_ID = "vyAe2"
GUARD = ")]}'"
# Google writes these as \u escapes inside JSON strings; everything else non-ASCII is raw.
_ESCAPED = "=&<>\u2028\u2029\u200d"
# The smallest entry of the capture: a real shape that keeps 200-entry charts light.
TEMPLATE_APP = "com.vaultystudios.eightytwoand0"

# (app id, title, developer); Any, so that tests can send values of the wrong type.
App = tuple[Any, Any, Any]


def google_json(value: Any) -> str:
    """Write JSON the way batchexecute does: compact, raw UTF-8, a few characters escaped."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    for char in _ESCAPED:
        text = text.replace(char, f"\\u{ord(char):04x}")
    return text


@cache
def capture_bytes() -> bytes:
    """Return the captured top-free GAME answer, byte for byte."""
    return CAPTURE.read_bytes()


@cache
def _capture_chunks() -> tuple[str, ...]:
    """The capture's rt=c chunks (the JSON lines), in order."""
    lines = capture_bytes().decode("utf-8").split("\n")
    return tuple(line for line in lines if line.startswith("["))


def capture_frame() -> list[Any]:
    """Return the capture's vyAe2 frame."""
    return json.loads(_capture_chunks()[0])[0]


def capture_inner() -> Any:
    """Return a fresh copy of the capture's decoded payload, the whole chart."""
    return json.loads(capture_frame()[2])


def capture_token() -> str:
    """Return the capture's chart token, which names ``topselling_free_GAME``."""
    return capture_inner()[0][1][0][3][0]


@cache
def _skeleton() -> str:
    inner = capture_inner()
    inner[0][1][0][28][0] = []
    return json.dumps(inner)


@cache
def _entry_template() -> str:
    entries = capture_inner()[0][1][0][28][0]
    return json.dumps(next(e for e in entries if e[0][0][0] == TEMPLATE_APP))


def app_entry(app_id: Any, title: Any, developer: Any) -> list[Any]:
    """Build one raw entry ``e`` from a real one, with its id, title and developer replaced."""
    text = _entry_template()
    if isinstance(app_id, str):
        # The id recurs in the entry's links; keep them consistent with the new one.
        text = text.replace(TEMPLATE_APP, json.dumps(app_id)[1:-1])
    entry = json.loads(text)
    entry[0][0][0] = app_id
    entry[0][3] = title
    entry[0][14] = developer
    return entry


def sample_apps(count: int, prefix: str = "com.example.app") -> list[App]:
    """Make count distinct apps, e.g. ``("com.example.app1", "App 1", "Example Dev")``."""
    return [(f"{prefix}{n}", f"App {n}", "Example Dev") for n in range(1, count + 1)]


def _varint(number: int) -> bytes:
    out = bytearray()
    while True:
        low, number = number & 0x7F, number >> 7
        out.append(low | (0x80 if number else 0))
        if not number:
            return bytes(out)


def _field(tag: bytes, payload: bytes) -> bytes:
    return tag + _varint(len(payload)) + payload


def chart_token(name: str) -> str:
    """Build a chart token like the capture's, naming e.g. ``topselling_free_GAME``."""
    # The capture's protobuf, nested the same way: 37 { 2 { 2: 0, 76 { 1 { 1: name ...
    leaf = _field(b"\x0a", name.encode()) + b"\x10\x2d\x18\x03"
    middle = b"\x10\x00" + _field(b"\xe2\x04", _field(b"\x0a", leaf))
    return base64.b64encode(_field(b"\xaa\x02", _field(b"\x12", middle))).decode("ascii")


def build_inner(apps: Sequence[App], collection: str, category: str) -> Any:
    """Build a decoded payload: the capture's chart with these apps and this chart's token."""
    inner = json.loads(_skeleton())
    chart = inner[0][1][0]
    chart[3] = [chart_token(f"{collection}_{category}")]
    chart[28][0] = [app_entry(*app) for app in apps]
    return inner


def vyae2_frame(payload: str | None, error: Any = None) -> list[Any]:
    """Build the ``["wrb.fr","vyAe2",...]`` frame around a payload string."""
    return ["wrb.fr", RPC_ID, payload, None, None, error, "generic"]


def frames_body(frames: list[list[Any]], rt_c: bool = True) -> bytes:
    """Frame a first chunk of frames as batchexecute does, then the capture's trailing frames."""
    tail = [json.loads(chunk) for chunk in _capture_chunks()[1:-1]]
    if not rt_c:
        whole = frames + [frame for chunk in tail for frame in chunk]
        return f"{GUARD}\n\n{google_json(whole)}".encode()
    head = GUARD + "\n" + "".join(_rtc_chunk(google_json(c)) for c in [frames, *tail])
    end = json.loads(_capture_chunks()[-1])
    # The end frame states the whole body's length in bytes, its own digits included.
    size = 0
    while True:
        end[0][4] = size
        body = (head + _rtc_chunk(google_json(end)) + "\n").encode()
        if len(body) == size:
            return body
        size = len(body)


def _rtc_chunk(chunk: str) -> str:
    # The length counts UTF-16 code units, as JavaScript does, and the two newlines.
    return f"\n{len(chunk.encode('utf-16-le')) // 2 + 2}\n{chunk}"


def inner_body(inner: Any, rt_c: bool = True) -> bytes:
    """Wrap a decoded payload into a whole batchexecute answer."""
    return frames_body([vyae2_frame(google_json(inner))], rt_c)


def build_response(apps: Sequence[App], collection: str, category: str, rt_c: bool = True) -> bytes:
    """Build the answer for one chart listing these apps, in the real shape."""
    return inner_body(build_inner(apps, collection, category), rt_c)


def rejected_response(rt_c: bool = True) -> bytes:
    """Build the answer to a rejected call: the vyAe2 frame with a null payload."""
    return frames_body([vyae2_frame(None, [3])], rt_c)


def empty_chart_response(collection: str, category: str, rt_c: bool = True) -> bytes:
    """Build the answer for a chart that does not exist: ``inner[0][1]`` is null."""
    inner = build_inner([], collection, category)
    inner[0][1] = None
    return inner_body(inner, rt_c)


def drifted_response(apps: Sequence[App], collection: str, category: str) -> bytes:
    """Build a chart whose entries moved from ``[28]`` to ``[29]``, as a format change would."""
    inner = build_inner(apps, collection, category)
    chart = inner[0][1][0]
    chart.append(chart[28])
    chart[28] = None
    return inner_body(inner)


def rate_limited_response() -> bytes:
    """Build a 200 answer carrying PlayGatewayError; only the marker is known to be real."""
    error = [8, None, [["type.googleapis.com/com.google.play.gateway.proto.PlayGatewayError"]]]
    return frames_body([vyae2_frame(None, error)])


def consent_page() -> bytes:
    """Build the consent interstitial Google serves in some regions instead of an answer."""
    return (
        b'<!DOCTYPE html><html lang="en"><head><title>Before you continue to Google</title>'
        b'</head><body><form action="https://consent.google.com/save" method="POST">'
        b'<input type="hidden" name="continue" value="https://play.google.com/">'
        b"<button>Accept all</button></form></body></html>"
    )


def captcha_page() -> bytes:
    """Build the ``/sorry/`` captcha page Google serves to addresses it distrusts."""
    return (
        b"<html><head><title>https://play.google.com/_/PlayStoreUi/data/batchexecute</title>"
        b'</head><body><div id="infoDiv">Our systems have detected unusual traffic from your '
        b'computer network.</div><form action="https://www.google.com/sorry/index" method="post">'
        b"</form></body></html>"
    )


def parse_form(body: bytes) -> tuple[str, str, int]:
    """Read which chart an ``f.req`` request body asks for: collection, category, number."""
    outer = json.loads(parse_qs(body.decode("ascii"))["f.req"][0])
    rpc_id, inner_text, _, _ = outer[0][0]
    if rpc_id != RPC_ID:
        raise ValueError(f"not a {RPC_ID} request: {rpc_id!r}")
    inner = json.loads(inner_text)
    _, collection, category = inner[0][2]
    return collection, category, inner[0][1][0][1][1]


def request_template() -> Any:
    """Return the fixture's request template, decoded."""
    lines = REQUEST_TEMPLATE.read_text(encoding="utf-8").splitlines()
    return json.loads(next(line for line in lines if line.startswith("[")))
