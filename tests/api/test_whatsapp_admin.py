"""WhatsApp in the admin pages and API: making a hosted group, a new join code, inviting a parent
by number, a group's places and consent; without WhatsApp set up, 409; and reports in the flag
queue. Twilio is the fake Twilio API, which the real client talks to."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from api.admin.chats import NOT_SET_UP
from api.app import create_app
from bot.channels.whatsapp.runtime import WhatsAppRuntime
from bot.runtime import Runtime
from bot.services.accounts import Throttle
from bot.services.registration import code_hash
from bot.services.schools import EngineCache
from bot.settings import Settings
from bot.store.db import transaction
from bot.store.models import (
    Chat,
    ChatStatus,
    Flag,
    FlagSource,
    JoinRequest,
    OutboxMessage,
    School,
    UserRole,
)
from bot.texts import load_telegram_texts, load_whatsapp_texts
from tests.api.conftest import SignIn
from tests.api.support import Browser, Sessions, audit_events
from tests.channels.whatsapp.support import (
    ABUSIVE,
    INCOMING_URL,
    MAX_BYTES,
    RETENTION,
    WhatsApp,
    said,
)
from tests.conftest import CONFIG_DIR
from tests.factories import a_chat, a_member, another_school
from tests.fakes.twilio_api import FakeTwilioAPI
from tests.fakes.twilio_webhooks import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_BASE_URL,
    SCHOOL_WHATSAPP,
    parent,
)

pytestmark = pytest.mark.anyio

SCHOOL_NUMBER_SHOWN = "+44 7700 900999"
CODE = re.compile(r'<code class="secret">([A-Z0-9-]+)</code>')


@pytest.fixture(scope="module")
async def fake_twilio() -> AsyncIterator[FakeTwilioAPI]:
    async with FakeTwilioAPI(incoming_url=INCOMING_URL) as fake:
        yield fake


@pytest.fixture
def settings(fake_twilio: FakeTwilioAPI) -> Settings:
    return Settings(
        telegram_bot_token=None, smtp_url=None, public_base_url=PUBLIC_BASE_URL,
        twilio_account_sid=ACCOUNT_SID, twilio_auth_token=AUTH_TOKEN,
        twilio_whatsapp_from=SCHOOL_WHATSAPP, twilio_api_base_url=fake_twilio.base_url,
        max_update_bytes=MAX_BYTES,
    )  # fmt: skip


@pytest.fixture
async def channel(
    fake_twilio: FakeTwilioAPI, settings: Settings, sessions: Sessions, engines: EngineCache
) -> AsyncIterator[WhatsAppRuntime]:
    fake_twilio.reset()
    built = WhatsAppRuntime.build(
        settings, sessions, engines, load_whatsapp_texts(CONFIG_DIR),
        load_telegram_texts(CONFIG_DIR), retention=RETENTION,
    )  # fmt: skip
    assert built is not None
    await built.start()
    yield built
    await built.stop()


@pytest.fixture
def app(
    settings: Settings,
    db_engine: AsyncEngine,
    sessions: Sessions,
    engines: EngineCache,
    channel: WhatsAppRuntime,
    fake_twilio: FakeTwilioAPI,
) -> FastAPI:
    """The admin app with WhatsApp on (the runtime's own start is the fixtures')."""
    runtime = Runtime(settings, db_engine, sessions, engines, whatsapp=channel)
    made = create_app(settings, runtime=runtime, throttle=Throttle())
    fake_twilio.webhook_transport = httpx.ASGITransport(app=made)
    return made


@pytest.fixture
async def world(
    app: FastAPI, fake_twilio: FakeTwilioAPI, channel: WhatsAppRuntime, sessions: Sessions
) -> AsyncIterator[WhatsApp]:
    """Parents on WhatsApp, through the fake Twilio and the app's webhooks."""
    client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=PUBLIC_BASE_URL)
    yield WhatsApp(fake_twilio, channel, sessions, app, client)
    await client.aclose()


