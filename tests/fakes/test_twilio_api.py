"""The fake Twilio API, driven by the real twilio client, and the webhooks it sends to an app
that checks them the way ours must (signature for the public URL)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from twilio.base.exceptions import TwilioRestException  # type: ignore[import-untyped]

from bot.channels.whatsapp.signature import SIGNATURE_HEADER, is_valid, public_url
from bot.channels.whatsapp.twilio_client import TwilioApiError, WhatsAppApi, twilio_client
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.fakes.twilio_webhooks import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    CHAT_SERVICE_SID,
    PUBLIC_BASE_URL,
    SCHOOL_NUMBER,
    SCHOOL_WHATSAPP,
    MediaFile,
    TlsTerminatingProxy,
    parent,
)

pytestmark = pytest.mark.anyio

PRE_URL = f"{PUBLIC_BASE_URL}/twilio/conversations/pre"
POST_URL = f"{PUBLIC_BASE_URL}/twilio/conversations/post"
INCOMING_URL = f"{PUBLIC_BASE_URL}/twilio/messages"
STATUS_URL = f"{PUBLIC_BASE_URL}/twilio/status"
TEMPLATE = "HX0123456789abcdef0123456789abcdef"
DAY = 24 * 3600


@dataclass
class OurApp:
    """A stand-in for Schoolgate's webhook routes: checks every signature against the public
    URL, keeps what arrived, and answers the pre-event with ``pre_answer``."""

    pre_answer: Callable[[dict[str, str]], Response] = lambda params: Response(status_code=200)
    received: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    forged: list[str] = field(default_factory=list)

    def asgi(self) -> Starlette:
        return Starlette(routes=[Route("/twilio/{hook:path}", self._hook, methods=["POST"])])

    def received_at(self, path: str) -> list[dict[str, str]]:
        return [params for at, params in self.received if at == path]

    async def _hook(self, request: Request) -> Response:
        form = await request.form()
        pairs = [(name, str(value)) for name, value in form.multi_items()]
        url = public_url(PUBLIC_BASE_URL, request.url.path, request.url.query)
        if not is_valid(AUTH_TOKEN, url, pairs, request.headers.get(SIGNATURE_HEADER)):
            self.forged.append(request.url.path)
            return Response(status_code=403)
        params = dict(pairs)
        self.received.append((request.url.path, params))
        if request.url.path == "/twilio/conversations/pre":
            return self.pre_answer(params)
        if request.url.path == "/twilio/messages":
            return PlainTextResponse("<Response/>", media_type="text/xml")
        return Response(status_code=200)


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[FakeTwilioAPI]:
    async with FakeTwilioAPI(incoming_url=INCOMING_URL) as fake:
        yield fake


@pytest.fixture
def our_app(server: FakeTwilioAPI) -> OurApp:
    app = OurApp()
    server.webhook_transport = httpx.ASGITransport(app=app.asgi())
    return app


@pytest.fixture
def api(server: FakeTwilioAPI, our_app: OurApp) -> FakeTwilioAPI:
    server.reset()
    return server


@pytest.fixture
async def whatsapp(api: FakeTwilioAPI) -> AsyncIterator[WhatsAppApi]:
    async with WhatsAppApi.connect(ACCOUNT_SID, AUTH_TOKEN, api.base_url) as connected:
        yield connected


@pytest.fixture
async def client(api: FakeTwilioAPI) -> AsyncIterator[Any]:
    """The twilio client itself, for resources the facade does not use."""
    real = twilio_client(ACCOUNT_SID, AUTH_TOKEN, api.base_url)
    yield real
    await real.http_client.close()


async def class_group(whatsapp: WhatsAppApi, *parents: int) -> str:
    """A configured group with these parents in it, each having written in the last day."""
    group = await whatsapp.create_conversation("Year 3 parents")
    await whatsapp.configure_webhooks(PRE_URL, POST_URL)
    for n in parents:
        await whatsapp.add_whatsapp_participant(group.sid, parent(n), SCHOOL_WHATSAPP, f"P{n}")
    return group.sid


# -- The REST API ---------------------------------------------------------------------------


async def test_requests_without_the_account_credentials_are_refused(api: FakeTwilioAPI) -> None:
    url = f"{api.base_url}/conversations/v1/Conversations"
    async with httpx.AsyncClient() as anonymous:
        for auth in (None, (ACCOUNT_SID, "0" * 32), ("AC" + "1" * 32, AUTH_TOKEN)):
            response = await anonymous.get(url, auth=auth)
            assert response.status_code == 401
            assert response.json() == {
                "code": 20003,
                "message": "Authenticate",
                "more_info": "https://www.twilio.com/docs/errors/20003",
                "status": 401,
            }
        other_account = f"{api.base_url}/api/2010-04-01/Accounts/AC{'1' * 32}/Messages.json"
        response = await anonymous.post(other_account, auth=(ACCOUNT_SID, AUTH_TOKEN))
        assert (response.status_code, response.json()["code"]) == (404, 20404)
    assert api.calls == []


async def test_unknown_resources_are_twilio_404s(api: FakeTwilioAPI, client: Any) -> None:
    with pytest.raises(TwilioRestException, match=r"/Conversations/nope was not found") as raised:
        await client.conversations.v1.conversations("nope").fetch_async()
    assert raised.value.code == 20404


async def test_a_conversation_is_found_by_its_unique_name(api: FakeTwilioAPI, client: Any) -> None:
    created = await client.conversations.v1.conversations.create_async(
        friendly_name="Year 3", unique_name="school-1-year-3", attributes='{"school": 1}'
    )
    fetched = await client.conversations.v1.conversations("school-1-year-3").fetch_async()
    assert (fetched.sid, fetched.friendly_name, fetched.attributes) == (
        created.sid,
        "Year 3",
        '{"school": 1}',
    )
    assert fetched.date_created is not None
    assert fetched.links["participants"].endswith(f"/Conversations/{created.sid}/Participants")


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [({"state": "closed"}, 50384), ({"unique_name": "CH" + "a" * 32}, 50390)],
)
async def test_conversations_are_created_open_with_names_unlike_sids(
    client: Any, kwargs: dict[str, str], code: int
) -> None:
    with pytest.raises(TwilioRestException, match="Unable to create record") as raised:
        await client.conversations.v1.conversations.create_async(**kwargs)
    assert raised.value.code == code


async def test_lists_come_in_pages_the_client_follows(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi, client: Any
) -> None:
    group = await whatsapp.create_conversation("Year 3")
    for n in range(1, 13):
        await whatsapp.add_whatsapp_participant(group.sid, parent(n), SCHOOL_WHATSAPP, f"P{n}")
    participants = await client.conversations.v1.conversations(group.sid).participants.list_async(
        page_size=5
    )
    assert [p.messaging_binding["address"] for p in participants] == [
        parent(n) for n in range(1, 13)
    ]
    assert [p.messaging_binding["type"] for p in participants] == ["whatsapp"] * 12
    pages = api.calls_to("participant.list")
    assert [call.params.get("Page", "0") for call in pages] == ["0", "1", "2"]


@pytest.mark.parametrize(
    ("address", "proxy", "code"),
    [
        (parent(1), SCHOOL_NUMBER, 50414),  # WhatsApp through an SMS number.
        (SCHOOL_WHATSAPP, SCHOOL_WHATSAPP, 50409),  # The school's own number.
    ],
)
async def test_participant_bindings_must_make_sense(
    client: Any, whatsapp: WhatsAppApi, address: str, proxy: str, code: int
) -> None:
    group = await whatsapp.create_conversation("Year 3")
    with pytest.raises(TwilioRestException, match="Unable to create record") as raised:
        await client.conversations.v1.conversations(group.sid).participants.create_async(
            messaging_binding_address=address, messaging_binding_proxy_address=proxy
        )
    assert raised.value.code == code


TO_PARENT = {"to": parent(1), "from_": SCHOOL_WHATSAPP}


@pytest.mark.parametrize(
    ("kwargs", "code"),
    [
        (TO_PARENT, 21602),
        (TO_PARENT | {"body": "x" * 1601}, 21617),
        (TO_PARENT | {"to": "whatsapp:07700900001", "body": "hi"}, 21211),
        (TO_PARENT | {"to": "", "body": "hi"}, 21604),
        (TO_PARENT | {"from_": SCHOOL_NUMBER, "body": "hi"}, 21910),
        (TO_PARENT | {"from_": "whatsapp:+447700900500", "body": "hi"}, 63007),
        ({"to": "+447700900001", "from_": "+447700900500", "body": "hi"}, 21606),
        (TO_PARENT | {"body": "hi", "content_variables": "{}"}, 21654),
        (TO_PARENT | {"content_sid": TEMPLATE, "content_variables": "[1]"}, 21656),
        (TO_PARENT | {"content_sid": TEMPLATE, "content_variables": '{"1": ""}'}, 21656),
    ],
)
async def test_messages_are_refused_as_twilio_refuses_them(
    api: FakeTwilioAPI, client: Any, kwargs: dict[str, str], code: int
) -> None:
    with pytest.raises(TwilioRestException, match="Unable to create record") as raised:
        await client.messages.create_async(**kwargs)
    assert (raised.value.code, raised.value.status) == (
        code,
        400,
    )
    assert api.sent_messages() == []


async def test_a_sent_message_can_be_fetched_as_it_now_stands(
    api: FakeTwilioAPI, client: Any
) -> None:
    created = await client.messages.create_async(
        to=parent(1), from_=SCHOOL_WHATSAPP, body="Out of the window"
    )
    assert (created.status, created.error_code, created.direction) == (
        "queued",
        None,
        "outbound-api",
    )
    assert created.date_created is not None
    fetched = await client.messages(created.sid).fetch_async()
    assert (fetched.status, fetched.error_code) == ("failed", 63016)


async def test_fail_next_wait_for_call_and_reset(api: FakeTwilioAPI, whatsapp: WhatsAppApi) -> None:
    api.fail_next("conversation.create", 429, times=2)
    for _ in range(2):
        with pytest.raises(TwilioApiError) as raised:
            await whatsapp.create_conversation("Year 3")
        assert (raised.value.code, raised.value.retryable) == (20429, True)
    group = await whatsapp.create_conversation("Year 3")
    calls = await api.wait_for_call("conversation.create", count=3)
    assert [call.params["FriendlyName"] for call in calls] == ["Year 3"] * 3
    with pytest.raises(AssertionError, match="expected 1 call"):
        await api.wait_for_call("participant.create", timeout=0.01)

    api.reset()
    assert (api.calls, api.conversations()) == ([], [])
    with pytest.raises(TwilioApiError) as gone:
        await whatsapp.count_participants(group.sid)
    assert gone.value.code == 20404


# -- Conversations webhooks -----------------------------------------------------------------


async def test_a_message_our_app_lets_through_reaches_everyone_else(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi, our_app: OurApp
) -> None:
    our_app.pre_answer = lambda params: JSONResponse({"body": f"P1: {params['Body']}"})
    group = await class_group(whatsapp, 1, 2, 3)
    for n in (2, 3):
        api.open_whatsapp_window(parent(n))
    [pat, *_] = api.participants(group)

    outcome = await api.send_from_participant(
        group, parent(1), "Trip money is due Friday", media=[MediaFile("letter.pdf")]
    )

    assert outcome.accepted
    assert outcome.message is not None
    [pre] = our_app.received_at("/twilio/conversations/pre")
    assert pre == {
        "EventType": "onMessageAdd",
        "AccountSid": ACCOUNT_SID,
        "ChatServiceSid": CHAT_SERVICE_SID,
        "ConversationSid": group,
        "ParticipantSid": pat.sid,
        "Author": parent(1),
        "Body": "Trip money is due Friday",
        "Attributes": "{}",
        "Source": "WHATSAPP",
        "RetryCount": "0",
        "Media": pre["Media"],
    }
    [media] = json.loads(pre["Media"])
    assert (media["Filename"], media["ContentType"]) == ("letter.pdf", "application/pdf")
    assert media["Sid"].startswith("ME")

    delivered = "P1: Trip money is due Friday"
    assert outcome.message.body == delivered
    assert [m.body for m in api.messages(group)] == [delivered]
    for n in (2, 3):
        assert [(d.body, d.author) for d in api.delivered_to(parent(n))] == [(delivered, parent(1))]
    assert api.delivered_to(parent(1)) == []  # Nobody receives their own message back.

    [post] = our_app.received_at("/twilio/conversations/post")
    assert post["EventType"] == "onMessageAdded"
    assert (post["MessageSid"], post["Index"], post["Body"]) == (
        outcome.message.sid,
        "0",
        delivered,
    )
    assert post["MessageSid"].startswith("IM")
    assert post["DateCreated"].endswith("Z")
    assert "WebhookSid" not in post
    assert our_app.forged == []


async def test_a_message_our_app_refuses_is_held_back(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi, our_app: OurApp
) -> None:
    our_app.pre_answer = lambda params: JSONResponse({"body": "ignored"}, status_code=403)
    group = await class_group(whatsapp, 1, 2)
    api.open_whatsapp_window(parent(2))

    outcome = await api.send_from_participant(group, parent(1), "Something unkind")

    assert not outcome.accepted
    assert outcome.message is None
    assert outcome.pre_event is not None
    assert outcome.pre_event.status == 403
    assert outcome.post_events == ()
    assert api.messages(group) == []
    assert api.delivered_to(parent(2)) == api.undelivered_to(parent(2)) == []
    assert our_app.received_at("/twilio/conversations/post") == []


async def test_an_unreachable_pre_event_hook_holds_the_message(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi
) -> None:
    group = await class_group(whatsapp, 1, 2)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    api.webhook_transport = httpx.MockTransport(refuse)
    outcome = await api.send_from_participant(group, parent(1), "hello")
    assert not outcome.accepted
    assert outcome.pre_event is not None
    assert (outcome.pre_event.status, outcome.pre_event.url) == (None, PRE_URL)
    assert "ConnectError" in (outcome.pre_event.error or "")
    assert api.messages(group) == []


async def test_service_webhooks_replace_the_account_ones_and_filters_choose_events(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi, client: Any, our_app: OurApp
) -> None:
    group = await whatsapp.create_conversation("Year 3")
    for n in (1, 2):
        await whatsapp.add_whatsapp_participant(group.sid, parent(n), SCHOOL_WHATSAPP, f"P{n}")
    account_pre = f"{PUBLIC_BASE_URL}/twilio/account/pre"
    await client.conversations.v1.configuration.webhooks().update_async(
        pre_webhook_url=account_pre, filters=["onMessageAdd"], method="POST", target="webhook"
    )
    await api.send_from_participant(group.sid, parent(1), "first")
    assert [at for at, _ in our_app.received] == ["/twilio/account/pre"]

    service = client.conversations.v1.services(CHAT_SERVICE_SID).configuration.webhooks()
    await service.update_async(post_webhook_url=POST_URL, filters=["onMessageAdded"])
    await api.send_from_participant(group.sid, parent(1), "second")
    # The service has hooks now: the account's pre-event hook no longer fires for it.
    assert [at for at, _ in our_app.received] == [
        "/twilio/account/pre",
        "/twilio/conversations/post",
    ]

    await service.update_async(pre_webhook_url=PRE_URL)  # Filters still name no pre-event.
    await api.send_from_participant(group.sid, parent(1), "third")
    assert our_app.received_at("/twilio/conversations/pre") == []
    fetched = await service.fetch_async()
    assert (fetched.pre_webhook_url, fetched.filters) == (PRE_URL, ["onMessageAdded"])


async def test_conversation_scoped_webhooks_never_see_a_message_before_it_is_sent(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi, client: Any, our_app: OurApp
) -> None:
    group = await whatsapp.create_conversation("Year 3")
    for n in (1, 2):
        await whatsapp.add_whatsapp_participant(group.sid, parent(n), SCHOOL_WHATSAPP, f"P{n}")
    api.open_whatsapp_window(parent(2))
    webhooks = client.conversations.v1.conversations(group.sid).webhooks
    hook = await webhooks.create_async(
        target="webhook",
        configuration_url=PRE_URL,
        configuration_method="POST",
        configuration_filters=["onMessageAdd", "onMessageAdded"],
    )
    assert hook.configuration["filters"] == ["onMessageAdd", "onMessageAdded"]

    outcome = await api.send_from_participant(group.sid, parent(1), "not moderated")

    assert outcome.accepted
    assert outcome.pre_event is None
    assert [d.body for d in api.delivered_to(parent(2))] == ["not moderated"]
    [post] = our_app.received_at("/twilio/conversations/pre")
    assert (post["EventType"], post["WebhookSid"], post["WebhookType"]) == (
        "onMessageAdded",
        hook.sid,
        "webhook",
    )

    for _ in range(4):
        await webhooks.create_async(target="webhook", configuration_url=POST_URL)
    with pytest.raises(TwilioRestException, match="Too many conversation webhooks"):
        await webhooks.create_async(target="webhook", configuration_url=POST_URL)


async def test_conversation_messages_to_whatsapp_need_the_window_open(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi
) -> None:
    group = await class_group(whatsapp, 1, 2, 3)
    api.open_whatsapp_window(parent(2))
    api.advance_time(DAY - 60)
    await api.send_from_participant(group, parent(3), "still open for 2")
    api.advance_time(120)
    await api.send_from_participant(group, parent(3), "now shut for 2")

    assert [d.body for d in api.delivered_to(parent(2))] == ["still open for 2"]
    assert [(d.body, d.error_code) for d in api.undelivered_to(parent(2))] == [
        ("now shut for 2", 63016)
    ]
    # Writing into the group opened parent 3's window; parent 1 has never written.
    assert api.undelivered_to(parent(1))[0].error_code == 63016

    api.whatsapp_window_enforced = False
    await api.send_from_participant(group, parent(3), "no window rule")
    assert api.delivered_to(parent(1))[-1].body == "no window rule"


async def test_an_inactive_group_wakes_up_and_a_closed_one_takes_nothing(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi, client: Any
) -> None:
    group = await class_group(whatsapp, 1)
    await client.conversations.v1.conversations(group).update_async(state="inactive")
    await api.send_from_participant(group, parent(1), "anyone there?")
    assert api.conversation(group).state == "active"

    await whatsapp.close_conversation(group)
    with pytest.raises(ValueError, match="closed"):
        await api.send_from_participant(group, parent(1), "hello?")
    with pytest.raises(ValueError, match="not a participant"):
        await api.send_from_participant(await class_group(whatsapp), parent(9), "who am I?")


# -- Programmable Messaging webhooks --------------------------------------------------------


async def test_an_incoming_message_is_posted_signed_and_opens_the_window(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi, our_app: OurApp
) -> None:
    photo = "https://api.twilio.com/2010-04-01/Accounts/AC1/Messages/MM1/Media/ME1"
    response = await api.deliver_incoming(
        parent(1),
        SCHOOL_WHATSAPP,
        "Look at what was posted in Year 3",
        media_urls=[photo],
        profile_name="Pat Jones",
        forwarded=True,
    )

    assert (response.status_code, response.text) == (200, "<Response/>")
    [params] = our_app.received_at("/twilio/messages")
    assert params["MessageSid"].startswith("MM")
    assert params["SmsMessageSid"] == params["SmsSid"] == params["MessageSid"]
    assert {k: params[k] for k in ("From", "To", "Body", "NumMedia", "ProfileName", "WaId")} == {
        "From": parent(1),
        "To": SCHOOL_WHATSAPP,
        "Body": "Look at what was posted in Year 3",
        "NumMedia": "1",
        "ProfileName": "Pat Jones",
        "WaId": "447700900001",
    }
    assert (params["MediaUrl0"], params["MediaContentType0"], params["MessageType"]) == (
        photo,
        "image/jpeg",
        "image",
    )
    assert (params["Forwarded"], params["AccountSid"]) == ("true", ACCOUNT_SID)
    assert "FrequentlyForwarded" not in params
    assert our_app.forged == []

    await whatsapp.send_whatsapp(parent(1), SCHOOL_WHATSAPP, body="Thank you, we will look.")
    assert api.sent_messages(to=parent(1))[0].status == "queued"  # Inside the window.


async def test_a_group_member_writing_to_the_number_reaches_the_group_not_the_webhook(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi
) -> None:
    group = await class_group(whatsapp, 1)
    with pytest.raises(ValueError, match="use send_from_participant"):
        await api.deliver_incoming(parent(1), SCHOOL_WHATSAPP, "report: ...")
    await whatsapp.close_conversation(group)
    response = await api.deliver_incoming(parent(1), SCHOOL_WHATSAPP, "report: ...")
    assert response.status_code == 200


async def test_status_callbacks_are_signed_and_update_the_message(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi, client: Any, our_app: OurApp
) -> None:
    sent = await whatsapp.send_whatsapp(
        parent(1), SCHOOL_WHATSAPP, body="Reminder", status_callback=STATUS_URL
    )
    failed = await api.report_status(sent.sid)
    assert failed.status == 200
    assert failed.params["MessageStatus"] == "failed"
    assert failed.params["ErrorCode"] == "63016"

    read = await api.report_status(sent.sid, "read")
    assert (read.params["MessageStatus"], read.params["MessageSid"]) == ("read", sent.sid)
    assert "ErrorCode" not in read.params
    assert [p["MessageStatus"] for p in our_app.received_at("/twilio/status")] == ["failed", "read"]
    assert (await client.messages(sent.sid).fetch_async()).status == "read"

    no_callback = await whatsapp.send_sms("+447700900001", SCHOOL_NUMBER, "hi")
    with pytest.raises(ValueError, match="without a status callback"):
        await api.report_status(no_callback.sid)


async def test_webhooks_can_pass_a_tls_terminating_proxy(
    api: FakeTwilioAPI, whatsapp: WhatsAppApi, our_app: OurApp
) -> None:
    seen: list[str] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(f"{scope['scheme']}://{dict(scope['headers'])[b'host'].decode()}")
        await our_app.asgi()(scope, receive, send)

    api.webhook_transport = TlsTerminatingProxy(
        "http://127.0.0.1:8000", httpx.ASGITransport(app=app)
    )
    group = await class_group(whatsapp, 1)
    outcome = await api.send_from_participant(group, parent(1), "through the proxy")
    assert outcome.accepted
    assert seen == ["http://127.0.0.1:8000", "http://127.0.0.1:8000"]
    assert our_app.forged == []
