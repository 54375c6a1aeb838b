"""Creating a hosted group and joining it: the join code, the notice, AGREE, and the refusals."""

from __future__ import annotations

import json

import pytest

from bot.services.registration import code_hash
from bot.services.whatsapp_groups import invite
from bot.store.db import transaction
from bot.store.models import (
    Chat,
    ChatMember,
    ChatStatus,
    Consent,
    Flag,
    JoinRequest,
    School,
    StoredMessage,
)
from tests.channels.whatsapp.conftest import StartWhatsApp
from tests.channels.whatsapp.support import WhatsApp, said
from tests.fakes.twilio_webhooks import SCHOOL_WHATSAPP, parent

pytestmark = pytest.mark.anyio


async def test_a_group_is_a_conversation_and_a_registered_chat_with_a_code_shown_once(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school, "Year 3")

    conversation = whatsapp.twilio.conversation(group.chat.platform_chat_id)
    assert (conversation.friendly_name, conversation.state) == ("Year 3 Parents", "active")
    [chat] = await whatsapp.rows(Chat)
    assert (chat.platform, chat.platform_chat_id) == ("whatsapp", conversation.sid)
    assert (chat.school_id, chat.class_name, chat.status) == (
        seeded_school.id,
        "Year 3",
        ChatStatus.REGISTERED,
    )
    assert chat.notice_version == whatsapp.runtime.bot_texts.notice.version
    # Only the code's hash is kept: the code itself is in the answer, once.
    assert chat.join_code_hash == code_hash(group.code)
    assert group.code not in json.dumps([str(v) for v in vars(chat).values()])
    # The Conversation Service's webhooks point at us (configured at start).
    hooks = whatsapp.twilio.service_webhooks()
    assert hooks.pre_url == "https://schoolgate.example.sch.uk/twilio/conversations/pre"
    assert hooks.post_url == "https://schoolgate.example.sch.uk/twilio/conversations/post"


async def test_join_shows_the_notice_and_agree_makes_a_consenting_member_in_the_conversation(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)

    answer = said(await whatsapp.write(1, f"join {group.code.lower()}", name="Pat Jones"))
    assert answer[0].startswith("Hello, I'm Schoolgate, Peartree Spring Primary School's helper")
    assert whatsapp.texts.notice_suffix in answer[0]
    assert answer[1] == "Reply AGREE to join Year 3 Parents."
    [request] = await whatsapp.rows(JoinRequest)
    assert (request.chat_id, request.address, request.display_name) == (
        group.chat.id,
        parent(1),
        "Pat Jones",
    )
    assert await whatsapp.rows(ChatMember) == []
    assert whatsapp.twilio.participants(group.chat.platform_chat_id) == []

    assert said(await whatsapp.write(1, "Agree")) == [
        "Welcome to Year 3 Parents! Your agreement is recorded. What you send to this number "
        "now goes to the group; /leave takes you out again."
    ]
    [participant] = whatsapp.twilio.participants(group.chat.platform_chat_id)
    assert (participant.address, participant.proxy_address) == (parent(1), SCHOOL_WHATSAPP)
    [member] = await whatsapp.rows(ChatMember)
    assert (member.chat_id, member.platform_user_id, member.display_name) == (
        group.chat.id,
        parent(1),
        "Pat Jones",
    )
    assert member.platform_ref == participant.sid
    [consent] = await whatsapp.rows(Consent)
    assert (consent.member_id, consent.method, consent.notice_version) == (
        member.id,
        "reply",
        group.chat.notice_version,
    )
    assert await whatsapp.rows(JoinRequest) == []


async def test_before_agreeing_nothing_is_read_or_kept_only_counted_and_explained(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)
    said(await whatsapp.write(1, f"JOIN {group.code}"))

    for text in ("ur a vile woman and everyone knows it", "hello?"):
        assert said(await whatsapp.write(1, text)) == [
            "Your message was not read or kept: you have not joined Year 3 Parents yet. Please "
            "read the notice above, then reply AGREE to join."
        ]

    assert (await whatsapp.chat(group.chat.id)).unconsented_messages == 2
    assert await whatsapp.rows(StoredMessage) == []
    assert await whatsapp.rows(Flag) == []
    assert whatsapp.engine_calls == []


