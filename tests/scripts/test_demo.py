"""``make demo`` keeps working: its chat, played through the real bot, raises flags to review."""

from __future__ import annotations

import importlib.util
from types import ModuleType

import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.store.db import transaction
from bot.store.models import Flag, User
from tests.api.support import Sessions
from tests.channels.telegram.conftest import (  # noqa: F401 (fixtures)
    StartBot,
    api,
    engines,
    server,
    start_bot,
    texts,
)
from tests.conftest import ROOT
from tests.factories import a_school
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = pytest.mark.anyio


def demo_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("demo", ROOT / "scripts" / "demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def test_the_demo_chat_raises_flags_and_makes_an_account_per_role(
    api: FakeTelegramAPI,  # noqa: F811
    start_bot: StartBot,  # noqa: F811
    sessions: Sessions,
) -> None:
    demo = demo_module()
    async with transaction(sessions) as session:
        await a_school(session)
    await start_bot()
    await demo.play_the_chat(api, sessions)
    made = await demo.make_accounts(sessions)
    async with sessions() as session:
        flags = list(await session.scalars(select(Flag).options(selectinload(Flag.reasons))))
        users = list(await session.scalars(select(User)))
    rules = {reason.rule for flag in flags for reason in flag.reasons}
    assert {"abusive-to-parent", "confidential-info", "disrepute", "staff-contact"} <= rules
    assert {role for _, _, role in made} == {"admin", "slt", "dsl", "viewer"}
    assert len(users) == 4
