"""Reference tables shipped with monitor: storefronts, genre ids and ISO country codes.

Each store module picks the tables that describe it (``monitor/sources/``).
"""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files


def _read_tsv(name: str) -> list[dict[str, str]]:
    text = files(__package__).joinpath(name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


@cache
def storefronts_175() -> dict[str, str]:
    """Return the 175 App Store storefronts as {code: name}, in code order."""
    return {row["code"]: row["name"] for row in _read_tsv("storefronts_175.tsv")}


def storefront_rows() -> list[dict[str, str | int | None]]:
    """Return each App Store storefront with what the tables know of it: its code and
    name, its ISO 3166-1 English name and numeric code, and Apple's storefront id."""
    iso = {row["code"]: row for row in iso_numeric()}
    return [
        {
            "code": row["code"],
            "name": row["name"],
            "iso_name": iso.get(row["code"], {}).get("name"),
            "iso_numeric": iso.get(row["code"], {}).get("numeric"),
            "apple_storefront_id": int(row["storefront_id"]) if row["storefront_id"] else None,
        }
        for row in _read_tsv("storefronts_175.tsv")
    ]


@cache
def ios_genres() -> dict[str, str]:
    """Return the iOS genre ids as {id: name}."""
    return {row["genre_id"]: row["name"] for row in _read_tsv("ios_genres.tsv")}


@cache
def ios_chart_genres() -> tuple[str, ...]:
    """Return the genres the App Store has top charts for: each genre under the root
    (36, all apps) and each game genre under Games (6014); not the retired Newsstand
    magazines (6021) nor iMessage stickers (6025)."""
    return tuple(
        row["genre_id"] for row in _read_tsv("ios_genres.tsv") if row["parent"] in ("36", "6014")
    )


@cache
def play_categories() -> dict[str, str]:
    """Return the Google Play category ids as {id: name}."""
    return {row["category"]: row["name"] for row in _read_tsv("play_categories.tsv")}


@cache
def iso_numeric() -> list[dict[str, str]]:
    """Return ISO 3166-1 rows: lowercase alpha-2 ``code``, ``numeric`` code and ``name``."""
    return _read_tsv("iso_numeric.tsv")


@cache
def map_points() -> list[dict[str, str | float]]:
    """Return the storefronts the map draws as dots: ``code``, ``longitude``, ``latitude``."""
    return [
        {
            "code": row["code"],
            "longitude": float(row["longitude"]),
            "latitude": float(row["latitude"]),
        }
        for row in _read_tsv("map_points.tsv")
    ]
