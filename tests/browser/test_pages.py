"""Every key admin page in Chromium, with a term's worth of data: at laptop width and on a
390 px phone (nothing wider than the screen), with screenshots of each; the annual report's CSV
download; and a viewer, who sees reports only."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

import pytest
from playwright.async_api import BrowserContext, Page, expect
from sqlalchemy import select

from bot.policy import PolicyEngine
from bot.services import chat_admin, closure, consent, review
from bot.services.moderation import Retention, check_message
from bot.services.review import Decision, Reviewer
from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    Chat,
    ClosureStatus,
    Flag,
    School,
    User,
    UserRole,
    utcnow,
)
from bot.store.repositories.learning import LearningRepository
from bot.texts import load_telegram_texts
from tests.api.support import Sessions, an_account
from tests.browser.conftest import PHONE, Screenshot
from tests.browser.support import main_heading, on_a_phone, page_width, section, sign_in
from tests.conftest import CONFIG_DIR, message
from tests.factories import a_chat, a_member

pytestmark = pytest.mark.anyio
TG = frozenset({"telegram"})  # the channels of an installation without e-mail
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
TEXTS = load_telegram_texts(CONFIG_DIR)
TRIED = "Mr Okafor is a useless teacher and everyone knows it"


@dataclass(frozen=True)
class Post:
    """A message posted in one of the chats ``days`` ago, and what SLT decided about it."""

    chat: str
    sender: tuple[str, str]
    """Their Telegram id and name."""
    days: int
    at: time
    text: str
    decision: Decision | None = None
    note: str | None = None
    reply_to: str | None = None
    photo: str | None = None


BECKY, KERRY = ("501", "Becky Sutton"), ("502", "Kerry Marsh")
PAT, DAN = ("503", "Pat Jones"), ("504", "Dan Whitaker")
LEAH, TOM = ("601", "Leah Ahmed"), ("602", "Tom Price")
MEMBERS = {"Year 3": (BECKY, KERRY, PAT, DAN), "Year 5": (LEAH, TOM, BECKY)}
POSTS = (
    Post("Year 3", BECKY, 1, time(19, 40),
         "Kerry Marsh is an absolute idiot, ring her on 07700 900123 and tell her yourself"),
    Post("Year 3", PAT, 2, time(8, 50), "anyone found a blue lunchbox?"),
    Post("Year 3", KERRY, 3, time(8, 55), "you absolute idiot", Decision.ACKNOWLEDGE,
         reply_to="Becky Sutton"),
    Post("Year 3", PAT, 9, time(21, 30), "@mr_okafor have a lovely half term! quick q, is the "
         "homework project due the first monday back?", Decision.ACKNOWLEDGE),
    Post("Year 3", DAN, 16, time(12, 10), "can't believe the whole class got kept in at break "
         "because 2 kids were talking. collective punishment is a disgrace, this school's "
         "behaviour policy is straight out of the 1950s", Decision.CONFIRM),
    Post("Year 5", LEAH, 23, time(13, 5), "my little sheep 🐑😭 watched the stream on my break",
         Decision.CONFIRM, photo="screenshot of the school's nativity livestream, zoomed on the "
         "sender's son dressed as a sheep, two other children partly visible at the edge"),
    Post("Year 5", TOM, 30, time(9, 20), "@chloehughes morning! is it ok if ava brings her "
         "comfort bunny in this week?", Decision.FALSE_POSITIVE,
         "A quick question Miss Hughes is happy to be asked here."),
    Post("Year 5", LEAH, 31, time(15, 0), "thank you for a lovely harvest assembly x"),
    Post("Year 5", BECKY, 37, time(20, 45), "ok i've made a group 'Y3 Parents Against Okafor' – "
         "if you're sick of him, add yourself. we need numbers before we go to the governors",
         Decision.ESCALATE, "A campaign against a member of staff."),
)  # fmt: skip
FLAGGED = 7
"""Of POSTS; the other two break no rule."""


@dataclass(frozen=True)
class Term:
    """The school half-way through a term: two chats (Year 5's being closed), parents who
    agreed, flags of every kind over six weeks (some decided), staff, and four accounts."""

    dsl: User
    slt: User
    admin: User
    viewer: User
    year5: Chat
    latest: Flag
    """An open high-severity flag, about another parent."""


def days_ago(days: int, at: time) -> datetime:
    """``at`` o'clock (UTC) ``days`` days ago: in the past, for any ``days`` from 1."""
    return datetime.combine((utcnow() - timedelta(days=days)).date(), at, UTC)


async def a_term(sessions: Sessions, engine: PolicyEngine, school: School) -> Term:
    """What every page is shown with: built once per test, through the services the bot and
    the pages use (so the audit log and the flags' histories are real too)."""
    async with transaction(sessions) as session:
        dsl = await an_account(session, school, role=UserRole.DSL, name="Mrs Anita Patel")
        slt = await an_account(session, school, role=UserRole.SLT, name="Mrs Sarah Bennett")
        admin = await an_account(session, school, role=UserRole.ADMIN, name="Mr Gareth Lloyd")
        viewer = await an_account(
            session, school, role=UserRole.VIEWER, name="Mr Colin Ashby", two_factor=False
        )
        chats: dict[str, Chat] = {}
        for number, (name, members) in enumerate(MEMBERS.items()):
            chat = await a_chat(
                session, school, platform_chat_id=f"-100{number}", title=f"{name} Parents"
            )
            chat.class_name, chat.member_count, chat.bot_is_admin = name, 9 + 4 * number, True
            for user_id, display in members:
                member = await a_member(session, chat, user_id=user_id, name=display)
                await consent.give(session, chat, member, "button", days_ago(60, time(9)))
            chats[name] = chat

        flags: list[Flag] = []
        for number, post in enumerate(POSTS):
            chat = chats[post.chat]
            member = await a_member(session, chat, user_id=post.sender[0], name=post.sender[1])
            sent = days_ago(post.days, post.at)
            said = message(
                post.text, sent_at=sent.isoformat(), sender=post.sender[1], id=f"m{number}",
                reply_to=post.reply_to, media=[("photo", post.photo)] if post.photo else (),
            )  # fmt: skip
            flag = (await check_message(session, engine, chat, member, said, RETENTION, sent)).flag
            if flag is None:
                continue
            flags.append(flag)
            case = await review.find_case(session, flag.id)
            assert case is not None
            if post.decision is not None:
                await review.decide(
                    session, case, post.decision, Reviewer(f"user:{slt.id}", slt.name),
                    note=post.note, texts=TEXTS, channels=TG, now=sent + timedelta(minutes=25),
                )  # fmt: skip
        assert len(flags) == FLAGGED

        year5 = chats["Year 5"]
        closing = await closure.request_closure(
            session, year5, "Year 5's news moves to the school's parent app.", slt.name,
            timedelta(hours=48), days_ago(1, time(9)), actor=f"user:{slt.id}",
        )  # fmt: skip
        await closure.record_step(
            session, closing, year5, ClosureStatus.NOTICE_POSTED, days_ago(1, time(9, 1))
        )
        await chat_admin.new_code(
            session, school, "Year 4", f"user:{admin.id}", timedelta(hours=72),
            utcnow() - timedelta(hours=1),
        )  # fmt: skip
    return Term(dsl, slt, admin, viewer, year5, latest=flags[0])


@dataclass(frozen=True)
class Visit:
    path: str
    heading: str
    name: str
    """The screenshot's."""
    shows: tuple[str, ...]
    """Some of the data the page is to show."""


def dsl_pages(term: Term) -> list[Visit]:
    flag = term.latest.id
    return [
        Visit("/", "Dashboard", "dashboard", ("Year 3 Parents", "Flags by rule")),
        Visit("/flags", "Flags", "flags", (f"{FLAGGED} flags", "Not a breach", "DSL")),
        Visit(f"/flags/{flag}", f"Flag #{flag}", "flag", ("abusive-about-others", "07700 900123")),
        Visit("/chats", "Chats", "chats", ("Year 5 Parents", "Closing", "Year 4")),
        Visit(
            f"/chats/{term.year5.id}",
            "Year 5 Parents",
            "chat",
            ("Notice posted in the chat", "Leah Ahmed"),
        ),
        Visit("/people", "People", "people", ("Mr David Okafor", "Becky Sutton")),
        Visit(
            "/people/parents/telegram/501",
            "Becky Sutton",
            "parent",
            ("Year 3 Parents", "Year 5 Parents", "harassment-campaign"),
        ),
        Visit("/rules", "Rules", "rules", ("abusive-to-parent", "Try a message")),
        Visit("/audit", "Audit log", "audit", ("closure.requested", "Mrs Sarah Bennett")),
        Visit("/reports", "Reports", "reports", ("Annual review",)),
        Visit(
            "/reports/annual",
            "Annual review",
            "annual-report",
            ("Flags by rule and month", "Year 5 Parents"),
        ),
        Visit("/account", "Your account", "account", ("Mrs Anita Patel", "(this one)")),
    ]


def admin_pages(term: Term) -> list[Visit]:
    return [
        Visit("/settings", "School settings", "settings", ("Working hours", "Alert routing")),
        Visit("/accounts", "Accounts", "accounts", ("Mr Colin Ashby", "Viewer (reports only)")),
        Visit(f"/accounts/{term.viewer.id}", "Mr Colin Ashby", "an-account", ("Viewer",)),
    ]


async def look(page: Page, visit: Visit, screenshot: Screenshot, *, phone: bool) -> None:
    """Open the page, check it shows its heading and data, fits a phone, and take its picture."""
    await page.goto(visit.path)
    heading = main_heading(page)
    await expect(heading).to_contain_text(visit.heading)
    await expect(heading).to_be_visible()
    await expect(heading).to_be_in_viewport()
    main = page.get_by_role("main")
    for shown in visit.shows:
        await expect(main).to_contain_text(shown)
    if phone:
        assert await page_width(page) <= PHONE["width"], f"{visit.path} fits a phone's screen"
    await screenshot(page, f"page-{visit.name}{'-phone' if phone else ''}")


async def try_a_message(page: Page, screenshot: Screenshot, *, phone: bool) -> None:
    await page.goto("/rules")
    await page.get_by_label("Message").fill(TRIED)
    await page.get_by_role("button", name="Check").click()
    verdict = page.locator("#verdict")
    await expect(verdict).to_contain_text("Breaks 2 rules")
    for rule, evidence in (("abusive-about-others", "useless"), ("disrepute", "everyone knows it")):
        await expect(verdict.get_by_role("row").filter(has_text=rule)).to_contain_text(evidence)
    if phone:
        assert await page_width(page) <= PHONE["width"], "the verdict fits a phone's screen"
    await screenshot(page, f"page-rules-tried{'-phone' if phone else ''}")


async def test_every_page_the_dsl_uses_on_a_laptop_and_a_phone(
    page: Page,
    phone: BrowserContext,
    sessions: Sessions,
    seeded_school: School,
    engine: PolicyEngine,
    screenshot: Screenshot,
) -> None:
    term = await a_term(sessions, engine, seeded_school)
    await sign_in(page, term.dsl)
    on_phone = await on_a_phone(phone, term.dsl)
    for visit in dsl_pages(term):
        await look(page, visit, screenshot, phone=False)
        await look(on_phone, visit, screenshot, phone=True)
    await try_a_message(page, screenshot, phone=False)
    await try_a_message(on_phone, screenshot, phone=True)


async def test_settings_and_accounts_for_the_administrator_on_a_laptop_and_a_phone(
    page: Page,
    phone: BrowserContext,
    sessions: Sessions,
    seeded_school: School,
    engine: PolicyEngine,
    screenshot: Screenshot,
) -> None:
    term = await a_term(sessions, engine, seeded_school)
    await sign_in(page, term.admin)
    on_phone = await on_a_phone(phone, term.admin)
    for visit in admin_pages(term):
        await look(page, visit, screenshot, phone=False)
        await look(on_phone, visit, screenshot, phone=True)


async def test_the_annual_reports_csv_downloads(
    page: Page, sessions: Sessions, seeded_school: School, engine: PolicyEngine
) -> None:
    term = await a_term(sessions, engine, seeded_school)
    await sign_in(page, term.slt)
    await page.goto("/reports")
    await page.get_by_role("link", name="Annual review").first.click()
    flagged = await section(page, "Flags").locator(".stat").inner_text()
    async with page.expect_download() as started:
        await page.get_by_role("link", name="Download CSV").click()
    download = await started.value
    assert download.suggested_filename.startswith("schoolgate-annual-review-")
    assert download.suggested_filename.endswith(".csv")
    text = (await download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[:2] == [["Schoolgate annual review"], ["School", seeded_school.name]]
    by_month = rows.index(["Flags by rule and month"])
    every_flag = next(row for row in rows[by_month:] if row[:2] == ["all", "All flags"])
    assert every_flag[-1] == flagged.strip(), "the file has the figures the page shows"
    assert ["Year 5 Parents", "Year 5"] in [row[:2] for row in rows], "consent in each chat"
    for private in ("Becky", "Kerry", "idiot", "07700"):
        assert private not in text, "the report is counts only"
    async with sessions() as session:
        query = select(AuditEvent.action).where(AuditEvent.actor == f"user:{term.slt.id}")
        assert "report.exported" in set(await session.scalars(query))


async def test_a_viewer_lands_on_reports_and_is_shown_nothing_else(
    page: Page, sessions: Sessions, seeded_school: School, engine: PolicyEngine
) -> None:
    term = await a_term(sessions, engine, seeded_school)
    await sign_in(page, term.viewer)
    await expect(page).to_have_url("/reports")
    await expect(main_heading(page)).to_have_text("Reports")
    navigation = page.get_by_role("navigation", name="Main").get_by_role("link")
    await expect(navigation).to_have_text(["Reports"])
    await page.get_by_role("link", name="Annual review").first.click()
    await expect(main_heading(page)).to_contain_text("Annual review")
    await page.goto("/flags")
    await expect(main_heading(page)).to_have_text("Not allowed")


async def test_learning_from_decisions_on_the_rules_page(
    page: Page,
    phone: BrowserContext,
    sessions: Sessions,
    seeded_school: School,
    engine: PolicyEngine,
    screenshot: Screenshot,
) -> None:
    term = await a_term(sessions, engine, seeded_school)
    await sign_in(page, term.admin)
    await page.goto("/rules")
    learning = page.locator("#learning")
    await expect(learning).to_contain_text("No flagged message is kept as an example.")
    await learning.get_by_role("button", name="Turn on learning from decisions").click()
    await expect(page.get_by_role("status")).to_contain_text("every member is asked to agree")
    # As the trainer leaves it after a night's retraining.
    async with transaction(sessions) as session:
        trained = await LearningRepository(session).model_row(seeded_school.id)
        trained.weights, trained.examples, trained.trained_at = b"weights", 46, utcnow()
        trained.report = {
            "abusive-to-parent": {
                "examples": 31, "confirmed": 24,
                "before": {"flagged": 30, "not_a_breach": 7},
                "after": {"flagged": 26, "not_a_breach": 3},
            },
            "staff-contact": {
                "examples": 15, "confirmed": 12,
                "before": {"flagged": 15, "not_a_breach": 3},
                "after": {"flagged": 15, "not_a_breach": 3},
            },
        }  # fmt: skip
    await page.reload()
    table = learning.get_by_role("table")
    row = table.get_by_role("row").filter(has_text="abusive-to-parent")
    await expect(row).to_contain_text("30, 7 (23%)")
    await expect(row).to_contain_text("26, 3 (12%)")
    await expect(learning).to_contain_text("on 46 examples")
    await learning.scroll_into_view_if_needed()
    await screenshot(page, "page-rules-learning")
    on_phone = await on_a_phone(phone, term.admin)
    await on_phone.goto("/rules#learning")
    assert await page_width(on_phone) <= PHONE["width"], "the learning section fits a phone"
    await on_phone.locator("#learning").scroll_into_view_if_needed()
    await screenshot(on_phone, "page-rules-learning-phone")
    await learning.get_by_role("button", name="Retrain now").click()
    await expect(page.get_by_role("status")).to_contain_text("Retraining asked for")
    await expect(page.locator("#learning")).to_contain_text("Retraining is waiting to run.")
