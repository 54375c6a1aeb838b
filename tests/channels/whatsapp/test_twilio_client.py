"""WhatsAppApi: the real twilio client, pointed at the fake Twilio API, and its error mapping."""

from __future__ import annotations

import asyncio
import json
import socket

import pytest

from bot.channels.whatsapp.twilio_client import (
    ADDRESS_IN_ANOTHER_CONVERSATION,
    ALREADY_A_PARTICIPANT,
    AUTHENTICATION_FAILED,
    CONVERSATION_CLOSED,
    NOT_FOUND,
    OUTSIDE_WHATSAPP_WINDOW,
    PARTICIPANT_LIMIT_REACHED,
    POST_EVENT_FILTERS,
    PRE_EVENT_FILTERS,
    UNIQUE_NAME_TAKEN,
    TwilioApiError,
    WhatsAppApi,
    redirected_url,
    twilio_client,
)
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.fakes.twilio_webhooks import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CHAT_SERVICE_SID,
    PUBLIC_BASE_URL,
    SCHOOL_NUMBER,
    SCHOOL_WHATSAPP,
    parent,
)

pytestmark = pytest.mark.anyio

PRE_URL = f"{PUBLIC_BASE_URL}/twilio/conversations/pre"
POST_URL = f"{PUBLIC_BASE_URL}/twilio/conversations/post"
STATUS_URL = f"{PUBLIC_BASE_URL}/twilio/status"


def test_requests_for_twilio_go_to_the_configured_base_and_nowhere_else() -> None:
    base = "http://127.0.0.1:8123"
    assert (
        redirected_url("https://conversations.twilio.com/v1/Conversations?PageSize=5", base)
        == "http://127.0.0.1:8123/conversations/v1/Conversations?PageSize=5"
    )
    assert (
        redirected_url("https://api.twilio.com/2010-04-01/Accounts/AC1/Messages.json", base + "/")
        == "http://127.0.0.1:8123/api/2010-04-01/Accounts/AC1/Messages.json"
    )
    for url in (
        "http://api.twilio.com/2010-04-01/Accounts",
        "https://api.twilio.com.evil.example/2010-04-01",
        "https://twilio.com/2010-04-01",
        "https://example.com/v1",
    ):
        with pytest.raises(ValueError, match="not a Twilio API URL"):
            redirected_url(url, base)


async def test_a_class_group_is_created_configured_joined_and_closed(
    twilio: FakeTwilioAPI, twilio_client: WhatsAppApi
) -> None:
    group = await twilio_client.create_conversation("Year 3 parents", "school-1-year-3")
    assert group.sid.startswith("CH")
    assert (group.unique_name, group.state, group.chat_service_sid) == (
        "school-1-year-3",
        "active",
        CHAT_SERVICE_SID,
    )

    hooks = await twilio_client.configure_webhooks(PRE_URL, POST_URL)
    assert hooks.chat_service_sid == CHAT_SERVICE_SID
    assert (hooks.pre_url, hooks.post_url, hooks.method) == (PRE_URL, POST_URL, "POST")
    assert hooks.filters == PRE_EVENT_FILTERS + POST_EVENT_FILTERS
    [update] = twilio.calls_to("service_webhooks.update")
    assert update.values("Filters") == ["onMessageAdd", *POST_EVENT_FILTERS]
    assert twilio.service_webhooks().pre_url == PRE_URL

    pat = await twilio_client.add_whatsapp_participant(
        group.sid, parent(1), SCHOOL_WHATSAPP, "Pat J"
    )
    assert pat.sid.startswith("MB")
    assert (pat.conversation_sid, pat.address, pat.proxy_address) == (
        group.sid,
        parent(1),
        SCHOOL_WHATSAPP,
    )
    [stored] = twilio.participants(group.sid)
    assert json.loads(stored.attributes) == {"friendly_name": "Pat J"}
    await twilio_client.add_whatsapp_participant(group.sid, parent(2), SCHOOL_WHATSAPP, "Sam")
    assert await twilio_client.count_participants(group.sid) == 2

    twilio.open_whatsapp_window(parent(1))
    first = await twilio_client.send_conversation_message(group.sid, "Welcome to the Year 3 group")
    second = await twilio_client.send_conversation_message(group.sid, "Be kind", author="Head")
    assert (first.index, second.index, first.conversation_sid) == (0, 1, group.sid)
    assert [(m.author, m.body) for m in twilio.messages(group.sid)] == [
        ("Schoolgate", "Welcome to the Year 3 group"),
        ("Head", "Be kind"),
    ]
    assert [d.body for d in twilio.delivered_to(parent(1))] == [
        "Welcome to the Year 3 group",
        "Be kind",
    ]
    # Sam has not written within 24 hours: WhatsApp refuses free-form messages to Sam.
    assert [d.error_code for d in twilio.undelivered_to(parent(2))] == [OUTSIDE_WHATSAPP_WINDOW] * 2
    assert twilio.webhook_calls() == []  # Our own REST actions fire no webhooks.

    await twilio_client.remove_participant(group.sid, pat.sid)
    assert await twilio_client.count_participants(group.sid) == 1

    closed = await twilio_client.close_conversation(group.sid)
    assert (closed.sid, closed.state) == (group.sid, "closed")
    assert twilio.conversation(group.sid).state == "closed"


