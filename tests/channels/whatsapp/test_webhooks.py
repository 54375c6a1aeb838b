"""Twilio's webhooks done right: signatures for the public URL, size limits, unknown fields,
replays answered from what was stored, and the database down."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.channels.whatsapp.delivery import StatusReport
from bot.channels.whatsapp.paths import (
    INCOMING_PATH,
    POST_EVENT_PATH,
    PRE_EVENT_PATH,
    STATUS_PATH,
)
from bot.channels.whatsapp.signature import SIGNATURE_HEADER
from bot.store.models import ChatMember, Flag, JoinRequest, School, StoredMessage, WebhookReceipt
from tests.channels.whatsapp.conftest import StartWhatsApp
from tests.channels.whatsapp.support import ABUSIVE, HARMLESS, MAX_BYTES, WhatsApp, said
from tests.fakes import twilio_webhooks as tw
from tests.fakes.twilio_webhooks import SCHOOL_WHATSAPP, TlsTerminatingProxy, parent

pytestmark = pytest.mark.anyio

OTHER_TOKEN = "0" * 32


async def test_a_bad_or_missing_signature_is_403_and_nothing_is_stored(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)
    join = tw.incoming_message(parent(1), SCHOOL_WHATSAPP, f"JOIN {group.code}")
    good = tw.signed(f"{tw.PUBLIC_BASE_URL}{INCOMING_PATH}", join)
    before = await whatsapp.counts()

    tampered = join | {"Body": f"JOIN {group.code} "}
    answers = [
        await whatsapp.post(INCOMING_PATH, tampered, headers=good),
        await whatsapp.post(INCOMING_PATH, join, token=OTHER_TOKEN),
        await whatsapp.post(INCOMING_PATH, join, headers={}),
        await whatsapp.post(INCOMING_PATH, join, headers={SIGNATURE_HEADER: ""}),
        # Signed for another path: a signature is for one URL only.
        await whatsapp.post(INCOMING_PATH, join, headers=tw.signed(
            f"{tw.PUBLIC_BASE_URL}{STATUS_PATH}", join)),
    ]  # fmt: skip

    assert [a.status_code for a in answers] == [403] * 5
    assert all(a.text == "" for a in answers)
    assert await whatsapp.counts() == before
    assert await whatsapp.rows(JoinRequest) == []
    # The same request, signed as Twilio signs it, is taken.
    assert (await whatsapp.post(INCOMING_PATH, join, headers=good)).status_code == 200
    assert len(await whatsapp.rows(JoinRequest)) == 1


async def test_a_forged_pre_event_holds_the_message(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)
    await whatsapp.join(group, 1)
    params = tw.message_add(group.chat.platform_chat_id, "MB" + "0" * 32, parent(1), HARMLESS)

    answer = await whatsapp.post(PRE_EVENT_PATH, params, token=OTHER_TOKEN)

    assert answer.status_code == 403
    assert await whatsapp.rows(StoredMessage) == []


async def test_unknown_fields_are_ignored(whatsapp: WhatsApp, seeded_school: School) -> None:
    group = await whatsapp.new_group(seeded_school)
    params = tw.incoming_message(parent(1), SCHOOL_WHATSAPP, f"JOIN {group.code}") | {
        "ChannelMetadata": '{"type": "whatsapp", "data": {"context": {}}}',
        "SomethingTwilioAddsNextYear": "x",
    }

    answer = await whatsapp.post(INCOMING_PATH, params)

    assert said(answer)[-1] == "Reply AGREE to join Year 3 Parents."


async def test_a_body_over_the_limit_is_413(whatsapp: WhatsApp, seeded_school: School) -> None:
    params = tw.incoming_message(parent(1), SCHOOL_WHATSAPP, "x" * MAX_BYTES)

    answer = await whatsapp.post(INCOMING_PATH, params)

    assert answer.status_code == 413
    assert await whatsapp.rows(WebhookReceipt) == []


async def test_behind_a_tls_terminating_proxy_signatures_are_checked_against_the_public_url(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    whatsapp.twilio.webhook_transport = TlsTerminatingProxy(
        "http://127.0.0.1:8000", inner=httpx.ASGITransport(app=whatsapp.app)
    )
    group = await whatsapp.new_group(seeded_school)

    await whatsapp.join(group, 1)
    await whatsapp.join(group, 2, "Sam Reed")
    assert (await whatsapp.say(group, 1, HARMLESS)).accepted
    assert whatsapp.twilio.delivered_to(parent(2))[-1].body == f"Pat Jones: {HARMLESS}"


async def test_a_replayed_incoming_message_gets_the_same_answer_and_changes_nothing(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    report = tw.incoming_message(parent(20), SCHOOL_WHATSAPP, ABUSIVE, forwarded=True)
    first = await whatsapp.post(INCOMING_PATH, report)
    after_first = await whatsapp.counts()

    again = await whatsapp.post(INCOMING_PATH, report)

    assert (again.status_code, again.text) == (first.status_code, first.text)
    assert await whatsapp.counts() == after_first
    assert len(await whatsapp.rows(Flag)) == 1
    assert len(await whatsapp.outbox("alert")) == 1


async def test_a_retried_pre_event_gets_the_same_answer_and_changes_nothing(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)
    await whatsapp.join(group, 1)
    await whatsapp.join(group, 2, "Sam Reed")
    await whatsapp.hold_on(seeded_school, "abusive-to-parent")
    for text in (HARMLESS, ABUSIVE):
        await whatsapp.say(group, 1, text)
    relayed, held = whatsapp.twilio.webhook_calls("onMessageAdd")
    after = await whatsapp.counts()

    for call in (relayed, held):
        retried = dict(call.params) | {"RetryCount": "1"}
        for params in (call.params, retried):
            answer = await whatsapp.post(PRE_EVENT_PATH, params)
            assert (answer.status_code, answer.text) == (call.status, call.body)

    assert await whatsapp.counts() == after
    assert len(await whatsapp.rows(StoredMessage)) == 2
    assert len(await whatsapp.outbox("held")) == 1


async def test_post_events_and_status_callbacks_are_taken_once(
    start_whatsapp: StartWhatsApp, seeded_school: School
) -> None:
    whatsapp = await start_whatsapp()
    reports: list[StatusReport] = []

    async def on_status(session: object, report: StatusReport, now: object) -> None:
        reports.append(report)

    whatsapp.runtime.on_status = on_status
    group = await whatsapp.new_group(seeded_school)
    await whatsapp.join(group, 1)
    [member] = await whatsapp.rows(ChatMember)
    assert member.platform_ref is not None
    removed = tw.participant_added(
        group.chat.platform_chat_id, member.platform_ref, parent(1), SCHOOL_WHATSAPP
    ) | {"EventType": "onParticipantRemoved"}
    status = tw.status_callback(
        "SM" + "1" * 32, "failed", to=parent(1), from_=SCHOOL_WHATSAPP, error_code=63016
    )

    for _ in range(2):
        assert (await whatsapp.post(POST_EVENT_PATH, removed)).status_code == 200
        assert (await whatsapp.post(STATUS_PATH, status)).status_code == 200

    [member] = await whatsapp.rows(ChatMember)
    assert member.left_at is not None  # removed in Twilio's console: left
    assert reports == [StatusReport("SM" + "1" * 32, "failed", 63016, parent(1))]


async def test_with_the_database_down_group_messages_are_held_and_the_number_answers_503(
    start_whatsapp: StartWhatsApp, down_database: AsyncEngine, caplog: pytest.LogCaptureFixture
) -> None:
    whatsapp = await start_whatsapp(database=down_database)
    api = whatsapp.runtime.api
    assert api is not None
    conversation = await api.create_conversation("Year 3 Parents")
    for n in (1, 2):
        await api.add_whatsapp_participant(conversation.sid, parent(n), SCHOOL_WHATSAPP, f"P{n}")

    with caplog.at_level(logging.ERROR):
        sent = await whatsapp.twilio.send_from_participant(conversation.sid, parent(1), HARMLESS)
        answer = await whatsapp.write(3, "JOIN ABCD-EFGH")

    assert not sent.accepted
    assert sent.pre_event is not None
    assert sent.pre_event.status == 503
    assert whatsapp.twilio.delivered_to(parent(2)) == []
    assert answer.status_code == 503
    assert caplog.text.count("database unavailable: answered a Twilio webhook 503") == 2
