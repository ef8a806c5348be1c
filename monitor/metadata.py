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
        "description": "One row per observed chart and rank: the public surface to query.",
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
            "id": "The attempt",
            **_CHART_COLUMNS,
            "started_at": "When the fetch started, UTC",
            "status": "ok, or error",
            "http_status": "The store's HTTP status, where it answered",
            "error": "What went wrong, for people",
            "snapshot_id": "The observation stored, for a successful fetch",
            "error_kind": _ERROR_KIND,
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
        "description": "How fetches are stored; query fetches for the same rows with chart names.",
        "sort_desc": "id",
        "facets": ["status", "error_kind"],
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
    "_sqlite_migrations": {"description": "Which schema migrations have run.", "hidden": True},
}


# What the index lists first: what people query; then how it is stored.
PUBLIC_TABLES = ("rankings", "fetches", "storefronts", "notes")


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
