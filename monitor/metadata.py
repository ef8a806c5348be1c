"""Datasette metadata, in the 0.65 format: descriptions, label columns and canned queries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from monitor import dashboard, queries
from monitor.config import Access
from monitor.demo import DESCRIPTION as DEMO_DESCRIPTION
from monitor.health import DEFAULT_MAX_AGE
from monitor.sources import CHARTS, DEVICES, STORES

TITLE = "monitor: app-store top charts by country"
DESCRIPTION = (
    "Snapshots of the App Store and Google Play top charts in every country, kept since "
    "the collector started. A country whose chart has no recent successful fetch is not "
    "observed, which is never the same as an app not being ranked there: see fetches for "
    "every attempt."
)

_STORES = " or ".join(STORES)
_CHART_COLUMNS = {
    "store": _STORES,
    "country": "Storefront, ISO 3166-1 alpha-2 in lower case",
    "chart": ", ".join(CHARTS),
    "device": f"{' or '.join(DEVICES)}; empty for a store without devices (Google Play)",
    "genre": "The store's category id; empty for the overall chart",
}

_ERROR_KIND = (
    "Why it failed, as a word to facet on: transport, timeout, http_status, rate_limited, "
    "too_large, redirect, invalid_feed, drift, blocked, unexpected; or, for a chart the "
    "sweep ended without, stopped, disk_full, storage or sweep_failed"
)

TABLES: dict[str, dict[str, Any]] = {
    "rankings": {
        "description": (
            "One row per observed chart and rank: the public surface to query. It opens "
            "on the latest complete sweep; it sorts by the columns its indexes serve, and "
            "facets once filtered."
        ),
        # On a history of millions of rows, only these sorts answer within the time limit.
        "sortable_columns": ["snapshot_id", "fetched_at", "rank"],
        "columns": {
            "snapshot_id": "The observation (one fetch of one chart) this rank comes from",
            **_CHART_COLUMNS,
            "fetched_at": "When the response arrived, UTC",
            "rank": "Position in the chart, from 1",
            "app_id": "The store's id: Apple's numeric id, or the Play package name",
            "app_name": "The name as that storefront showed it at that time",
            "developer": "The developer as that storefront showed it",
        },
    },
    "fetches": {
        "description": "One row per attempt to fetch one chart. A failure is never a chart.",
        "columns": {
            "id": "The attempt, for a failure (raw_responses.attempt_id); empty for a success",
            **_CHART_COLUMNS,
            "started_at": "When the fetch started, UTC",
            "status": "ok, or error",
            "http_status": "The store's HTTP status, where it answered",
            "error": "What went wrong, for people",
            "snapshot_id": "The observation stored, for a successful fetch",
            "error_kind": _ERROR_KIND,
            "sweep_id": "The sweep",
        },
    },
    "snapshots": {
        "description": "One row per successful fetch of one chart: an observation.",
        "sort_desc": "fetched_at",
        "columns": {
            "id": "The observation",
            "chart_id": "Which chart, in which storefront",
            "sweep_id": "The sweep it belongs to",
            "fetched_at": "When the response arrived, UTC",
            "feed_updated": "The feed's own updated time, UTC, where it gives one",
            "depth": "How many ranks were asked for",
            "size": "How many ranks the chart held",
            "started_at": "When the fetch started, UTC",
            "http_status": "The store's HTTP status",
        },
    },
    "runs": {
        "description": (
            "How ranks are stored: an app holding one rank, under one name, in one chart, "
            "from one observation to another. Query rankings instead."
        ),
        "columns": {
            "chart_id": "Which chart, in which storefront",
            "last_snapshot": "The last observation of the run; the largest integer while current",
            "rank": "Position in the chart, from 1",
            "first_snapshot": "The first observation of the run",
            "app": "The app",
            "label": "The name and developer shown",
        },
    },
    "charts": {
        "description": "Every chart and storefront ever fetched.",
        "label_column": "country",
        "facets": ["store", "chart", "device"],
        "columns": {"id": "The chart", **_CHART_COLUMNS},
    },
    "apps": {
        "description": "Every app ever ranked, keyed by store and the store's id.",
        "label_column": "app_id",
        "columns": {
            "id": "Internal key",
            "store": _STORES,
            "app_id": "The store's id: Apple's numeric id, or the Play package name",
            "icon_url": "The app's latest icon",
        },
    },
    "storefronts": {
        "description": (
            "The 175 storefronts by name: join a country code to storefronts.code. "
            "Google Play serves the same storefronts but China mainland (cn)."
        ),
        "label_column": "name",
        "columns": {
            "code": "ISO 3166-1 alpha-2, in lower case, as the country columns hold it",
            "name": "The storefront's name, as Apple lists it",
            "iso_name": "The country's English name in ISO 3166-1",
            "iso_numeric": "ISO 3166-1 numeric code (Kosovo: 983, user-assigned)",
            "apple_storefront_id": "Apple's storefront id (X-Apple-Store-Front), where known",
        },
    },
    "notes": {
        "description": (
            "Notes on apps' timelines, written with monitor note: what happened when. "
            "The dashboard's rank chart draws them."
        ),
        "sort_desc": "at",
        "columns": {
            "id": "The note",
            "store": _STORES,
            "app_id": "The store's id of the app",
            "at": "When it happened, UTC",
            "text": "What happened",
            "url": "Where to read more",
            "created_at": "When the note was written, UTC",
        },
    },
    "labels": {
        "description": "Every name and developer an app was shown under, in any storefront.",
        "label_column": "name",
        "columns": {
            "id": "Internal key",
            "name": "The app's name as shown",
            "developer": "The developer as shown; empty when the feed gave none",
        },
    },
    "app_labels": {
        "description": "Which names each app was shown under.",
        "hidden": True,
        "columns": {"label": "The name", "app": "The app"},
    },
    "sweeps": {
        "description": "One row per sweep: a pass over every configured chart, and how it ended.",
        "sort_desc": "id",
        "label_column": "started_at",
        "columns": {
            "id": "The sweep",
            "started_at": "When it started, UTC",
            "finished_at": "When it ended, UTC; empty if it was interrupted",
            "status": (
                "How it ended: finished, stopped (a signal), failed (e.g. the disk was full), "
                "interrupted (its process died); running while it runs"
            ),
            "reason": "Why it stopped, failed or was interrupted",
            "charts_ok": "Charts stored",
            "charts_failed": "Charts that failed",
            "entries": "Ranked entries observed",
        },
    },
    "attempts": {
        "description": (
            "How failed fetches are stored (a successful one is its snapshot); query "
            "fetches for every fetch with chart names."
        ),
        "sort_desc": "id",
        "columns": {
            "id": "The attempt",
            "sweep_id": "The sweep",
            "chart_id": "Which chart, in which storefront",
            "started_at": "When the fetch started, UTC",
            "status": "ok, or error",
            "http_status": "The store's HTTP status, where it answered",
            "error": "What went wrong, for people",
            "snapshot_id": "The observation stored, for a successful fetch",
            "error_kind": _ERROR_KIND,
        },
    },
    "raw_responses": {
        "description": "Bodies of responses that failed to parse, zlib-compressed, to study drift.",
        "columns": {
            "attempt_id": "The failed attempt",
            "size": "Bytes in the response",
            "kept": "Bytes kept (at most 4 MiB)",
            "body": "The kept bytes, zlib-compressed",
        },
    },
    "events": {
        "description": (
            "What changed, when it happened: an app entering or leaving No. 1, the top 10 or "
            "a chart in one storefront (against the chart's previous successful "
            "observation: a failed fetch is no change), and milestones, the storefronts "
            "where it is No. 1 or in the top 10 crossing a threshold at a sweep's end."
        ),
        "sort_desc": "id",
        "columns": {
            "id": "The event, in the order they happened",
            "kind": (
                "entered_no1, left_no1, entered_top10, left_top10, entered_chart, "
                "left_chart; or milestone_no1, milestone_top10"
            ),
            "at": "When: the observation that showed it, or the end of the sweep, UTC",
            "store": _STORES,
            "chart": _CHART_COLUMNS["chart"],
            "device": _CHART_COLUMNS["device"],
            "genre": _CHART_COLUMNS["genre"],
            "country": "The storefront; empty for a milestone, which counts them all",
            "app_id": "The store's id of the app",
            "app_name": "The name it was shown under",
            "rank_before": "Its rank in the observation before; empty where it was not ranked",
            "rank_after": "Its rank in this observation; empty where it is not ranked",
            "snapshot_before": "The observation compared with",
            "snapshot_after": "The observation that showed the change",
            "observed_before": "When the observation compared with was fetched, UTC",
            "threshold": "The milestone's threshold: a number of storefronts",
            "countries": "The storefronts where it is No. 1 (or in the top 10) at the sweep's end",
            "countries_before": "The same at the end of the sweep before",
            "sweep_id": "The sweep it happened in",
        },
    },
    "event_log": {
        "description": "How events are stored; query events for the same rows by name.",
        "hidden": True,
        "columns": {
            "id": "The event",
            "kind": "What happened (see events)",
            "sweep_id": "The sweep it happened in",
            "app": "The app",
            "label": "The name it was shown under",
            "chart_id": "The chart, for an app's move in one",
            "snapshot_before": "The observation compared with",
            "snapshot_after": "The observation that showed the change",
            "rank_before": "Its rank before",
            "rank_after": "Its rank after",
            "at": "A milestone's time: the end of the sweep",
            "store": "A milestone's store",
            "chart": "A milestone's chart",
            "device": "A milestone's device",
            "genre": "A milestone's genre",
            "threshold": "A milestone's threshold",
            "countries": "Storefronts counted at the sweep's end",
            "countries_before": "Storefronts counted at the end of the sweep before",
        },
    },
    "sweep_hosts": {
        "description": (
            "What each host of a store got in each sweep: the limits it was given, the "
            "requests sent and the rate reached, and how often it asked to slow down "
            "(HTTP 429 or 503), each time halving the requests let in flight."
        ),
        "sort_desc": "sweep_id",
        "columns": {
            "sweep_id": "The sweep (see sweeps)",
            "store": "apple or play",
            "host": "The host, as host:port where a port was given",
            "limits": "Requests let in flight at once, and started a second, at most",
            "requests": "Requests sent, retries included",
            "seconds": "From the first request's start to the last one's",
            "rate": "Requests started a second: (requests - 1) / seconds",
            "slowdowns": "Times the host answered 429 or 503 and the sweep slowed down",
            "fewest_in_flight": (
                "The fewest requests the host was let have in flight; below 1, the share "
                "of the time it had one (a quiet after each answer)"
            ),
        },
    },
    "deliveries": {
        "description": (
            "Every try to send an event to a webhook ([[alerts]] in the config): which "
            "destination, by name, and how it went. URLs and secrets are not kept."
        ),
        "sort_desc": "id",
        "columns": {
            "id": "The try",
            "event_id": "The event sent (see events)",
            "destination": "The [[alerts]] table's name",
            "try": "Which try this was for that event and destination, from 1",
            "tried_at": "When, UTC",
            "status": "ok (a 2xx answer), or error",
            "http_status": "The destination's HTTP status, where it answered",
            "error": "What went wrong: the status and the start of the answer, or the cause",
            "seconds": "How long the try took",
        },
    },
    "outbox": {
        "description": "What webhooks are to send, and how far each got.",
        "hidden": True,
        "columns": {
            "event_id": "The event",
            "destination": "The [[alerts]] table's name",
            "state": "pending, delivered, failed (after the last try), or expired (not "
            "delivered within a day of being queued)",
            "tries": "Tries so far",
            "next_try_at": "When a pending one is tried next, UTC",
            "queued_at": "When the event entered the outbox, UTC (for one queued before "
            "this was kept, its first try)",
        },
    },
    "alert_cursors": {
        "description": "The last event each webhook destination was considered for.",
        "hidden": True,
        "columns": {"destination": "The [[alerts]] table's name", "event_id": "The event"},
    },
    "milestones_due": {
        "description": "Sweeps whose milestones are still to be recorded in [[events]].",
        "hidden": True,
        "columns": {"sweep_id": "The sweep, which ended"},
    },
    "_sqlite_migrations": {"description": "Which schema migrations have run.", "hidden": True},
}


# What the index lists first: what people query; then how it is stored.
PUBLIC_TABLES = ("rankings", "fetches", "events", "storefronts", "notes")


def front_tables(public: bool) -> list[dict[str, str]]:
    """The tables and views the index describes, the public surface first; in public
    mode, not the raw bodies, which it does not serve."""
    names = [*PUBLIC_TABLES, *(name for name in TABLES if name not in PUBLIC_TABLES)]
    return [
        {"name": name, "description": TABLES[name]["description"]}
        for name in names
        if not TABLES[name].get("hidden") and not (public and name == "raw_responses")
    ]


def metadata(
    db_path: str | Path,
    access: Access | None = None,
    max_sweep_age: float = DEFAULT_MAX_AGE,
    demo: bool = False,
) -> dict[str, Any]:
    """Return Datasette metadata for the database at db_path (named after its file).

    Public access: arbitrary SQL is off (unless public_sql) and raw response bodies are not
    served; the pages and the canned queries stay. The dashboard draws its charts with
    arbitrary SQL, so it needs public_sql. ``/-/health`` answers 503 once no sweep has
    finished for ``max_sweep_age`` seconds.
    """
    access = access or Access()
    public = access.public
    tables = TABLES
    if public:
        tables = {**TABLES, "raw_responses": {**TABLES["raw_responses"], "allow": False}}
    return {
        **({"allow_sql": False} if public and not access.public_sql else {}),
        "title": f"DEMO DATA, not observations: {TITLE}" if demo else TITLE,
        "description": f"{DEMO_DESCRIPTION} {DESCRIPTION}" if demo else DESCRIPTION,
        "about": "monitor, an app-store ranking monitor",
        "source": "Apple's RSS feeds of the App Store top charts, and Google Play's own",
        "source_url": "https://rss.marketingtools.apple.com/",
        "databases": {
            Path(db_path).stem: {
                "description": "The whole history: query rankings and fetches.",
                "tables": tables,
                "queries": {
                    # Their SQL is long: shown on request ("show" above the form).
                    name: {
                        "title": q.title,
                        "description": q.description,
                        "sql": q.sql,
                        "hide_sql": True,
                    }
                    for name, q in queries.CANNED.items()
                },
            }
        },
        "plugins": {
            "datasette-dashboards": dashboard.dashboards(Path(db_path).stem),
            "monitor": {"max_sweep_age": max_sweep_age, "public": public},
        },
    }
