"""The SQL behind ``monitor claim`` and Datasette's canned queries: one source for both.

A country is *observed* at time T when the latest successful observation of a chart at
or before T is no older than the maximum age; otherwise it is *not observed*, which is
never the same as *not ranked*. Times are text in ``YYYY-MM-DDTHH:MM:SSZ``; a blank
``:at`` means now.
"""

from __future__ import annotations

import html
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from monitor.sources import CHARTS, DEVICE_TITLES, DEVICES, STORES

MAX_AGE_SECONDS = 6 * 3600
_HOURS = f"{MAX_AGE_SECONDS / 3600:g}"
# movers compares each chart with itself this many hours before (blank :hours), and
# lists at most this many moves; an app new to a chart ranks this far down before.
MOVERS_HOURS = 24
MOVERS_LIMIT = 500
NEW_ENTRY_RANK = 1000
COVERAGE_DAYS = 30


@dataclass(frozen=True)
class Band:
    """A band of ranks a claim counts countries in: No. 1, the top 10, the top 100."""

    key: str  # as answers name it, e.g. ``top_10``
    label: str  # as people read it, e.g. ``Top 10``
    depth: int  # the lowest rank in the band

    def holds(self, rank: str) -> str:
        """SQL: the rank is in the band. No. 1 is ``= 1``, which the partial index of
        runs at No. 1 (``WHERE rank = 1``) serves."""
        return f"{rank} = 1" if self.depth == 1 else f"{rank} <= {self.depth}"


BANDS = (
    Band("number_one", "No. 1", 1),
    Band("top_10", "Top 10", 10),
    Band("top_100", "Top 100", 100),
)
NUMBER_ONE, TOP_10, TOP_100 = BANDS

# The instant an answer is for: :at in the stored format (SQLite reads ISO 8601, with or
# without "Z"), or, blank, the end of the latest complete sweep, so that a blank time
# never answers from a sweep half done (now, before any sweep finished).
_AT = """strftime('%Y-%m-%dT%H:%M:%SZ', coalesce(nullif(:at, ''),
  (SELECT finished_at FROM sweeps WHERE status = 'finished' ORDER BY id DESC LIMIT 1), 'now'))"""
AT = f"SELECT {_AT} AS at"


def _text_function(function: Callable[[str], str]) -> Callable[[object], str | None]:
    """Make a function of text an SQL function: NULL stays NULL, numbers are read as text."""
    return lambda value: None if value is None else function(str(value))


def prepare(conn: sqlite3.Connection) -> None:
    """Register what these queries call on a connection: casefold(), Python's;
    html_escape(), for text put in a page as HTML; url_quote(), for text put in a link's
    query string."""
    conn.create_function("casefold", 1, str.casefold, deterministic=True)
    conn.create_function("html_escape", 1, _text_function(html.escape), deterministic=True)
    conn.create_function(
        "url_quote", 1, _text_function(lambda text: quote(text, safe="")), deterministic=True
    )


# The apps :app means: the apps whose store id it is; else those one of whose names, in
# any storefront and script, contains it, case-folded. casefold() is registered on every
# connection that runs these (SQLite folds ASCII only); LIKE's wildcards in :app are
# escaped, so that "50%" means those characters. The name search's conditions that read no
# table come first: SQLite tests them once, so that an id never scans the names.
_MATCHES = """matches AS MATERIALIZED (
  SELECT a.id, a.store, a.app_id FROM apps a WHERE a.app_id = :app
  UNION
  SELECT a.id, a.store, a.app_id FROM apps a WHERE a.id IN (
    SELECT al.app FROM labels l JOIN app_labels al ON al.label = l.id
    WHERE trim(:app) != '' AND NOT EXISTS (SELECT 1 FROM apps WHERE app_id = :app)
      AND casefold(l.name) LIKE '%' || replace(replace(replace(casefold(:app),
      '\\', '\\\\'), '%', '\\%'), '_', '\\_') || '%' ESCAPE '\\')
)"""
# The most apps a name is answered with, as candidates to choose from.
FIND_LIMIT = 50
# The app, where :app means exactly one.
_TARGET = "target AS (SELECT * FROM matches WHERE (SELECT COUNT(*) FROM matches) = 1)"


def covers(run: str, snapshot: str) -> str:
    """SQL: the run holds its rank in the observation, which lies within the run's span.

    Two bounds rather than BETWEEN, in the order of the runs' key (chart_id,
    last_snapshot, rank), which serves them.
    """
    return f"{run}.last_snapshot >= {snapshot} AND {run}.first_snapshot <= {snapshot}"


def records_its_fetch(snapshot: str) -> str:
    """SQL: the snapshot is the record of its fetch too; the fetch of one stored before
    snapshots recorded them (monitor.schema, m012) is an attempts row of its own."""
    return f"{snapshot}.started_at IS NOT NULL"


def previous_snapshot(snapshot: str) -> str:
    """SQL: the observation of the same chart just before this one (NULL for its first)."""
    return (
        f"(SELECT MAX(b.id) FROM snapshots b "
        f"WHERE b.chart_id = {snapshot}.chart_id AND b.id < {snapshot}.id)"
    )


def within_max_age(earlier: str, later: str) -> str:
    """SQL: the time ``earlier`` is at most :max_age seconds before ``later``.

    This is what makes a country observed at a time, and what keeps a stretch unbroken.
    """
    return f"{earlier} >= strftime('%Y-%m-%dT%H:%M:%SZ', {later}, '-' || :max_age || ' seconds')"


def with_max_age(sql: str, seconds: int = MAX_AGE_SECONDS) -> str:
    """Write the max age into a query, for pages that have no field for it."""
    return sql.replace(":max_age", str(seconds))


# The latest observation of chart c at or before p.at, through (chart_id, fetched_at).
_LATEST = """(SELECT s.id FROM snapshots s WHERE s.chart_id = c.id AND s.fetched_at <= p.at{also}
     ORDER BY s.fetched_at DESC, s.id DESC LIMIT 1)"""
_LATEST_SNAPSHOT = _LATEST.format(also="")
# The same, of the sweeps up to :sweep: a sweep's end and the next one's start can share
# a second, and the next one's observations are not the earlier one's.
_LATEST_SNAPSHOT_OF_SWEEP = _LATEST.format(also=" AND s.sweep_id <= :sweep")