async def test_a_wrong_code_and_agreeing_to_nothing_get_clear_answers(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    await whatsapp.new_group(seeded_school)

    assert said(await whatsapp.write(1, "JOIN WXYZ-2345")) == [whatsapp.texts.bad_code]
    assert said(await whatsapp.write(1, "I agree")) == [whatsapp.texts.nothing_to_agree]
    assert said(await whatsapp.write(1, "join")) == [whatsapp.texts.join_usage]
    assert await whatsapp.rows(JoinRequest) == []
    assert await whatsapp.rows(ChatMember) == []


async def test_a_full_group_is_refused_by_our_own_count_before_twilio_is_asked(
    start_whatsapp: StartWhatsApp, seeded_school: School
) -> None:
    whatsapp = await start_whatsapp(max_participants=2)
    group = await whatsapp.new_group(seeded_school)
    await whatsapp.join(group, 1)
    await whatsapp.join(group, 2, "Sam Reed")

    said(await whatsapp.write(3, f"JOIN {group.code}"))
    assert said(await whatsapp.write(3, "AGREE")) == [
        "Sorry, Year 3 Parents is full: a WhatsApp group here can have at most 2 members. "
        "Please contact the school office."
    ]
    assert len(whatsapp.twilio.calls_to("participant.create")) == 2
    assert [m.platform_user_id for m in await whatsapp.rows(ChatMember)] == [parent(1), parent(2)]
    assert len(await whatsapp.rows(JoinRequest)) == 1  # they may try again when there is room


async def test_twilios_fifty_participant_limit_gets_the_same_clear_answer(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)
    api = whatsapp.runtime.api
    assert api is not None
    for n in range(100, 150):  # 50 people added outside Schoolgate (e.g. in Twilio's console)
        await api.add_whatsapp_participant(
            group.chat.platform_chat_id, parent(n), SCHOOL_WHATSAPP, f"P{n}"
        )

    said(await whatsapp.write(1, f"JOIN {group.code}"))
    assert said(await whatsapp.write(1, "AGREE")) == [
        whatsapp.texts.group_full.format(group="Year 3 Parents", limit=50)
    ]
    assert await whatsapp.rows(ChatMember) == []
    assert await whatsapp.rows(Consent) == []


async def test_a_number_in_another_group_is_told_to_leave_it_first(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    year3 = await whatsapp.new_group(seeded_school, "Year 3")
    year4 = await whatsapp.new_group(seeded_school, "Year 4")
    await whatsapp.join(year3, 1)
    async with transaction(whatsapp.sessions) as session:
        chat = await session.get(Chat, year4.chat.id)
        school = await session.get(School, seeded_school.id)
        assert chat is not None
        assert school is not None
        await invite(
            session, chat, school, "07700 900001", invited_by="user:1",
            texts=whatsapp.texts, now=year4.chat.registered_at or year4.chat.first_seen_at,
        )  # fmt: skip

    # Their number is in Year 3's conversation, so their reply arrives there, not at the number.
    reply = await whatsapp.say(year3, 1, "AGREE")
    assert not reply.accepted
    assert reply.pre_event is not None
    assert reply.pre_event.status == 403
    [told] = [m for m in await whatsapp.outbox("reply") if m.recipient == parent(1)]
    assert told.channel == "whatsapp"
    assert told.text == (
        "You are already in another school group on this number (Year 3 Parents): WhatsApp "
        "lets a number be in one of them at a time. To join Year 4 Parents instead, first send "
        "/leave in that group, then reply JOIN here."
    )

    assert (await whatsapp.say(year3, 1, "/leave")).accepted is False
    assert whatsapp.twilio.participants(year3.chat.platform_chat_id) == []
    assert said(await whatsapp.write(1, "JOIN"))[-1] == "Reply AGREE to join Year 4 Parents."
    assert said(await whatsapp.write(1, "AGREE")) == [
        whatsapp.texts.joined.format(group="Year 4 Parents")
    ]
    [participant] = whatsapp.twilio.participants(year4.chat.platform_chat_id)
    assert participant.address == parent(1)


async def test_an_invited_number_gets_the_invitation_and_joins_without_a_code(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)
    async with transaction(whatsapp.sessions) as session:
        chat = await session.get(Chat, group.chat.id)
        school = await session.get(School, seeded_school.id)
        assert chat is not None
        assert school is not None
        await invite(
            session, chat, school, "+447700900007", invited_by="user:9", texts=whatsapp.texts,
            now=group.chat.first_seen_at,
        )  # fmt: skip

    [invitation] = await whatsapp.outbox("invite")
    assert (invitation.channel, invitation.recipient) == ("whatsapp", parent(7))
    assert invitation.text == (
        "Hello from Peartree Spring Primary School: you are invited to join Year 3 Parents on "
        "WhatsApp. Reply JOIN to read how it works."
    )
    [request] = await whatsapp.rows(JoinRequest)
    assert request.invited_by == "user:9"

    assert said(await whatsapp.write(7, "JOIN", name="Lee"))[-1] == (
        "Reply AGREE to join Year 3 Parents."
    )
    said(await whatsapp.write(7, "AGREE", name="Lee"))
    [member] = await whatsapp.rows(ChatMember)
    assert (member.platform_user_id, member.display_name) == (parent(7), "Lee")


async def test_agreeing_to_join_a_group_closed_meanwhile_is_agreeing_to_nothing(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)
    said(await whatsapp.write(1, f"JOIN {group.code}"))
    async with transaction(whatsapp.sessions) as session:
        chat = await session.get(Chat, group.chat.id)
        assert chat is not None
        chat.status = ChatStatus.LEFT

    assert said(await whatsapp.write(1, "AGREE")) == [whatsapp.texts.nothing_to_agree]
    assert said(await whatsapp.write(1, f"JOIN {group.code}")) == [whatsapp.texts.bad_code]
    assert whatsapp.twilio.calls_to("participant.create") == []


async def test_another_groups_code_typed_in_a_group_is_kept_secret_and_remembered(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    year3 = await whatsapp.new_group(seeded_school, "Year 3")
    year4 = await whatsapp.new_group(seeded_school, "Year 4")
    await whatsapp.join(year3, 1)
    await whatsapp.join(year3, 2)
    typed = await whatsapp.say(year3, 1, f"JOIN {year4.code}")
    assert not typed.accepted, "the code is never shown to the group"
    assert whatsapp.twilio.delivered_to(parent(2)) == []
    assert (await whatsapp.say(year3, 1, "/leave")).accepted is False
    # No need for the code again: the bot remembers which group they asked for.
    assert said(await whatsapp.write(1, "JOIN"))[-1] == "Reply AGREE to join Year 4 Parents."
