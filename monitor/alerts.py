"""Webhooks: each event sent to every destination that wants it, signed, at least once
within a day.

A destination is an ``[[alerts]]`` table of the config file. Events reach it through an
outbox kept in the database, so that none is lost to a restart:

- ``enqueue`` puts each event recorded since the destination's cursor, and wanted by
  it, in the outbox. A destination seen for the first time starts from the events
  recorded after that: it is not sent the history.
- ``deliver_due`` posts what is due, one request at a time, outside any transaction,
  and records each try in ``deliveries``. A failed try is retried later, waiting twice
  as long each time, until MAX_TRIES; then the event is marked failed for it. A
  destination that fails a try is left until the next pass. An event still waiting
  EXPIRES_AFTER after it was queued is marked expired at the next pass, tried or not:
  a destination down for days leaves a day's events waiting, not every event since it
  went down.

The body is signed with the destination's secret: ``X-Monitor-Signature: sha256=<hex>``
is the HMAC-SHA256 of the raw body. ``X-Monitor-Event-Id`` is the event's id, the same
on every try: a receiver that has seen it can drop the repeat. Secrets and URLs are
never written to the database, the logs or ``monitor status``: deliveries name the
destination only.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import sqlite3
import threading
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping, Sequence
from contextlib import aclosing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar, cast

import httpx
from sqlite_utils import Database

from monitor import events, schema
from monitor.config import Alert
from monitor.errors import UsageError
from monitor.sources.payload import utc_iso
from monitor.writes import writing

log = logging.getLogger("monitor")
T = TypeVar("T")


class _HidePostedPaths(logging.Filter):
    """httpx logs each request's URL (at INFO, shown with --log-level debug). monitor
    posts to webhook destinations alone, whose URLs may hold a token (Slack's and
    Discord's do): a POST's URL is logged as its host."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) > 1 and args[0] == "POST":
            url = args[1]
            if isinstance(url, httpx.URL):
                record.args = (args[0], f"{url.scheme}://{url.netloc.decode()}/…", *args[2:])
        return True


logging.getLogger("httpx").addFilter(_HidePostedPaths())
FORMATS = ("json", "slack", "discord")
STATES = ("pending", "delivered", "failed", "expired")  # an event's, in the outbox
SIGNATURE_HEADER = "X-Monitor-Signature"
EVENT_HEADER = "X-Monitor-Event-Id"
MAX_TRIES = 12
FIRST_WAIT = 5.0  # seconds before the first retry; then twice as long each time
LONGEST_WAIT = 3600.0
EXPIRES_AFTER = timedelta(hours=24)  # from being queued to being given up on, if not sent
TIMEOUT = 5.0  # seconds for one try, from connecting to the end of the answer read
BATCH = 200  # events taken into the outbox, and deliveries read, at a time
ANSWER_KEPT = 200  # characters of an answer kept in deliveries
ANSWER_READ = 4096  # bytes of an answer read at most: the rest is left unread
_KEYS = ("name", "url", "secret", "format", "kinds", "apps", "countries", "charts", "threshold")


def parse(items: Any, where: str) -> tuple[Alert, ...]:
    """Read the ``[[alerts]]`` tables of a config file, checked; raise UsageError."""
    if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
        raise UsageError(f"{where}: 'alerts' must be a list of [[alerts]] tables")
    alerts = tuple(_alert(item, f"{where}: alerts[{i}]") for i, item in enumerate(items))
    names = [alert.name for alert in alerts]
    if len(set(names)) != len(names):
        raise UsageError(f"{where}: each [[alerts]] table needs a name of its own")
    return alerts


def _alert(item: dict[str, Any], where: str) -> Alert:
    unknown = sorted(set(item) - set(_KEYS))
    if unknown:
        raise UsageError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {_KEYS}")
    for key in ("name", "url", "secret"):
        if not isinstance(item.get(key), str) or not item[key]:
            raise UsageError(f"{where}: '{key}' must be a text, and is required")
    url = httpx.URL(item["url"])
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(f"{where}: 'url' must be an http(s) URL with a host")
    if item.get("format", "json") not in FORMATS:
        raise UsageError(f"{where}: 'format' must be one of {', '.join(FORMATS)}")
    lists = {key: _texts(item.get(key, []), key, where) for key in ("apps", "countries", "charts")}
    kinds = _texts(item.get("kinds", []), "kinds", where)
    known = (*events.KINDS, *events.MILESTONES)
    if set(kinds) - set(known):
        raise UsageError(f"{where}: 'kinds' must be among {', '.join(known)}")
    threshold = item.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or not isinstance(threshold, int)):
        raise UsageError(f"{where}: 'threshold' must be an integer")
    return Alert(
        item["name"],
        item["url"],
        item["secret"],
        item.get("format", "json"),
        kinds,
        lists["apps"],
        tuple(country.lower() for country in lists["countries"]),
        lists["charts"],
        threshold,
    )


