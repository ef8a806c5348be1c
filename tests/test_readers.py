"""What one reader's query may cost Datasette: values, rows, answers, functions, raw bodies."""

from __future__ import annotations

import asyncio
import socket
import sqlite3
import time
import zlib
from contextlib import closing
from urllib.parse import quote, urlencode

import httpx
import pytest

import scenario
from conftest import free_port, wait_for
from helpers import chart
from monitor import hangups, readers, schema, storage, turns
from monitor.charts import FetchResult


@pytest.fixture(scope="module")
def path(tmp_path_factory):
    db_path = scenario.build(tmp_path_factory.mktemp("readers") / "rankings.db")
    db = schema.open_db(db_path)
    failure = FetchResult(chart("kr"), "t", "t", error="drifted", error_kind="drift", raw=b"BODY")
    storage.record(db, 1, failure)
    db.close()
    return db_path


def ask(ds, sql):
    started = time.monotonic()
    response = asyncio.run(ds.client.get("/rankings.json", params={"sql": sql, "_shape": "array"}))
    return response, time.monotonic() - started


SAMPLES = [
    "instr('hello world', 'o')",
    "instr('hello', 'z')",
    "instr('héllo', 'l')",
    "instr(x'0102030405', x'0304')",
    "instr(12345, 34)",
    "instr(NULL, 'a')",
    "replace('a.b.c', '.', '--')",
    "replace('abc', '', 'x')",
    "replace('abc', 'b', NULL)",
    "replace(1.5, '.', ',')",
    "trim('xxhixx', 'x')",
    "ltrim('xyhixy', 'yx')",
    "rtrim('xyhixy', 'yx')",
    "trim('héé', 'é')",
    "trim(NULL, 'x')",
]


@pytest.mark.parametrize("expression", SAMPLES)
def test_the_linear_functions_answer_as_sqlites_own(expression):
    with (
        closing(sqlite3.connect(":memory:")) as plain,
        closing(sqlite3.connect(":memory:")) as ours,
    ):
        readers.bound(ours, public=True)
        sql = f"SELECT {expression}"
        assert tuple(ours.execute(sql).fetchone()) == plain.execute(sql).fetchone()


def test_a_search_in_a_long_value_takes_linear_time(path, served):
    # SQLite's own instr compares at every offset: about 5 s on these values.
    sql = "select instr(printf('%.*c', 1000000, 'a'), printf('%.*c', 500000, 'a') || 'b')"
    response, seconds = ask(served(path, public=True, public_sql=True), sql)
    assert response.status_code == 200, response.text
    assert list(response.json()[0].values()) == [0]
    assert seconds < 2


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("select zeroblob(2000000)", "string or blob too big"),
        ("select " + ", ".join(["1"] * 101), "too many columns in result set"),
        ("select 'a' like '" + "%a" * 60 + "'", "LIKE or GLOB pattern too complex"),
    ],
)
def test_public_readers_cannot_make_long_values_wide_rows_or_long_patterns(
    path, sql, error, served
):
    response, seconds = ask(served(path, public=True, public_sql=True), sql)
    assert response.status_code == 400
    assert response.json()["error"] == error
    assert seconds < 1


def test_an_answer_is_refused_once_it_holds_more_than_its_share(path, served):
    # 100 rows of 1 MB each, each made in no time: the rows are counted as they come.
    sql = (
        "with recursive c(x) as (select 1 union all select x + 1 from c limit 100) "
        "select zeroblob(1000000) from c"
    )
    response, _ = ask(served(path, public=True, public_sql=True), sql)
    assert response.status_code == 400
    assert response.json()["error"].startswith("the answer holds more than 16 MB")
    small, _ = ask(served(path, public=True, public_sql=True), sql.replace("1000000", "1000"))
    assert small.status_code == 200 and len(small.json()) == 100


def test_raw_bodies_read_as_null_through_sql_in_public_mode(path, served):
    sql = "select body from raw_responses"
    public, _ = ask(served(path, public=True, public_sql=True), sql)
    assert public.json() == [{"body": None}]
    private, _ = ask(served(path, public=False, public_sql=True), sql)
    (row,) = private.json()
    assert row["body"]["encoded"]  # served, base64-encoded, to trusted readers
    with closing(sqlite3.connect(path)) as conn:
        (body,) = conn.execute(sql).fetchone()
    assert zlib.decompress(body) == b"BODY"


RUNAWAY = "with recursive c(x) as (select 1 union all select x + 1 from c) select count(*) from c"


async def while_sql_runs(ds, pages):
    """Send three runaway queries at once, and the pages meanwhile; time each answer."""

    async def timed(path, params=None):
        started = time.monotonic()
        response = await ds.client.get(path, params=params)
        return response.status_code, time.monotonic() - started

    queries = [timed("/rankings.json", {"sql": RUNAWAY}) for _ in range(3)]
    answers = await asyncio.gather(*queries, *(timed(page) for page in pages))
    return answers[:3], answers[3:]


def test_arbitrary_sql_takes_turns_while_pages_pass(path, served):
    ds = served(path, public=True, public_sql=True)
    queries, pages = asyncio.run(while_sql_runs(ds, ["/rankings/rankings.json?country=us"] * 3))
    # Each query runs to the 1 s time limit, one after another.
    assert [status for status, _ in queries] == [400, 400, 400]
    assert max(seconds for _, seconds in queries) > 2.5
    assert [status for status, _ in pages] == [200, 200, 200]
    assert max(seconds for _, seconds in pages) < 1


