from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.policy.config import PolicyConfig
from bot.policy.lexicon import LexiconData
from bot.policy.school import SchoolConfig
from bot.policy_files import load_school
from bot.services.schools import EngineCache
from bot.services.schools import load_school as seed_school
from bot.store.db import transaction
from tests.conftest import CONFIG_DIR, SCHOOL_FILE

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize("path", [SCHOOL_FILE, CONFIG_DIR / "school.example.yaml"])
def test_the_stored_school_reads_back_as_the_same_school(path: Path) -> None:
    config = load_school(path)
    assert SchoolConfig.model_validate(config.model_dump(mode="json", by_alias=True)) == config


def test_working_hours_to_midnight_survive_storage() -> None:
    config = load_school(SCHOOL_FILE)
    late = config.school.working_hours.model_validate({"friday": "08:00-12:00, 18:00-24:00"})
    config = config.model_copy(update={"school": config.school.model_copy(update={
        "working_hours": late})})  # fmt: skip
    assert config.model_dump(mode="json", by_alias=True)["school"]["working_hours"]["friday"] == [
        "08:00-12:00",
        "18:00-24:00",
    ]
    assert SchoolConfig.model_validate(config.model_dump(mode="json", by_alias=True)) == config


async def test_the_engine_is_built_from_the_stored_school(
    sessions: async_sessionmaker[AsyncSession], lexicons: LexiconData
) -> None:
    async with transaction(sessions) as session:
        school = await seed_school(session, load_school(SCHOOL_FILE), "test")
    engines = EngineCache(lexicons, PolicyConfig(), None)
    async with transaction(sessions) as session:
        engine = await engines.for_school(session, school)
        assert engine.school.config == load_school(SCHOOL_FILE)
        assert await engines.for_school(session, school) is engine  # built once