# A column of an app's run in one observation: its latest run starting at or before
# the snapshot, if that run is still current then. An app holds one rank at a time.
_RUN_IN_SNAPSHOT = """(SELECT CASE WHEN r.last_snapshot >= {row}.{snapshot} THEN {column} END
     FROM runs r WHERE r.app = {row}.app AND r.chart_id = {row}.chart_id
       AND r.first_snapshot <= {row}.{snapshot}
     ORDER BY r.first_snapshot DESC LIMIT 1)"""
_CLAIM_RANK = _RUN_IN_SNAPSHOT.format(row="seen", snapshot="snapshot_id", column="r.rank")
_CLAIM_LABEL = _RUN_IN_SNAPSHOT.format(row="seen", snapshot="snapshot_id", column="r.label")
_CLAIM_NAME = f"(SELECT name FROM labels WHERE id = {_CLAIM_LABEL})"
_RANK_BEFORE = _RUN_IN_SNAPSHOT.format(row="n", snapshot="before_id", column="r.rank")

# The latest failed fetch of chart l after its observation s and at or before p.at.
_FAILED_SINCE = """(SELECT MAX(f.started_at) FROM attempts f
     WHERE f.chart_id = l.chart_id AND f.status = 'error'
       AND f.started_at > coalesce(s.fetched_at, '') AND f.started_at <= p.at)"""
_SECONDS_BEFORE_AT = "CAST(round((julianday(p.at) - julianday(fetched_at)) * 86400) AS INTEGER)"


# Per chart and storefront of the app's store: its rank at p.at in the latest observation,
# which counts only when it is at most :max_age seconds old (fresh). An observation a later
# fetch failed to renew is stale: it still counts, and says so.
def _claim_rows(notes: bool = True) -> str:
    """The rows of a claim; without notes, a shorter text for the dashboard's URLs."""
    failed_at = f"{_FAILED_SINCE} AS failed_at" if notes else "NULL AS failed_at"
    return f"""latest AS (
  SELECT c.id AS chart_id, c.store, c.chart, c.device, c.genre, c.country, t.id AS app,
    t.app_id, {_LATEST_SNAPSHOT} AS snapshot_id
  FROM charts c JOIN target t ON t.store = c.store, p
),
seen AS (
  SELECT l.*, s.fetched_at, s.depth, {within_max_age("s.fetched_at", "p.at")} AS fresh,
    {failed_at}
  FROM latest l, p LEFT JOIN snapshots s ON s.id = l.snapshot_id
)
SELECT p.at, store, chart, device, genre, country, sf.name AS country_name,
  CASE WHEN fresh THEN {_CLAIM_RANK} END AS rank,
  CASE WHEN p.at IS NULL THEN 'invalid time: use YYYY-MM-DDTHH:MM:SSZ'
       WHEN fresh THEN 'observed' WHEN fetched_at IS NULL THEN 'never observed'
       ELSE 'not observed: too old' END AS coverage,
  fetched_at AS observed_at, CASE WHEN fresh THEN {_SECONDS_BEFORE_AT} END AS age_seconds,
  CASE WHEN failed_at IS NULL THEN NULL
       WHEN fresh THEN 'stale: last fetch failed at ' || failed_at
         || '; showing the observation of ' || fetched_at
       ELSE 'last fetch failed at ' || failed_at END AS note,
  CASE WHEN fresh THEN depth END AS observed_depth,
  snapshot_id, app_id, CASE WHEN fresh THEN {_CLAIM_NAME} END AS app_name
FROM seen, p LEFT JOIN storefronts sf ON sf.code = seen.country"""


# The end of the complete sweep just before (MAX, <) or just after (MIN, >) the instant
# answered, p.at. It reads p itself rather than the row's, so that SQLite finds it once
# and not once a row.
_SWEEP_END = (
    "SELECT {step}(s.finished_at) FROM sweeps s, p "
    "WHERE s.status = 'finished' AND s.finished_at {op} p.at"
)


def _not_one_app(columns: tuple[str, ...], optional: bool = False, link: str = "NULL") -> str:
    """The rows that answer where :app means several apps (one per candidate, ``link``
    its own link, if any) or none (one saying so), with ``columns`` (``note`` among them),
    to follow an answer's rows. Where :app is ``optional``, blank means every app: no row
    says it means none."""
    candidate = {
        "link": link,
        "at": "p.at",
        "store": "m.store",
        "app_id": "m.app_id",
        "app_name": _NAME_AT.format(app="m.id"),
        "note": "'one of ' || (SELECT COUNT(*) FROM matches) || ' apps with a name containing "
        "' || quote(:app) || ': ask for one by its id' || CASE WHEN (SELECT COUNT(*) FROM "
        f"matches) > {FIND_LIMIT} THEN ' (the first {FIND_LIMIT} by id are listed)' ELSE '' END",
    }
    none = {"at": "p.at", "note": "'no app has the id or a name containing ' || quote(:app)"}
    return f"""UNION ALL
SELECT {", ".join(candidate.get(c, "NULL") + f" AS {c}" for c in columns)}
FROM (SELECT * FROM matches ORDER BY store, app_id LIMIT {FIND_LIMIT}) m, p
WHERE (SELECT COUNT(*) FROM matches) > 1
UNION ALL
SELECT {", ".join(none.get(c, "NULL") + f" AS {c}" for c in columns)}
FROM p WHERE {"trim(:app) != '' AND " if optional else ""}NOT EXISTS (SELECT 1 FROM matches)"""


def pinned(asked: str) -> str:
    """Columns linking to a question (``asked``, a query string ending in ? or &) at the
    instant answered, p.at (a permalink), and at the complete sweeps before and after."""
    before = _SWEEP_END.format(step="MAX", op="<")
    after = _SWEEP_END.format(step="MIN", op=">")
    return (
        f"{asked} || 'at=' || p.at AS link, {asked} || 'at=' || ({before}) AS earlier, "
        f"{asked} || 'at=' || ({after}) AS later"
    )


