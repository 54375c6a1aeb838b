"""Bringing a database to the newest schema with Alembic, from inside the application."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.settings import PROJECT_ROOT


def alembic_config(migrations_dir: Path | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir or PROJECT_ROOT / "migrations"))
    return config


async def upgrade(engine: AsyncEngine, migrations_dir: Path | None = None) -> None:
    """``alembic upgrade head`` on ``engine``'s database."""

    def run(connection: Connection) -> None:
        config = alembic_config(migrations_dir)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")

    async with engine.begin() as connection:
        await connection.run_sync(run)