async def a_group(browser: Browser, class_name: str = "Year 3") -> dict[str, object]:
    made = await browser.post("/api/chats/whatsapp-groups", json={"class_name": class_name})
    assert made.status_code == 201, made.text
    body: dict[str, object] = made.json()
    return body


async def join(world: WhatsApp, code: object, n: int, name: str) -> None:
    said(await world.write(n, f"JOIN {code}", name=name))
    assert said(await world.write(n, "AGREE", name=name)) == [
        world.texts.joined.format(group="Year 3 Parents")
    ]


# -- making a group ---------------------------------------------------------------------------


async def test_slt_make_a_group_from_the_chats_page_and_see_its_join_code_once(
    sign_in: SignIn, sessions: Sessions, seeded_school: School, fake_twilio: FakeTwilioAPI
) -> None:
    slt = await sign_in(UserRole.SLT)

    listing = await slt.get("/chats")
    assert "New WhatsApp group" in listing.text
    assert SCHOOL_NUMBER_SHOWN in listing.text

    page = await slt.form("/chats/whatsapp-groups", {"class_name": "  Year   3 "})
    assert page.status_code == 200
    [code] = CODE.findall(page.text)
    assert f"JOIN {code}" in page.text
    assert SCHOOL_NUMBER_SHOWN in page.text
    assert "shown only this once" in page.text

    async with sessions() as session:
        [chat] = list(await session.scalars(select(Chat)))
    assert (chat.platform, chat.class_name, chat.title) == ("whatsapp", "Year 3", "Year 3 Parents")
    assert (chat.school_id, chat.status) == (seeded_school.id, ChatStatus.REGISTERED)
    assert chat.join_code_hash == code_hash(code)
    [conversation] = fake_twilio.conversations()
    assert conversation.sid == chat.platform_chat_id
    [created] = await audit_events(sessions, "chat.whatsapp_group_created")
    assert (created.actor, created.subject) == (f"user:{slt.user.id}", f"chat:{chat.id}")
    assert code not in str(created.details)

    [listed] = (await slt.get("/api/chats")).json()
    assert (listed["platform"], listed["platform_label"], listed["report_line"]) == (
        "whatsapp", "WhatsApp", False,
    )  # fmt: skip
    assert "WhatsApp" in (await slt.get("/chats")).text


async def test_the_api_makes_a_group_and_refuses_a_blank_class(sign_in: SignIn) -> None:
    admin = await sign_in(UserRole.ADMIN)  # administrators manage chats too

    made = await a_group(admin)
    assert made["title"] == "Year 3 Parents"
    assert made["number"] == SCHOOL_NUMBER_SHOWN
    assert f"JOIN {made['code']} to {SCHOOL_NUMBER_SHOWN}" in str(made["instructions"])

    blank = await admin.post("/api/chats/whatsapp-groups", json={"class_name": "   "})
    assert blank.status_code == 400
    assert "class_name" in blank.json()["detail"]


async def test_when_twilio_fails_nothing_is_made_and_the_reason_is_clear(
    sign_in: SignIn, sessions: Sessions, fake_twilio: FakeTwilioAPI
) -> None:
    slt = await sign_in(UserRole.SLT)

    fake_twilio.fail_next("conversation.create", 503)
    busy = await slt.post("/api/chats/whatsapp-groups", json={"class_name": "Year 3"})
    assert busy.status_code == 503
    assert "try again" in busy.json()["detail"]

    fake_twilio.fail_next("conversation.create", 401, 20003, "Authenticate")
    refused = await slt.post("/api/chats/whatsapp-groups", json={"class_name": "Year 3"})
    assert refused.status_code == 502
    assert "Twilio error 20003" in refused.json()["detail"]

    async with sessions() as session:
        assert list(await session.scalars(select(Chat))) == []


# -- a group's page: members, consent, places; a new code ---------------------------------------