def for_one_app(rows: str, columns: tuple[str, ...], order: str) -> str:
    """Answer for the one app :app means (rows, which reads ``target``), ordered.

    Where :app means several apps, answer a row per candidate instead; where it means
    none, a row saying so. Each row links to the same question asked by the app's id, at
    the instant answered where the answer has one (a permalink), and then also at the
    complete sweeps before and after it. ``columns`` are the
    names of rows' columns, among them ``note``, ``store``, ``app_id`` and ``app_name``.
    """
    asked = "'?app=' || url_quote(answer.app_id)"
    links = pinned(f"{asked} || '&'") if "at" in columns else f"{asked} AS link"
    return f"""WITH p AS (SELECT {_AT} AS at),
{_MATCHES},
{_TARGET},
answer AS (
SELECT * FROM (WITH {rows})
{_not_one_app(columns)})
SELECT answer.*, {links} FROM answer, p
ORDER BY {order}, app_id"""


_LATEST_NAME = """(SELECT l.name FROM runs r JOIN labels l ON l.id = r.label WHERE r.app = {app}
   ORDER BY r.first_snapshot DESC LIMIT 1)"""
# The name the app was last shown under at or before p.at, in any storefront.
_NAME_AT = """(SELECT l.name FROM runs r JOIN labels l ON l.id = r.label
     JOIN snapshots s ON s.id = r.first_snapshot
   WHERE r.app = {app} AND s.fetched_at <= p.at ORDER BY r.first_snapshot DESC LIMIT 1)"""
# The columns naming a chart of one storefront, in the answers about apps.
_CHART_IN_STOREFRONT = ("store", "chart", "device", "genre", "country", "country_name")
CLAIM_COLUMNS = (
    "at",
    *_CHART_IN_STOREFRONT,
    "rank",
    "coverage",
    "observed_at",
    "age_seconds",
    "note",
    "observed_depth",
    "snapshot_id",
    "app_id",
    "app_name",
)
CLAIM = for_one_app(
    _claim_rows(),
    CLAIM_COLUMNS,
    "store, chart, device, genre, rank IS NULL, rank, country",
)

_TOP_CHART_ASKED = """'?country=' || url_quote(lower(:country))
  || '&chart=' || url_quote(coalesce(:chart, ''))
  || '&device=' || url_quote(coalesce(:device, '')) || '&'"""
TOP_CHART = f"""WITH p AS (SELECT {_AT} AS at),
chart AS (
  SELECT c.id FROM charts c
  WHERE c.country = lower(:country) AND c.chart = coalesce(nullif(:chart, ''), 'top-free')
    AND c.device IS nullif(:device, '') AND c.genre IS NULL
),
snap AS (
  SELECT s.id, s.chart_id, s.fetched_at FROM snapshots s, chart c, p
  WHERE s.chart_id = c.id AND s.fetched_at <= p.at AND {within_max_age("s.fetched_at", "p.at")}
  ORDER BY s.fetched_at DESC, s.id DESC LIMIT 1
)
SELECT p.at, lower(:country) AS country,
  (SELECT name FROM storefronts WHERE code = lower(:country)) AS country_name,
  r.rank, a.icon_url AS icon, l.name AS app_name, NULLIF(l.developer, '') AS developer,
  a.store, a.app_id, snap.fetched_at AS observed_at, snap.id AS snapshot_id,
  {pinned(_TOP_CHART_ASKED)}
FROM p, snap
JOIN runs r ON r.chart_id = snap.chart_id AND {covers("r", "snap.id")}
JOIN apps a ON a.id = r.app
JOIN labels l ON l.id = r.label
ORDER BY r.rank"""

APP_HISTORY = for_one_app(
    f"""h AS (
  SELECT s.fetched_at, c.store, c.chart, c.device, c.genre, c.country, sf.name AS country_name,
    r.rank, a.app_id, l.name AS app_name, s.id AS snapshot_id, NULL AS note
  FROM target a
  JOIN runs r ON r.app = a.id
  JOIN charts c ON c.id = r.chart_id
  JOIN snapshots s ON s.chart_id = r.chart_id AND {covers("r", "s.id")}
  JOIN labels l ON l.id = r.label
  LEFT JOIN storefronts sf ON sf.code = c.country
  WHERE nullif(:country, '') IS NULL OR c.country = lower(:country)
) SELECT * FROM h""",
    (
        "fetched_at",
        "store",
        "chart",
        "device",
        "genre",
        "country",
        "country_name",
        "rank",
        "app_id",
        "app_name",
        "snapshot_id",
        "note",
    ),
    "fetched_at, store, chart, device, genre, country",
)

# "+r.rank" keeps SQLite off the index of ranks, which holds every run at No. 1 of the
# history: each chart's latest observation seeks its runs by their key instead.
NUMBER_ONES = f"""WITH p AS (SELECT {_AT} AS at),
latest AS (
  SELECT c.id AS chart_id, c.store, c.chart, c.device, c.genre, c.country,
    {_LATEST_SNAPSHOT} AS snapshot_id
  FROM charts c, p
)
SELECT p.at, l.store, l.chart, l.device, l.genre, l.country, sf.name AS country_name,
  a.icon_url AS icon, lb.name AS app_name, a.app_id, s.fetched_at AS observed_at,
  s.id AS snapshot_id, {pinned("'?'")}
FROM latest l, p
JOIN snapshots s ON s.id = l.snapshot_id
JOIN runs r ON r.chart_id = l.chart_id AND {covers("r", "s.id")} AND {NUMBER_ONE.holds("+r.rank")}
JOIN apps a ON a.id = r.app
JOIN labels lb ON lb.id = r.label
LEFT JOIN storefronts sf ON sf.code = l.country
WHERE {within_max_age("s.fetched_at", "p.at")}
ORDER BY l.store, l.chart, l.device, l.genre, l.country"""


# Per chart kind and app: in how many storefronts it was No. 1 and in the top 10 at :at,
# the end of the sweep :sweep, counted as a claim counts them (each chart's latest
# observation, at most :max_age old), with one of the names it was shown under there.
# What milestones compare.
BAND_COUNTS = f"""WITH p AS (SELECT :at AS at),
latest AS (
  SELECT c.id AS chart_id, c.store, c.chart, c.device, c.genre,
    {_LATEST_SNAPSHOT_OF_SWEEP} AS snapshot_id
  FROM charts c, p
)
SELECT l.store, l.chart, l.device, l.genre, r.app, MIN(r.label) AS label,
  SUM({NUMBER_ONE.holds("r.rank")}) AS {NUMBER_ONE.key}, COUNT(*) AS {TOP_10.key}
FROM latest l, p
JOIN snapshots s ON s.id = l.snapshot_id
JOIN runs r ON r.chart_id = l.chart_id AND {covers("r", "s.id")} AND {TOP_10.holds("+r.rank")}
WHERE {within_max_age("s.fetched_at", "p.at")}
GROUP BY l.store, l.chart, l.device, l.genre, r.app"""


