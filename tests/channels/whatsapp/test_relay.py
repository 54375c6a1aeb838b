"""Messages in a hosted group: checked in the pre-event, then relayed under the sender's name,
flagged, or held back; commands answered privately."""

from __future__ import annotations

import json

import pytest

from bot.services.whatsapp_groups import NewGroup
from bot.store.db import transaction
from bot.store.models import Chat, ChatMember, Consent, Flag, FlagSource, School, StoredMessage
from tests.channels.whatsapp.support import ABUSIVE, HARMLESS, HEAD_EMAIL, WhatsApp
from tests.fakes.twilio_webhooks import MediaFile, parent

pytestmark = pytest.mark.anyio

PHOTO = MediaFile("disco.jpg", "image/jpeg")
PHOTO_OF_CHILDREN = "look at all the kids at the school disco"


async def a_group_of_three(whatsapp: WhatsApp, school: School) -> NewGroup:
    group = await whatsapp.new_group(school)
    for n, name in ((1, "Pat Jones"), (2, "Sam Reed"), (3, "Lee Chan")):
        await whatsapp.join(group, n, name)
    whatsapp.engine_calls.clear()
    return group


async def test_a_harmless_message_reaches_the_others_with_the_senders_name_and_leaves_a_record(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)

    sent = await whatsapp.say(group, 1, HARMLESS)

    assert sent.accepted
    for n in (2, 3):
        [delivery] = whatsapp.twilio.delivered_to(parent(n))
        assert delivery.body == f"Pat Jones: {HARMLESS}"
    assert whatsapp.twilio.delivered_to(parent(1)) == []
    [record] = await whatsapp.rows(StoredMessage)
    assert record.text is None  # no words kept
    assert await whatsapp.rows(Flag) == []
    assert whatsapp.engine_calls == [seeded_school.id]


async def test_an_abusive_message_is_relayed_flagged_and_alerted_unless_held(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)

    assert (await whatsapp.say(group, 1, ABUSIVE)).accepted
    assert whatsapp.twilio.delivered_to(parent(2))[-1].body == f"Pat Jones: {ABUSIVE}"
    [flag] = await whatsapp.rows(Flag)
    assert (flag.source, flag.severity) == (FlagSource.CHAT, "high")
    assert [r.rule for r in flag.reasons] == ["abusive-to-parent"]
    [record] = await whatsapp.rows(StoredMessage)
    assert record.text == ABUSIVE  # flagged: the words are kept
    [alert] = await whatsapp.outbox("alert")
    assert (alert.channel, alert.recipient, alert.flag_id) == ("email", HEAD_EMAIL, flag.id)
    assert "Year 3 Parents" in alert.text
    assert "Pat Jones" in alert.text


async def test_a_held_message_reaches_nobody_is_flagged_and_the_sender_is_told_why(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)
    await whatsapp.hold_on(seeded_school, "abusive-to-parent")

    sent = await whatsapp.say(group, 1, ABUSIVE)

    assert not sent.accepted
    assert sent.pre_event is not None
    assert sent.pre_event.status == 403
    for n in (2, 3):
        assert whatsapp.twilio.delivered_to(parent(n)) == []
    assert whatsapp.twilio.messages(group.chat.platform_chat_id) == []
    [flag] = await whatsapp.rows(Flag)
    assert [r.rule for r in flag.reasons] == ["abusive-to-parent"]
    assert len(await whatsapp.outbox("alert")) == 1
    [told] = await whatsapp.outbox("held")
    assert (told.channel, told.recipient, told.rule) == ("whatsapp", parent(1), "abusive-to-parent")
    assert told.text.startswith("Your message was not sent to Year 3 Parents: it goes against")
    assert "Please keep the group kind" in told.text


async def test_a_message_breaking_no_held_rule_is_relayed_though_others_are_held(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)
    await whatsapp.hold_on(seeded_school, "disrepute")

    assert (await whatsapp.say(group, 1, ABUSIVE)).accepted
    assert len(await whatsapp.rows(Flag)) == 1
    assert await whatsapp.outbox("held") == []


async def test_a_photo_is_relayed_or_held_by_the_same_rules(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)

    relayed = await whatsapp.say(group, 1, PHOTO_OF_CHILDREN, media=[PHOTO])
    assert relayed.accepted
    assert relayed.message is not None
    assert [m.filename for m in relayed.message.media] == ["disco.jpg"]
    [flag] = await whatsapp.rows(Flag)
    assert [r.rule for r in flag.reasons] == ["images-consent"]
    [record] = await whatsapp.rows(StoredMessage)
    assert record.media_kinds == ["photo"]

    await whatsapp.hold_on(seeded_school, "images-consent")
    held = await whatsapp.say(group, 2, PHOTO_OF_CHILDREN + " again", media=[PHOTO])
    assert not held.accepted
    assert [d.author for d in whatsapp.twilio.delivered_to(parent(3))] == [parent(1)]
    [told] = await whatsapp.outbox("held")
    assert (told.recipient, told.rule) == (parent(2), "images-consent")
    assert "only with everyone's consent" in told.text


async def test_a_photo_without_words_is_relayed_under_the_senders_name(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)

    sent = await whatsapp.say(group, 2, "", media=[PHOTO])

    assert sent.accepted
    assert sent.pre_event is not None
    assert json.loads(sent.pre_event.body) == {"body": "Sam Reed:"}
    assert whatsapp.twilio.delivered_to(parent(1))[-1].body == "Sam Reed:"