async def test_a_groups_page_shows_its_members_consent_and_places_taken(
    sign_in: SignIn, world: WhatsApp
) -> None:
    slt = await sign_in(UserRole.SLT)
    made = await a_group(slt)
    await join(world, made["code"], 1, "Pat Jones")
    await join(world, made["code"], 2, "Sam Reed")
    said(await world.write(3, f"JOIN {made['code']}", name="Lee Chan"))  # not agreed yet

    found = (await slt.get(f"/api/chats/{made['chat_id']}")).json()
    assert found["whatsapp_group"] == {
        "participants": 2, "limit": 50, "waiting_to_agree": 1, "join_code_set": True,
    }  # fmt: skip
    assert found["coverage"] == "2 of 2 agreed"
    members = {m["name"]: m for m in found["members_on_record"]}
    assert set(members) == {"Pat Jones", "Sam Reed"}  # Lee has not agreed: not on record
    assert members["Pat Jones"]["consent"] == "agreed"
    assert members["Pat Jones"]["consents"][0]["method"] == "reply"

    page = await slt.get(f"/chats/{made['chat_id']}")
    assert "2 of 50" in page.text
    assert "Invite a parent by number" in page.text
    assert "New join code" in page.text
    assert "Pat Jones" in page.text
    assert "Lee Chan" not in page.text


async def test_a_new_join_code_replaces_the_old_one(
    sign_in: SignIn, sessions: Sessions, world: WhatsApp
) -> None:
    slt = await sign_in(UserRole.SLT)
    made = await a_group(slt)

    renewed = await slt.post(f"/api/chats/{made['chat_id']}/join-code")
    assert renewed.status_code == 201
    new_code = renewed.json()["code"]
    assert new_code != made["code"]

    assert said(await world.write(1, f"JOIN {made['code']}")) == [world.texts.bad_code]
    await join(world, new_code, 1, "Pat Jones")

    page = await slt.form(f"/chats/{made['chat_id']}/join-code")
    [shown] = CODE.findall(page.text)
    assert "old code no longer works" in page.text
    assert said(await world.write(2, f"JOIN {new_code}")) == [world.texts.bad_code]
    assert said(await world.write(2, f"JOIN {shown}"))[-1] == world.texts.join_prompt.format(
        group="Year 3 Parents"
    )
    renewals = await audit_events(sessions, "chat.join_code_renewed")
    assert [e.actor for e in renewals] == [f"user:{slt.user.id}"] * 2


# -- inviting by number -------------------------------------------------------------------------


async def test_a_parent_is_invited_by_a_uk_number_and_the_invitation_is_audited(
    sign_in: SignIn, sessions: Sessions, world: WhatsApp
) -> None:
    slt = await sign_in(UserRole.SLT)
    made = await a_group(slt)

    sent = await slt.form(f"/chats/{made['chat_id']}/invitations", {"number": "07700 900123"})
    assert sent.status_code == 303
    shown = await slt.get(sent.headers["location"])
    assert "Invitation on its way to +44 7700 900123" in shown.text

    async with sessions() as session:
        [request] = list(await session.scalars(select(JoinRequest)))
        [invitation] = list(
            await session.scalars(select(OutboxMessage).where(OutboxMessage.purpose == "invite"))
        )
    assert (request.address, request.invited_by) == (
        "whatsapp:+447700900123", f"user:{slt.user.id}",
    )  # fmt: skip
    assert (invitation.channel, invitation.recipient) == ("whatsapp", "whatsapp:+447700900123")
    assert "Year 3 Parents" in invitation.text
    [invited] = await audit_events(sessions, "chat.whatsapp_invited")
    assert (invited.actor, invited.subject) == (f"user:{slt.user.id}", f"chat:{made['chat_id']}")
    assert invited.details == {"number_ending": "0123"}  # not the whole number

    by_api = await slt.post(
        f"/api/chats/{made['chat_id']}/invitations", json={"number": "+44 7700 900124"}
    )
    assert by_api.status_code == 201
    assert by_api.json()["number"] == "+447700900124"