# Each chart's latest observation at or before :at against its latest one :hours (blank:
# MOVERS_HOURS) before, in the :country (blank: all) and for the app :app means (blank:
# all; several or none answer as the other app queries do); the biggest moves first,
# MOVERS_LIMIT a :page (blank: 1), each row saying which of how many it is and the next
# page linked from the last.
MOVERS_COLUMNS = (
    "at",
    *_CHART_IN_STOREFRONT,
    "app_id",
    "app_name",
    "rank_before",
    "rank_now",
    "movement",
    "places",
    "compared_from",
    "compared_to",
    "move",
    "moves",
    "note",
    "link",
)
# The same question, for the app of a candidate row (m) or for the next page.
_MOVERS_ASKED = """'?hours=' || url_quote(coalesce(:hours, ''))
      || '&country=' || url_quote(coalesce(:country, '')) || '&at=' || url_quote(p.at)"""
_MOVERS_CANDIDATE = f"{_MOVERS_ASKED} || '&app=' || url_quote(m.app_id)"
MOVERS = f"""WITH p AS (SELECT {_AT} AS at),
{_MATCHES},
{_TARGET},
pairs AS MATERIALIZED (
  SELECT c.id AS chart_id, c.store, c.chart, c.device, c.genre, c.country,
    {_LATEST_SNAPSHOT} AS now_id
  FROM charts c, p
  WHERE nullif(:country, '') IS NULL OR c.country = lower(trim(:country))
),
spans AS MATERIALIZED (
  SELECT pairs.*, (SELECT b.id FROM snapshots b, snapshots n
     WHERE n.id = pairs.now_id AND b.chart_id = pairs.chart_id
       AND b.fetched_at <= strftime('%Y-%m-%dT%H:%M:%SZ', n.fetched_at,
                                    '-' || coalesce(nullif(:hours, ''), {MOVERS_HOURS}) || ' hours')
     ORDER BY b.fetched_at DESC, b.id DESC LIMIT 1) AS before_id
  FROM pairs WHERE now_id IS NOT NULL
),
now AS MATERIALIZED (
  SELECT sp.*, r.app, r.rank, r.label FROM spans sp
  JOIN runs r ON r.chart_id = sp.chart_id AND {covers("r", "sp.now_id")}
  WHERE sp.before_id IS NOT NULL
    AND (nullif(:app, '') IS NULL OR r.app IN (SELECT id FROM target))
),
moves AS (
  SELECT n.*, {_RANK_BEFORE} AS rank_before
  FROM now n
),
ranked AS (
  SELECT m.*, row_number() OVER (
      ORDER BY abs(coalesce(m.rank_before, {NEW_ENTRY_RANK}) - m.rank) DESC, m.country, m.rank,
        m.chart_id) AS move,
    COUNT(*) OVER () AS moves
  FROM moves m WHERE m.rank_before IS NULL OR m.rank_before != m.rank
),
page AS (SELECT max(coalesce(CAST(nullif(:page, '') AS INTEGER), 1), 1) AS number)
SELECT p.at, m.store, m.chart, m.device, m.genre, m.country, sf.name AS country_name, a.app_id,
  l.name AS app_name, m.rank_before, m.rank AS rank_now,
  CASE WHEN m.rank_before IS NULL THEN 'new entry'
       WHEN m.rank < m.rank_before THEN 'climb' ELSE 'fall' END AS movement,
  m.rank_before - m.rank AS places,
  b.fetched_at AS compared_from, n.fetched_at AS compared_to, m.move, m.moves, NULL AS note,
  CASE WHEN m.move = page.number * {MOVERS_LIMIT} AND m.moves > m.move
    THEN {_MOVERS_ASKED} || '&app=' || url_quote(coalesce(:app, ''))
      || '&page=' || (page.number + 1)
  END AS link
FROM ranked m, page, p
JOIN apps a ON a.id = m.app
JOIN labels l ON l.id = m.label
JOIN snapshots b ON b.id = m.before_id
JOIN snapshots n ON n.id = m.now_id
LEFT JOIN storefronts sf ON sf.code = m.country
WHERE m.move > (page.number - 1) * {MOVERS_LIMIT} AND m.move <= page.number * {MOVERS_LIMIT}
{_not_one_app(MOVERS_COLUMNS, optional=True, link=_MOVERS_CANDIDATE)}
ORDER BY move, app_id"""

# The first sweep of the window; with none in it, past the last one, so that none counts.
_FIRST_RECENT_SWEEP = f"""coalesce((SELECT MIN(id) FROM sweeps
  WHERE started_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-{COVERAGE_DAYS} days')),
  (SELECT MAX(id) + 1 FROM sweeps))"""
# The fetches of the window, from each table by its index of sweeps: a condition with a
# subquery does not reach into the fetches view's two tables, which it would scan whole.
COVERAGE = f"""WITH recent AS (
  SELECT t.chart_id, t.started_at, t.status FROM attempts t
  WHERE t.sweep_id >= {_FIRST_RECENT_SWEEP}
  UNION ALL
  SELECT s.chart_id, s.started_at, 'ok' FROM snapshots s
  WHERE s.sweep_id >= {_FIRST_RECENT_SWEEP} AND {records_its_fetch("s")}
)
SELECT substr(f.started_at, 1, 10) AS day, c.store, c.country,
  SUM(f.status = 'ok') AS ok, SUM(f.status = 'error') AS errors,
  ROUND(100.0 * SUM(f.status = 'ok') / COUNT(*), 1) AS success_percent
FROM recent f
JOIN charts c ON c.id = f.chart_id
GROUP BY day, c.store, c.country
ORDER BY day DESC, success_percent, c.store, c.country"""


