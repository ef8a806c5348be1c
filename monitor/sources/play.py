"""Google Play's top charts, read through the store's own ``batchexecute`` RPC, vyAe2.

There is no public feed. The web store asks for a collection (``topselling_free``, ...)
within a category, and answers with a JSON string inside a JSON frame inside a guarded,
sometimes length-framed body. Positions in nested arrays are the only schema, and they
have drifted before (2019, 2022), so every path is checked and a break names the step
where it broke. A failure is always an error, never an empty chart.

``play_request.json`` is the request's inner JSON as sent by the MIT-licensed
facundoolano/google-play-scraper (lib/list.js at df5df78), with its placeholders.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from types import MappingProxyType
from typing import Any
from urllib.parse import quote

import httpx

from monitor.charts import ChartRequest, Entry, Listing
from monitor.config import FetchPolicy
from monitor.errors import Blocked, Drifted, InvalidFeed, RateLimited
from monitor.politeness import Politeness
from monitor.reference import play_categories, storefronts_175
from monitor.sources.payload import dig, loads, text_or_none
from monitor.sources.store import Endpoint, Endpoints, Store

BASE = Endpoint("play_url", "https://play.google.com", "Google Play")
# Google Play publishes no list of the countries its charts serve: its storefronts are
# the 175 App Store storefronts but mainland China (cn), where Google Play does not operate.
UNAVAILABLE = frozenset({"cn"})
RPC_ID = "vyAe2"
COLLECTIONS = {
    "top-free": "topselling_free",
    "top-paid": "topselling_paid",
    "top-grossing": "topgrossing",
}
OVERALL_CATEGORY = "APPLICATION"
_GUARD = ")]}'"
_RATE_LIMIT_MARKER = "PlayGatewayError"
# Lowercase markers of the pages Google shows instead of an answer, with their kind.
_BLOCK_MARKERS = (
    ("consent.google.com", "consent"),
    ("before you continue", "consent"),
    ("/sorry/", "captcha"),
    ("unusual traffic", "captcha"),
)
# Android accepts only ASCII Java identifiers, at least two of them, as package names.
_PACKAGE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_ECHO = re.compile(rb"(topselling_free|topselling_paid|topgrossing)[A-Za-z0-9_]*")
_ENTRIES = (0, 1, 0, 28, 0)
_TOKEN = (0, 1, 0, 3, 0)
_DESCRIPTIONS = {
    type(None): "null",
    bool: "a boolean",
    int: "a number",
    float: "a number",
    str: "a string",
    dict: "an object",
}


def collection(req: ChartRequest) -> str:
    """Name the Play collection of a chart, e.g. ``topselling_free``."""
    return COLLECTIONS[req.chart]


def category(req: ChartRequest) -> str:
    """Name the Play category of a chart; no genre means the overall apps chart."""
    return req.genre or OVERALL_CATEGORY


@cache
def _template() -> Any:
    text = files("monitor.sources").joinpath("play_request.json").read_text(encoding="utf-8")
    return json.loads(text)


def request_inner(collection: str, category: str, num: int) -> str:
    """Fill the vyAe2 request template: which list, in which category, how many entries."""
    inner = copy.deepcopy(_template())
    inner[0][1][0][1][1] = num  # the 0 in [[8,[20,0]], ...]
    inner[0][2][1:] = [collection, category]  # [2, "${collection}", "${category}"]
    return json.dumps(inner, separators=(",", ":"))


def request_form(req: ChartRequest) -> str:
    """Build the ``f.req`` form value that asks for one chart."""
    inner = request_inner(collection(req), category(req), req.depth)
    return json.dumps([[[RPC_ID, inner, None, "generic"]]], separators=(",", ":"))


class GooglePlay:
    """Google Play: one request at a time, --play-interval apart; no devices."""

    name = "play"
    title = "Google Play"
    charts = tuple(COLLECTIONS)
    devices = ()
    device_titles: Mapping[str, str] = MappingProxyType({})
    max_depth = 200
    endpoints = (BASE,)
    genre_example = "GAME (Games)"

    def storefronts(self) -> Mapping[str, str]:
        """Return the App Store's storefronts but those where Google Play does not operate."""
        return {cc: name for cc, name in storefronts_175().items() if cc not in UNAVAILABLE}

    def categories(self) -> Mapping[str, str]:
        """Return the Google Play category ids."""
        return play_categories()

    def category(self, text: str) -> str:
        """Return a category id in capitals, as Google Play writes them (GAME_ACTION)."""
        return text.upper()

    def chart_genres(self) -> tuple[str | None, ...]:
        """Return None (the overall apps chart), then every other category."""
        return (None, *(c for c in play_categories() if c != OVERALL_CATEGORY))

    def politeness(self, policy: FetchPolicy) -> Politeness:
        """Let one request through at a time, --play-interval after the answer before it
        (which spaces their starts further apart than a rate of one an interval would)."""
        return Politeness(1, gap=policy.play_interval)

    def http_request(
        self, client: httpx.AsyncClient, req: ChartRequest, endpoints: Endpoints
    ) -> httpx.Request:
        """Build the batchexecute POST for one chart, with the client's headers."""
        url = f"{endpoints[BASE.key].rstrip('/')}/_/PlayStoreUi/data/batchexecute"
        params = {"rpcids": RPC_ID, "source-path": "/store/apps", "hl": "en", "gl": req.country}
        return client.build_request("POST", url, params=params, data={"f.req": request_form(req)})

    def parse(self, req: ChartRequest, body: bytes) -> Listing:
        """Parse one chart response, checking that it is the chart that was asked for."""
        return parse(req, body)

    def app_url(self, app_id: str, country: str | None) -> str:
        """Return the app's page on play.google.com, in a storefront where one is known."""
        gl = f"&gl={quote(country)}" if country else ""
        return f"https://play.google.com/store/apps/details?id={quote(app_id)}{gl}"


