"""Write transactions that another writer makes wait, never fail."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlite_utils import Database


@contextmanager
def writing(db: Database) -> Iterator[Database]:
    """A write transaction that holds the write lock from its start (BEGIN IMMEDIATE).

    With a deferred BEGIN, a transaction that reads before it writes fails at its first
    write ("database is locked", at once, whatever the busy timeout) when another
    connection (the webhooks' thread, a note saved in Datasette) wrote in between. Taken
    at the start, the lock makes the other writer wait instead, within the busy timeout.
    Inside a transaction already open, it is a savepoint of that one.
    """
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
        db.execute("COMMIT")
    except BaseException:
        db.rollback()
        raise
