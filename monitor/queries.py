"""The SQL behind ``monitor claim`` and Datasette's canned queries: one source for both.

A country is *observed* at time T when the latest successful observation of a chart at
or before T is no older than the maximum age; otherwise it is *not observed*, which is
never the same as *not ranked*. Times are text in ``YYYY-MM-DDTHH:MM:SSZ``; a blank
``:at`` means now.
"""

from __future__ import annotations

from dataclasses import dataclass

from monitor.sources import CHARTS, DEVICES

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

# Normalise :at to the stored format; SQLite reads ISO 8601, with or without "Z".
_AT = "strftime('%Y-%m-%dT%H:%M:%SZ', coalesce(nullif(:at, ''), 'now'))"


def covers(run: str, snapshot: str) -> str:
    """SQL: the run holds its rank in the observation, which lies within the run's span.

    Two bounds rather than BETWEEN, in the order of the runs' key (chart_id,
    last_snapshot, rank), which serves them.
    """
    return f"{run}.last_snapshot >= {snapshot} AND {run}.first_snapshot <= {snapshot}"


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
_LATEST_SNAPSHOT = """(SELECT s.id FROM snapshots s WHERE s.chart_id = c.id AND s.fetched_at <= p.at
     ORDER BY s.fetched_at DESC, s.id DESC LIMIT 1)"""

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

CLAIM = f"""WITH p AS (SELECT {_AT} AS at),
target AS (SELECT id, store FROM apps WHERE app_id = :app),
latest AS (
  SELECT c.id AS chart_id, c.store, c.chart, c.device, c.genre, c.country, t.id AS app,
    {_LATEST_SNAPSHOT} AS snapshot_id
  FROM charts c JOIN target t ON t.store = c.store, p
),
seen AS (
  SELECT l.*, s.fetched_at, s.depth, {within_max_age("s.fetched_at", "p.at")} AS fresh
  FROM latest l, p LEFT JOIN snapshots s ON s.id = l.snapshot_id
)
SELECT store, chart, device, genre, country,
  CASE WHEN fresh THEN {_CLAIM_RANK} END AS rank,
  CASE WHEN p.at IS NULL THEN 'invalid time: use YYYY-MM-DDTHH:MM:SSZ'
       WHEN fresh THEN 'observed' WHEN fetched_at IS NULL THEN 'never observed'
       ELSE 'not observed: too old' END AS coverage,
  fetched_at AS observed_at, CASE WHEN fresh THEN depth END AS observed_depth,
  snapshot_id, :app AS app_id,
  CASE WHEN fresh THEN {_CLAIM_NAME} END AS app_name
FROM seen, p
ORDER BY store, chart, device, genre, rank IS NULL, rank, country"""

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
SELECT r.rank, a.icon_url AS icon, l.name AS app_name, NULLIF(l.developer, '') AS developer,
  a.store, a.app_id, snap.fetched_at AS observed_at, snap.id AS snapshot_id
FROM snap
JOIN runs r ON r.chart_id = snap.chart_id AND {covers("r", "snap.id")}
JOIN apps a ON a.id = r.app
JOIN labels l ON l.id = r.label
ORDER BY r.rank"""

APP_HISTORY = f"""SELECT s.fetched_at, c.store, c.chart, c.device, c.genre, c.country, r.rank,
  l.name AS app_name, s.id AS snapshot_id
FROM apps a
JOIN runs r ON r.app = a.id
JOIN charts c ON c.id = r.chart_id
JOIN snapshots s ON s.chart_id = r.chart_id AND {covers("r", "s.id")}
JOIN labels l ON l.id = r.label
WHERE a.app_id = :app AND (nullif(:country, '') IS NULL OR c.country = lower(:country))
ORDER BY s.fetched_at, c.store, c.chart, c.device, c.genre, c.country"""

NUMBER_ONES = f"""WITH p AS (SELECT {_AT} AS at),
latest AS (
  SELECT c.id AS chart_id, c.store, c.chart, c.device, c.genre, c.country,
    {_LATEST_SNAPSHOT} AS snapshot_id
  FROM charts c, p
)
SELECT l.store, l.chart, l.device, l.genre, l.country, a.icon_url AS icon,
  lb.name AS app_name, a.app_id, s.fetched_at AS observed_at, s.id AS snapshot_id
FROM latest l, p
JOIN snapshots s ON s.id = l.snapshot_id
JOIN runs r ON r.chart_id = l.chart_id AND {covers("r", "s.id")} AND {NUMBER_ONE.holds("r.rank")}
JOIN apps a ON a.id = r.app
JOIN labels lb ON lb.id = r.label
WHERE {within_max_age("s.fetched_at", "p.at")}
ORDER BY l.store, l.chart, l.device, l.genre, l.country"""

MOVERS = f"""WITH pairs AS MATERIALIZED (
  SELECT c.id AS chart_id, c.store, c.chart, c.device, c.genre, c.country,
    (SELECT MAX(id) FROM snapshots WHERE chart_id = c.id) AS now_id
  FROM charts c
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
),
moves AS (
  SELECT n.*, {_RANK_BEFORE} AS rank_before
  FROM now n
)
SELECT m.store, m.chart, m.device, m.genre, m.country, a.app_id, l.name AS app_name,
  m.rank_before, m.rank AS rank_now,
  CASE WHEN m.rank_before IS NULL THEN 'new entry'
       WHEN m.rank < m.rank_before THEN 'climb' ELSE 'fall' END AS movement,
  m.rank_before - m.rank AS places
