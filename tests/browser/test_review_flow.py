"""A message flagged in a Telegram chat, reviewed by SLT in Chromium.

The real bot long-polls the fake Bot API; a parent agrees to the notice and posts in the chat;
a member of SLT signs in with their code and decides the flag on the admin pages.
"""

from __future__ import annotations

from datetime import datetime

import pytest
from playwright.async_api import BrowserContext, Page, expect
from sqlalchemy import select

from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    Flag,
    FlagStatus,
    OutboxMessage,
    OutboxStatus,
    School,
    User,
    UserRole,
    utcnow,
)
from tests.api.support import Sessions, an_account
from tests.browser import telegram as fixtures
from tests.browser.conftest import PHONE, Screenshot
from tests.browser.support import (
    fact,
    on_a_phone,
    page_width,
    press_and_confirm,
    section,
    sign_in,
)
from tests.channels.telegram.support import (
    ABUSIVE,
    IN_HOURS,
    JSON,
    SAM,
    YEAR3,
    agree,
    deliver,
    register,
    rows,
    wait_for,
)
from tests.fakes import telegram_updates as tu
from tests.fakes.telegram_api import FakeTelegramAPI

pytestmark = [pytest.mark.anyio, pytest.mark.usefixtures("bot")]
# The Telegram fixtures live in their own module; bound here, pytest finds them for these tests.
telegram_server, telegram, bot = fixtures.telegram_server, fixtures.telegram, fixtures.bot

CLAUSE = "Sending abusive messages to fellow parents/carers"
"""The code of conduct's clause that the abusive-to-parent rule enforces."""


async def a_flag_from_the_chat(
    telegram: FakeTelegramAPI, sessions: Sessions, sent: datetime = IN_HOURS
) -> tuple[Flag, JSON]:
    """YEAR3 registered to the school, Sam agreed to the notice and then posted ABUSIVE there:
    the flag the bot raised, and Sam's message as Telegram sent it."""
    notice = await register(telegram, sessions, YEAR3)
    await agree(telegram, sessions, notice, SAM)
    posted = tu.message(None, YEAR3, SAM, ABUSIVE, date=sent)
    await deliver(telegram, sessions, posted)

    async def raised() -> Flag | None:
        flags = await rows(sessions, Flag)
        return flags[0] if flags else None

    return await wait_for(raised, "the flag"), posted["message"]


async def an_slt_member(sessions: Sessions) -> User:
    async with transaction(sessions) as session:
        school = await session.scalar(select(School))
        assert school is not None, "registering the chat seeded the school"
        return await an_account(session, school, role=UserRole.SLT, name="Mrs Anita Patel")


async def audited(sessions: Sessions, user: User, flag: Flag) -> list[AuditEvent]:
    """What the audit log holds of ``user`` about ``flag``, oldest first."""
    async with sessions() as session:
        query = select(AuditEvent).where(
            AuditEvent.actor == f"user:{user.id}", AuditEvent.subject == f"flag:{flag.id}"
        )
        return list(await session.scalars(query.order_by(AuditEvent.id)))


async def test_a_flag_raised_in_the_chat_is_confirmed_as_a_breach(
    telegram: FakeTelegramAPI,
    sessions: Sessions,
    page: Page,
    phone: BrowserContext,
    screenshot: Screenshot,
) -> None:
    flag, _ = await a_flag_from_the_chat(telegram, sessions)
    [reason] = flag.reasons
    slt = await an_slt_member(sessions)

    await sign_in(page, slt)
    await page.get_by_role("navigation", name="Main").get_by_role("link", name="Flags").click()
    await expect(page.get_by_role("heading", name="Flags")).to_be_visible()
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"#{flag.id}"))
    for shown in ("abusive-to-parent", "High", "Year 3 Parents", "Sam Reed", "Open", "Not yet"):
        await expect(row).to_contain_text(shown)
    assert ABUSIVE not in await page.content(), "the queue shows no message words"
    await screenshot(page, "flag-queue")

    await row.get_by_role("link", name=f"#{flag.id}").click()
    await expect(page.get_by_role("heading", name=f"Flag #{flag.id}")).to_be_visible()
    await expect(page.locator("blockquote.quote")).to_have_text(ABUSIVE)
    why = section(page, "Why it was flagged").get_by_role("row").filter(has_text=reason.rule)
    for shown in ("abusive-to-parent", CLAUSE, reason.evidence):
        await expect(why).to_contain_text(shown)
    await expect(fact(section(page, "Decision"), "Status")).to_have_text("Open")
    await screenshot(page, "flag-detail")

    await page.get_by_role("button", name="Confirm: it breaks the code").click()
    await expect(page.get_by_role("status")).to_have_text("Confirmed as a breach of the code.")
    decision = section(page, "Decision")
    await expect(fact(decision, "Status")).to_have_text("Breach confirmed")
    await expect(fact(decision, "Decided")).to_contain_text("by Mrs Anita Patel")
    await expect(section(page, "History")).to_contain_text(
        "Confirmed as a breach by Mrs Anita Patel"
    )

    actions = [event.action for event in await audited(sessions, slt, flag)]
    assert actions == ["flag.viewed", "flag.confirmed", "flag.viewed"]  # opened, decided, shown
    [flag] = await rows(sessions, Flag)
    assert flag.status == FlagStatus.CONFIRMED
    assert flag.decided_by == f"user:{slt.id}"

    on_phone = await on_a_phone(phone, slt)  # signed in with the authenticator's next code
    for path, name in (("/flags", "flag-queue-phone"), (f"/flags/{flag.id}", "flag-detail-phone")):
        await on_phone.goto(path)
        assert await page_width(on_phone) <= PHONE["width"], f"{path} fits a phone's screen"
        await screenshot(on_phone, name)