def _texts(value: Any, key: str, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"{where}: '{key}' must be a list of texts")
    return tuple(value)


def payload(alert: Alert, event: Mapping[str, Any]) -> bytes:
    """The body posted for the event, in the destination's format."""
    line = events.describe(event)
    if alert.format == "slack":
        # Slack reads <...> as links and mentions: a store's text arrives escaped.
        escaped = line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        document: dict[str, Any] = {"text": escaped}
    elif alert.format == "discord":
        # No @everyone or other mention that a store's text could hold pings anyone.
        document = {"content": line[:2000], "allowed_mentions": {"parse": []}}
    else:
        document = {"event": dict(event), "text": line}
    return json.dumps(document, ensure_ascii=False, sort_keys=True).encode()


def sign(secret: str, body: bytes) -> str:
    """The signature header's value: sha256= and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Answer:
    """What a destination answered: its status, and the start of its body."""

    status: int
    text: str

    @property
    def ok(self) -> bool:
        """Tell whether the destination took the event (a 2xx status)."""
        return 200 <= self.status < 300


class Poster:
    """Posts events to destinations through one pool of connections, never following a
    redirect, each try within ``timeout`` seconds as a whole: httpx's timeouts bound each
    read, and a destination that trickles its answer would hold a try for as long as it
    went on. One thread at a time posts; close it when done (it is a context manager)."""

    def __init__(self, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self._loop = asyncio.new_event_loop()
        self._client = httpx.AsyncClient(timeout=None, follow_redirects=False)

    def post(self, alert: Alert, event: Mapping[str, Any]) -> Answer:
        """Post one event to one destination, signed, with its id as the idempotency key.

        At most ANSWER_READ bytes of the answer are read, whatever the destination sends.
        A try past the timeout raises httpx.TimeoutException.
        """
        return self._loop.run_until_complete(self._post(alert, event))

    async def _post(self, alert: Alert, event: Mapping[str, Any]) -> Answer:
        body = payload(alert, event)
        headers = {
            "Content-Type": "application/json",
            "Accept-Encoding": "identity",  # the answer's bytes as sent, not inflated
            SIGNATURE_HEADER: sign(alert.secret, body),
            EVENT_HEADER: str(event["id"]),
        }
        start = b""
        try:
            async with (
                asyncio.timeout(self.timeout),
                self._client.stream("POST", alert.url, content=body, headers=headers) as response,
                aclosing(_generator(response.aiter_raw())) as chunks,  # closed when left early
            ):
                async for chunk in chunks:
                    start += chunk
                    if len(start) >= ANSWER_READ:
                        break
        except TimeoutError:
            raise httpx.TimeoutException(f"no whole answer within {self.timeout:g}s") from None
        text = start[:ANSWER_READ].decode("utf-8", "replace")[:ANSWER_KEPT]
        return Answer(response.status_code, text)

    def close(self) -> None:
        """Close the connections and the event loop."""
        self._loop.run_until_complete(self._client.aclose())
        self._loop.run_until_complete(self._loop.shutdown_asyncgens())
        self._loop.close()

    def __enter__(self) -> Poster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _generator(chunks: AsyncIterator[bytes]) -> AsyncGenerator[bytes, None]:
    """httpx's chunks as what they are, an async generator, which can be closed."""
    return cast(AsyncGenerator[bytes, None], chunks)