async def test_a_closed_group_takes_nothing_more(
    twilio: FakeTwilioAPI, twilio_client: WhatsAppApi
) -> None:
    group = await twilio_client.create_conversation("Year 4 parents")
    await twilio_client.close_conversation(group.sid)
    for attempt in (
        twilio_client.send_conversation_message(group.sid, "Hello?"),
        twilio_client.add_whatsapp_participant(group.sid, parent(1), SCHOOL_WHATSAPP, "Pat"),
        twilio_client.close_conversation(group.sid),
    ):
        with pytest.raises(TwilioApiError) as raised:
            await attempt
        assert (raised.value.code, raised.value.retryable) == (CONVERSATION_CLOSED, False)


async def test_unique_names_are_unique(twilio_client: WhatsAppApi) -> None:
    await twilio_client.create_conversation("Year 5", "school-1-year-5")
    with pytest.raises(TwilioApiError) as raised:
        await twilio_client.create_conversation("Year 5 again", "school-1-year-5")
    assert (raised.value.status, raised.value.code) == (409, UNIQUE_NAME_TAKEN)


async def test_a_parent_is_in_one_open_group_per_school_number(twilio_client: WhatsAppApi) -> None:
    year3 = await twilio_client.create_conversation("Year 3")
    year4 = await twilio_client.create_conversation("Year 4")
    await twilio_client.add_whatsapp_participant(year3.sid, parent(1), SCHOOL_WHATSAPP, "Pat")

    with pytest.raises(TwilioApiError) as twice:
        await twilio_client.add_whatsapp_participant(year3.sid, parent(1), SCHOOL_WHATSAPP, "Pat")
    assert twice.value.code == ALREADY_A_PARTICIPANT
    with pytest.raises(TwilioApiError) as elsewhere:
        await twilio_client.add_whatsapp_participant(year4.sid, parent(1), SCHOOL_WHATSAPP, "Pat")
    assert (elsewhere.value.code, elsewhere.value.retryable) == (
        ADDRESS_IN_ANOTHER_CONVERSATION,
        False,
    )

    await twilio_client.close_conversation(year3.sid)  # Closing frees the address pair.
    joined = await twilio_client.add_whatsapp_participant(
        year4.sid, parent(1), SCHOOL_WHATSAPP, "Pat"
    )
    assert joined.conversation_sid == year4.sid


