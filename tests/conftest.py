from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from datetime import datetime
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.policy import ChatMessage, Media, Person, PolicyEngine, ReplyTo, Role
from bot.policy.lexicon import LexiconData
from bot.policy.school import SchoolConfig
from bot.policy_files import build_engine, load_lexicons, load_school
from bot.store.db import session_factory
from tests.database import empty_all_tables, migrated_engine, postgres_database, sqlite_url

pytest_plugins = ["tests.webapp"]

ROOT = Path(__file__).resolve().parent.parent
CONFIG_DIR = ROOT / "config"
DATA = Path(__file__).resolve().parent / "data"
SCHOOL_FILE = DATA / "school.yaml"
# Caught by the learned layer and missed by every word rule (tests/policy/test_learned.py checks
# both, so that a change to either shows up there): a campaign with no tell-tale words.
MODEL_ONLY_CAMPAIGN = "let's all ring the office at 9 on the dot, they can't ignore 30 of us"

# A Tuesday afternoon in term: inside working hours.
IN_HOURS = "2026-11-24T14:00:00+00:00"


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
async def db_engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[AsyncEngine]:
    """A database built by ``alembic upgrade head``: every database test runs on both."""
    if request.param == "sqlite":
        engine = await migrated_engine(sqlite_url(tmp_path_factory.mktemp("sqlite")))
        yield engine
        await engine.dispose()
        return
    async for url in postgres_database():
        engine = await migrated_engine(url)
        yield engine
        await engine.dispose()


@pytest.fixture
async def sessions(db_engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database; every table is emptied after the test."""
    yield session_factory(db_engine)
    await empty_all_tables(db_engine)


@pytest.fixture(scope="session")
def school() -> SchoolConfig:
    return load_school(SCHOOL_FILE)


@pytest.fixture(scope="session")
def lexicons() -> LexiconData:
    return load_lexicons(CONFIG_DIR / "lexicons")


@pytest.fixture(scope="session")
def engine() -> PolicyEngine:
    return build_engine(SCHOOL_FILE, CONFIG_DIR)


def message(
    text: str = "",
    *,
    sent_at: str = IN_HOURS,
    sender: str = "Pat Jones",
    role: Role = Role.PARENT,
    reply_to: str | None = None,
    reply_role: Role = Role.PARENT,
    mentions: Iterable[str] = (),
    media: Iterable[tuple[str, str]] = (),
    id: str = "m1",
) -> ChatMessage:
    """A message from a parent in term time, unless told otherwise."""
    return ChatMessage(
        id=id,
        text=text,
        sent_at=datetime.fromisoformat(sent_at),
        sender=Person("p:1", sender, role),
        chat_id="c:year3",
        chat_title="Year 3 Parents",
        mentions=tuple(mentions),
        reply_to=ReplyTo(Person("p:2", reply_to, reply_role)) if reply_to else None,
        media=tuple(Media(kind, caption) for kind, caption in media),
    )


def rules_of(engine: PolicyEngine, msg: ChatMessage) -> set[str]:
    return {str(rule) for rule in engine.classify(msg).rules}