def enqueue(db: Database, alerts: Sequence[Alert], now: str) -> int:
    """Put the events recorded since each destination's cursor, and wanted, in the outbox,
    BATCH events to a transaction."""
    queued = 0
    for alert in alerts:
        while (taken := _enqueue_batch(db, alert, now)) is not None:
            queued += taken
    return queued


def _enqueue_batch(db: Database, alert: Alert, now: str) -> int | None:
    """Put the next BATCH events past alert's cursor, where wanted, in the outbox; return
    how many, or None where there were none."""
    with writing(db):
        cursor = _cursor(db, alert.name)
        rows = _events_after(db, cursor)
        wanted = [row for row in rows if alert.wants(row)]
        db.table("outbox").insert_all(
            (
                {
                    "event_id": row["id"],
                    "destination": alert.name,
                    "state": "pending",
                    "tries": 0,
                    "next_try_at": now,
                    "queued_at": now,
                }
                for row in wanted
            ),
            ignore=True,
        )
        if not rows:
            return None
        db.table("alert_cursors").upsert(
            {"destination": alert.name, "event_id": rows[-1]["id"]}, pk="destination"
        )
    return len(wanted)


def _cursor(db: Database, destination: str) -> int:
    """The last event considered for a destination; for a new one, the latest event."""
    found = db.execute(
        "SELECT event_id FROM alert_cursors WHERE destination = ?", [destination]
    ).fetchone()
    if found is not None:
        return int(found[0])
    latest = int(db.execute("SELECT coalesce(MAX(id), 0) FROM event_log").fetchone()[0])
    db.table("alert_cursors").insert({"destination": destination, "event_id": latest})
    return latest


def _events_after(db: Database, event_id: int) -> list[dict[str, Any]]:
    return list(
        db.query(f"SELECT * FROM events WHERE id > ? ORDER BY id LIMIT {BATCH}", [event_id])
    )


def deliver_due(
    db: Database,
    alerts: Sequence[Alert],
    http: Poster,
    now: datetime,
    stop: threading.Event | None = None,
) -> int:
    """Mark expired what waited past EXPIRES_AFTER, then try each delivery that is due by
    now once, oldest event first, BATCH read at a time, until stop is set; return how many
    succeeded.

    A destination that fails a try is tried no more in this pass: one that is down costs
    a pass one try (at most the timeout), not one for each event due, and its events wait
    for a later pass in their order.
    """
    _expire(db, now)
    by_name = {alert.name: alert for alert in alerts}
    delivered, past = 0, (0, "")
    while by_name and (due := _due(db, list(by_name), now, past)):
        for event_id, destination, tries in due:
            if stop is not None and stop.is_set():
                return delivered
            if destination not in by_name:
                continue
            event = next(db.query("SELECT * FROM events WHERE id = ?", [event_id]))
            if _try(db, by_name[destination], http, event, tries + 1):
                delivered += 1
            else:
                del by_name[destination]
        past = due[-1][:2]
    return delivered


