"""Who is on record: only members who agreed; and a reworded notice asks everyone again."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.services import consent
from bot.store.db import transaction
from bot.store.models import ChatMember, Flag
from bot.texts import TelegramTexts
from tests.channels.telegram.conftest import StartBot
from tests.channels.telegram.support import (
    ABUSIVE,
    IN_HOURS,
    SAM,
    YEAR3,
    agree,
    chat_row,
    consent_button,
    deliver,
    register,
    rows,
    sent_in,
)
from tests.fakes import telegram_updates as tu
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]


async def test_a_member_who_has_not_agreed_is_not_on_record(
    api: FakeTelegramAPI, sessions: Sessions, start_bot: StartBot
) -> None:
    await start_bot()
    api.set_member_status(YEAR3, SAM, "member")
    await register(api, sessions)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    assert await rows(sessions, ChatMember) == []  # not even Sam's name
    chat = await chat_row(sessions, YEAR3)
    assert chat.unconsented_messages == 1
    async with transaction(sessions) as session:
        cover = await consent.coverage(session, chat)
    # Pat (the creator) and Sam are in the chat as Telegram counts it; neither has agreed.
    assert (cover.consented, cover.members) == (0, 2)


async def test_a_reworded_notice_needs_fresh_consent(
    api: FakeTelegramAPI, sessions: Sessions, start_bot: StartBot, texts: TelegramTexts
) -> None:
    first = await start_bot()
    notice = await register(api, sessions)
    await agree(api, sessions, notice, SAM)
    await first.stop()

    reworded = texts.model_copy(
        update={"notice": texts.notice.model_copy(update={"version": "2027-01-1"})}
    )
    await start_bot(with_texts=reworded)
    sent = await sent_in(api, YEAR3, 4)  # explained, registered, old notice, new notice
    new_notice = sent[3].message
    assert consent_button(new_notice).endswith("2027-01-1")
    assert (await chat_row(sessions, YEAR3)).notice_version == "2027-01-1"

    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    assert await rows(sessions, Flag) == []  # consent to the old words does not count
    await agree(api, sessions, new_notice, SAM)
    await deliver(api, sessions, tu.message(None, YEAR3, SAM, ABUSIVE, date=IN_HOURS))
    [flag] = await rows(sessions, Flag)
    assert [r.rule for r in flag.reasons] == ["abusive-to-parent"]