# An app's stretches at No. 1 up to :at, per chart and country: unbroken series of
# observations with the app at No. 1. A stretch ends where an observation of the chart did
# not have it at No. 1, or where the chart went unobserved for more than :max_age seconds,
# since nothing is known of it then. A rename does not end a stretch. CROSS JOIN keeps the
# app's runs first, as below.
def _number_one_stretches(app: str) -> str:
    """The stretches of the target app; app defines target, or is blank for a caller's."""
    return f"""WITH p AS (SELECT {_AT} AS at),{app}
points AS (
  SELECT c.id AS chart_id, c.store, c.chart, c.device, c.genre, c.country,
    s.id AS snapshot_id, s.fetched_at,
    {previous_snapshot("s")} AS previous_snapshot
  FROM target a
  CROSS JOIN runs r ON r.app = a.id AND {NUMBER_ONE.holds("+r.rank")}
  JOIN charts c ON c.id = r.chart_id
  JOIN snapshots s ON s.chart_id = r.chart_id AND {covers("r", "s.id")}, p
  WHERE s.fetched_at <= p.at
),
marked AS (
  SELECT *, CASE WHEN previous_snapshot IS lag(snapshot_id) OVER win
      AND {within_max_age("lag(fetched_at) OVER win", "fetched_at")}
    THEN 0 ELSE 1 END AS starts
  FROM points WINDOW win AS (PARTITION BY chart_id ORDER BY snapshot_id)
),
numbered AS (
  SELECT *, SUM(starts) OVER (PARTITION BY chart_id ORDER BY snapshot_id) AS stretch
  FROM marked
)
SELECT store, chart, device, genre, country, MIN(fetched_at) AS first_at,
  MAX(fetched_at) AS last_at, MAX(snapshot_id) AS last_snapshot,
  ROUND((julianday(MAX(fetched_at)) - julianday(MIN(fetched_at))) * 24, 1) AS hours
FROM numbered
GROUP BY chart_id, stretch
ORDER BY store, chart, device, genre, country, first_at"""


# How many countries had the app at No. 1 in each sweep, per chart, up to :at.
# CROSS JOIN keeps the app's runs first: the runs at rank 1 of every app are many.
def _number_one_peaks(app: str) -> str:
    """The peaks of the target app; app defines target, or is blank for a caller's."""
    return f"""WITH p AS (SELECT {_AT} AS at){app}
SELECT c.store, c.chart, c.device, c.genre, s.sweep_id, MIN(s.fetched_at) AS at,
  COUNT(*) AS countries
FROM target a
CROSS JOIN runs r ON r.app = a.id AND {NUMBER_ONE.holds("+r.rank")}
JOIN charts c ON c.id = r.chart_id
JOIN snapshots s ON s.chart_id = r.chart_id AND {covers("r", "s.id")}, p
WHERE s.fetched_at <= p.at
GROUP BY c.store, c.chart, c.device, c.genre, s.sweep_id
ORDER BY c.store, c.chart, c.device, c.genre, countries DESC, s.sweep_id"""


# The app whose store id :app is: what `monitor claim` and the dashboard ask about.
_BY_ID = "target AS (SELECT id, store, app_id FROM apps WHERE app_id = :app)"
NUMBER_ONE_STRETCHES = _number_one_stretches(f"\n{_BY_ID},")
NUMBER_ONE_PEAKS = _number_one_peaks(f",\n{_BY_ID}")

# Per chart the app's store has: the counts of `monitor claim`, from the same rows, its
# current stretches at No. 1 and its peak. No. 1 since: the start of the oldest stretch
# at No. 1 that the observation answered from still continues.
_SAME_CHART = (
    "{a}.store = {b}.store AND {a}.chart = {b}.chart AND {a}.device IS {b}.device "
    "AND {a}.genre IS {b}.genre"
)
_SUMMARY_ROWS = f"""cr AS MATERIALIZED (SELECT * FROM (WITH {_claim_rows()})),
st AS MATERIALIZED (SELECT * FROM ({_number_one_stretches("")})),
pk AS MATERIALIZED (SELECT * FROM ({_number_one_peaks("")}))
SELECT MIN(cr.at) AS at, cr.store, cr.chart, cr.device, cr.genre,
  {", ".join(f"SUM(coalesce({band.holds('cr.rank')}, 0)) AS {band.key}" for band in BANDS)},
  SUM(cr.coverage = 'observed') AS observed, SUM(cr.coverage != 'observed') AS not_observed,
  SUM(cr.coverage = 'observed' AND cr.note IS NOT NULL) AS stale,
  (SELECT MIN(st.first_at) FROM st JOIN cr n ON {_SAME_CHART.format(a="n", b="st")}
     AND n.country = st.country AND n.snapshot_id = st.last_snapshot
     AND {NUMBER_ONE.holds("n.rank")}
   WHERE {_SAME_CHART.format(a="st", b="cr")}) AS number_one_since,
  (SELECT pk.countries FROM pk WHERE {_SAME_CHART.format(a="pk", b="cr")}
   ORDER BY pk.countries DESC, pk.sweep_id LIMIT 1) AS peak_number_one,
  (SELECT pk.at FROM pk WHERE {_SAME_CHART.format(a="pk", b="cr")}
   ORDER BY pk.countries DESC, pk.sweep_id LIMIT 1) AS peak_at,
  MIN(cr.app_id) AS app_id,
  (SELECT {_NAME_AT.format(app="t.id")} FROM target t, p) AS app_name,
  NULL AS note
FROM cr GROUP BY cr.store, cr.chart, cr.device, cr.genre"""
CLAIM_SUMMARY = for_one_app(
    _SUMMARY_ROWS,
    (
        "at",
        "store",
        "chart",
        "device",
        "genre",
        *(band.key for band in BANDS),
        "observed",
        "not_observed",
        "stale",
        "number_one_since",
        "peak_number_one",
        "peak_at",
        "app_id",
        "app_name",
        "note",
    ),
    "store, chart, device, genre",
)

# The apps :app means, with the latest name of each, for `monitor claim` to choose from.
FIND_APP = f"""WITH {_MATCHES}
SELECT m.store, m.app_id, {_LATEST_NAME.format(app="m.id")} AS name FROM matches m
ORDER BY m.store, m.app_id
LIMIT {FIND_LIMIT}"""


def _literal(text: str) -> str:
    """SQL: text as a string literal."""
    return "'" + text.replace("'", "''") + "'"


# The chart of a row (store, chart, device) as a sentence names it: "top free iPhone apps".
_CHART_WORDS = (
    "replace(chart, '-', ' ') || ' ' || CASE "
    + " ".join(f"WHEN device = {_literal(d)} THEN {_literal(t)}" for d, t in DEVICE_TITLES.items())
    + " "
    + " ".join(f"WHEN store = {_literal(s.name)} THEN {_literal(s.title)}" for s in STORES.values())
    + " ELSE store END || ' apps'"
)