def test_a_query_that_waits_too_long_for_its_turn_is_turned_away(path, monkeypatch, served):
    monkeypatch.setattr(turns, "WAIT_SECONDS", 0.5)
    queries, _ = asyncio.run(while_sql_runs(served(path, public=True, public_sql=True), []))
    assert sorted(status for status, _ in queries) == [400, 429, 429]


def test_the_queries_of_readers_who_hung_up_are_dropped_not_run(path, spawn_monitor):
    port = free_port()
    spawn_monitor("serve", "--db", str(path), "--port", str(port), "--public", "--public-sql")
    url = f"http://127.0.0.1:{port}/rankings.json"
    wait_for(lambda: _answered(url), 60, "Datasette")
    request = f"GET /rankings.json?sql={quote(RUNAWAY)} HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(12):  # each would take its turn for the whole 1 s time limit
        with socket.create_connection(("127.0.0.1", port)) as reader:
            reader.sendall(request.encode())
            time.sleep(0.05)  # and hangs up
    # It waits for the one under way, not for twelve, which would pass the turns' wait.
    answer = httpx.get(url, params={"sql": "select 1", "_shape": "array"}, timeout=30)
    assert answer.status_code == 200, answer.text


async def _hang_up_after(app, path: str, params: dict, seconds: float | None) -> float:
    """Ask the app as a server would, the reader hanging up after seconds (or never);
    return how long until the app was done with it."""
    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": urlencode(params).encode(),
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
        "root_path": "",
    }
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive():
        if messages:
            return messages.pop()
        await asyncio.sleep(3600 if seconds is None else seconds)
        return {"type": "http.disconnect"}

    async def send(message):
        pass

    started = time.monotonic()
    await app(scope, receive, send)
    return time.monotonic() - started


def test_a_costly_query_holds_its_turn_until_it_ends_though_its_reader_hung_up(path, served):
    app = served(path, public=True, public_sql=True).app()

    async def both():
        gone = asyncio.ensure_future(
            _hang_up_after(app, "/rankings.json", {"sql": RUNAWAY}, seconds=0.05)
        )
        await asyncio.sleep(0.2)  # the runaway query runs on, its reader gone
        waited = await _hang_up_after(app, "/rankings.json", {"sql": "select 1"}, None)
        await gone
        return waited

    # The second query waits for the first to reach the 1 s time limit, not just for its
    # reader to hang up: one costly query at a time, whoever is still listening.
    assert asyncio.run(both()) > 0.5


def test_work_that_outlives_its_hung_up_reader_hears_of_it_and_gives_back_its_turn():
    heard = []

    async def page(scope, receive, send):  # a costly page that reads what it is sent
        heard.append(await receive())
        heard.append(await receive())

    app = hangups.Hangups(turns.Turns(page, sql_allowed=True))

    async def both():
        await _hang_up_after(app, "/rankings/rankings", {"_sort": "rank"}, seconds=0.05)
        # Its turn given back: the next costly request runs at once, not after the wait.
        return await asyncio.wait_for(
            _hang_up_after(app, "/rankings/rankings", {"_sort": "rank"}, seconds=0.05), 5
        )

    asyncio.run(both())
    assert [message["type"] for message in heard] == ["http.request", "http.disconnect"] * 2


def _answered(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize(
    ("path", "query", "is_costly"),
    [
        ("/rankings", "sql=select+1", True),
        ("/rankings.json", "sql=select+1&_shape=array", True),
        ("/rankings/rankings", "country=us&rank=1", False),
        ("/rankings/rankings", "country__exact=us&app_id__in=1,2", False),
        ("/rankings/rankings", "app_name__contains=zzz", True),
        ("/rankings/rankings", "rank__gt=3", True),
        ("/rankings/rankings", "_sort=app_name", True),
        ("/rankings/fetches.json", "_facet=error_kind", True),
        ("/rankings/labels", "_search=x", True),
        ("/rankings/rankings.json", "_next=5000000", True),
        ("/rankings/rankings.json", "_nocount=&_size=1", True),  # a count of the history
        ("/rankings/rankings.json", "%5Fnocount=&_nocount=1", True),  # the first counts
        ("/rankings/rankings.json", "_nocount=1&_size=1", False),
        ("/rankings/rankings", "country__exact=us&_sort=&app_name__contains=", False),
        ("/rankings/claim", "app=1&sql=x", False),  # a canned query's parameters
        ("/-/health", "", False),
    ],
)
def test_what_counts_as_costly(path, query, is_costly):
    scope = {"type": "http", "path": path, "query_string": query.encode()}
    assert turns.costly(scope) is is_costly


def test_sql_where_it_is_refused_waits_no_turn():
    scope = {"type": "http", "path": "/rankings.json", "query_string": b"sql=select+1"}
    assert turns.costly(scope, sql_allowed=False) is False
    sorting = {**scope, "path": "/rankings/rankings", "query_string": b"_sort=country"}
    assert turns.costly(sorting, sql_allowed=False) is True
