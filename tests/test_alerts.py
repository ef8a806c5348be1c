"""Webhooks against a real receiver on 127.0.0.1: every event wanted is sent, signed as a
receiver checks it, once it answers; a receiver down or hanging loses nothing."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise

import feedparser
import pytest
from sqlite_utils import Database

from conftest import wait_for
from helpers import get, query
from history import app_sweep
from monitor import alerts, schema
from monitor.config import Alert
from monitor.errors import UsageError
from monitor.events import THRESHOLDS
from monitor.reference import storefronts_175
from monitor.sources.payload import utc_iso
from standin import App

APP = ("6737597349", "DeepSeek")
SECRET = "s3cret-for-tests"
T = [f"2025-01-27T{hour:02d}:00:00Z" for hour in range(10)]


@dataclass
class Receiver:
    """A webhook receiver: answers with the statuses queued (then 200), records each post."""

    url: str
    statuses: list[int] = field(default_factory=list)
    hang: float = 0.0
    answer: bytes = b"thanks"
    sent_whole: list[bool] = field(default_factory=list)  # each answer, written to its end
    arrived: int = 0  # posts come, counted as they come (posts keeps them once answered)
    posts: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    def verified(self) -> list[dict]:
        """The bodies of the posts whose signature checks out, as a receiver checks it."""
        bodies = []
        for headers, body in self.posts:
            expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
            signature = headers[alerts.SIGNATURE_HEADER.lower()]
            assert hmac.compare_digest(signature, f"sha256={expected}")
            document = json.loads(body)
            assert headers[alerts.EVENT_HEADER.lower()] == str(document["event"]["id"])
            bodies.append(document)
        return bodies


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver("")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.arrived += 1
            time.sleep(state.hang)
            state.posts.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.statuses.pop(0) if state.statuses else 200)
            self.send_header("Content-Length", str(len(state.answer)))
            self.end_headers()
            whole = False
            with contextlib.suppress(ConnectionError):  # a client that read enough and left
                self.wfile.write(state.answer)
                self.wfile.flush()
                whole = True
            state.sent_whole.append(whole)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{server.server_port}/hook"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


@pytest.fixture
def db(tmp_path):
    database = schema.open_db(tmp_path / "rankings.db")
    yield database
    database.close()


def destination(receiver, **wanted) -> Alert:
    return alerts.parse(
        [{"name": "newsroom", "url": receiver.url, "secret": SECRET, **wanted}], "t"
    )[0]


def deliver(db, hook, now=None, timeout=5.0) -> int:
    now = now or datetime.now(UTC)
    alerts.enqueue(db, [hook], utc_iso(now))
    with alerts.Poster(timeout) as http:
        return alerts.deliver_due(db, [hook], http, now)


def now_iso() -> str:
    return utc_iso(datetime.now(UTC))


def test_each_event_wanted_is_sent_once_signed_and_a_new_destination_skips_the_past(db, receiver):
    app_sweep(db, T[0], APP, {"us": 3, "gb": 1})
    hook = destination(receiver, kinds=["entered_no1", "milestone_no1"], apps=[APP[0]])
    assert deliver(db, hook) == 0  # the history before it was configured is not sent
    app_sweep(db, T[1], APP, {"us": 1, "gb": 1, "jp": 1})  # jp's first observation: no change
    assert deliver(db, hook) == 3
    sent = [(b["event"]["kind"], b["event"]["country"]) for b in receiver.verified()]
    assert sent == [("entered_no1", "us"), ("milestone_no1", None), ("milestone_no1", None)]
    assert deliver(db, hook) == 0 and len(receiver.posts) == 3  # nothing new, nothing sent
    assert db.execute("SELECT DISTINCT status, http_status FROM deliveries").fetchall() == [
        ("ok", 200)
    ]


def test_a_receiver_that_fails_then_recovers_gets_every_event(db, receiver):
    hook = destination(receiver, kinds=["entered_no1"])
    deliver(db, hook)
    app_sweep(db, T[0], APP, {"us": 3, "gb": 2})
    app_sweep(db, T[1], APP, {"us": 1, "gb": 1})
    receiver.statuses = [500, 503, 500]
    now = datetime.now(UTC)
    # us fails, and the destination is tried no more in that pass: gb waits for the next.
    assert deliver(db, hook, now) == 0 and len(receiver.posts) == 1
    assert deliver(db, hook, now) == 0 and len(receiver.posts) == 2  # us waits its turn
    assert deliver(db, hook, now + timedelta(seconds=alerts.FIRST_WAIT + 1)) == 0
    assert len(receiver.posts) == 3  # us failed again: gb, due too, waited
    assert deliver(db, hook, now + timedelta(seconds=3 * alerts.FIRST_WAIT + 1)) == 2
    kinds = [(b["event"]["kind"], b["event"]["country"]) for b in receiver.verified()]
    assert sorted(set(kinds)) == [("entered_no1", "gb"), ("entered_no1", "us")]
    tries = db.execute("SELECT status, http_status FROM deliveries ORDER BY id").fetchall()
    assert tries == [("error", 500), ("error", 503), ("error", 500), ("ok", 200), ("ok", 200)]
    assert db.execute("SELECT DISTINCT state FROM outbox").fetchall() == [("delivered",)]


def test_a_receiver_that_hangs_is_given_up_on_and_tried_again(db, receiver):
    hook = destination(receiver, kinds=["entered_no1"])
    deliver(db, hook)
    app_sweep(db, T[0], APP, {"us": 3})
    app_sweep(db, T[1], APP, {"us": 1})
    receiver.hang = 1.0
    started = time.monotonic()
    assert deliver(db, hook, timeout=0.3) == 0
    assert time.monotonic() - started < 1.0
    (error,) = db.execute("SELECT error FROM deliveries").fetchone()
    assert error == "TimeoutException: no whole answer within 0.3s"
    receiver.hang = 0.0
    later = datetime.now(UTC) + timedelta(seconds=alerts.FIRST_WAIT + 1)
    assert deliver(db, hook, later) == 1


@pytest.fixture
def trickler() -> Iterator[str]:
    """A destination that answers a byte of its headers every 0.1s, for 4s in all."""
    server = socket.create_server(("127.0.0.1", 0))

    def answer() -> None:
        conn, _ = server.accept()
        with conn, contextlib.suppress(OSError):
            conn.recv(65536)
            for byte in b"HTTP/1.1 200 OK\r\nX-Slow: " + b"." * 40:
                conn.sendall(bytes([byte]))
                time.sleep(0.1)
            conn.sendall(b"\r\nContent-Length: 0\r\n\r\n")

    threading.Thread(target=answer, daemon=True).start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/hook"
    server.close()


def test_a_destination_that_trickles_its_answer_is_given_up_on_at_the_timeout(db, trickler):
    hook = alerts.parse(
        [{"name": "slow", "url": trickler, "secret": SECRET, "kinds": ["entered_no1"]}], "t"
    )[0]
    deliver(db, hook)
    app_sweep(db, T[0], APP, {"us": 3})
    app_sweep(db, T[1], APP, {"us": 1})
    started = time.monotonic()
    assert deliver(db, hook, timeout=0.5) == 0  # every read comes within 0.5s
    assert time.monotonic() - started < 1.5
    assert db.execute("SELECT DISTINCT error FROM deliveries").fetchall() == [
        ("TimeoutException: no whole answer within 0.5s",)
    ]


def test_a_huge_answer_is_read_no_further_than_its_start(db, receiver):
    hook = destination(receiver, kinds=["entered_no1"])
    deliver(db, hook)
    app_sweep(db, T[0], APP, {"us": 3})
    app_sweep(db, T[1], APP, {"us": 1})
    receiver.statuses, receiver.answer = [500], b"x" * (64 * 2**20)
    assert deliver(db, hook) == 0
    (error,) = db.execute("SELECT error FROM deliveries").fetchone()
    assert error == "HTTP 500: " + "x" * alerts.ANSWER_KEPT
    wait_for(lambda: receiver.sent_whole, 10, "the receiver's end of the answer")
    assert receiver.sent_whole == [False]  # the rest of the 64 MB was never read


def test_a_destination_url_never_reaches_the_log(db, receiver, caplog):
    caplog.set_level(logging.DEBUG)
    token = "T0KEN-in-the-path"
    hook = alerts.parse(
        [{"name": "slack", "url": f"{receiver.url}/{token}?key={token}", "secret": SECRET}], "t"
    )[0]
    alerts.enqueue(db, [hook], now_iso())  # from now on
    app_sweep(db, T[0], APP, {"us": 3})
    app_sweep(db, T[1], APP, {"us": 1})
    alerts.enqueue(db, [hook], now_iso())
    with alerts.Poster() as http:
        assert alerts.deliver_due(db, [hook], http, datetime.now(UTC)) > 0
    logged = [record.getMessage() for record in caplog.records]
    host = receiver.url.split("/")[2]
    assert f'HTTP Request: POST http://{host}/… "HTTP/1.0 200 OK"' in logged
    assert not [line for line in logged if token in line]


def test_slack_and_discord_bodies(db, receiver):
    event = {
        "id": 7,
        "kind": "entered_no1",
        "at": T[1],
        "store": "apple",
        "chart": "top-free",
        "device": "iphone",
        "genre": None,
        "country": "us",
        "app_id": APP[0],
        "app_name": APP[1],
        "rank_before": 3,
        "rank_after": 1,
        "threshold": None,
    }
    line = f"{T[1]}  apple top-free iphone us  DeepSeek ({APP[0]}): entered_no1 3 -> 1"
    slack = alerts.payload(destination(receiver, format="slack"), event)
    assert json.loads(slack) == {"text": line.replace(">", "&gt;")}  # Slack shows it as >
    discord = alerts.payload(destination(receiver, format="discord"), event)
    assert json.loads(discord) == {"content": line, "allowed_mentions": {"parse": []}}
    # A store's name cannot make a link or a mention in Slack, nor ping in Discord.
    hostile = {**event, "app_name": "@everyone <!channel> <https://x.invalid|Click> & co"}
    slack = json.loads(alerts.payload(destination(receiver, format="slack"), hostile))
    assert "&lt;!channel&gt; &lt;https://x.invalid|Click&gt; &amp; co" in slack["text"]
    assert "<" not in slack["text"]
    discord = json.loads(alerts.payload(destination(receiver, format="discord"), hostile))
    assert discord["allowed_mentions"] == {"parse": []}


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"url": "http://x"}, "'name' must be a text"),
        ({"name": "a", "url": "ftp://x", "secret": "s"}, "'url' must be an http(s) URL"),
        ({"name": "a", "url": "http://x", "secret": "s", "format": "xml"}, "'format' must be"),
        ({"name": "a", "url": "http://x", "secret": "s", "kinds": ["up"]}, "'kinds' must be"),
        ({"name": "a", "url": "http://x", "secret": "s", "every": 1}, "unknown key(s) every"),
    ],
)
def test_bad_alert_tables_are_refused_by_name(table, message):
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        alerts.parse([table], "config c.toml")


def test_the_secret_is_never_shown():
    hook = Alert("newsroom", "http://127.0.0.1:1/hook", SECRET)
    assert SECRET not in repr(hook)


def monitor(*args):
    return subprocess.run(
        [sys.executable, "-m", "monitor", *args], capture_output=True, text=True, timeout=60
    )


def config(tmp_path, receiver, wanted='format = "json"\n'):
    """Write a config file whose one [[alerts]] table, newsroom, posts to the receiver."""
    path = tmp_path / "monitor.toml"
    path.write_text(
        f'[[alerts]]\nname = "newsroom"\nurl = "{receiver.url}"\nsecret = "{SECRET}"\n{wanted}',
        encoding="utf-8",
    )
    return str(path)


def test_monitor_alerts_test_sends_a_signed_sample_and_prints_the_answer(tmp_path, receiver):
    tried = monitor("alerts", "test", "--config", config(tmp_path, receiver))
    assert (tried.returncode, tried.stdout) == (0, "newsroom: HTTP 200 thanks\n")
    (sample,) = receiver.verified()
    assert (sample["event"]["id"], sample["event"]["kind"]) == (0, "test")
    receiver.statuses = [500]
    assert monitor("alerts", "test", "--config", config(tmp_path, receiver)).returncode == 1
    unknown = monitor("alerts", "test", "wire", "--config", config(tmp_path, receiver))
    assert (
        unknown.returncode == 2
        and "no webhook named 'wire'; configured: newsroom" in unknown.stderr
    )


def test_status_counts_deliveries_and_nothing_keeps_the_url_or_secret(tmp_path, receiver):
    path = tmp_path / "rankings.db"
    db = schema.open_db(path)
    hook = destination(receiver, kinds=["entered_no1"])
    deliver(db, hook)
    app_sweep(db, T[0], APP, {"us": 3, "gb": 2})
    app_sweep(db, T[1], APP, {"us": 1, "gb": 1})
    receiver.statuses = [500]
    deliver(db, hook)  # us refused: gb waits for the next pass
    deliver(db, hook)
    db.close()
    shown = monitor("status", "--db", str(path))
    assert "webhook newsroom: 1 pending, 1 delivered, 0 failed, 0 expired" in shown.stdout
    stored = b"".join(file.read_bytes() for file in tmp_path.glob("rankings.db*"))
    assert SECRET.encode() not in stored and receiver.url.encode() not in stored
    assert SECRET not in shown.stdout + shown.stderr and receiver.url not in shown.stdout


def distinct(receiver):
    """The events the receiver got, each once, by id, in the order they first came."""
    events = {}
    for body in receiver.verified():
        events.setdefault(body["event"]["id"], body["event"])
    return events


@pytest.mark.parametrize("trouble", ["hangs", "fails for a while"])
def test_the_service_sends_a_sweeps_events_and_a_receiver_in_trouble_never_slows_sweeps(
    tmp_path, receiver, spawn_monitor, db_path, trouble
):
    db = schema.open_db(db_path)
    app_sweep(db, T[0], APP, {"us": 1, "gb": 1})  # the stand-in has other apps at No. 1
    db.close()
    if trouble == "hangs":
        receiver.hang = 2.0  # each post takes 2 s to answer: 8 s for four
    else:
        receiver.statuses = [500] * 8  # two tries of each: delivered after 5 s, then 10 s
    path = config(
        tmp_path, receiver, 'kinds = ["entered_no1", "left_no1"]\ncountries = ["us", "gb"]\n'
    )
    service = spawn_monitor("run", "--no-serve", "--interval", "2s", "--config", path)
    delivered = "SELECT COUNT(*) FROM outbox WHERE state = 'delivered'"
    wait_for(lambda: query(db_path, delivered)[0][0] >= 4, 90, "four events delivered")
    # Sweeps went on every 2 s while the receiver was in trouble for 8 s or more: the
    # service's own (the first is the history above) never waited on a post.
    started = [row[0] for row in query(db_path, "SELECT started_at FROM sweeps ORDER BY id")][1:]
    assert len(started) >= 3
    moments = [datetime.fromisoformat(at.replace("Z", "+00:00")) for at in started]
    gaps = [(b - a).total_seconds() for a, b in pairwise(moments)]
    # A sweep waiting on four posts of 2 s would start 8 s late; one waiting for the
    # retries, 5 s and then 10 s.
    assert max(gaps) < 7, gaps
    service.send_signal(signal.SIGTERM)
    service.wait(timeout=alerts.TIMEOUT + 10)
    # At least once: a post the loaded machine let time out is sent again, same event id.
    sent = sorted((e["kind"], e["country"]) for e in list(distinct(receiver).values())[:4])
    assert sent == [
        ("entered_no1", "gb"),
        ("entered_no1", "us"),
        ("left_no1", "gb"),
        ("left_no1", "us"),
    ]
    assert [b["event"]["app_id"] for b in receiver.verified() if b["event"]["kind"] == "left_no1"][
        :2
    ] == [APP[0], APP[0]]


def test_a_climb_to_no_1_in_52_storefronts_reaches_the_receiver_once_each(db, receiver):
    countries = list(storefronts_175())[:60]
    climbed, failing = countries[:52], countries[52:]
    app_sweep(db, T[0], APP, dict.fromkeys(countries, 20), THRESHOLDS)
    kinds = ["entered_no1", "milestone_no1", "left_no1", "left_top10", "left_chart"]
    hook = destination(receiver, kinds=kinds, apps=[APP[0]])
    deliver(db, hook)  # configured after phase one
    receiver.statuses = [500] * 30  # down for a while
    app_sweep(db, T[1], APP, dict.fromkeys(climbed, 1), THRESHOLDS, failing=failing)
    now = datetime.now(UTC)
    for second in range(0, 20 * 60, 6):  # a pass every 6 s for 20 minutes, as time passes
        deliver(db, hook, now + timedelta(seconds=second))
    bodies = receiver.verified()
    delivered = {
        (b["event"]["kind"], b["event"]["country"], b["event"].get("threshold")) for b in bodies
    }
    assert sorted(c for kind, c, _ in delivered if kind == "entered_no1") == sorted(climbed)
    assert sorted(t for kind, _, t in delivered if kind == "milestone_no1") == [1, 10, 25, 50]
    # The 8 storefronts that failed in phase two are not observed: the app left none.
    assert not [kind for kind, *_ in delivered if kind.startswith("left")]
    assert len(delivered) == 52 + 4
    assert db.execute("SELECT state, COUNT(*) FROM outbox GROUP BY state").fetchall() == [
        ("delivered", 56)
    ]
    # Each taken once: every post the receiver got was one of the 30 it refused, or one of
    # the 56 events, and monitor recorded 56 deliveries that succeeded.
    assert len(receiver.posts) == 30 + 56
    assert db.execute("SELECT COUNT(*) FROM deliveries WHERE status = 'ok'").fetchone() == (56,)
    before = len(receiver.posts)
    deliver(db, hook, now + timedelta(hours=2))  # as after a restart: nothing new to send
    assert len(receiver.posts) == before


def test_a_removed_destination_waits_without_holding_up_the_others(db, receiver):
    gone = Alert("gone", "http://127.0.0.1:1/hook", SECRET, kinds=("entered_no1",))
    kept = destination(receiver, kinds=["entered_no1"])
    alerts.enqueue(db, [gone, kept], now_iso())
    app_sweep(db, T[0], APP, {"us": 3})
    app_sweep(db, T[1], APP, {"us": 1})
    alerts.enqueue(db, [gone, kept], now_iso())
    with alerts.Poster() as http:
        assert alerts.deliver_due(db, [kept], http, datetime.now(UTC)) == 1
    states = db.execute("SELECT destination, state, tries FROM outbox ORDER BY destination")
    assert states.fetchall() == [("gone", "pending", 0), ("newsroom", "delivered", 1)]


def test_a_destination_that_is_down_costs_a_pass_one_try_and_holds_up_no_other(db, receiver):
    silent = socket.create_server(("127.0.0.1", 0))  # takes connections, never answers
    port = silent.getsockname()[1]
    down = Alert("down", f"http://127.0.0.1:{port}/hook", SECRET, kinds=("entered_no1",))
    up = destination(receiver, kinds=["entered_no1"])
    alerts.enqueue(db, [down, up], now_iso())
    countries = ["us", "gb", "fr", "de", "jp"]
    app_sweep(db, T[0], APP, dict.fromkeys(countries, 3))
    app_sweep(db, T[1], APP, dict.fromkeys(countries, 1))
    alerts.enqueue(db, [down, up], now_iso())
    with alerts.Poster(timeout=0.5) as http:
        assert alerts.deliver_due(db, [down, up], http, datetime.now(UTC)) == 5
    tries = db.execute("SELECT destination, status, COUNT(*) FROM deliveries GROUP BY 1, 2")
    assert tries.fetchall() == [("down", "error", 1), ("newsroom", "ok", 5)]
    waiting = db.execute("SELECT tries, COUNT(*) FROM outbox WHERE destination = 'down' GROUP BY 1")
    assert waiting.fetchall() == [(0, 4), (1, 1)]  # the rest wait for a later pass
    silent.close()


def test_an_event_the_receiver_refuses_holds_up_the_others_one_pass_at_most(db, receiver):
    hook = destination(receiver, kinds=["entered_no1"])
    deliver(db, hook)
    app_sweep(db, T[0], APP, {"us": 3, "gb": 2, "jp": 2})
    app_sweep(db, T[1], APP, dict.fromkeys(["us", "gb", "jp"], 1))
    receiver.statuses = [400, 200, 200, 400]  # it refuses us's event whenever it comes
    now = datetime.now(UTC)
    assert deliver(db, hook, now) == 0  # us refused: the destination waits for the next pass
    assert deliver(db, hook, now) == 2  # gb and jp, while us waits before its next try
    assert deliver(db, hook, now + timedelta(seconds=alerts.FIRST_WAIT + 1)) == 0
    posted = [b["event"]["country"] for b in receiver.verified()]
    assert posted == ["us", "gb", "jp", "us"]
    states = db.execute("SELECT state, tries, COUNT(*) FROM outbox GROUP BY 1, 2 ORDER BY 1")
    assert states.fetchall() == [("delivered", 1, 2), ("pending", 2, 1)]


def test_events_waiting_a_day_expire_tried_or_not_and_the_rest_go_out(db, receiver, caplog):
    hook = destination(receiver, kinds=["entered_no1"])
    start = datetime.now(UTC)
    deliver(db, hook, start)
    app_sweep(db, T[0], APP, {"us": 3, "fr": 3, "gb": 3})
    app_sweep(db, T[1], APP, {"us": 1, "fr": 1, "gb": 3})
    receiver.statuses = [503]
    assert deliver(db, hook, start) == 0  # us fails its try; fr waits, untried
    app_sweep(db, T[2], APP, {"us": 1, "fr": 1, "gb": 1})
    receiver.statuses = [503]
    assert deliver(db, hook, start + timedelta(hours=23)) == 0  # us fails again; gb queued
    db.execute(  # another destination's event, given up on after its last try
        "INSERT INTO outbox (event_id, destination, state, tries, next_try_at, queued_at) "
        "SELECT MIN(id), 'other', 'failed', 12, ?, ? FROM events",
        [utc_iso(start), utc_iso(start)],
    )
    db.conn.commit()
    assert deliver(db, hook, start + alerts.EXPIRES_AFTER + timedelta(seconds=1)) == 1
    assert [b["event"]["country"] for b in receiver.verified()] == ["us", "us", "gb"]
    assert "webhooks: 2 events for newsroom waited over 24 h and are given up on" in caplog.text
    ended = [
        ("newsroom", "us", "expired", 2),
        ("other", "us", "failed", 12),
        ("newsroom", "fr", "expired", 0),
        ("newsroom", "gb", "delivered", 1),
    ]
    assert outbox(db) == ended
    assert deliver(db, hook, start + timedelta(days=3)) == 0  # nothing comes back
    assert len(receiver.posts) == 3 and outbox(db) == ended


def outbox(db) -> list[tuple]:
    return db.execute(
        "SELECT destination, country, state, tries FROM outbox "
        "JOIN events ON events.id = event_id ORDER BY event_id, destination"
    ).fetchall()


def test_a_try_that_fails_leaves_an_event_another_pass_expired_meanwhile(db, receiver, tmp_path):
    hook = destination(receiver, kinds=["entered_no1"])
    start = datetime.now(UTC)
    deliver(db, hook, start)
    app_sweep(db, T[0], APP, {"us": 3})
    app_sweep(db, T[1], APP, {"us": 1})
    alerts.enqueue(db, [hook], utc_iso(start))
    receiver.statuses, receiver.hang = [503], 1.0
    trying = threading.Thread(target=deliver, args=(db, hook, start))
    trying.start()
    wait_for(lambda: receiver.arrived, 10, "the try")
    other = schema.open_db(tmp_path / "rankings.db")  # as another process's pass, a day on
    with alerts.Poster() as http:
        assert alerts.deliver_due(other, [hook], http, start + timedelta(days=1, seconds=1)) == 0
    other.close()
    trying.join()
    assert outbox(db) == [("newsroom", "us", "expired", 1)]
    assert db.execute("SELECT http_status FROM deliveries").fetchall() == [(503,)]


def test_events_queued_before_their_time_was_kept_take_it_from_their_first_try(tmp_path):
    older = Database(sqlite3.connect(tmp_path / "older.db"))
    schema.migrations.apply(older, stop_before="m014_outbox_queued_at")
    columns = "event_id, destination, state, tries, next_try_at"
    older.execute(
        f"INSERT INTO outbox ({columns}) VALUES (1, 'a', 'pending', 2, '2026-01-01T00:00:15Z'),"
        " (2, 'a', 'pending', 0, '2026-01-01T00:00:09Z'),"
        " (1, 'b', 'delivered', 1, '2026-01-01T00:00:04Z')"
    )
    older.execute(
        "INSERT INTO deliveries (event_id, destination, try, tried_at, status) VALUES "
        "(1, 'a', 1, '2026-01-01T00:00:00Z', 'error'),"
        " (1, 'a', 2, '2026-01-01T00:00:05Z', 'error'),"
        " (1, 'b', 1, '2025-12-31T23:59:59Z', 'ok')"
    )
    older.conn.commit()
    older.close()
    db = schema.open_db(tmp_path / "older.db")
    assert db.execute(
        "SELECT event_id, destination, queued_at FROM outbox ORDER BY 1, 2"
    ).fetchall() == [
        (1, "a", "2026-01-01T00:00:00Z"),
        (1, "b", "2025-12-31T23:59:59Z"),
        (2, "a", "2026-01-01T00:00:09Z"),
    ]
    db.close()


def test_monitor_collect_sends_its_sweeps_events(tmp_path, receiver, run_monitor, db_path):
    db = schema.open_db(db_path)
    app_sweep(db, T[0], APP, {"us": 1, "gb": 1})  # the stand-in has other apps at No. 1
    db.close()
    path = config(tmp_path, receiver, 'kinds = ["left_no1"]\n')
    collected = run_monitor("collect", "--config", path)
    assert collected.returncode == 0, collected.stderr
    assert "webhooks: 2 events delivered, 0 waiting" in collected.stderr
    sent = sorted((b["event"]["app_id"], b["event"]["country"]) for b in receiver.verified())
    assert sent == [(APP[0], "gb"), (APP[0], "us")]


def test_a_signal_while_collect_sends_events_ends_it_after_the_try_under_way(
    tmp_path, receiver, spawn_monitor, db_path
):
    db = schema.open_db(db_path)
    app_sweep(db, T[0], APP, {"us": 1, "gb": 1, "jp": 1, "fr": 1})
    db.close()
    path = config(tmp_path, receiver, 'kinds = ["left_no1"]\n')
    receiver.hang = 2.0
    collecting = spawn_monitor("collect", "--config", path)
    wait_for(lambda: receiver.arrived, 90, "a first post")
    collecting.send_signal(signal.SIGINT)
    signalled = time.monotonic()
    _, err = collecting.communicate(timeout=4 * receiver.hang + 10)
    assert time.monotonic() - signalled < 2 * receiver.hang
    assert collecting.returncode == 130, err
    assert "webhooks: 1 events delivered, 3 waiting" in err
    assert receiver.arrived == 1


def test_a_service_killed_mid_delivery_sends_the_rest_after_a_restart(
    tmp_path, receiver, spawn_monitor, run_monitor, db_path
):
    db = schema.open_db(db_path)
    app_sweep(db, T[0], APP, {"us": 1, "gb": 1, "jp": 1, "fr": 1})
    db.close()
    path = config(tmp_path, receiver, 'kinds = ["left_no1"]\n')
    receiver.hang = 2.0
    first = spawn_monitor("run", "--no-serve", "--interval", "1h", "--config", path)
    queued = "SELECT COUNT(*) FROM outbox"
    wait_for(lambda: receiver.posts and query(db_path, queued)[0][0] == 4, 90, "a first post")
    first.kill()  # as a crash: no chance to finish what it was sending
    first.wait(timeout=10)
    waiting = query(db_path, "SELECT COUNT(*) FROM outbox WHERE state = 'pending'")[0][0]
    assert 1 <= waiting <= 3
    receiver.hang = 0.0
    second = spawn_monitor("run", "--no-serve", "--interval", "1h", "--config", path)
    wait_for(
        lambda: query(db_path, "SELECT COUNT(*) FROM outbox WHERE state != 'delivered'")[0][0] == 0,
        90,
        "every event delivered",
    )
    second.send_signal(signal.SIGTERM)
    second.wait(timeout=alerts.TIMEOUT + 10)
    ids = [b["event"]["id"] for b in receiver.verified()]
    countries = {b["event"]["country"] for b in receiver.verified()}
    assert countries == {"us", "gb", "jp", "fr"} and len(set(ids)) == 4
    # Once more, a new process, with nothing new: nothing is sent.
    arrived = receiver.arrived
    again = run_monitor("collect", "--config", path)
    assert "webhooks: 0 events delivered, 0 waiting" in again.stderr, again.stderr
    assert receiver.arrived == arrived


def test_the_stand_ins_two_phase_climb_reaches_the_receiver_and_the_feed_once_each(
    tmp_path, receiver, stand_in, run_monitor, db_path, served
):
    countries = list(storefronts_175())[:60]
    climbed, failing = countries[:52], countries[52:]
    stand_in.placed = App(APP[0], APP[1], "DeepSeek")
    path = config(tmp_path, receiver, f'apps = ["{APP[0]}"]\n')
    stand_in.placed_ranks = dict.fromkeys(countries, 20)
    assert run_monitor("collect", "--config", path).returncode == 0
    stand_in.placed_ranks = dict.fromkeys(climbed, 1)
    stand_in.faults = dict.fromkeys(failing, "500")
    phase_two = run_monitor("collect", "--config", path)
    assert "webhooks: 112 events delivered, 0 waiting" in phase_two.stderr, phase_two.stderr
    events = distinct(receiver)  # each signature checked as a receiver checks it
    assert len(receiver.posts) == len(events) == 112  # none posted twice
    by_kind = {}
    for event in events.values():
        by_kind.setdefault(event["kind"], []).append(event["country"] or event["threshold"])
    assert {kind: sorted(found) for kind, found in by_kind.items()} == {
        "entered_no1": sorted(climbed),  # one each
        "entered_top10": sorted(climbed),
        "milestone_no1": [1, 10, 25, 50],
        "milestone_top10": [1, 10, 25, 50],
    }  # the 8 storefronts that failed left nothing
    # Once more with nothing new: nothing new is sent.
    arrived = receiver.arrived
    again = run_monitor("collect", "--config", path)
    assert "webhooks: 0 events delivered, 0 waiting" in again.stderr, again.stderr
    assert receiver.arrived == arrived
    # The feed filtered to the app lists the same events.
    ds = served(db_path)
    feed = feedparser.parse(get(ds, f"/rankings/events_feed.atom?app={APP[0]}").text)
    assert not feed.bozo, feed.bozo_exception
    assert sorted(int(entry.id.split(":")[3]) for entry in feed.entries) == sorted(events)
