"""Chats and People in Chromium: closing a chat and cancelling it, a registration code, and a
parent's data exported and erased."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import timedelta

import pytest
from playwright.async_api import Page, expect
from sqlalchemy import select

from bot.policy import PolicyEngine
from bot.services import consent
from bot.services.moderation import Retention, check_message
from bot.services.registration import code_hash
from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    Chat,
    ChatClosure,
    ClosureStatus,
    RegistrationCode,
    School,
    User,
    UserRole,
)
from tests.api.support import Sessions, an_account
from tests.browser.conftest import Screenshot
from tests.browser.support import main_heading, press_and_confirm, section, sign_in
from tests.conftest import message
from tests.factories import NOW, a_chat, a_member

pytestmark = pytest.mark.anyio
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
ABOUT_KERRY = "Kerry Marsh is an absolute idiot, ring her on 07700 900123"
BECKY = "/people/parents/telegram/501"


@dataclass(frozen=True)
class Year3:
    chat: Chat
    slt: User
    dsl: User


async def year3(sessions: Sessions, engine: PolicyEngine, school: School) -> Year3:
    """Year 3's chat: Becky and Kerry agreed to the notice, then Becky posted ABOUT_KERRY
    (flagged); a member of SLT and the DSL have accounts."""
    async with transaction(sessions) as session:
        chat = await a_chat(session, school)
        becky = await a_member(session, chat, user_id="501", name="Becky Sutton")
        kerry = await a_member(session, chat, user_id="502", name="Kerry Marsh")
        for member in (becky, kerry):
            await consent.give(session, chat, member, "button", NOW)
        checked = await check_message(
            session, engine, chat, becky, message(ABOUT_KERRY), RETENTION, NOW
        )
        assert checked.flag is not None
        slt = await an_account(session, school, role=UserRole.SLT, name="Mrs Sarah Bennett")
        dsl = await an_account(session, school, role=UserRole.DSL, name="Mrs Anita Patel")
    return Year3(chat, slt, dsl)


async def audited(sessions: Sessions, user: User) -> list[AuditEvent]:
    """What ``user`` did besides signing in, by the audit log, oldest first."""
    async with sessions() as session:
        query = select(AuditEvent).where(
            AuditEvent.actor == f"user:{user.id}", AuditEvent.action.not_like("account.%")
        )
        return list(await session.scalars(query.order_by(AuditEvent.id)))


async def open_from_nav(page: Page, label: str) -> None:
    await page.get_by_role("navigation", name="Main").get_by_role("link", name=label).click()
    await expect(main_heading(page)).to_have_text(label)


# -- chats ------------------------------------------------------------------------------------


async def test_slt_close_a_chat_see_it_under_way_and_cancel_it(
    page: Page,
    sessions: Sessions,
    seeded_school: School,
    engine: PolicyEngine,
    screenshot: Screenshot,
) -> None:
    year = await year3(sessions, engine, seeded_school)
    reason = "The class now uses the school's parent app for news."
    await sign_in(page, year.slt)
    await open_from_nav(page, "Chats")
    await page.get_by_role("link", name="Year 3 Parents").click()
    await expect(main_heading(page)).to_have_text("Year 3 Parents")

    closing = section(page, "Closing the chat")
    await closing.get_by_label("Reason (members are told it)").fill(reason)
    await closing.get_by_label("Grace period, in hours (0 to 72)").fill("12")
    asked = await press_and_confirm(page, closing.get_by_role("button", name="Close the chat"))
    await expect(page.get_by_role("status")).to_have_text(
        "Closure requested: the bot posts the notice in the chat, makes it read-only after "
        "12 hours, and leaves."
    )
    assert asked == ["Close this chat? Its members are told now."]
    await expect(closing).to_contain_text(f"A closure is under way. Reason: “{reason}”")
    await expect(closing.get_by_role("heading", level=3)).to_contain_text("Under way — requested")
    steps = closing.locator("ol.timeline li")
    await expect(steps).to_have_count(4)
    await expect(steps.nth(0)).to_contain_text("Requested by Mrs Sarah Bennett")
    await expect(steps.nth(1)).to_contain_text("Notice to be posted in the chat by the bot")
    await expect(steps.nth(2)).to_contain_text("Read-only at the end of the grace period — due")
    await expect(steps.nth(3)).to_contain_text("The bot leaves the chat")
    await screenshot(page, "chat-closing")

    async with sessions() as session:
        [requested] = list(await session.scalars(select(ChatClosure)))
    assert (requested.chat_id, requested.status) == (year.chat.id, ClosureStatus.REQUESTED)
    assert (requested.reason, requested.requested_by) == (reason, "Mrs Sarah Bennett")
    assert requested.grace_until - requested.requested_at == timedelta(hours=12)

    await page.get_by_role("link", name="← Chats").click()
    listed = page.get_by_role("row").filter(has=page.get_by_role("link", name="Year 3 Parents"))
    await expect(listed).to_contain_text("Closing")
    await listed.get_by_role("link", name="Year 3 Parents").click()

    asked = await press_and_confirm(page, page.get_by_role("button", name="Cancel the closure"))
    await expect(page.get_by_role("status")).to_have_text("The closure is cancelled.")
    assert asked == ["Cancel closing this chat?"]
    await expect(closing.get_by_role("heading", level=3)).to_contain_text("Cancelled — requested")
    await expect(closing).to_contain_text(f"Reason: “{reason}”")
    await expect(steps.last).to_contain_text("Cancelled")
    await expect(closing.get_by_role("button", name="Close the chat")).to_be_visible()

    async with sessions() as session:
        [cancelled] = list(await session.scalars(select(ChatClosure)))
    assert (cancelled.id, cancelled.status) == (requested.id, ClosureStatus.CANCELLED)
    assert cancelled.cancelled_at is not None
    closures = await audited(sessions, year.slt)
    assert [(e.action, e.subject) for e in closures] == [
        ("closure.requested", f"chat:{year.chat.id}"),
        ("closure.cancelled", f"chat:{year.chat.id}"),
    ]
    assert closures[0].details["reason"] == reason
    assert closures[1].details["cancelled_by"] == "Mrs Sarah Bennett"


async def test_a_registration_code_is_shown_once(
    page: Page,
    sessions: Sessions,
    seeded_school: School,
    engine: PolicyEngine,
    screenshot: Screenshot,
) -> None:
    year = await year3(sessions, engine, seeded_school)
    await sign_in(page, year.slt)
    await open_from_nav(page, "Chats")
    await section(page, "New registration code").get_by_label("Class").fill("Year 4")
    await page.get_by_role("button", name="Make a code").click()

    await expect(main_heading(page)).to_have_text("Registration code for Year 4")
    code = (await page.locator("code.secret").inner_text()).strip()
    assert len(code) >= 6
    await expect(page.get_by_text(f"/register {code}")).to_be_visible()
    await expect(page.get_by_text("Copy it now: it is shown only this once.")).to_be_visible()
    await screenshot(page, "registration-code")
    async with sessions() as session:
        [made] = list(await session.scalars(select(RegistrationCode)))
    assert (made.class_name, made.code_hash) == ("Year 4", code_hash(code))
    assert made.created_by == f"user:{year.slt.id}"

    await page.get_by_role("link", name="Back to chats").click()
    listed = section(page, "Registration codes").get_by_role("row").filter(has_text="Year 4")
    await expect(listed).to_contain_text("Not used yet")
    assert code not in await page.content(), "only the code's hash is kept"
    assert [e.action for e in await audited(sessions, year.slt)] == ["registration_code.created"]


# -- a parent's data ---------------------------------------------------------------------------


async def test_a_parents_data_downloads_with_other_people_redacted(
    page: Page, sessions: Sessions, seeded_school: School, engine: PolicyEngine
) -> None:
    year = await year3(sessions, engine, seeded_school)
    await sign_in(page, year.dsl)
    await open_from_nav(page, "People")
    await page.get_by_role("link", name="Becky Sutton").click()
    await expect(main_heading(page)).to_have_text("Becky Sutton")

    async with page.expect_download() as started:
        await page.get_by_role("link", name="Download their data (subject access)").click()
    download = await started.value
    assert download.suggested_filename == "schoolgate-telegram-501.json"
    text = (await download.path()).read_text(encoding="utf-8")
    export = json.loads(text)
    assert (export["platform"], export["user_id"]) == ("telegram", "501")
    [membership] = export["memberships"]
    assert (membership["chat"], membership["name"]) == ("Year 3 Parents", "Becky Sutton")
    [agreed] = membership["consents"]
    assert (agreed["notice_version"], agreed["method"]) == ("test-1", "button")
    [said] = membership["messages"]
    assert said["text"] == "[redacted] is an absolute idiot, ring her on [redacted]"
    [flag] = membership["flags"]
    assert {r["rule"] for r in flag["reasons"]} == {"abusive-about-others", "confidential-info"}
    assert [r["evidence"] for r in flag["reasons"] if r["rule"] == "confidential-info"] == [
        "[redacted]"
    ]
    for other in ("Kerry", "Marsh", "07700", "900123", "Patel"):
        assert other not in text, f"{other!r} is someone else's"

    done = [(e.action, e.subject) for e in await audited(sessions, year.dsl)]
    assert done == [
        ("parent.viewed", "telegram:user:501"),
        ("parent.exported", "telegram:user:501"),
    ]
    # The log shows it too, to whoever reads it.
    await open_from_nav(page, "Audit log")
    exported = page.get_by_role("row").filter(has_text="parent.exported")
    await expect(exported).to_contain_text("Mrs Anita Patel")
    await expect(exported).to_contain_text("telegram:user:501")


async def test_erasing_a_parent_asks_twice_and_removes_them_from_people(
    page: Page, sessions: Sessions, seeded_school: School, engine: PolicyEngine
) -> None:
    year = await year3(sessions, engine, seeded_school)
    await sign_in(page, year.dsl)
    await page.goto(BECKY)
    erase = page.get_by_role("button", name="Erase their data")
    understood = page.get_by_label("I understand", exact=False)

    asked = await press_and_confirm(page, erase)  # no tick: the browser will not send it
    assert await understood.evaluate("box => box.validity.valueMissing")
    await expect(page).to_have_url(BECKY)
    assert asked == [], "nothing is asked until the box is ticked"

    await understood.check()
    asked = await press_and_confirm(page, erase)
    await expect(page.get_by_role("status")).to_have_text(
        "Erased: 1 membership(s), their consents, 0 message record(s) and the words of every "
        "message of theirs; 1 flag(s) kept as numbers only."  # the flagged one stays, bare
    )
    assert asked == ["Erase everything the school holds about this person? This cannot be undone."]
    await expect(page).to_have_url("/people")
    parents = section(page, "Parents known to the bot")
    await expect(parents.get_by_role("link", name="Kerry Marsh")).to_be_visible()
    await expect(parents).not_to_contain_text("Becky Sutton")

    await page.goto(BECKY)
    await expect(main_heading(page)).to_contain_text("Not found")
    erased = [e for e in await audited(sessions, year.dsl) if e.action == "parent.erased"]
    assert [e.subject for e in erased] == ["telegram:user:501"]
