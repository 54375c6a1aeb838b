"""The issue's "Done when" lines for WhatsApp, each as its own test: a held message never
reaches the other participants; a non-consenting participant's message is never relayed, stored
or analysed; a replayed webhook changes nothing."""

from __future__ import annotations

import pytest

from bot.channels.whatsapp.paths import INCOMING_PATH, POST_EVENT_PATH, PRE_EVENT_PATH
from bot.store.models import Flag, School, StoredMessage
from tests.channels.whatsapp.support import ABUSIVE, HARMLESS, WhatsApp, said
from tests.fakes.twilio_webhooks import SCHOOL_WHATSAPP, MediaFile, parent

pytestmark = pytest.mark.anyio


async def test_a_held_message_never_reaches_the_other_participants(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)
    for n in (1, 2, 3):
        await whatsapp.join(group, n)
    await whatsapp.hold_on(seeded_school, "abusive-to-parent", "images-consent")

    for text, media in ((ABUSIVE, ()), ("all the kids at the disco", (MediaFile("a.jpg"),))):
        sent = await whatsapp.say(group, 1, text, media=media)
        assert not sent.accepted
        assert sent.post_events == ()

    conversation = group.chat.platform_chat_id
    assert whatsapp.twilio.messages(conversation) == []
    assert whatsapp.twilio.delivered_to(parent(2)) == whatsapp.twilio.delivered_to(parent(3)) == []
    assert len(await whatsapp.rows(Flag)) == 2  # held, and in the school's queue


async def test_a_non_consenting_participants_message_is_never_relayed_stored_or_analysed(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)
    await whatsapp.join(group, 1)
    api = whatsapp.runtime.api
    assert api is not None
    # In the conversation with no agreement on record (added in Twilio's console, say).
    await api.add_whatsapp_participant(
        group.chat.platform_chat_id, parent(9), SCHOOL_WHATSAPP, "Unknown"
    )
    whatsapp.engine_calls.clear()

    for text, media in ((ABUSIVE, ()), (HARMLESS, ()), ("kids", (MediaFile("b.jpg"),))):
        sent = await whatsapp.say(group, 9, text, media=media)
        assert not sent.accepted

    assert whatsapp.twilio.delivered_to(parent(1)) == []
    assert await whatsapp.rows(StoredMessage) == []
    assert await whatsapp.rows(Flag) == []
    assert whatsapp.engine_calls == []  # the engine never saw a word of it
    assert (await whatsapp.chat(group.chat.id)).unconsented_messages == 3
    [told] = await whatsapp.outbox("consent")  # told why once, not once per message
    assert told.recipient == parent(9)
    assert told.text == whatsapp.texts.not_consented.format(group="Year 3 Parents")


async def test_a_replayed_webhook_changes_nothing(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)
    await whatsapp.join(group, 1)
    await whatsapp.join(group, 2, "Sam Reed")
    await whatsapp.hold_on(seeded_school, "abusive-to-parent")
    for text in (HARMLESS, ABUSIVE, "/mydata"):
        await whatsapp.say(group, 1, text)
    said(await whatsapp.write(20, ABUSIVE, forwarded=True))
    calls = whatsapp.twilio.webhook_calls()
    paths = {
        f"{whatsapp.client.base_url}{path}".rstrip("/"): path
        for path in (INCOMING_PATH, PRE_EVENT_PATH, POST_EVENT_PATH)
    }
    before = await whatsapp.counts()
    outbox = [(m.id, m.idempotency_key) for m in await whatsapp.outbox()]

    for call in calls:  # every webhook Twilio sent, sent again
        answer = await whatsapp.post(paths[call.url], call.params)
        assert (answer.status_code, answer.text) == (call.status, call.body), call.url

    # Joining and agreeing, relayed, held and a command, a post-event, and a report.
    assert [paths[call.url] for call in calls] == [INCOMING_PATH] * 4 + [
        PRE_EVENT_PATH, POST_EVENT_PATH, PRE_EVENT_PATH, PRE_EVENT_PATH, INCOMING_PATH,
    ]  # fmt: skip
    assert await whatsapp.counts() == before
    assert [(m.id, m.idempotency_key) for m in await whatsapp.outbox()] == outbox
