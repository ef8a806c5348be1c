"""Answer "where does this app rank, and since when?" with its coverage, per chart.

Built on the SQL in ``monitor.queries``, the same that Datasette's canned queries run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlite_utils import Database

from monitor import queries
from monitor.errors import UsageError
from monitor.sources.payload import utc_iso
from monitor.terminal import printable

ChartKey = tuple[str, str, str | None, str | None]


class AppNotFound(UsageError):
    """No app has that id or a name containing that text."""


class AmbiguousApp(UsageError):
    """More than one app matches; the message lists them."""


@dataclass(frozen=True)
class App:
    """An app as a store knows it."""

    store: str
    app_id: str
    name: str | None


@dataclass(frozen=True)
class Span:
    """An unbroken stretch of observations at No. 1 in one country, and its hours."""

    first_at: str
    last_at: str
    hours: float


@dataclass
class ChartClaim:
    """One chart's answer: where the app ranks, where it was observed, and its runs."""

    key: ChartKey
    ranks: dict[str, int] = field(default_factory=dict)
    observed: list[str] = field(default_factory=list)
    not_observed: list[str] = field(default_factory=list)
    observed_at: dict[str, str] = field(default_factory=dict)
    depths: dict[str, int] = field(default_factory=dict)
    since: dict[str, str] = field(default_factory=dict)
    longest: dict[str, Span] = field(default_factory=dict)
    peak: tuple[int, str] | None = None
    names: dict[str, str] = field(default_factory=dict)  # the storefronts' names
    notes: dict[str, str] = field(default_factory=dict)  # where a later fetch failed

    def within(self, depth: int) -> list[str]:
        """Return the sorted countries where the app ranks at depth or better."""
        return sorted(cc for cc, rank in self.ranks.items() if rank <= depth)

    def shallow(self) -> dict[str, int]:
        """Return {country: depth} where the observation went less deep than the top 100.

        There, an app not listed is not in the top 'depth'; whether it is in the top 100
        is not known.
        """
        return {cc: d for cc, d in sorted(self.depths.items()) if d < queries.TOP_100.depth}

    def to_json(self) -> dict[str, Any]:
        """Return the stable JSON form of this chart's claim."""
        store, chart, device, genre = self.key
        return {
            "store": store,
            "chart": chart,
            "device": device,
            "genre": genre,
            "countries_observed": len(self.observed),
            "observed": sorted(self.observed),
            **{band.key: self.within(band.depth) for band in queries.BANDS},
            "ranks": dict(sorted(self.ranks.items())),
            "country_names": dict(sorted(self.names.items())),
            "notes": dict(sorted(self.notes.items())),
            "not_observed": sorted(self.not_observed),
            "shallow": self.shallow(),
            "number_one_since": dict(sorted(self.since.items())),
            "longest_number_one": {
                cc: {"from": s.first_at, "to": s.last_at, "hours": s.hours}
                for cc, s in sorted(self.longest.items())
            },
            "peak_number_one": (
                {"countries": self.peak[0], "at": self.peak[1]} if self.peak else None
            ),
        }


@dataclass
class Claim:
    """Where an app ranks at a time, per chart."""

    app: App
    at: str
    max_age: float
    charts: list[ChartClaim]

    def to_json(self) -> dict[str, Any]:
        """Return the stable JSON form of the claim."""
        return {
            "app": {"store": self.app.store, "app_id": self.app.app_id, "name": self.app.name},
            "at": self.at,
            "max_age_seconds": self.max_age,
            "charts": [chart.to_json() for chart in self.charts],
        }


def answer_time(db: Database, text: str | None) -> str:
    """Return the instant to answer for: text, read as ISO 8601 (a naive time is UTC);
    none, the end of the latest complete sweep, as the published queries take it."""
    if not text:
        return str(db.execute(queries.AT, {"at": ""}).fetchone()[0])
    try:
        return utc_iso(datetime.fromisoformat(text))
    except ValueError:
        raise UsageError(f"invalid time {text!r}: use e.g. 2025-01-28T12:00:00Z") from None


def find_app(db: Database, query: str) -> App:
    """Find the one app whose id is query, or one of whose names contains it."""
    queries.prepare(db.conn)
    matches = list(db.query(queries.FIND_APP, {"app": query}))
    if not matches:
        raise AppNotFound(f"no app has the id {query!r} or a name containing it")
    if len(matches) > 1:
        listed = "\n".join(f"  {r['store']} {r['app_id']}  {printable(r['name'])}" for r in matches)
        raise AmbiguousApp(f"{len(matches)} apps match {query!r}; give one of their ids:\n{listed}")
    return App(**matches[0])