# What each kind of event did, as a feed's title says it.
_PLACE = "coalesce(sf.name, p.country)"
_STOREFRONTS = "p.countries || CASE p.countries WHEN 1 THEN ' storefront' ELSE ' storefronts' END"
_EVENT_WORDS = {
    "entered_no1": f"'No. 1 in ' || {_PLACE}",
    "left_no1": f"'no longer No. 1 in ' || {_PLACE}",
    "entered_top10": f"'into the top 10 in ' || {_PLACE}",
    "left_top10": f"'out of the top 10 in ' || {_PLACE}",
    "entered_chart": f"'into the chart in ' || {_PLACE}",
    "left_chart": f"'out of the chart in ' || {_PLACE}",
    "milestone_no1": f"'No. 1 in ' || {_STOREFRONTS}",
    "milestone_top10": f"'in the top 10 in ' || {_STOREFRONTS}",
}
FEED_LIMIT = 500
_APP_PAGE = """'/-/dashboards/app?app=' || url_quote(p.app_id) || '&at=' || url_quote(p.at)
    || '&chart=' || url_quote(p.chart) || '&device=' || url_quote(coalesce(p.device, ''))"""
_EVENT_CASE = (
    "CASE p.kind " + " ".join(f"WHEN '{k}' THEN {w}" for k, w in _EVENT_WORDS.items()) + " END"
)
_IN_COUNTRY = "(nullif(:country, '') IS NULL OR e.country = lower(trim(:country)))"
_FEED_FILTERS = """(nullif(:chart, '') IS NULL OR {chart} = trim(:chart))
    AND (nullif(:kind, '') IS NULL OR {event}.kind = trim(:kind))
    AND (nullif(:before, '') IS NULL OR {event}.id < CAST(:before AS INTEGER))"""
_IN_EVENTS = _FEED_FILTERS.format(chart="e.chart", event="e")
# The same question, for the events before the oldest of a full page.
_FEED_OLDER = """CASE WHEN p.id = (SELECT MIN(id) FROM picked)
    AND (SELECT COUNT(*) FROM picked) = {limit}
  THEN '?app=' || url_quote(coalesce(:app, '')) || '&country=' || url_quote(coalesce(:country, ''))
    || '&chart=' || url_quote(coalesce(:chart, '')) || '&kind=' || url_quote(coalesce(:kind, ''))
    || '&before=' || p.id END"""
# The latest FEED_LIMIT events of the apps :app means (blank: all), in the :country,
# :chart and of the :kind given (blank: all), before the event :before (blank: the
# latest), newest first; each with what an Atom entry needs (monitor.feed): an id, a
# time, a title, a link to its evidence, the observation that showed it (for a
# milestone, the app page at its time), and the app page; the oldest of a full page links
# to the page before. An app's events are found through its own (id + 0: not by reading
# every id from the newest), and a storefront's through its charts (a storefront with
# few events, or none, is not found by reading every event). A name of several apps, or
# of none, answers as the other app queries do, with rows that are no feed's entries.
FEED_COLUMNS = (
    "id",
    "kind",
    "at",
    *_CHART_IN_STOREFRONT,
    "app_id",
    "app_name",
    "rank_before",
    "rank_after",
    "threshold",
    "countries",
    "snapshot_after",
    "atom_id",
    "atom_updated",
    "atom_title",
    "atom_link",
    "app_page",
    "older",
    "note",
    "link",
)
_FEED_ASKED = """'?app=' || url_quote(m.app_id) || '&country=' || url_quote(coalesce(:country, ''))
    || '&chart=' || url_quote(coalesce(:chart, '')) || '&kind=' || url_quote(coalesce(:kind, ''))"""
EVENTS_FEED = f"""WITH {_MATCHES},
{_TARGET},
picked AS MATERIALIZED (
  SELECT * FROM (SELECT e.* FROM events e
    WHERE nullif(:app, '') IS NOT NULL AND e.app_id IN (SELECT app_id FROM target)
      AND {_IN_COUNTRY} AND {_IN_EVENTS}
    ORDER BY e.id + 0 DESC LIMIT {FEED_LIMIT})
  UNION ALL
  SELECT * FROM (SELECT e.* FROM events e
    WHERE nullif(:app, '') IS NULL AND nullif(:country, '') IS NULL AND {_IN_EVENTS}
    ORDER BY e.id DESC LIMIT {FEED_LIMIT})
  UNION ALL
  SELECT e.* FROM events e WHERE e.id IN (
    SELECT x.id FROM charts c JOIN event_log x ON x.chart_id = c.id
    WHERE nullif(:app, '') IS NULL AND c.country = lower(trim(:country))
      AND {_FEED_FILTERS.format(chart="c.chart", event="x")}
    ORDER BY x.id DESC LIMIT {FEED_LIMIT})
),
feed AS (
SELECT p.id, p.kind, p.at, p.store, p.chart, p.device, p.genre, p.country,
  sf.name AS country_name, p.app_id, p.app_name, p.rank_before, p.rank_after, p.threshold,
  p.countries, p.snapshot_after,
  'tag:monitor,2025:event:' || p.id || ':' || p.kind || ':' || p.app_id AS atom_id,
  p.at AS atom_updated,
  p.app_name || ': ' || {_EVENT_CASE}
    || CASE WHEN p.threshold IS NULL THEN ' (' || coalesce(p.rank_before, '-') || ' to '
      || coalesce(p.rank_after, '-') || ')' ELSE '' END || ', ' || {_CHART_WORDS} AS atom_title,
  coalesce('rankings?snapshot_id=' || p.snapshot_after || '&app_id=' || url_quote(p.app_id),
    {_APP_PAGE}) AS atom_link,
  {_APP_PAGE} AS app_page,
  {_FEED_OLDER.format(limit=FEED_LIMIT)} AS older, NULL AS note, NULL AS link
FROM picked p LEFT JOIN storefronts sf ON sf.code = p.country
),
p AS (SELECT {_AT} AS at)
SELECT * FROM feed
{_not_one_app(FEED_COLUMNS, optional=True, link=_FEED_ASKED)}
ORDER BY id DESC"""


