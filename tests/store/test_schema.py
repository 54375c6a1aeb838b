"""Alembic builds the schema the models describe, and SQLite writers do not trip over each other."""

from __future__ import annotations

import asyncio

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.store.db import transaction
from bot.store.models import AuditEvent, Base

pytestmark = pytest.mark.anyio


async def test_migrations_match_the_models(db_engine: AsyncEngine) -> None:
    def differences(connection: Connection) -> list[object]:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))

    async with db_engine.connect() as connection:
        assert await connection.run_sync(differences) == []


async def test_concurrent_writers_all_succeed(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    async def write(number: int) -> None:
        async with transaction(sessions) as session:
            session.add(AuditEvent(actor="test", action="write", subject=str(number)))
            await session.flush()
            await asyncio.sleep(0.01)  # hold the transaction open while others queue

    await asyncio.gather(*(write(n) for n in range(25)))
    async with sessions() as session:
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == 25