@pytest.mark.parametrize("number", ["not a number", "12", "0770090012345678"])
async def test_something_that_is_not_a_phone_number_is_refused_clearly(
    sign_in: SignIn, sessions: Sessions, number: str
) -> None:
    slt = await sign_in(UserRole.SLT)
    made = await a_group(slt)

    refused = await slt.post(f"/api/chats/{made['chat_id']}/invitations", json={"number": number})
    assert refused.status_code == 400
    assert "is not a phone number" in refused.json()["detail"]
    assert "07700 900123" in refused.json()["detail"]
    async with sessions() as session:
        assert list(await session.scalars(select(JoinRequest))) == []


async def test_a_member_already_in_the_group_or_a_full_group_is_refused(
    sign_in: SignIn, sessions: Sessions, world: WhatsApp
) -> None:
    slt = await sign_in(UserRole.SLT)
    made = await a_group(slt)
    await join(world, made["code"], 1, "Pat Jones")
    url = f"/api/chats/{made['chat_id']}/invitations"

    again = await slt.post(url, json={"number": parent(1).removeprefix("whatsapp:")})
    assert again.status_code == 409
    assert "already in Year 3 Parents" in again.json()["detail"]

    async with transaction(sessions) as session:
        chat = await session.get(Chat, made["chat_id"])
        assert chat is not None
        for n in range(2, 51):
            await a_member(session, chat, user_id=parent(n), name=f"Parent {n}")
    full = await slt.post(url, json={"number": "07700 900123"})
    assert full.status_code == 409
    assert "full" in full.json()["detail"]
    page = await slt.get(f"/chats/{made['chat_id']}")
    assert "50 of 50" in page.text


# -- refusals -------------------------------------------------------------------------------------


