"""Hosted WhatsApp groups' service against the fake Twilio API (the real twilio client): what
Twilio refuses, and what is recorded when it does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.channels.whatsapp.twilio_client import WhatsAppApi
from bot.errors import BadInputError
from bot.services import consent, whatsapp_groups
from bot.services.whatsapp_groups import JoinOutcome
from bot.store.db import transaction
from bot.store.models import AuditEvent, ChatMember, JoinRequest
from bot.texts import Notice, load_whatsapp_texts
from tests.conftest import CONFIG_DIR
from tests.factories import a_chat, a_school
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.fakes.twilio_webhooks import ACCOUNT_SID, AUTH_TOKEN, SCHOOL_WHATSAPP, parent

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]

NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
NOTICE = Notice(
    version="test-1", text="The notice for {school}.", button="I agree", learning="We learn."
)


@pytest.fixture(scope="module")
async def fake() -> AsyncIterator[FakeTwilioAPI]:
    async with FakeTwilioAPI() as server:
        yield server


@pytest.fixture
async def api(fake: FakeTwilioAPI) -> AsyncIterator[WhatsAppApi]:
    fake.reset()
    async with WhatsAppApi.connect(ACCOUNT_SID, AUTH_TOKEN, fake.base_url) as connected:
        yield connected


async def test_a_class_name_must_be_given_and_fit(sessions: Sessions, api: WhatsAppApi) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        for name in ("   ", "x" * 101):
            with pytest.raises(BadInputError, match="class_name"):
                await whatsapp_groups.create_group(
                    session, api, school, name, actor="user:1", notice=NOTICE, now=NOW
                )
        group = await whatsapp_groups.create_group(
            session, api, school, "  Year   3 ", actor="user:1", notice=NOTICE, now=NOW
        )
        assert (group.chat.class_name, group.chat.title) == ("Year 3", "Year 3 Parents")
        renewed = await whatsapp_groups.renew_join_code(session, group.chat, "user:1")
        assert renewed != group.code
        actions = list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
        assert actions[-2:] == ["chat.whatsapp_group_created", "chat.join_code_renewed"]


async def test_twilios_refusals_are_outcomes_and_nothing_is_recorded(
    sessions: Sessions, api: WhatsAppApi, fake: FakeTwilioAPI
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        group = await whatsapp_groups.create_group(
            session, api, school, "Year 3", actor="user:1", notice=NOTICE, now=NOW
        )
        elsewhere = await api.create_conversation("Not ours")
        await api.add_whatsapp_participant(elsewhere.sid, parent(1), SCHOOL_WHATSAPP, "Pat")
        request = await whatsapp_groups.ask_to_join(session, group.chat, parent(1), "Pat", NOW)

        # In a conversation Schoolgate does not know of: Twilio's 50416.
        refused = await whatsapp_groups.join(
            session, api, request, group.chat, proxy_address=SCHOOL_WHATSAPP, now=NOW
        )
        assert (refused.outcome, refused.current) == (JoinOutcome.IN_ANOTHER_GROUP, None)

        # Twilio down: try later.
        fake.fail_next("participant.create", 503)
        other = await whatsapp_groups.ask_to_join(session, group.chat, parent(2), "Sam", NOW)
        failed = await whatsapp_groups.join(
            session, api, other, group.chat, proxy_address=SCHOOL_WHATSAPP, now=NOW
        )
        assert failed.outcome is JoinOutcome.FAILED
        assert list(await session.scalars(select(ChatMember))) == []
        assert len(list(await session.scalars(select(JoinRequest)))) == 2


async def test_leaving_withdraws_even_when_twilio_cannot_remove_the_participant(
    sessions: Sessions, api: WhatsAppApi, fake: FakeTwilioAPI
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        group = await whatsapp_groups.create_group(
            session, api, school, "Year 3", actor="user:1", notice=NOTICE, now=NOW
        )
        request = await whatsapp_groups.ask_to_join(session, group.chat, parent(1), "Pat", NOW)
        joined = await whatsapp_groups.join(
            session, api, request, group.chat, proxy_address=SCHOOL_WHATSAPP, now=NOW
        )
        assert joined.member is not None
        assert joined.outcome is JoinOutcome.JOINED

        fake.fail_next("participant.delete", 503)
        assert not await whatsapp_groups.leave(session, api, group.chat, parent(1), None, NOW)
        assert not await consent.has_consented(session, group.chat, joined.member)
        assert joined.member.left_at is None  # still in the conversation: say so, try again

        assert await whatsapp_groups.leave(session, api, group.chat, parent(1), None, NOW)
        assert joined.member.left_at == NOW
        assert fake.participants(group.chat.platform_chat_id) == []
        # Gone already (removed in Twilio's console): leaving still works.
        assert await whatsapp_groups.leave(
            session, api, group.chat, parent(1), "MB" + "0" * 32, NOW
        )


async def test_an_invitation_needs_a_number_and_a_hosted_group(sessions: Sessions) -> None:
    texts = load_whatsapp_texts(CONFIG_DIR)
    async with transaction(sessions) as session:
        school = await a_school(session)
        telegram_chat = await a_chat(session, school)
        with pytest.raises(BadInputError, match="hosted WhatsApp group"):
            await whatsapp_groups.invite(
                session, telegram_chat, school, "07700 900001", invited_by="user:1",
                texts=texts, now=NOW,
            )  # fmt: skip
    assert whatsapp_groups.whatsapp_address("07700 900123") == "whatsapp:+447700900123"
    assert whatsapp_groups.whatsapp_address("whatsapp:+447700900123") == "whatsapp:+447700900123"
    with pytest.raises(BadInputError, match="not a phone number"):
        whatsapp_groups.whatsapp_address("call me")