def claim(db: Database, app: App, at: str, max_age: float = queries.MAX_AGE_SECONDS) -> Claim:
    """Say, per chart, where app ranks at time at, with coverage and its runs at No. 1."""
    queries.prepare(db.conn)
    params = {"app": app.app_id, "at": at, "max_age": int(max_age)}
    charts: dict[ChartKey, ChartClaim] = {}
    at_snapshot: dict[tuple[ChartKey, str], int] = {}
    for row in db.query(queries.CLAIM, params):
        if row["store"] != app.store:
            continue
        key = (row["store"], row["chart"], row["device"], row["genre"])
        chart = charts.setdefault(key, ChartClaim(key))
        chart.names[row["country"]] = row["country_name"] or row["country"]
        if row["note"]:
            chart.notes[row["country"]] = row["note"]
        if row["coverage"] != "observed":
            chart.not_observed.append(row["country"])
            continue
        chart.observed.append(row["country"])
        chart.observed_at[row["country"]] = row["observed_at"]
        chart.depths[row["country"]] = row["observed_depth"]
        at_snapshot[(key, row["country"])] = row["snapshot_id"]
        if row["rank"] is not None:
            chart.ranks[row["country"]] = row["rank"]
    _add_runs(db, app, params, charts, at_snapshot)
    return Claim(app, at, max_age, [charts[key] for key in sorted(charts, key=_sort_key)])


def _add_runs(
    db: Database,
    app: App,
    params: dict[str, Any],
    charts: dict[ChartKey, ChartClaim],
    at_snapshot: dict[tuple[ChartKey, str], int],
) -> None:
    for row in db.query(queries.NUMBER_ONE_STRETCHES, params):
        key = (row["store"], row["chart"], row["device"], row["genre"])
        chart, country = charts.get(key), row["country"]
        if chart is None:
            continue
        span = Span(row["first_at"], row["last_at"], row["hours"])
        if country not in chart.longest or span.hours > chart.longest[country].hours:
            chart.longest[country] = span
        if row["last_snapshot"] == at_snapshot.get((key, country)):
            chart.since[country] = span.first_at
    for row in db.query(queries.NUMBER_ONE_PEAKS, params):
        key = (row["store"], row["chart"], row["device"], row["genre"])
        if key in charts and charts[key].peak is None:
            charts[key].peak = (row["countries"], row["at"])


def _sort_key(key: ChartKey) -> tuple[str, ...]:
    return tuple(part or "" for part in key)


def describe(result: Claim) -> str:
    """Render a claim as text for people: per chart, coverage, lists and a table."""
    app = result.app
    lines = [
        f"{printable(app.name)} ({app.store} {app.app_id}) at {result.at}. "
        "A country is observed when "
        f"its chart was fetched at most {result.max_age / 3600:g}h before.",
    ]
    if not result.charts:
        lines.append("\nNo chart of this store has been collected.")
    for chart in result.charts:
        lines.extend(["", *_describe_chart(chart)])
    return "\n".join(lines)


def _describe_chart(chart: ChartClaim) -> list[str]:
    store, name, device, genre = chart.key
    title = " ".join(part for part in (store, name, device) if part)
    lines = [
        f"{title}, {'genre ' + genre if genre else 'all genres'}: observed in "
        f"{len(chart.observed)} countries, not observed in {len(chart.not_observed)}"
    ]
    for band in queries.BANDS:
        countries = chart.within(band.depth)
        lines.append(f"  {band.label} in {len(countries)}: {', '.join(countries) or '-'}")
    if chart.not_observed:
        lines.append(f"  Not observed: {', '.join(sorted(chart.not_observed))}")
    for country, note in sorted(chart.notes.items()):
        lines.append(f"  {country}: {note}")
    if chart.shallow():
        listed = ", ".join(f"{cc} (top {depth})" for cc, depth in chart.shallow().items())
        lines.append(f"  Observed less than {queries.TOP_100.depth} deep: {listed}")
    if chart.peak:
        lines.append(f"  Peak at No. 1: {chart.peak[0]} countries, in the sweep of {chart.peak[1]}")
    if chart.ranks:
        lines.append(
            f"\n  {'country':24} {'rank':>4}  {'observed at':20}  {'No. 1 since':20}  "
            "longest run at No. 1"
        )
    for country, rank in sorted(chart.ranks.items(), key=lambda item: (item[1], item[0])):
        span = chart.longest.get(country)
        longest = f"{span.hours:g}h, {span.first_at} to {span.last_at}" if span else "-"
        named = f"{country} {chart.names[country]}"[:24]
        lines.append(
            f"  {named:24} {rank:>4}  {chart.observed_at[country]:20}  "
            f"{chart.since.get(country, '-'):20}  {longest}"
        )
    return lines
