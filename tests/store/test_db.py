"""A task cancelled in the middle of a SQLite query does not leave the write lock held."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.store.db import create_engine, session_factory, transaction
from tests.database import sqlite_url

pytestmark = pytest.mark.anyio


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(sqlite_url(tmp_path))
    yield engine
    await engine.dispose()


async def test_a_query_cancelled_midway_releases_the_write_lock(
    engine: AsyncEngine, tmp_path: Path
) -> None:
    started, release = threading.Event(), threading.Event()

    def hold() -> int:  # runs on the driver's thread, inside the query
        started.set()
        release.wait(5)
        return 1

    @event.listens_for(engine.sync_engine, "connect")
    def _add_hold(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.create_function("hold", 0, hold)

    async def write_then_query() -> None:
        async with transaction(session_factory(engine)) as session:
            await session.execute(text("CREATE TABLE t (x INTEGER)"))
            # A query that returns rows, so its statement is still open when the task dies.
            await session.execute(text("SELECT hold()"))

    task = asyncio.create_task(write_then_query())
    assert await asyncio.to_thread(started.wait, 5)
    task.cancel()
    release.set()
    # The error is kept, and with it (through its traceback) the cancelled query's cursor:
    # what sqlite3 waits for before it really closes the connection.
    with pytest.raises(asyncio.CancelledError) as cancelled:
        await task

    other = sqlite3.connect(tmp_path / "schoolgate.db", timeout=1, isolation_level=None)
    try:
        other.execute("BEGIN IMMEDIATE")  # "database is locked" if the lock was left held
        tables = other.execute("SELECT name FROM sqlite_master WHERE name = 't'").fetchall()
        assert tables == [], "the cancelled transaction was rolled back"
        other.execute("ROLLBACK")
    finally:
        other.close()
    assert isinstance(cancelled.value, asyncio.CancelledError)
    # Still held here, traceback and all (so the cursor too): the lock was released even so.
    assert cancelled.value.__traceback__ is not None