async def test_fifty_whatsapp_participants_at_most(twilio_client: WhatsAppApi) -> None:
    group = await twilio_client.create_conversation("Whole school")
    for n in range(1, 51):
        await twilio_client.add_whatsapp_participant(group.sid, parent(n), SCHOOL_WHATSAPP, f"P{n}")
    with pytest.raises(TwilioApiError) as raised:
        await twilio_client.add_whatsapp_participant(
            group.sid, parent(51), SCHOOL_WHATSAPP, "One more"
        )
    assert (raised.value.code, raised.value.status) == (PARTICIPANT_LIMIT_REACHED, 400)
    assert await twilio_client.count_participants(group.sid) == 50


async def test_unknown_conversations_and_participants_are_not_found(
    twilio_client: WhatsAppApi,
) -> None:
    missing = "CH" + "0" * 32
    group = await twilio_client.create_conversation("Year 6")
    for attempt in (
        twilio_client.count_participants(missing),  # A list request: twilio fails it differently.
        twilio_client.send_conversation_message(missing, "hi"),
        twilio_client.remove_participant(group.sid, "MB" + "0" * 32),
    ):
        with pytest.raises(TwilioApiError) as raised:
            await attempt
        assert (raised.value.status, raised.value.code, raised.value.retryable) == (
            404,
            NOT_FOUND,
            False,
        )


async def test_whatsapp_messages_free_form_or_from_a_template(
    twilio: FakeTwilioAPI, twilio_client: WhatsAppApi
) -> None:
    twilio.open_whatsapp_window(parent(1))
    reply = await twilio_client.send_whatsapp(
        parent(1), SCHOOL_WHATSAPP, body="Thank you, we are looking into it."
    )
    alert = await twilio_client.send_whatsapp(
        parent(2),
        SCHOOL_WHATSAPP,
        content_sid="HX0123456789abcdef0123456789abcdef",
        content_variables={"1": "Year 3", "2": "high"},
        status_callback=STATUS_URL,
    )
    late = await twilio_client.send_whatsapp(parent(3), SCHOOL_WHATSAPP, body="Free-form, too late")
    assert reply.sid.startswith("SM")
    assert (reply.status, alert.status, late.status) == ("queued", "queued", "queued")

    [sent_reply] = twilio.sent_messages(to=parent(1))
    assert (sent_reply.body, sent_reply.from_, sent_reply.status) == (
        "Thank you, we are looking into it.",
        SCHOOL_WHATSAPP,
        "queued",
    )
    [sent_alert] = twilio.sent_messages(to=parent(2))
    assert sent_alert.body is None
    assert sent_alert.content_sid == "HX0123456789abcdef0123456789abcdef"
    assert sent_alert.content_variables == {"1": "Year 3", "2": "high"}
    assert sent_alert.status_callback == STATUS_URL
    # Twilio accepts a free-form message outside the window, then fails it.
    [sent_late] = twilio.sent_messages(to=parent(3))
    assert (sent_late.status, sent_late.error_code) == ("failed", OUTSIDE_WHATSAPP_WINDOW)


async def test_sms(twilio: FakeTwilioAPI, twilio_client: WhatsAppApi) -> None:
    sent = await twilio_client.send_sms("+447700900001", SCHOOL_NUMBER, "Reminder", STATUS_URL)
    assert sent.status == "queued"
    [message] = twilio.sent_messages(to="+447700900001")
    assert (message.sid, message.body, message.status_callback) == (
        sent.sid,
        "Reminder",
        STATUS_URL,
    )


@pytest.mark.parametrize(
    ("kwargs", "problem"),
    [
        ({"body": "hi", "content_sid": "HX1"}, "either a body or a content_sid"),
        ({}, "either a body or a content_sid"),
        ({"body": "hi", "content_variables": {"1": "x"}}, "only go with a content_sid"),
        ({"body": "hi", "to": "+447700900001"}, "WhatsApp address looks like"),
    ],
)
async def test_send_whatsapp_refuses_what_twilio_would(
    twilio_client: WhatsAppApi, kwargs: dict[str, object], problem: str
) -> None:
    arguments: dict[str, object] = {"to": parent(1), "from_": SCHOOL_WHATSAPP} | kwargs
    with pytest.raises(ValueError, match=problem):
        await twilio_client.send_whatsapp(**arguments)  # type: ignore[arg-type]


