"""Reference tables shipped with monitor: storefronts and genre ids."""

from __future__ import annotations

import csv
from functools import cache
from importlib.resources import files


def _read_tsv(name: str) -> list[dict[str, str]]:
    text = files(__package__).joinpath(name).read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    return list(csv.DictReader(lines, delimiter="\t"))


@cache
def apple_storefronts() -> dict[str, str]:
    """Return the 175 App Store storefronts as {code: name}, in code order."""
    return {row["code"]: row["name"] for row in _read_tsv("storefronts_175.tsv")}


@cache
def apple_genres() -> dict[str, str]:
    """Return the iOS genre ids as {id: name}."""
    return {row["genre_id"]: row["name"] for row in _read_tsv("ios_genres.tsv")}