STORE: Store = GooglePlay()


def parse(req: ChartRequest, body: bytes) -> Listing:
    """Parse one chart response, checking that it is the chart that was asked for."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidFeed(f"response is not UTF-8 text: {error}") from None
    check_not_blocked(text)
    try:
        payload = find_payload(text)
    except InvalidFeed:
        # Only an answer without a chart is a rate limit: a chart's own text (an app's
        # name or description) may hold the marker too.
        if _RATE_LIMIT_MARKER in text:
            raise RateLimited(
                f"rate limited: Google Play answered with a {_RATE_LIMIT_MARKER}, not the chart"
            ) from None
        raise
    inner = _load_payload(payload)
    raw = chart_entries(req, inner)
    return Listing([play_entry(item, rank) for rank, item in enumerate(raw, 1)], None)


def check_not_blocked(text: str) -> None:
    """Raise Blocked if the body is a consent or captcha page rather than an RPC answer."""
    # Only an unguarded body is searched: a real chart holds app descriptions,
    # which may contain any words at all.
    if text.lstrip().startswith(_GUARD):
        return
    lowered = text.lower()
    for marker, kind in _BLOCK_MARKERS:
        if marker in lowered:
            raise Blocked(
                f"blocked by a {kind} page: Google answered with {marker!r} instead of the chart"
            )


def find_payload(text: str) -> str:
    """Return the vyAe2 frame's payload, the chart as a JSON string, found by content."""
    frames = _frames(text.lstrip().removeprefix(_GUARD))
    frame = next((f for f in frames if f[:2] == ["wrb.fr", RPC_ID]), None)
    if frame is None:
        raise InvalidFeed(_missing_frame(text, frames))
    payload = frame[2] if len(frame) > 2 else None
    if payload is None:
        code = f" (error {json.dumps(frame[5])})" if len(frame) > 5 and frame[5] else ""
        raise InvalidFeed(f"Google Play rejected the request: the vyAe2 payload is null{code}")
    if not isinstance(payload, str):
        raise Drifted(f"the vyAe2 payload is {_describe(payload)}, not a JSON string")
    return payload


def _frames(body: str) -> list[list[Any]]:
    """List the body's frames: one JSON array of them, or with rt=c one array a line."""
    whole = _json_or_none(body)
    # Split on newlines only: JSON strings may hold other line separators, raw.
    chunks = [whole] if whole is not None else [_json_or_none(s) for s in body.split("\n")]
    return [
        frame
        for chunk in chunks
        if isinstance(chunk, list)
        for frame in chunk
        if isinstance(frame, list)
    ]


def _json_or_none(text: str) -> Any:
    try:
        return loads(text)
    except json.JSONDecodeError:
        return None


def _missing_frame(text: str, frames: list[list[Any]]) -> str:
    if f'"{RPC_ID}"' in text:
        return "the vyAe2 frame is malformed or truncated"
    statuses = [f[5] for f in frames if f[:1] == ["er"] and len(f) > 5]
    if statuses:
        return f"no vyAe2 frame in the response: Google Play sent an error (status {statuses[0]})"
    return f"no vyAe2 frame in the response (it starts with {text[:60]!r})"