async def test_not_a_breach_needs_a_reason_and_shows_it(
    telegram: FakeTelegramAPI, sessions: Sessions, page: Page
) -> None:
    flag, _ = await a_flag_from_the_chat(telegram, sessions)
    await sign_in(page, await an_slt_member(sessions))
    await page.goto(f"/flags/{flag.id}")
    not_a_breach = page.get_by_role("button", name="Record as not a breach")
    why = page.get_by_label("Not a breach: why?")

    await not_a_breach.click()  # no reason: the browser itself will not send the form
    assert await why.evaluate("field => field.validity.valueMissing")
    assert await why.evaluate("field => field.validationMessage"), "the browser says why"
    await expect(page).to_have_url(f"/flags/{flag.id}")

    await why.fill("   ")  # spaces get past the browser: the server refuses them
    await not_a_breach.click()
    await expect(page.locator("p.error")).to_have_text(
        "Please say why this is not a breach: a reason is required."
    )
    [flag] = await rows(sessions, Flag)
    assert flag.status == FlagStatus.OPEN

    await page.goto(f"/flags/{flag.id}")
    reason = "Two friends joking with each other; both said so when asked."
    await why.fill(reason)
    await not_a_breach.click()
    await expect(page.get_by_role("status")).to_have_text("Recorded as not a breach.")
    decision = section(page, "Decision")
    await expect(fact(decision, "Status")).to_have_text("Not a breach")
    await expect(fact(decision, "Why")).to_have_text(reason)
    await expect(section(page, "History")).to_contain_text(
        f"Recorded as not a breach by Mrs Anita Patel: {reason}"
    )
    [flag] = await rows(sessions, Flag)
    assert (flag.status, flag.decision_note) == (FlagStatus.FALSE_POSITIVE, reason)


async def request_removal(page: Page) -> None:
    """Press "Request removal" and agree to the question it asks."""
    questions = await press_and_confirm(page, page.get_by_role("button", name="Request removal"))
    await expect(page.get_by_role("status")).to_have_text(
        "The bot is deleting the message from the chat."
    )
    assert questions == ["Have this message removed from the chat?"]


async def removal_tried(sessions: Sessions, flag: Flag) -> OutboxMessage:
    """The bot's deletion of the flagged message, once it has been done or has failed."""

    async def finished() -> OutboxMessage | None:
        async with sessions() as session:
            query = select(OutboxMessage).where(
                OutboxMessage.flag_id == flag.id, OutboxMessage.purpose == "delete"
            )
            row = await session.scalar(query)
        done = (OutboxStatus.SENT, OutboxStatus.FAILED)
        return row if row is not None and row.status in done else None

    return await wait_for(finished, "the bot to try deleting the message")


async def test_requesting_removal_has_the_bot_delete_the_message(
    telegram: FakeTelegramAPI, sessions: Sessions, page: Page
) -> None:
    flag, posted = await a_flag_from_the_chat(telegram, sessions, sent=utcnow())
    telegram.set_bot_status(YEAR3, "administrator", can_delete_messages=True)
    await sign_in(page, await an_slt_member(sessions))
    await page.goto(f"/flags/{flag.id}")

    await request_removal(page)
    assert (await removal_tried(sessions, flag)).status == OutboxStatus.SENT
    assert telegram.deleted_message_ids(YEAR3["id"]) == [posted["message_id"]]
    await page.reload()
    await expect(section(page, "Act on it")).to_contain_text("Deleted from the chat by the bot")
    await expect(section(page, "History")).to_contain_text(
        "Removal requested by Mrs Anita Patel: the bot is to delete it"
    )


async def test_a_removal_telegram_refuses_says_so_and_what_to_do(
    telegram: FakeTelegramAPI, sessions: Sessions, page: Page
) -> None:
    flag, _ = await a_flag_from_the_chat(telegram, sessions, sent=utcnow())
    # Still a group admin, but no longer allowed to delete messages.
    telegram.set_bot_status(YEAR3, "administrator", can_delete_messages=False)
    await sign_in(page, await an_slt_member(sessions))
    await page.goto(f"/flags/{flag.id}")

    await request_removal(page)
    assert (await removal_tried(sessions, flag)).status == OutboxStatus.FAILED
    assert telegram.deleted_message_ids(YEAR3["id"]) == []
    await page.reload()
    refused = section(page, "Act on it").locator("p.error")
    await expect(refused).to_contain_text("The bot could not delete the message")
    await expect(refused).to_contain_text("Please ask the sender or an admin of the group")
