"""Engines and sessions. SQLite (the embedded default) gets WAL, a busy timeout and immediate
write transactions so that concurrent writers wait for each other instead of failing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

SQLITE_BUSY_TIMEOUT_MS = 15_000


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(url: str, **options: Any) -> AsyncEngine:
    """An async engine for ``url``; for a SQLite file its folder is created first."""
    parsed = make_url(url)
    if not is_sqlite(url):
        options.setdefault("pool_pre_ping", True)
        return create_async_engine(url, **options)
    database = parsed.database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    options.setdefault("connect_args", {}).setdefault("timeout", SQLITE_BUSY_TIMEOUT_MS / 1000)
    engine = create_async_engine(url, **options)
    _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, say when a transaction begins (see _on_begin).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock at the start: a deferred transaction that later tries to write
        # can fail at once with "database is locked" instead of waiting its turn.
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    @event.listens_for(engine.sync_engine, "close")
    def _on_close(dbapi_connection: Any, _record: Any) -> None:
        # SQLAlchemy closes (invalidates) a connection whose task was cancelled mid-query, with
        # its transaction still open. sqlite3 closes lazily while a statement of that query is
        # alive (the cancellation's traceback keeps its cursor), and until then the transaction
        # and the write lock stay: every other writer waits, then fails "database is locked".
        # Rolling back first releases the lock whatever becomes of the cursor. A connection
        # that cannot roll back (already gone) is closed all the same.
        with suppress(Exception):
            dbapi_connection.rollback()


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def transaction(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: committed if the block succeeds, rolled back if it raises.

    Services never commit; the caller (a request, an update handler, a job) opens this.
    """
    async with sessions() as session, session.begin():
        yield session


def database_unreachable(error: Exception) -> bool:
    """Whether a failure is the database's (down, busy: try again later) rather than the
    work's own: a value too long for its column is refused however often it is retried."""
    if isinstance(error, DBAPIError):
        return isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated
    return isinstance(error, OSError | PoolTimeoutError)
