"""Database helpers for commands: migrate, and run one unit of work."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.db import create_engine, session_factory, transaction
from bot.store.migrate import upgrade

T = TypeVar("T")


def describe_database(url: str) -> str:
    """The URL without its password, fit to print."""
    return make_url(url).render_as_string(hide_password=True)


async def migrate(url: str, migrations_dir: Path | None = None) -> None:
    engine = create_engine(url)
    try:
        await upgrade(engine, migrations_dir)
    finally:
        await engine.dispose()


async def in_transaction(
    url: str, work: Callable[[AsyncSession], Awaitable[T]], migrations_dir: Path | None = None
) -> T:
    """Run ``work`` in one transaction on a migrated database."""
    engine = create_engine(url)
    try:
        await upgrade(engine, migrations_dir)
        async with transaction(session_factory(engine)) as session:
            return await work(session)
    finally:
        await engine.dispose()
