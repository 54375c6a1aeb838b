"""The flag queue, a flag's detail, and decisions and actions from the admin pages and API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.policy import PolicyEngine
from bot.services import consent
from bot.services.moderation import Retention, check_message
from bot.store.db import transaction
from bot.store.models import (
    Flag,
    FlagSource,
    FlagStatus,
    OutboxMessage,
    School,
    UserRole,
    utcnow,
)
from tests.api.conftest import SignIn
from tests.api.support import Sessions, audit_events
from tests.conftest import MODEL_ONLY_CAMPAIGN, message
from tests.factories import a_chat, a_member, another_school

pytestmark = pytest.mark.anyio
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
RUDE = "you absolute idiot"
STAFF = "@mr_okafor is the trip still on?"
MOAN = "honestly this school is a total shambles, worst school in the area"
HARMLESS = "anyone got a spare book bag?"
# Noon on these November days (GMT, so also noon in London).
DAY = {day: datetime(2026, 11, day, 12, 0, tzinfo=UTC) for day in range(18, 26)}


@dataclass(frozen=True)
class Said:
    text: str
    at: datetime
    reply_to: str | None = None


async def a_chat_with(
    sessions: Sessions,
    engine: PolicyEngine,
    school: School,
    said: list[Said],
    *,
    platform_chat_id: str = "-1001",
    title: str = "Year 3 Parents",
    bot_admin: bool = False,
) -> list[int | None]:
    """A registered chat where Becky (who agreed) said each thing; the flag ids, in order
    (None where nothing was flagged)."""
    async with transaction(sessions) as session:
        chat = await a_chat(session, school, platform_chat_id=platform_chat_id, title=title)
        chat.bot_is_admin = bot_admin
        becky = await a_member(session, chat)
        await consent.give(session, chat, becky, "button", DAY[18])
        ids: list[int | None] = []
        for number, each in enumerate(said):
            text = message(
                each.text, id=str(100 + number), sent_at=each.at.isoformat(),
                sender="Becky Sutton", reply_to=each.reply_to,
            )  # fmt: skip
            checked = await check_message(session, engine, chat, becky, text, RETENTION, each.at)
            ids.append(checked.flag.id if checked.flag else None)
        return ids


async def flagged(sessions: Sessions, engine: PolicyEngine, school: School) -> list[int]:
    """Three flags in Year 3 (high on the 20th, low on the 22nd, medium on the 24th), with a
    harmless message just before the high one; the ids, oldest first."""
    ids = await a_chat_with(
        sessions, engine, school,
        [
            Said(HARMLESS, DAY[20] - timedelta(minutes=1)),
            Said(RUDE, DAY[20], reply_to="Kerry Marsh"),
            Said(STAFF, DAY[22]),
            Said(MOAN, DAY[24]),
        ],
    )  # fmt: skip
    assert ids[0] is None
    return [id for id in ids[1:] if id is not None]


async def flag_row(sessions: Sessions, flag_id: int) -> Flag:
    async with sessions() as session:
        flag = await session.get(Flag, flag_id)
    assert flag is not None
    return flag


async def outbox(sessions: Sessions, purpose: str) -> list[OutboxMessage]:
    async with sessions() as session:
        query = select(OutboxMessage).where(OutboxMessage.purpose == purpose)
        return list(await session.scalars(query.order_by(OutboxMessage.id)))


# -- the queue -------------------------------------------------------------------------------


async def test_the_queue_lists_flags_newest_first_without_their_words(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School
) -> None:
    high, low, medium = await flagged(sessions, engine, seeded_school)
    slt = await sign_in(UserRole.SLT)

    listing = (await slt.get("/api/flags")).json()
    assert [item["id"] for item in listing["items"]] == [medium, low, high]
    assert (listing["total"], listing["page"], listing["pages"]) == (3, 1, 1)
    first = listing["items"][-1]
    assert first["rules"] == ["abusive-to-parent"]
    assert (first["severity"], first["status"], first["chat"]) == ("high", "open", "Year 3 Parents")
    assert first["sender"] == "Becky Sutton"
    assert first["acknowledged_at"] is None

    page = await slt.get("/flags")
    assert page.status_code == 200
    assert f'href="/flags/{high}"' in page.text
    assert "20 Nov 2026 12:00" in page.text  # local time
    for words in (RUDE, STAFF, MOAN):
        assert words not in page.text
        assert words not in str(listing)
    assert await audit_events(sessions, "flag.viewed") == []


async def test_the_queue_filters(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School
) -> None:
    high, low, medium = await flagged(sessions, engine, seeded_school)
    [year4] = await a_chat_with(
        sessions, engine, seeded_school, [Said(RUDE, DAY[25], reply_to="Kerry Marsh")],
        platform_chat_id="-1002", title="Year 4 Parents",
    )  # fmt: skip
    year4_chat = (await flag_row(sessions, year4 or 0)).chat_id
    slt = await sign_in(UserRole.SLT)
    await slt.post(f"/api/flags/{low}/decision", json={"decision": "acknowledge"})

    async def ids(query: str) -> list[int]:
        response = await slt.get(f"/api/flags?{query}")
        assert response.status_code == 200, response.text
        return [item["id"] for item in response.json()["items"]]

    assert await ids("severity=high") == [year4, high]
    assert await ids("rule=staff-contact") == [low]
    assert await ids(f"chat={year4_chat}") == [year4]
    assert await ids("status=acknowledged") == [low]
    assert await ids("date_from=2026-11-22&date_to=2026-11-24") == [medium, low]
    assert await ids("date_to=2026-11-21") == [high]
    assert await ids("rule=&severity=&chat=&status=&date_from=&date_to=") == [
        year4,
        medium,
        low,
        high,
    ]  # fmt: skip  (a filter form's "any")
    assert await ids("page=2") == []

    assert (await slt.get("/api/flags?severity=urgent")).status_code == 422
    assert (await slt.get("/api/flags?rule=no-such-rule")).status_code == 422
    assert (await slt.get("/api/flags?page=0")).status_code == 422
    backwards = await slt.get("/api/flags?date_from=2026-11-24&date_to=2026-11-22")
    assert backwards.status_code == 400
    page = await slt.get("/flags?severity=high&chat=")
    assert page.status_code == 200
    assert f'href="/flags/{high}"' in page.text
    assert f'href="/flags/{low}"' not in page.text


@pytest.mark.parametrize("role", [UserRole.VIEWER, UserRole.ADMIN])
async def test_viewers_and_admins_cannot_review_flags(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School,
    role: UserRole,
) -> None:  # fmt: skip
    [high, *_] = await flagged(sessions, engine, seeded_school)
    browser = await sign_in(role)
    assert (await browser.get("/flags")).status_code == 403
    assert (await browser.get("/api/flags")).status_code == 403
    assert (await browser.get(f"/api/flags/{high}")).status_code == 403
    decision = {"decision": "confirm"}
    assert (await browser.post(f"/api/flags/{high}/decision", json=decision)).status_code == 403


# -- one flag --------------------------------------------------------------------------------


async def test_the_detail_shows_the_words_in_context_and_the_view_is_audited(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School
) -> None:
    [high, *_] = await flagged(sessions, engine, seeded_school)
    slt = await sign_in(UserRole.SLT)

    detail = (await slt.get(f"/api/flags/{high}")).json()
    assert detail["text"] == RUDE
    [reason] = detail["reasons"]
    assert reason["rule"] == "abusive-to-parent"
    assert reason["clause"] == "Sending abusive messages to fellow parents/carers"
    assert reason["evidence"]
    context = [(m["text"], m["why_not"], m["this"]) for m in detail["context"]]
    assert context == [
        (None, "words not kept", False),  # the harmless message before it
        (RUDE, None, True),
        (STAFF, None, False),  # flagged too, so its words are kept
        (MOAN, None, False),
    ]
    assert [entry["action"] for entry in detail["history"]] == ["flag.raised", "flag.viewed"]
    assert detail["history"][1]["who"] == slt.user.name

    page = await slt.get(f"/flags/{high}")
    assert page.status_code == 200
    assert RUDE in page.text
    assert "words not kept" in page.text
    assert 'name="csrf_token"' in page.text
    views = await audit_events(sessions, "flag.viewed")
    assert [(v.actor, v.subject, v.details["via"]) for v in views] == [
        (f"user:{slt.user.id}", f"flag:{high}", "api"),
        (f"user:{slt.user.id}", f"flag:{high}", "page"),
    ]
    ids_shown = views[0].details["context_words"]
    assert len(ids_shown) == 2  # the two other flagged messages
    assert (await slt.get("/api/flags/999999")).status_code == 404
    assert (await slt.get(f"/api/flags/{2**40}")).status_code == 422


async def test_another_schools_flag_is_not_found(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School
) -> None:
    [high, *_] = await flagged(sessions, engine, seeded_school)
    async with transaction(sessions) as session:
        elsewhere = await another_school(session)
    dsl = await sign_in(UserRole.DSL, at=elsewhere)
    assert (await dsl.get(f"/api/flags/{high}")).status_code == 404
    assert (await dsl.get(f"/flags/{high}")).status_code == 404
    decide = await dsl.post(f"/api/flags/{high}/decision", json={"decision": "confirm"})
    assert decide.status_code == 404
    act = await dsl.post(f"/api/flags/{high}/actions", json={"action": "remind"})
    assert act.status_code == 404
    assert (await dsl.form(f"/flags/{high}/actions", {"action": "remind"})).status_code == 404
    assert (await dsl.get("/api/flags")).json()["total"] == 0
    assert (await flag_row(sessions, high)).status == FlagStatus.OPEN
    assert await outbox(sessions, "reminder") == []


# -- decisions -------------------------------------------------------------------------------


async def test_not_a_breach_needs_a_reason(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School
) -> None:
    [high, *_] = await flagged(sessions, engine, seeded_school)
    slt = await sign_in(UserRole.SLT)
    url = f"/api/flags/{high}/decision"
    for body in ({"decision": "false_positive"}, {"decision": "false_positive", "note": "  "}):
        refused = await slt.post(url, json=body)
        assert refused.status_code == 400
        assert "reason" in refused.json()["detail"]
    page = await slt.form(f"/flags/{high}/decision", {"decision": "false_positive", "note": ""})
    assert page.status_code == 400
    flag = await flag_row(sessions, high)
    assert (flag.status, flag.decided_at) == (FlagStatus.OPEN, None)
    assert await audit_events(sessions, "flag.false_positive") == []

    done = await slt.post(url, json={"decision": "false_positive", "note": "Sisters joking."})
    assert done.status_code == 200
    assert done.json()["flag"]["status"] == "false_positive"
    assert done.json()["changed"] is True
    flag = await flag_row(sessions, high)
    assert (flag.decision_note, flag.decided_by) == ("Sisters joking.", f"user:{slt.user.id}")
    [event] = await audit_events(sessions, "flag.false_positive")
    assert event.details["reason"] == "Sisters joking."
    again = await slt.post(url, json={"decision": "false_positive"})
    assert again.json()["changed"] is False
    assert (await slt.post(url, json={"decision": "maybe"})).status_code == 422


async def test_deciding_from_the_page_redirects_back_with_a_notice(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School
) -> None:
    [high, *_] = await flagged(sessions, engine, seeded_school)
    slt = await sign_in(UserRole.SLT)
    acknowledged = await slt.form(f"/flags/{high}/decision", {"decision": "acknowledge"})
    assert acknowledged.status_code == 303
    assert acknowledged.headers["location"] == f"/flags/{high}"
    page = await slt.get(f"/flags/{high}")
    assert "Acknowledged." in page.text
    assert f"by {slt.user.name}" in page.text

    confirmed = await slt.form(f"/flags/{high}/decision", {"decision": "confirm"})
    assert confirmed.status_code == 303
    flag = await flag_row(sessions, high)
    assert flag.status == FlagStatus.CONFIRMED
    assert flag.acknowledged_by == f"user:{slt.user.id}"
    assert "Confirmed as a breach" in (await slt.get(f"/flags/{high}")).text
    no_token = await slt.client.post(f"/flags/{high}/decision", data={"decision": "confirm"})
    assert no_token.status_code == 403


async def test_escalation_leaves_the_flag_to_the_dsl(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School
) -> None:
    high, low, medium = await flagged(sessions, engine, seeded_school)
    slt = await sign_in(UserRole.SLT)
    dsl = await sign_in(UserRole.DSL)
    escalated = await slt.form(
        f"/flags/{high}/decision", {"decision": "escalate", "note": "A child at risk"}
    )
    assert escalated.status_code == 303
    assert escalated.headers["location"] == "/flags"
    assert (await slt.get(f"/flags/{high}")).status_code == 404
    assert (await slt.get(f"/api/flags/{high}")).status_code == 404
    again = await slt.post(f"/api/flags/{high}/decision", json={"decision": "confirm"})
    assert again.status_code == 404
    slt_queue = [item["id"] for item in (await slt.get("/api/flags")).json()["items"]]
    assert slt_queue == [medium, low]

    assert high in [item["id"] for item in (await dsl.get("/api/flags")).json()["items"]]
    detail = (await dsl.get(f"/api/flags/{high}")).json()
    assert (detail["status"], detail["safeguarding"]) == ("escalated", True)
    assert detail["decision"]["note"] == "A child at risk"
    [event] = await audit_events(sessions, "flag.escalated")
    assert event.details["reason"] == "A child at risk"
    # The seeded DSL has linked no Telegram account and e-mail is off: SLT are told.
    other = await slt.post(f"/api/flags/{low}/decision", json={"decision": "escalate"})
    assert other.json()["dsl_alerts"] == 0
    assert "please tell them yourself" in other.json()["message"]


# -- actions ---------------------------------------------------------------------------------


async def test_remind_and_meet_are_queued_for_the_sender(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School
) -> None:
    [high, *_] = await flagged(sessions, engine, seeded_school)
    slt = await sign_in(UserRole.SLT)
    remind = await slt.post(f"/api/flags/{high}/actions", json={"action": "remind"})
    assert remind.json() == {
        "action": "remind",
        "outcome": "queued",
        "message": "A reminder is on its way to Becky Sutton.",
    }
    [reminder] = await outbox(sessions, "reminder")
    assert reminder.text.startswith("Hi Becky, a gentle reminder")
    meet = await slt.form(f"/flags/{high}/actions", {"action": "meet"})
    assert meet.status_code == 303
    assert len(await outbox(sessions, "meeting")) == 1
    assert "A meeting request is on its way" in (await slt.get(f"/flags/{high}")).text
    assert len(await audit_events(sessions, "flag.meeting_requested")) == 1
    assert (await slt.post(f"/api/flags/{high}/actions", json={"action": "ban"})).status_code == 422


async def test_removal_is_deleted_by_the_bot_or_asked_of_the_sender(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School
) -> None:
    [old] = await a_chat_with(
        sessions, engine, seeded_school, [Said(RUDE, DAY[20], reply_to="Kerry Marsh")]
    )
    now = utcnow().replace(microsecond=0)
    [recent] = await a_chat_with(
        sessions, engine, seeded_school, [Said(RUDE, now, reply_to="Kerry Marsh")],
        platform_chat_id="-1002", title="Year 4 Parents", bot_admin=True,
    )  # fmt: skip
    slt = await sign_in(UserRole.SLT)

    asked = await slt.post(f"/api/flags/{old}/actions", json={"action": "remove"})
    assert asked.json()["outcome"] == "asked sender"
    assert asked.json()["message"] == (
        "The sender has been asked to delete it: the bot cannot delete it itself."
    )
    [request] = await outbox(sessions, "removal")
    assert request.recipient == "-1001"

    deleted = await slt.form(f"/flags/{recent}/actions", {"action": "remove"})
    assert deleted.status_code == 303
    [delete] = await outbox(sessions, "delete")
    assert (delete.recipient, delete.reply_to) == ("-1002", "100")
    assert "The bot is deleting the message" in (await slt.get(f"/flags/{recent}")).text
    outcomes = [
        e.details["outcome"] for e in await audit_events(sessions, "flag.removal_requested")
    ]
    assert outcomes == ["asked sender", "deleted"]


async def test_a_report_offers_no_action_on_its_sender(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School
) -> None:
    [high, *_] = await flagged(sessions, engine, seeded_school)
    async with transaction(sessions) as session:
        flag = await session.get(Flag, high)
        assert flag is not None
        flag.source = FlagSource.REPORT  # Becky forwarded it: she is the reporter
    slt = await sign_in(UserRole.SLT)

    page = (await slt.get(f"/flags/{high}")).text
    assert "This is a report: the message&#39;s author is not known to Schoolgate" in page
    assert 'name="action"' not in page
    refused = await slt.post(f"/api/flags/{high}/actions", json={"action": "remind"})
    assert refused.status_code == 409
    assert "the message's author is not known" in refused.text
    form = await slt.form(f"/flags/{high}/actions", {"action": "meet"})
    assert form.status_code == 409
    assert await outbox(sessions, "reminder") == []
    assert await outbox(sessions, "meeting") == []
    # Deciding on it is still possible.
    confirmed = await slt.post(f"/api/flags/{high}/decision", json={"decision": "confirm"})
    assert confirmed.status_code == 200


async def test_a_flag_the_learned_model_raised_says_so(
    sign_in: SignIn, sessions: Sessions, engine: PolicyEngine, seeded_school: School
) -> None:
    [flag_id] = await a_chat_with(
        sessions, engine, seeded_school, [Said(MODEL_ONLY_CAMPAIGN, DAY[20])]
    )
    assert flag_id is not None
    slt = await sign_in(UserRole.SLT)
    [reason] = (await slt.get(f"/api/flags/{flag_id}")).json()["reasons"]
    assert (reason["rule"], reason["source"]) == ("harassment-campaign", "model")
    assert reason["evidence"].startswith("raised by the learned model, not a word rule")
    page = (await slt.get(f"/flags/{flag_id}")).text
    assert "Learned model" in page
    assert "The learned model found what no word rule did" in page