@dataclass(frozen=True)
class Canned:
    """A canned query as Datasette shows it."""

    title: str
    description: str
    sql: str


_APP_AND_AT = (
    "`app` is a store id or part of any name the app was shown under, in any storefront; "
    "`at` is blank for the end of the latest complete sweep, and `link` pins the answer "
    "to its instant."
)
CANNED = {
    "claim": Canned(
        "Where an app ranks at a time",
        "For every chart and country: the app's rank in the latest observation at or "
        f"before `at`, if that observation is at most {_HOURS} hours old; `note` says where "
        "a later fetch failed. 'not observed' is not the same as 'not ranked'. " + _APP_AND_AT,
        with_max_age(CLAIM),
    ),
    "claim_summary": Canned(
        "The headline: in how many countries an app ranks",
        "Per chart: how many storefronts had the app at No. 1, in the top 10 and in the "
        f"top 100 at `at`, how many were observed (fetched at most {_HOURS} hours before) "
        "and not, how many of those answered from an observation a later fetch failed to "
        "renew (stale), since when it has been No. 1, and its peak. " + _APP_AND_AT,
        with_max_age(CLAIM_SUMMARY),
    ),
    "top_chart": Canned(
        "A chart as it stood at a time",
        "The whole chart of a country at `at` (blank: the end of the latest complete "
        f"sweep), from the latest observation at most {_HOURS} hours older. "
        f"`chart`: {', '.join(CHARTS)}; `device`: {' or '.join(DEVICES)}, blank for a "
        "store without devices.",
        with_max_age(TOP_CHART),
    ),
    "app_history": Canned(
        "An app's rank over time",
        "Every observation in which the app was ranked, in one country (blank for all). "
        "`app` is a store id or part of any name it was shown under.",
        APP_HISTORY,
    ),
    "number_ones": Canned(
        "The No. 1 app of every country",
        f"For every chart and country observed within {_HOURS} hours of `at` (blank: the "
        "end of the latest complete sweep).",
        with_max_age(NUMBER_ONES),
    ),
    "movers": Canned(
        "Biggest climbs, falls and new entries",
        f"Each chart's latest observation at or before `at` (blank: the end of the latest "
        f"complete sweep) against its latest one `hours` before (blank for {MOVERS_HOURS}), "
        f"compared_from and compared_to saying which: the biggest moves first, {MOVERS_LIMIT} "
        "a `page`, the last row linking to the next. `country` and `app` (a store id or part "
        "of any name it was shown under) narrow it; blank for all.",
        MOVERS,
    ),
    "events_feed": Canned(
        "What changed: an app's events, as a feed",
        f"The latest {FEED_LIMIT} events, newest first: apps entering and leaving No. 1, "
        "the top 10 and the charts in each storefront, and milestones across storefronts. "
        "`app` (a store id or part of a name), `country`, `chart` and `kind` narrow it; "
        "blank for all. `before` is an event id: the events before it, where `older` links "
        "on a full page. Subscribe to it in a feed reader with the .atom link.",
        EVENTS_FEED,
    ),
    "coverage": Canned(
        "Fetch success per storefront",
        f"Successful and failed fetches per day and storefront, over the last {COVERAGE_DAYS} "
        "days.",
        COVERAGE,
    ),
}


# The per-app dashboard. It shows one overall chart of the app's store: :chart (blank for
# top-free) and :device (blank for the first store device, iphone), where its store has
# devices: the charts of a store without devices have none.
_SELECTED_CHART = (
    """{t}chart = coalesce(nullif(:chart, ''), 'top-free') AND {t}genre IS NULL
  AND ({t}device IS NULL OR {t}device = coalesce(nullif(:device, ''), '"""
    + DEVICES[0]
    + "'))"
)


# CLAIM's rows for the selected chart only, one per country, observed or not, for the app
# whose id is :app. Its text goes in the URLs of the dashboard's data requests, which
# servers cap at 8 KB: it leaves out the search by name, and, but where asked, the notes.
def _claim_in_chart(notes: bool) -> str:
    return f"""WITH p AS (SELECT {_AT} AS at),
{_BY_ID},
{_claim_rows(notes)}
WHERE {_SELECTED_CHART.format(t="")}"""


CLAIM_IN_CHART = _claim_in_chart(notes=False)
CLAIM_IN_CHART_WITH_NOTES = _claim_in_chart(notes=True)

# The app's rank in each observation of the selected chart, in the :days (blank for 7)
# up to :at, in the :countries listed ("us,gb"; blank for the 5 where it ranks best at
# :at). A line breaks (a new segment) where the chart's previous observation did not rank
# the app, or was more than :max_age seconds earlier. The app's notes of those days come
# as rows of their own kind, and so does :at, the instant the page answers for.
RANK_HISTORY = f"""WITH p AS (SELECT {_AT} AS at),
w AS (
  SELECT p.at, strftime('%Y-%m-%dT%H:%M:%SZ', p.at,
    '-' || coalesce(nullif(:days, ''), 7) || ' days') AS since,
    ',' || lower(replace(:countries, ' ', '')) || ',' AS listed
  FROM p
),
best AS (SELECT country FROM ({CLAIM_IN_CHART}) WHERE rank IS NOT NULL
  ORDER BY rank, country LIMIT 5),
points AS (
  SELECT c.country, s.id AS snapshot_id, s.fetched_at, r.rank,
    {previous_snapshot("s")} AS previous_snapshot
  FROM apps a
  JOIN runs r ON r.app = a.id
  JOIN charts c ON c.id = r.chart_id
  JOIN snapshots s ON s.chart_id = r.chart_id AND {covers("r", "s.id")}, w
  WHERE a.app_id = :app AND {_SELECTED_CHART.format(t="c.")}
    AND s.fetched_at BETWEEN w.since AND w.at
    AND CASE WHEN w.listed = ',,' THEN c.country IN best
        ELSE instr(w.listed, ',' || c.country || ',') > 0 END
),
marked AS (
  SELECT *, CASE WHEN lag(snapshot_id) OVER win IS previous_snapshot
      AND {within_max_age("lag(fetched_at) OVER win", "fetched_at")} THEN 0 ELSE 1 END AS starts
  FROM points WINDOW win AS (PARTITION BY country ORDER BY fetched_at, snapshot_id)
)
SELECT 'rank' AS kind,
  coalesce((SELECT name FROM storefronts WHERE code = country), country) AS country, fetched_at,
  rank, country || ' ' || SUM(starts) OVER (PARTITION BY country ORDER BY fetched_at, snapshot_id)
    AS segment, NULL AS note, NULL AS url
FROM marked
UNION ALL
SELECT 'note', NULL, n.at, NULL, NULL, n.text, n.url
FROM notes n JOIN apps a ON a.store = n.store AND a.app_id = n.app_id, w
WHERE a.app_id = :app AND n.at BETWEEN w.since AND w.at
UNION ALL
SELECT 'at', NULL, w.at, NULL, NULL, NULL, NULL FROM w
ORDER BY 3 DESC, 2"""