def _load_payload(payload: str) -> Any:
    try:
        return loads(payload)
    except json.JSONDecodeError as error:
        raise InvalidFeed(
            f"the vyAe2 payload is not valid JSON ({error.msg} at {error.pos} of {len(payload)})"
        ) from None


def chart_entries(req: ChartRequest, inner: Any) -> list[Any]:
    """Return the raw entries of a decoded payload, after checking it is the chart asked for."""
    wanted = f"{collection(req)} in category {category(req)} for {req.country!r}"
    if _follow(inner, (0, 1), "inner") is None:
        raise InvalidFeed(f"the chart is empty: Google Play has no {wanted} (inner[0][1] is null)")
    check_chart_echo(req, dig(inner, *_TOKEN))
    entries = _follow(inner, _ENTRIES, "inner")
    if not isinstance(entries, list):
        where = "inner" + _steps(_ENTRIES)
        raise Drifted(f"structure drifted: {where} is {_describe(entries)}, not a list")
    if not entries:
        raise InvalidFeed(f"the chart is empty: Google Play listed no apps in {wanted}")
    return entries


def check_chart_echo(req: ChartRequest, token: Any) -> None:
    """Raise InvalidFeed if the response's chart token names another chart or category."""
    echo = chart_echo(token) if isinstance(token, str) else None
    expected = f"{collection(req)}_{category(req)}"
    # A token naming only the collection cannot contradict the category.
    if echo is not None and echo not in (expected, collection(req)):
        raise InvalidFeed(f"asked for {expected}, the response is for {echo}")


def chart_echo(token: str) -> str | None:
    """Return the chart a base64 token names, e.g. ``topselling_free_GAME``, if any."""
    digits = token.rstrip("=")
    try:
        data = base64.urlsafe_b64decode(digits + "=" * (-len(digits) % 4))
    except ValueError:  # binascii.Error, or characters outside ASCII
        return None
    match = _ECHO.search(data)
    if match is None:
        return None
    # The token is a protobuf message: the byte before a short string is its length.
    # It ends the name where the next field's tag would read as one more letter.
    start = match.start()
    size = data[start - 1] if start else 0
    end = start + size if len(match.group(1)) <= size <= len(match.group()) else match.end()
    return data[start:end].decode("ascii")


def play_entry(item: Any, rank: int) -> Entry:
    """Parse one raw entry ``e``; rank is its position in the list."""
    where = f"entry at rank {rank}"
    app_id = _follow(item, (0, 0, 0), "e", where)
    if not isinstance(app_id, str) or not _PACKAGE.fullmatch(app_id):
        raise InvalidFeed(f"{where} has an app id that is not a package name: {app_id!r}")
    where = f"{where} (app {app_id})"
    title = _follow(item, (0, 3), "e", where)
    if not isinstance(title, str):
        raise InvalidFeed(f"{where} has a title that is not a string: {title!r}")
    if not title:
        raise InvalidFeed(f"{where} has an empty title")
    developer = _follow(item, (0, 14), "e", where)
    if not isinstance(developer, str):
        raise InvalidFeed(f"{where} has a developer that is not a string: {developer!r}")
    return Entry(
        app_id,
        title,
        text_or_none(developer),
        icon_url=text_or_none(dig(item, 0, 1, 3, 2)),
        url=text_or_none(dig(item, 0, 10, 4, 2)),
        score=_number_or_none(dig(item, 0, 4, 1)),
    )


def _number_or_none(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _follow(value: Any, path: tuple[int, ...], name: str, where: str = "") -> Any:
    """Follow list indexes; raise InvalidFeed naming the step where the path breaks."""
    for depth, index in enumerate(path):
        if not isinstance(value, list) or index >= len(value):
            parent = name + _steps(path[:depth])
            prefix = f"{where}: " if where else ""
            raise Drifted(
                f"{prefix}structure drifted: {name}{_steps(path)} breaks at [{index}],"
                f" {parent} is {_describe(value)}"
            )
        value = value[index]
    return value


def _steps(path: tuple[int, ...]) -> str:
    return "".join(f"[{index}]" for index in path)


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return f"a list of length {len(value)}"
    return _DESCRIPTIONS.get(type(value), type(value).__name__)