async def test_without_whatsapp_set_up_the_forms_are_hidden_and_the_routes_answer_409(
    app: FastAPI, sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    app.state.runtime.whatsapp = None  # as an installation without Twilio's settings
    async with transaction(sessions) as session:
        chat = await a_chat(session, await session.merge(seeded_school))
    slt = await sign_in(UserRole.SLT)

    assert "New WhatsApp group" not in (await slt.get("/chats")).text
    assert "Invite a parent" not in (await slt.get(f"/chats/{chat.id}")).text
    for response in (
        await slt.post("/api/chats/whatsapp-groups", json={"class_name": "Year 3"}),
        await slt.post(f"/api/chats/{chat.id}/join-code"),
        await slt.post(f"/api/chats/{chat.id}/invitations", json={"number": "07700 900123"}),
    ):
        assert response.status_code == 409
        assert response.json()["detail"] == NOT_SET_UP
    page = await slt.form("/chats/whatsapp-groups", {"class_name": "Year 3"})
    assert page.status_code == 409
    assert "WhatsApp is not set up: see the README" in page.text


async def test_a_telegram_chat_takes_no_join_code_nor_invitation(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session, await session.merge(seeded_school))
    slt = await sign_in(UserRole.SLT)

    code = await slt.post(f"/api/chats/{chat.id}/join-code")
    invite = await slt.post(f"/api/chats/{chat.id}/invitations", json={"number": "07700 900123"})
    for refused in (code, invite):
        assert refused.status_code == 409
        assert "Only a hosted WhatsApp group" in refused.json()["detail"]


async def test_another_schools_group_is_not_found(sign_in: SignIn, sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        elsewhere = await another_school(session)
    theirs = await a_group(await sign_in(UserRole.SLT, at=elsewhere))
    ours = await sign_in(UserRole.SLT)

    url = f"/api/chats/{theirs['chat_id']}"
    assert (await ours.get(url)).status_code == 404
    assert (await ours.post(f"{url}/join-code")).status_code == 404
    invited = await ours.post(f"{url}/invitations", json={"number": "07700 900123"})
    assert invited.status_code == 404
    async with sessions() as session:
        assert list(await session.scalars(select(JoinRequest))) == []


async def test_viewers_cannot_make_groups(sign_in: SignIn) -> None:
    viewer = await sign_in(UserRole.VIEWER)
    refused = await viewer.post("/api/chats/whatsapp-groups", json={"class_name": "Year 3"})
    assert refused.status_code == 403


# -- reports in the flag queue --------------------------------------------------------------------


async def test_a_report_shows_as_a_report_in_the_queue_and_on_its_page(
    sign_in: SignIn, world: WhatsApp, seeded_school: School
) -> None:
    said(await world.write(20, ABUSIVE, name="Jo Bloggs", forwarded=True))  # asked which group
    said(await world.write(21, "From Year 6 mums: see you all at the fair!", forwarded=True))
    slt = await sign_in(UserRole.SLT)

    reports = (await slt.get("/api/flags?source=report")).json()
    assert reports["total"] == 2
    abusive, harmless = sorted(reports["items"], key=lambda f: f["id"])
    assert (abusive["source"], abusive["sender"], abusive["reported_from"]) == (
        "report", "Jo Bloggs", None,
    )  # fmt: skip
    assert abusive["rules"] == ["abusive-to-parent"]
    assert (harmless["rules"], harmless["reported_from"]) == ([], "Year 6 mums")
    assert (await slt.get("/api/flags?source=chat")).json()["total"] == 0

    queue = await slt.get("/flags?source=report")
    assert queue.text.count(">Report</span>") == 2
    assert "Reported by Jo Bloggs" in queue.text
    assert "From: not said" in queue.text
    assert "no rule matched" in queue.text

    page = await slt.get(f"/flags/{abusive['id']}")
    assert "Reported by</dt><dd>Jo Bloggs (forwarded to the school's WhatsApp number)" in (
        page.text
    )
    assert "<dt>From</dt><dd>not said</dd>" in page.text
    assert ABUSIVE in page.text
    assert "Remind the sender" not in page.text  # the author is not known
    assert "In the chat" not in page.text
    other = await slt.get(f"/flags/{harmless['id']}")
    assert "<dt>From</dt><dd>Year 6 mums</dd>" in other.text
    assert "Reported (no rule matched)" in other.text
    refused = await slt.post(f"/api/flags/{abusive['id']}/actions", json={"action": "remind"})
    assert refused.status_code == 409


async def test_a_report_shows_only_itself_not_the_other_reports_around_it(
    sign_in: SignIn, world: WhatsApp
) -> None:
    said(await world.write(20, f"From Year 3 Parents: {ABUSIVE}", forwarded=True))
    said(await world.write(21, "From Year 4 Parents: you are all useless idiots", forwarded=True))
    slt = await sign_in(UserRole.SLT)

    first = min(f["id"] for f in (await slt.get("/api/flags")).json()["items"])
    seen = (await slt.get(f"/api/flags/{first}")).json()
    assert [(m["text"], m["this"]) for m in seen["context"]] == [(ABUSIVE, True)]


async def test_the_report_line_chat_is_marked_and_cannot_be_closed(
    sign_in: SignIn, world: WhatsApp, sessions: Sessions
) -> None:
    said(await world.write(20, f"From Year 3 Parents: {ABUSIVE}", forwarded=True))
    slt = await sign_in(UserRole.SLT)
    async with sessions() as session:
        [flag] = list(await session.scalars(select(Flag)))
    assert flag.source == FlagSource.REPORT

    [line] = (await slt.get("/api/chats")).json()
    assert (line["report_line"], line["platform_label"]) == (True, "WhatsApp report line")
    page = await slt.get(f"/chats/{line['id']}")
    assert "The report line" in page.text
    assert "Close the chat" not in page.text
    closing = await slt.post(f"/api/chats/{line['id']}/closure", json={"reason": "tidy"})
    assert closing.status_code == 409
    assert "report line" in closing.json()["detail"]
    page_closing = await slt.form(f"/chats/{line['id']}/closure", {"reason": "tidy"})
    assert page_closing.status_code == 409
    assert "report line" in page_closing.text