# The app's stretches at No. 1 in the selected chart up to :at; `now` when it holds
# No. 1 at :at.
NUMBER_ONE_SPANS = f"""SELECT m.country, m.first_at, m.last_at, m.hours,
  n.country IS NOT NULL AS now
FROM ({NUMBER_ONE_STRETCHES}) m
LEFT JOIN ({CLAIM_IN_CHART}) n ON n.country = m.country AND {NUMBER_ONE.holds("n.rank")}
  AND n.snapshot_id = m.last_snapshot
WHERE {_SELECTED_CHART.format(t="m.")}
ORDER BY now DESC, m.first_at DESC, m.country"""

# Every name and developer the app was shown under up to :at, with where and since when.
APP_NAMES = f"""WITH p AS (SELECT {_AT} AS at)
SELECT a.store, a.app_id, l.name, NULLIF(l.developer, '') AS developer,
  MIN(f.fetched_at) AS first_seen, COUNT(DISTINCT r.chart_id) AS charts
FROM apps a
JOIN runs r ON r.app = a.id
JOIN labels l ON l.id = r.label
JOIN snapshots f ON f.id = r.first_snapshot, p
WHERE a.app_id = :app AND f.fetched_at <= p.at
GROUP BY a.id, l.id
ORDER BY first_seen, l.name"""


# The dashboard's headline: claim_summary's counts for the selected chart, for the app
# whose id :app is, with the name most of its observed storefronts showed, and the
# complete sweeps before and after :at. Shorter than CLAIM_SUMMARY: its text goes in a URL.
HEADLINE = f"""WITH p AS (SELECT {_AT} AS at),
{_BY_ID},
cr AS MATERIALIZED (SELECT * FROM (WITH {_claim_rows()}) WHERE {_SELECTED_CHART.format(t="")})
SELECT p.at, t.app_id,
  (SELECT app_name FROM cr WHERE app_name IS NOT NULL GROUP BY app_name
   ORDER BY COUNT(*) DESC, app_name LIMIT 1) AS app_name, c.*,
  ({_SWEEP_END.format(step="MAX", op="<")}) AS earlier,
  ({_SWEEP_END.format(step="MIN", op=">")}) AS later
FROM p LEFT JOIN target t, (SELECT MIN({_CHART_WORDS}) AS chart_title,
  {", ".join(f"coalesce(SUM({band.holds('rank')}), 0) AS {band.key}" for band in BANDS)},
  COUNT(*) FILTER (WHERE coverage = 'observed') AS observed,
  COUNT(*) FILTER (WHERE coverage != 'observed') AS not_observed,
  COUNT(*) FILTER (WHERE coverage = 'observed' AND note IS NOT NULL) AS stale FROM cr) c"""

# Around the world over time: at the end of each sweep in the :days (blank for 7) up to
# :at, in how many storefronts the app whose id :app is held No. 1 and the top 10 in the
# selected chart, counted as a claim at that instant counts them (p is each sweep's end).
# A sweep that observed none of the chart is a gap, not a zero, and so is a sweep more
# than :max_age after the one before: a new segment starts after either.
WORLD_OVER_TIME = f"""WITH w AS (SELECT {_AT} AS at),
{_BY_ID},
p AS (SELECT s.id AS sweep_id, s.finished_at AS at FROM sweeps s, w
  WHERE s.finished_at BETWEEN strftime('%Y-%m-%dT%H:%M:%SZ', w.at,
    '-' || coalesce(nullif(:days, ''), 7) || ' days') AND w.at),
latest AS (SELECT p.sweep_id, c.id AS chart_id, t.id AS app, {_LATEST_SNAPSHOT} AS snapshot_id
  FROM p, target t JOIN charts c ON c.store = t.store AND {_SELECTED_CHART.format(t="c.")}),
seen AS (SELECT l.* FROM latest l JOIN p ON p.sweep_id = l.sweep_id
  JOIN snapshots s ON s.id = l.snapshot_id WHERE {within_max_age("s.fetched_at", "p.at")}),
counted AS (SELECT sweep_id, COUNT(*) AS observed,
  {", ".join(f"SUM(coalesce({b.holds('rank')}, 0)) AS {b.key}" for b in (NUMBER_ONE, TOP_10))}
  FROM (SELECT sweep_id, {_CLAIM_RANK} AS rank FROM seen) GROUP BY sweep_id),
marked AS (SELECT p.at, coalesce(k.observed, 0) AS observed, k.number_one, k.top_10,
  CASE WHEN k.observed IS NOT NULL AND {within_max_age("lag(p.at) OVER win", "p.at")}
    AND lag(k.observed) OVER win IS NOT NULL THEN 0 ELSE 1 END AS starts
  FROM p LEFT JOIN counted k ON k.sweep_id = p.sweep_id WINDOW win AS (ORDER BY p.at)),
segmented AS (SELECT *, SUM(starts) OVER (ORDER BY at) AS segment FROM marked)
SELECT at, '{NUMBER_ONE.label}' AS band, number_one AS countries, observed, segment
FROM segmented WHERE observed > 0
UNION ALL
SELECT at, '{TOP_10.label}', top_10, observed, segment FROM segmented WHERE observed > 0
UNION ALL
SELECT at, 'at', NULL, NULL, NULL FROM w
ORDER BY 1, 2"""

# The app the dashboard opens on: at No. 1 in the most storefronts in the selected chart.
TOP_APP = f"""WITH ones AS MATERIALIZED (SELECT * FROM ({NUMBER_ONES}))
SELECT app_id FROM ones WHERE {_SELECTED_CHART.format(t="")}
GROUP BY store, app_id ORDER BY COUNT(*) DESC, app_id LIMIT 1"""