FROM moves m
JOIN apps a ON a.id = m.app
JOIN labels l ON l.id = m.label
WHERE m.rank_before IS NULL OR m.rank_before != m.rank
ORDER BY abs(coalesce(m.rank_before, {NEW_ENTRY_RANK}) - m.rank) DESC, m.country, m.rank
LIMIT {MOVERS_LIMIT}"""

# With no sweep in the window, the first sweep counted is past the last one: none is.
COVERAGE = f"""SELECT substr(t.started_at, 1, 10) AS day, c.store, c.country,
  SUM(t.status = 'ok') AS ok, SUM(t.status = 'error') AS errors,
  ROUND(100.0 * SUM(t.status = 'ok') / COUNT(*), 1) AS success_percent
FROM attempts t
JOIN charts c ON c.id = t.chart_id
WHERE t.sweep_id >= coalesce((SELECT MIN(id) FROM sweeps
  WHERE started_at >= strftime('%Y-%m-%dT%H:%M:%SZ', 'now', '-{COVERAGE_DAYS} days')),
  (SELECT MAX(id) + 1 FROM sweeps))
GROUP BY day, c.store, c.country
ORDER BY day DESC, success_percent, c.store, c.country"""

# An app's stretches at No. 1 up to :at, per chart and country: unbroken series of
# observations with the app at No. 1. A stretch ends where an observation of the chart did
# not have it at No. 1, or where the chart went unobserved for more than :max_age seconds,
# since nothing is known of it then. A rename does not end a stretch. CROSS JOIN keeps the
# app's runs first, as below.
NUMBER_ONE_STRETCHES = f"""WITH p AS (SELECT {_AT} AS at),
points AS (
  SELECT c.id AS chart_id, c.store, c.chart, c.device, c.genre, c.country,
    s.id AS snapshot_id, s.fetched_at,
    {previous_snapshot("s")} AS previous_snapshot
  FROM apps a
  CROSS JOIN runs r ON r.app = a.id AND {NUMBER_ONE.holds("r.rank")}
  JOIN charts c ON c.id = r.chart_id
  JOIN snapshots s ON s.chart_id = r.chart_id AND {covers("r", "s.id")}, p
  WHERE a.app_id = :app AND s.fetched_at <= p.at
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
NUMBER_ONE_PEAKS = f"""WITH p AS (SELECT {_AT} AS at)
SELECT c.store, c.chart, c.device, c.genre, s.sweep_id, MIN(s.fetched_at) AS at,
  COUNT(*) AS countries
FROM apps a
CROSS JOIN runs r ON r.app = a.id AND {NUMBER_ONE.holds("r.rank")}
JOIN charts c ON c.id = r.chart_id
JOIN snapshots s ON s.chart_id = r.chart_id AND {covers("r", "s.id")}, p
WHERE a.app_id = :app AND s.fetched_at <= p.at
GROUP BY c.store, c.chart, c.device, c.genre, s.sweep_id
ORDER BY c.store, c.chart, c.device, c.genre, countries DESC, s.sweep_id"""

# Apps whose id is :query, or one of whose names, case-folded, matches the LIKE :pattern.
# casefold() is a function the caller registers: SQLite folds ASCII only.
FIND_LIMIT = 50
FIND_APP = f"""SELECT a.store, a.app_id,
  (SELECT l.name FROM runs r JOIN labels l ON l.id = r.label WHERE r.app = a.id
   ORDER BY r.first_snapshot DESC LIMIT 1) AS name
FROM apps a
WHERE a.app_id = :query OR a.id IN (
  SELECT al.app FROM labels l JOIN app_labels al ON al.label = l.id
  WHERE casefold(l.name) LIKE :pattern ESCAPE '\\')
ORDER BY a.app_id = :query DESC, a.store, a.app_id
LIMIT {FIND_LIMIT}"""


@dataclass(frozen=True)
class Canned:
    """A canned query as Datasette shows it."""

    title: str
    description: str
    sql: str


CANNED = {
    "claim": Canned(
        "Where an app ranks at a time",
        "For every chart and country: the app's rank in the latest observation at or "
        f"before `at` (blank for now), if that observation is at most {_HOURS} hours old. "
        "'not observed' is not the same as 'not ranked'. `app` is the store's app id.",
        with_max_age(CLAIM),
    ),
    "top_chart": Canned(
        "A chart as it stood at a time",
        "The whole chart of a country at `at` (blank for now), from the latest observation "
        f"at most {_HOURS} hours older. `chart`: {', '.join(CHARTS)}; `device`: "
        f"{' or '.join(DEVICES)}, blank for a store without devices.",
        with_max_age(TOP_CHART),
    ),
    "app_history": Canned(
        "An app's rank over time",
        "Every observation in which the app was ranked, in one country (blank for all).",
        APP_HISTORY,
    ),
    "number_ones": Canned(
        "The No. 1 app of every country",
        f"For every chart and country observed within {_HOURS} hours of `at` (blank for now).",
        with_max_age(NUMBER_ONES),
    ),
    "movers": Canned(
        "Biggest climbs, falls and new entries",
        f"Each chart's latest observation against the one `hours` earlier (blank for "
        f"{MOVERS_HOURS}), the {MOVERS_LIMIT} biggest moves.",
        MOVERS,
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

# CLAIM for the selected chart only: one row per country, observed or not.
CLAIM_IN_CHART = f"SELECT * FROM ({CLAIM}) WHERE {_SELECTED_CHART.format(t='')}"

# The app's rank in each observation of the selected chart, in the :days (blank for 7)
# up to :at, in the :countries listed ("us,gb"; blank for the 5 where it ranks best at
# :at). A line breaks (a new segment) where the chart's previous observation did not rank
# the app, or was more than :max_age seconds earlier.
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
SELECT country, fetched_at, rank,
  country || ' ' || SUM(starts) OVER (PARTITION BY country ORDER BY fetched_at, snapshot_id)
    AS segment
FROM marked
ORDER BY fetched_at DESC, country"""

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
