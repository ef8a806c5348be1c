"""Bounds on what one reader's query may cost Datasette, set on every read connection.

Datasette's time limit is checked between SQLite's steps, so these bound what happens
inside one step or one answer:

- the longest value a query may build, the columns of a row and a LIKE pattern, so that
  ``randomblob(999999999)`` fails at once with "string or blob too big";
- the functions whose built-in versions take quadratic time on long values (``instr``,
  ``replace``, ``trim``) are replaced by linear ones;
- the bytes of one answer, counted row by row as it is read;
- in public mode, raw response bodies read as NULL, also through SQL.
"""

from __future__ import annotations

import sqlite3
import weakref
from collections.abc import Callable
from typing import Any

# The longest value a reader's query may make: monitor stores nothing near it in public
# mode (names and ids are at most 1,000 characters), while a kept response body, served
# to trusted readers only, is at most a few MiB compressed.
PUBLIC_LENGTH = 2**20
PRIVATE_LENGTH = 8 * 2**20
# What one answer may hold before it is refused, in bytes of its values.
PUBLIC_ANSWER = 16 * 2**20
PRIVATE_ANSWER = 128 * 2**20
COMMON_LIMITS = {
    sqlite3.SQLITE_LIMIT_SQL_LENGTH: 100_000,
    sqlite3.SQLITE_LIMIT_COLUMN: 100,
    # LIKE and GLOB take time in the product of the text's and the pattern's lengths.
    sqlite3.SQLITE_LIMIT_LIKE_PATTERN_LENGTH: 100,
}
# Pages cached per connection, in KiB: Datasette keeps a few connections per database.
CACHE_KIB = 16_000
HIDDEN = {("raw_responses", "body")}


class AnswerTooLarge(sqlite3.OperationalError):
    """One answer grew past what a reader may be sent."""


def bound(conn: sqlite3.Connection, public: bool) -> None:
    """Set every bound on a read connection; public mode has the tighter ones."""
    length = PUBLIC_LENGTH if public else PRIVATE_LENGTH
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, length)
    for limit, value in COMMON_LIMITS.items():
        conn.setlimit(limit, value)
    conn.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    _linear_functions(conn, length)
    conn.row_factory = _counting_rows(PUBLIC_ANSWER if public else PRIVATE_ANSWER)
    if public:
        conn.set_authorizer(_hide_raw_bodies)


def _counting_rows(most: int) -> Callable[[sqlite3.Cursor, tuple[Any, ...]], sqlite3.Row]:
    """Make a row factory that refuses an answer once its values pass ``most`` bytes."""
    state: dict[str, Any] = {"cursor": lambda: None, "size": 0}

    def row(cursor: sqlite3.Cursor, values: tuple[Any, ...]) -> sqlite3.Row:
        if state["cursor"]() is not cursor:
            state["cursor"], state["size"] = weakref.ref(cursor), 0
        state["size"] += sum(len(v) if isinstance(v, str | bytes) else 8 for v in values)
        if state["size"] > most:
            raise AnswerTooLarge(
                f"the answer holds more than {most // 2**20} MB: ask for fewer rows or columns"
            )
        return sqlite3.Row(cursor, values)

    return row


def _hide_raw_bodies(action: int, table: str | None, column: str | None, *_: Any) -> int:
    if action == sqlite3.SQLITE_READ and (table, column) in HIDDEN:
        return sqlite3.SQLITE_IGNORE
    return sqlite3.SQLITE_OK


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _linear_functions(conn: sqlite3.Connection, length: int) -> None:
    """Replace SQLite's quadratic instr, replace and trim with linear ones, same results."""

    def instr(haystack: Any, needle: Any) -> int | None:
        if haystack is None or needle is None:
            return None
        if isinstance(haystack, bytes) and isinstance(needle, bytes):
            return haystack.find(needle) + 1
        return _text(haystack).find(_text(needle)) + 1

    def replace(text: Any, old: Any, new: Any) -> str | None:
        if text is None or old is None or new is None:
            return None
        text, old, new = _text(text), _text(old), _text(new)
        if not old:
            return text
        if len(text) + text.count(old) * (len(new) - len(old)) > length:
            raise sqlite3.DataError("string or blob too big")
        return text.replace(old, new)

    def trimmer(left: bool, right: bool) -> Callable[[Any, Any], str | None]:
        def trim(text: Any, chars: Any) -> str | None:
            if text is None or chars is None:
                return None
            text, drop = _text(text), set(_text(chars))
            start, end = 0, len(text)
            while left and start < end and text[start] in drop:
                start += 1
            while right and end > start and text[end - 1] in drop:
                end -= 1
            return text[start:end]

        return trim

    conn.create_function("instr", 2, instr, deterministic=True)
    conn.create_function("replace", 3, replace, deterministic=True)
    for name, left, right in (("trim", True, True), ("ltrim", True, False), ("rtrim", False, True)):
        conn.create_function(name, 2, trimmer(left, right), deterministic=True)
