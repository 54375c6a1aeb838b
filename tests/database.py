"""Test databases: an SQLite file and a throwaway PostgreSQL database, both built by Alembic.

PostgreSQL is at TEST_DATABASE_URL (default: the local server CI provides). Where it cannot be
reached the PostgreSQL variants are skipped with a notice, unless SCHOOLGATE_REQUIRE_SERVICES is
set (as .ci/run does), when they fail instead.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.db import create_engine
from bot.store.migrate import upgrade
from bot.store.models import Base

DEFAULT_POSTGRES = "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
REQUIRE_SERVICES = os.environ.get("SCHOOLGATE_REQUIRE_SERVICES", "") not in ("", "0", "false")


def unavailable(what: str, why: str) -> None:
    """Skip (with a visible reason) or, where services are required, fail."""
    message = f"{what} is not available: {why}"
    if REQUIRE_SERVICES:
        pytest.fail(f"{message} (SCHOOLGATE_REQUIRE_SERVICES is set)")
    pytest.skip(message)


async def postgres_database() -> AsyncIterator[str]:
    """A fresh, empty PostgreSQL database for this test session, dropped afterwards."""
    base = make_url(os.environ.get("TEST_DATABASE_URL", DEFAULT_POSTGRES))
    name = f"schoolgate_test_{uuid.uuid4().hex[:10]}"
    dsn = base.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        admin = await asyncpg.connect(dsn, timeout=5)
    except (OSError, asyncpg.PostgresError) as error:
        unavailable("PostgreSQL", f"{base.render_as_string()}: {error}")
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield base.set(database=name).render_as_string(hide_password=False)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def sqlite_url(folder: Path) -> str:
    return f"sqlite+aiosqlite:///{folder / 'schoolgate.db'}"


async def migrated_engine(url: str) -> AsyncEngine:
    engine = create_engine(url)
    await upgrade(engine)
    return engine


async def empty_all_tables(engine: AsyncEngine) -> None:
    """Between tests: every table emptied, the schema kept (rebuilding it is slower)."""
    tables = [table.name for table in reversed(Base.metadata.sorted_tables)]
    async with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            await connection.execute(text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        else:
            for table in tables:
                await connection.execute(text(f"DELETE FROM {table}"))


@contextlib.contextmanager
def cancelled_queries_tolerated() -> Iterator[None]:
    """For tests that kill tasks in the middle of a query, as a crash would.

    SQLAlchemy then drops the asyncpg connection, and asyncpg reports the query it was waiting
    on as an unretrieved ``ConnectionError("unexpected connection_lost() call")`` to the event
    loop (MagicStack/asyncpg#1211, sqlalchemy/sqlalchemy#11760): noise that the test runner
    would turn into a failure. Only that report is dropped; every other one still fails.
    """
    loop = asyncio.get_running_loop()
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        error = context.get("exception")
        if isinstance(error, ConnectionError) and "connection_lost()" in str(error):
            return
        if previous is None:
            loop.default_exception_handler(context)
        else:
            previous(loop, context)

    loop.set_exception_handler(handler)
    try:
        yield
    finally:
        gc.collect()  # unretrieved futures are reported when collected: now, not in a later test
        loop.set_exception_handler(previous)
