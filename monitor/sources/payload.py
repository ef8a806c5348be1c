"""Helpers shared by the parsers: decoding bodies and walking untrusted JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from monitor.errors import InvalidFeed


def decode_json(body: bytes) -> Any:
    """Decode a JSON body, naming what came instead when it is not JSON."""
    try:
        return loads(body)
    except UnicodeDecodeError as error:
        raise InvalidFeed(f"response is not UTF-8 text: {error}") from None
    except json.JSONDecodeError as error:
        start = body[:60].decode("utf-8", "replace").strip()
        if start.startswith("<"):
            raise InvalidFeed(f"response is HTML or XML, not JSON: {start!r}") from None
        raise InvalidFeed(
            f"malformed or truncated JSON ({error.msg} at byte {error.pos} of {len(body)})"
        ) from None


def loads(text: str | bytes) -> Any:
    """Parse JSON, turning what would exhaust the parser into InvalidFeed.

    Nesting deeper than Python's recursion limit and integers longer than its
    digit limit are a store's fault, not monitor's; json.JSONDecodeError and
    UnicodeDecodeError still reach the caller, which knows what the text was.
    """
    try:
        return json.loads(text)
    except RecursionError:
        raise InvalidFeed("the JSON is nested too deeply to be a chart") from None
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise
    except ValueError as error:  # e.g. an integer of thousands of digits
        raise InvalidFeed(f"the JSON holds a value out of bounds: {error}") from None


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