async def test_mismatched_addresses_are_refused_before_any_request(
    twilio: FakeTwilioAPI, twilio_client: WhatsAppApi
) -> None:
    with pytest.raises(ValueError, match="plain number"):
        await twilio_client.send_sms(parent(1), SCHOOL_NUMBER, "hi")
    with pytest.raises(ValueError, match="WhatsApp address looks like"):
        await twilio_client.add_whatsapp_participant("CH1", "+447700900001", SCHOOL_WHATSAPP, "Pat")
    assert twilio.calls == []


@pytest.mark.parametrize(
    ("status", "retryable"), [(429, True), (500, True), (503, True), (400, False), (403, False)]
)
async def test_failures_carry_status_code_and_whether_to_retry(
    twilio: FakeTwilioAPI, twilio_client: WhatsAppApi, status: int, retryable: bool
) -> None:
    twilio.fail_next("message.create", status)
    with pytest.raises(TwilioApiError) as raised:
        await twilio_client.send_sms("+447700900001", SCHOOL_NUMBER, "hi")
    assert (raised.value.status, raised.value.code) == (status, 20000 + status)
    assert raised.value.retryable is retryable

    twilio.fail_next("participant.list", status)
    group = await twilio_client.create_conversation("Year 1")
    with pytest.raises(TwilioApiError) as listing:
        await twilio_client.count_participants(group.sid)
    assert (listing.value.status, listing.value.code) == (status, 20000 + status)
    assert listing.value.retryable is retryable


async def test_twilio_validation_errors_are_not_retryable(twilio_client: WhatsAppApi) -> None:
    with pytest.raises(TwilioApiError) as raised:
        await twilio_client.send_sms("07700 900001", SCHOOL_NUMBER, "hi")
    assert (raised.value.status, raised.value.code, raised.value.retryable) == (400, 21211, False)
    assert "Invalid 'To' Phone Number" in raised.value.message


async def test_a_wrong_auth_token_is_refused(twilio: FakeTwilioAPI) -> None:
    async with WhatsAppApi.connect(ACCOUNT_SID, "0" * 32, twilio.base_url) as impostor:
        with pytest.raises(TwilioApiError) as raised:
            await impostor.create_conversation("Year 2")
    assert (raised.value.status, raised.value.code, raised.value.retryable) == (
        401,
        AUTHENTICATION_FAILED,
        False,
    )
    assert twilio.calls == []  # Refused before it is a call at all.
    assert twilio.conversations() == []


async def test_no_answer_is_retryable() -> None:
    with socket.socket() as probe:  # A port nothing listens on any more.
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with WhatsAppApi.connect(ACCOUNT_SID, AUTH_TOKEN, f"http://127.0.0.1:{port}") as lost:
        with pytest.raises(TwilioApiError) as raised:
            await lost.send_sms("+447700900001", SCHOOL_NUMBER, "hi")
    assert (raised.value.status, raised.value.code, raised.value.retryable) == (None, None, True)
    assert "no answer from Twilio" in str(raised.value)


async def test_a_silent_twilio_times_out_as_retryable() -> None:
    """twilio's own async client would wait for ever: ours gives up after its timeout."""
    connections: list[asyncio.StreamWriter] = []

    async def listen_and_say_nothing(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(writer)

    silent = await asyncio.start_server(listen_and_say_nothing, "127.0.0.1", 0)
    port = silent.sockets[0].getsockname()[1]
    client = twilio_client(ACCOUNT_SID, AUTH_TOKEN, f"http://127.0.0.1:{port}", timeout=0.05)
    async with silent, WhatsAppApi(client) as impatient:
        with pytest.raises(TwilioApiError) as raised:
            await impatient.create_conversation("Year 2")
        for writer in connections:
            writer.close()
            await writer.wait_closed()
    assert (raised.value.status, raised.value.retryable) == (None, True)
    assert len(connections) == 1