def _expire(db: Database, now: datetime) -> None:
    """Mark expired the events waiting past EXPIRES_AFTER since they were queued, and say
    how many, by destination. The write lock is taken only where some are."""
    before = utc_iso(now - EXPIRES_AFTER)
    waiting = "WHERE state = 'pending' AND coalesce(queued_at, next_try_at) < ?"
    if db.execute(f"SELECT 1 FROM outbox {waiting} LIMIT 1", [before]).fetchone() is None:
        return
    with writing(db):
        counts = f"SELECT destination, COUNT(*) FROM outbox {waiting} GROUP BY 1"
        for destination, count in db.execute(counts, [before]).fetchall():
            log.warning(
                "webhooks: %d events for %s waited over %d h and are given up on (expired)",
                count,
                destination,
                int(EXPIRES_AFTER.total_seconds() // 3600),
            )
        db.execute(f"UPDATE outbox SET state = 'expired' {waiting}", [before])


def _due(
    db: Database, destinations: list[str], now: datetime, past: tuple[int, str]
) -> list[tuple[int, str, int]]:
    """The next BATCH deliveries due by now after past (an event and a destination),
    oldest event first. Only the destinations configured: those of a removed table wait
    for it, until they expire."""
    return db.execute(
        "SELECT event_id, destination, tries FROM outbox WHERE state = 'pending' "
        "AND next_try_at <= ? AND destination IN (SELECT value FROM json_each(?)) "
        "AND (event_id, destination) > (?, ?) "
        f"ORDER BY event_id, destination LIMIT {BATCH}",
        [utc_iso(now), json.dumps(destinations), *past],
    ).fetchall()


def _try(db: Database, alert: Alert, http: Poster, event: Mapping[str, Any], tries: int) -> int:
    started = datetime.now(UTC)
    status, error = None, None
    try:
        answer = http.post(alert, event)
        status = answer.status
        if not answer.ok:
            error = f"HTTP {status}: {answer.text}"
    except httpx.HTTPError as failure:
        # Its URL may hold a token (Slack's do): the destination's name stands in for it.
        text = str(failure).replace(alert.url, f"<{alert.name}>")
        error = f"{type(failure).__name__}: {text[:ANSWER_KEPT]}"
    ok = error is None
    wait = min(FIRST_WAIT * 2 ** (tries - 1), LONGEST_WAIT)
    state = "delivered" if ok else ("failed" if tries >= MAX_TRIES else "pending")
    with writing(db):
        db.table("deliveries").insert(
            {
                "event_id": event["id"],
                "destination": alert.name,
                "try": tries,
                "tried_at": utc_iso(started),
                "status": "ok" if ok else "error",
                "http_status": status,
                "error": error,
                "seconds": round((datetime.now(UTC) - started).total_seconds(), 3),
            }
        )
        db.execute(
            # A failed try leaves expired an event that another process's pass expired
            # while it was under way.
            "UPDATE outbox SET state = CASE WHEN ? OR state = 'pending' THEN ? ELSE state END, "
            "tries = ?, next_try_at = ? WHERE event_id = ? AND destination = ?",
            [ok, state, tries, utc_iso(started + timedelta(seconds=wait)), event["id"], alert.name],
        )
    return int(ok)


def sample_event(now: str) -> dict[str, Any]:
    """An event made up to try a destination with (``monitor alerts test``): kind test."""
    return {
        "id": 0,
        "kind": "test",
        "at": now,
        "store": "apple",
        "chart": "top-free",
        "device": "iphone",
        "genre": None,
        "country": "us",
        "app_id": "0",
        "app_name": "monitor's test event",
        "rank_before": None,
        "rank_after": 1,
        "threshold": None,
    }


@dataclass(frozen=True)
class Pass:
    """What a pass over the outbox did: the events delivered, and those left waiting."""

    delivered: int
    waiting: int


def take_new(db_path: str | Path, destinations: Sequence[Alert]) -> None:
    """Take the new events into the outbox: a destination seen for the first time starts
    with the events from now on."""
    _in_database(db_path, lambda db: _take(db, destinations))


def deliver_pass(
    db_path: str | Path,
    destinations: Sequence[Alert],
    http: Poster,
    stop: threading.Event | None = None,
) -> Pass | None:
    """Take the new events into the outbox, then try what is due; say what it did, or
    None where the database failed it (logged)."""

    def deliver(db: Database) -> Pass:
        _take(db, destinations)
        delivered = deliver_due(db, destinations, http, datetime.now(UTC), stop)
        pending = db.execute("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").fetchone()
        return Pass(delivered, int(pending[0]))

    return _in_database(db_path, deliver)


def _take(db: Database, destinations: Sequence[Alert]) -> None:
    enqueue(db, destinations, utc_iso(datetime.now(UTC)))


def _in_database(db_path: str | Path, work: Callable[[Database], T]) -> T | None:
    """Do work on the database; a database error is logged, and the next pass tries again."""
    try:
        db = schema.open_db(db_path)
    except sqlite3.Error as error:
        log.warning("webhooks: cannot open the database: %s", error)
        return None
    try:
        return work(db)
    except sqlite3.Error as error:
        log.warning("webhooks: %s", error)
        return None
    finally:
        db.close()