async def test_after_a_notice_change_a_member_is_held_and_told_until_they_agree_again(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)
    async with transaction(whatsapp.sessions) as session:
        chat = await session.get(Chat, group.chat.id)
        assert chat is not None
        chat.notice_version = "2027-01-01.1"

    held = await whatsapp.say(group, 1, HARMLESS)

    assert not held.accepted
    assert whatsapp.twilio.delivered_to(parent(2)) == []
    assert await whatsapp.rows(StoredMessage) == []
    assert whatsapp.engine_calls == []
    assert (await whatsapp.chat(group.chat.id)).unconsented_messages == 1
    [told] = await whatsapp.outbox("consent")
    assert (told.channel, told.recipient) == ("whatsapp", parent(1))
    assert told.text == whatsapp.texts.not_consented.format(group="Year 3 Parents")

    assert not (await whatsapp.say(group, 1, "I agree")).accepted  # for the school, not the group
    [agreed] = await whatsapp.outbox("reply")
    assert agreed.text == whatsapp.texts.agreed.format(group="Year 3 Parents")
    versions = [c.notice_version for c in await whatsapp.rows(Consent)]
    assert versions.count("2027-01-01.1") == 1

    # The same words again, now that they agreed: read and relayed (not taken for a retry).
    assert (await whatsapp.say(group, 1, HARMLESS)).accepted
    assert whatsapp.twilio.delivered_to(parent(2))[-1].body == f"Pat Jones: {HARMLESS}"


async def test_i_agree_from_a_member_who_has_agreed_is_an_ordinary_message(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)

    assert (await whatsapp.say(group, 1, "I agree")).accepted
    assert whatsapp.twilio.delivered_to(parent(2))[-1].body == "Pat Jones: I agree"


async def test_leave_withdraws_deletes_the_words_and_takes_the_member_out(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)
    await whatsapp.say(group, 1, ABUSIVE)

    left = await whatsapp.say(group, 1, "/leave")

    assert not left.accepted
    assert [p.address for p in whatsapp.twilio.participants(group.chat.platform_chat_id)] == [
        parent(2),
        parent(3),
    ]
    [told] = await whatsapp.outbox("reply")
    assert (told.recipient, told.text) == (
        parent(1),
        whatsapp.texts.left.format(group="Year 3 Parents"),
    )
    pat = next(m for m in await whatsapp.rows(ChatMember) if m.platform_user_id == parent(1))
    assert pat.left_at is not None
    [consent] = [c for c in await whatsapp.rows(Consent) if c.member_id == pat.id]
    assert consent.withdrawn_at is not None
    [record] = await whatsapp.rows(StoredMessage)
    assert record.text is None
    [flag] = await whatsapp.rows(Flag)
    assert [r.evidence for r in flag.reasons] == ["(removed: the sender withdrew consent)"]
    # Out of the conversation, their number reaches the school's number again.
    assert (await whatsapp.write(1, "/leave")).status_code == 200


async def test_privacy_and_mydata_are_answered_privately_and_never_relayed(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)

    assert not (await whatsapp.say(group, 2, "/privacy")).accepted
    assert not (await whatsapp.say(group, 2, "/mydata")).accepted

    assert whatsapp.twilio.delivered_to(parent(1)) == []
    privacy, mydata = await whatsapp.outbox("reply")
    assert (privacy.channel, privacy.recipient) == ("whatsapp", parent(2))
    assert privacy.text.startswith("Hello, I'm Schoolgate, Peartree Spring Primary School's")
    assert privacy.text.endswith(whatsapp.texts.notice_suffix)
    assert mydata.recipient == parent(2)
    assert mydata.text.startswith("What Peartree Spring Primary School holds about you:\n")
    data = json.loads(mydata.text.split("\n", 1)[1])
    assert data["user_id"] == parent(2)
    assert [c["name"] for c in data["chats"]] == ["Sam Reed"]
    assert await whatsapp.rows(StoredMessage) == []


async def test_report_in_a_group_files_a_report_for_the_school_and_is_not_relayed(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)

    sent = await whatsapp.say(group, 3, f"/report From Year 3 Class WhatsApp: {ABUSIVE}")

    assert not sent.accepted
    assert whatsapp.twilio.delivered_to(parent(1)) == []
    [flag] = await whatsapp.rows(Flag)
    assert (flag.source, flag.reported_from) == (FlagSource.REPORT, "Year 3 Class WhatsApp")
    [told] = await whatsapp.outbox("reply")
    assert (told.recipient, told.text) == (parent(3), whatsapp.texts.report_thanks)
    reporter = next(m for m in await whatsapp.rows(ChatMember) if m.id == flag.member_id)
    assert (reporter.platform_user_id, reporter.display_name) == (parent(3), "Lee Chan")
    report_line = await whatsapp.chat(flag.chat_id)
    assert report_line.platform_chat_id == f"report-line:{seeded_school.id}"


async def test_a_join_code_typed_in_a_group_is_never_relayed(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)
    other = await whatsapp.new_group(seeded_school, "Year 5")

    assert not (await whatsapp.say(group, 1, f"JOIN {other.code}")).accepted
    assert whatsapp.twilio.delivered_to(parent(2)) == []
    [told] = await whatsapp.outbox("reply")
    assert told.text == whatsapp.texts.in_another_group.format(
        current="Year 3 Parents", group="Year 5 Parents"
    )


@pytest.mark.parametrize("text", ["Join us tomorrow!", "join the PTA at 3", "Join everyone!"])
async def test_a_message_that_only_starts_like_a_join_is_relayed(
    whatsapp: WhatsApp, seeded_school: School, text: str
) -> None:
    group = await a_group_of_three(whatsapp, seeded_school)

    assert (await whatsapp.say(group, 1, text)).accepted
    assert whatsapp.twilio.delivered_to(parent(2))[-1].body == f"Pat Jones: {text}"
    assert await whatsapp.outbox("reply") == []
