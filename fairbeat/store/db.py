"""Engines, and the one small place where SQLite and PostgreSQL differ.

- PostgreSQL runs on psycopg 3; claims lock rows with FOR UPDATE SKIP LOCKED so
  concurrent dispatchers never wait on, or take, each other's rows.
- SQLite has no row locks: every transaction starts with BEGIN IMMEDIATE, so
  writers from several processes queue on the database lock (WAL keeps readers
  going) instead of failing to upgrade a read lock mid-transaction.
- Both have INSERT .. ON CONFLICT DO NOTHING and UPDATE .. RETURNING.
- A single-statement write is atomic by itself: on PostgreSQL ``autocommit``
  sends just the statement, not BEGIN, statement and COMMIT.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine, Table, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.dml import Insert

from fairbeat.store.times import SQLITE_TIME_OK, loadable

T = TypeVar("T")

# Connections older than this are replaced before use (server-side timeouts).
POOL_RECYCLE_S = 1800
# Writers wait this long for SQLite's database lock before giving up.
SQLITE_BUSY_TIMEOUT_MS = 15_000


def normalise_url(url: str | URL) -> URL:
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        return parsed.set(drivername="postgresql+psycopg")
    return parsed


def make_engine(url: str | URL, **kwargs: Any) -> Engine:
    parsed = normalise_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, **kwargs)
        _serialise_sqlite_writers(engine)
        return engine
    # No pool_pre_ping: it costs a round trip per checkout, a fifth of a job's
    # database time. A connection the server dropped fails its statement
    # instead; the pool is then invalidated and ``retry_on_disconnect`` runs
    # the (fenced, so repeatable) write once more on a fresh connection.
    return create_engine(parsed, pool_recycle=POOL_RECYCLE_S, **kwargs)


def missing_sqlite_file(url: str | URL) -> str | None:
    """The path of a SQLite database file that does not exist yet, else None.

    Connecting would create it empty; a command that needs the schema asks
    first, so that it can say "run fairbeat migrate" and leave no file behind.
    """
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        return None  # a URI filename: its options decide, not a path
    return None if os.path.exists(database) else database


def _serialise_sqlite_writers(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Hand transaction control to SQLAlchemy's "begin" event below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()
        # Lets queries skip a row whose time could not be loaded (store/poison.py).
        dbapi_connection.create_function(SQLITE_TIME_OK, 1, loadable, deterministic=True)

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


@contextmanager
def autocommit(engine: Engine) -> Iterator[Connection]:
    """A connection whose statements each commit on their own.

    Only for writes that are one statement, or whose statements need not
    commit together. SQLite keeps its BEGIN IMMEDIATE: it serialises writers
    anyway, and its autocommit would skip the busy wait.
    """
    if engine.dialect.name == "sqlite":
        with engine.begin() as connection:
            yield connection
    else:
        with engine.connect() as connection:
            yield connection.execution_options(isolation_level="AUTOCOMMIT")


def retry_on_disconnect(
    engine: Engine, write: Callable[[Connection], T], *, transaction: bool = False
) -> T:
    """Run ``write`` in autocommit (``transaction``: in one transaction), once
    more if the connection turned out dead.

    Only for idempotent writes: the fenced updates are, since a repeat finds
    the row already moved and changes nothing.
    """
    opened = engine.begin if transaction else lambda: autocommit(engine)
    try:
        with opened() as connection:
            return write(connection)
    except DBAPIError as exc:
        if not exc.connection_invalidated:
            raise
    with opened() as connection:
        return write(connection)


def is_postgres(connection: Connection) -> bool:
    return connection.dialect.name == "postgresql"


def insert_ignoring_conflicts(connection: Connection, table: Table) -> Insert:
    """An INSERT that does nothing on a unique conflict (and so returns no row)."""
    return insert_on_dialect(connection.dialect.name, table)


def insert_on_dialect(dialect: str, table: Table) -> Insert:
    """:func:`insert_ignoring_conflicts` for a dialect named ``dialect``."""
    if dialect == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()
