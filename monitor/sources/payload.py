"""Helpers shared by the parsers: decoding bodies and walking untrusted JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from monitor.errors import InvalidFeed


def decode_json(body: bytes) -> Any:
    """Decode a JSON body, naming what came instead when it is not JSON."""
    try:
        return json.loads(body)
    except UnicodeDecodeError as error:
        raise InvalidFeed(f"response is not UTF-8 text: {error}") from None
    except json.JSONDecodeError as error:
        start = body[:60].decode("utf-8", "replace").strip()
        if start.startswith("<"):
            raise InvalidFeed(f"response is HTML or XML, not JSON: {start!r}") from None
        raise InvalidFeed(
            f"malformed or truncated JSON ({error.msg} at byte {error.pos} of {len(body)})"
        ) from None


def dig(value: Any, *path: str | int) -> Any:
    """Follow keys and indexes into nested JSON; return None where the path breaks."""
    for step in path:
        if isinstance(step, int):
            if not isinstance(value, list) or not -len(value) <= step < len(value):
                return None
        elif not isinstance(value, dict) or step not in value:
            return None
        value = value[step]
    return value


def text_or_none(value: Any) -> str | None:
    """Return value if it is a non-empty string, else None."""
    return value if isinstance(value, str) and value != "" else None


def utc_iso(moment: datetime) -> str:
    """Write a datetime as ``YYYY-MM-DDTHH:MM:SSZ`` in UTC; a naive one is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
