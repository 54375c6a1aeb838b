"""Everything a running Schoolgate process holds, built once from the settings at start-up."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.email.delivery import EmailSender
from bot.channels.telegram.runtime import TelegramRuntime
from bot.jobs import Housekeeping
from bot.policy_files import load_lexicons, load_policy, load_profanity_model, load_school
from bot.services.moderation import Retention
from bot.services.retention import RetentionDefaults
from bot.services.schools import EngineCache
from bot.services.schools import load_school as seed_school
from bot.settings import Settings
from bot.store.db import create_engine, session_factory, transaction
from bot.store.repositories.schools import SchoolRepository
from bot.texts import TelegramTexts, load_telegram_texts

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    engines: EngineCache
    telegram: TelegramRuntime | None = field(default=None)
    texts: TelegramTexts = field(init=False)
    """What the bot says (config/texts): the admin pages word their actions with it too."""

    housekeeping: Housekeeping = field(init=False)
    """The retention purge, run on a timer while the process serves."""

    def __post_init__(self) -> None:
        self.texts = load_telegram_texts(self.settings.config_dir)
        self.housekeeping = Housekeeping(
            self.sessions,
            retention_defaults(self.settings),
            every=self.settings.purge_every_minutes * 60,
        )
        self._stop_jobs = asyncio.Event()
        self._jobs: list[asyncio.Task[None]] = []

    @classmethod
    def build(cls, settings: Settings, database: AsyncEngine | None = None) -> Runtime:
        """Load every file (a bad one stops start-up with a clear error) and connect nothing yet."""
        database = database or create_engine(settings.database_url)
        sessions = session_factory(database)
        engines = EngineCache(
            load_lexicons(settings.config_dir / "lexicons"),
            load_policy(settings.policy_file),
            load_profanity_model(),
        )
        runtime = cls(settings, database, sessions, engines)
        if settings.telegram_bot_token is not None:
            runtime.telegram = TelegramRuntime(
                settings.telegram_bot_token.get_secret_value(),
                settings.telegram_api_base_url,
                sessions,
                engines,
                runtime.texts,
                public_base_url=settings.public_base_url,
                observe_only=settings.observe_only,
                retention=retention(settings),
                leave_unregistered_after=timedelta(minutes=settings.unregistered_leave_minutes),
                remind_every=timedelta(hours=settings.remind_every_hours),
                digest_time=time.fromisoformat(settings.digest_time),
                escalate_after=timedelta(minutes=settings.escalate_after_minutes),
                email=EmailSender(settings.smtp_url.get_secret_value(), settings.smtp_from)
                if settings.smtp_url
                else None,
            )
        return runtime

    async def start(self) -> None:
        await self.seed_school_if_empty()
        self._stop_jobs.clear()
        self._jobs.append(
            asyncio.create_task(self.housekeeping.run_forever(self._stop_jobs), name="retention")
        )
        if self.telegram is not None:
            await self.telegram.start()
        else:
            log.warning(
                "Telegram is off: no TELEGRAM_BOT_TOKEN is set. To turn it on, create a bot with "
                "@BotFather and start Schoolgate with TELEGRAM_BOT_TOKEN=<its token>."
            )

    async def stop(self) -> None:
        self._stop_jobs.set()
        for job in self._jobs:
            await job
        self._jobs.clear()
        if self.telegram is not None:
            await self.telegram.stop()
        await self.database.dispose()

    async def seed_school_if_empty(self) -> None:
        """A fresh installation starts with the school in SCHOOL_FILE."""
        async with transaction(self.sessions) as session:
            if await SchoolRepository(session).all():
                return
            path = self.settings.school_path
            school = await seed_school(session, load_school(path), "system", path)
            log.info("seeded the database with %s from %s", school.name, path)

    async def database_ready(self) -> bool:
        try:
            async with self.database.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready"; the reason is logged
            log.exception("database is not ready")
            return False
        return True


def retention_defaults(settings: Settings) -> RetentionDefaults:
    return RetentionDefaults(
        metadata=timedelta(days=settings.keep_metadata_days),
        flags=timedelta(days=settings.keep_flags_days),
        audit=timedelta(days=settings.keep_audit_days),
    )


def retention(settings: Settings) -> Retention:
    return Retention(
        metadata=timedelta(days=settings.keep_metadata_days),
        flags=timedelta(days=settings.keep_flags_days),
    )
