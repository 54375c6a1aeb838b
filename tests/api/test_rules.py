"""The Rules page and API: the table of rules with the school's choices and false-positive
rates, changing them, extra lexicon terms, and trying a message with the school's own engine."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from bot.policy import PolicyEngine
from bot.policy.rules import RULES, RuleId
from bot.services import consent
from bot.services.moderation import Retention, check_message
from bot.services.school_settings import settings_of
from bot.store.db import transaction
from bot.store.models import AuditEvent, FlagStatus, School, UserRole
from tests.api.conftest import SignIn
from tests.api.support import Browser, Sessions
from tests.conftest import message
from tests.factories import NOW, a_chat, a_member, another_school

pytestmark = pytest.mark.anyio
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
MOAN = "honestly this school is a total shambles, worst school in the area"
NEW_WORD = "you absolute gronkle"


def every_rule_on() -> dict[str, object]:
    """The rules form as the page shows it before any change."""
    form: dict[str, object] = {f"enabled:{rule}": "on" for rule in RULES}
    form.update({f"remind:{rule}": "on" for rule in RULES})
    return form


async def tried(browser: Browser, text: str, **fields: str) -> str:
    """The verdict part of the page after trying ``text``."""
    answer = await browser.form("/rules/try", {"text": text, **fields})
    assert answer.status_code == 200, answer.text
    verdict = re.search(r'id="verdict".*?</section>', answer.text, re.S)
    assert verdict is not None
    return verdict.group()


async def choices_saved(sessions: Sessions) -> list[AuditEvent]:
    async with sessions() as session:
        query = select(AuditEvent).where(AuditEvent.action == "school.settings_changed")
        return list(await session.scalars(query.order_by(AuditEvent.id)))


async def test_the_table_shows_every_rule_and_only_managers_get_the_forms(
    sign_in: SignIn,
) -> None:
    slt = await sign_in(UserRole.SLT)
    page = await slt.get("/rules")
    assert page.status_code == 200
    for rule in RULES.values():
        assert rule.id in page.text
        assert rule.summary.replace("'", "&#39;") in page.text
    assert 'action="/rules/try"' in page.text
    assert 'action="/rules"' not in page.text
    assert 'action="/rules/lexicons"' not in page.text
    assert page.text.count("no decisions yet") == len(RULES)
    assert (await slt.form("/rules", every_rule_on())).status_code == 403
    assert (await slt.put("/api/rules", json={"rules": {}})).status_code == 403

    admin = await sign_in(UserRole.ADMIN)
    page = await admin.get("/rules")
    assert 'action="/rules"' in page.text
    assert 'name="terms:abuse.insults"' in page.text
    assert "Words that insult whoever they are said of" in page.text  # from the lexicon file
    shown = (await admin.get("/api/rules")).json()
    staff_contact = next(r for r in shown["rules"] if r["id"] == "staff-contact")
    assert staff_contact["default_severity"] == "low"
    assert staff_contact["alert"] == "digest"
    assert staff_contact["remind"] is True
    disrepute = next(r for r in shown["rules"] if r["id"] == "disrepute")
    assert disrepute["remind"] is None  # no reminder to send
    assert shown["frequent_contact"] == {"max_messages": 3, "window_hours": 168, "own": False}


async def test_disabling_a_rule_stops_it_firing_in_a_try(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    assert "disrepute" in await tried(admin, MOAN)
    form = every_rule_on()
    del form["enabled:disrepute"]
    form.update({"severity:staff-contact": "medium", "alert:staff-contact": "none"})
    form.update({"frequent_max": "5", "frequent_hours": "24"})
    del form["remind:out-of-hours"]
    saved = await admin.form("/rules", form)
    assert saved.status_code == 303
    assert "No rule broken" in await tried(admin, MOAN)
    verdict = await admin.post(
        "/api/classify",
        json={"text": MOAN, "sent_at": NOW.isoformat(), "sender": {"role": "parent"}},
    )
    assert verdict.json()["flagged"] is False

    shown = {r["id"]: r for r in (await admin.get("/api/rules")).json()["rules"]}
    assert shown["disrepute"]["enabled"] is False
    assert (shown["staff-contact"]["severity"], shown["staff-contact"]["own_severity"]) == (
        "medium", "medium",
    )  # fmt: skip
    assert shown["staff-contact"]["alert"] == "none"
    assert shown["out-of-hours"]["remind"] is False
    [event] = await choices_saved(sessions)
    assert (event.actor, event.details["changed"]) == (f"user:{admin.user.id}", "rules")


async def test_a_bad_choice_is_a_400_that_changes_nothing(
    sign_in: SignIn, sessions: Sessions
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    form = {**every_rule_on(), "severity:disrepute": "catastrophic"}
    refused = await admin.form("/rules", form)
    assert refused.status_code == 400
    assert "rules.disrepute.severity: &#39;catastrophic&#39; is not low, medium or high" in (
        refused.text
    )
    refused = await admin.form("/rules", {**every_rule_on(), "frequent_max": "5"})
    assert refused.status_code == 400
    assert "frequent_contact: give both" in refused.text
    bad = await admin.put("/api/rules", json={"frequent_contact": {"max_messages": 0}})
    assert bad.status_code == 422
    assert not await choices_saved(sessions)


async def test_rules_are_replaced_through_the_api(sign_in: SignIn) -> None:
    admin = await sign_in(UserRole.ADMIN)
    body = {
        "rules": {"disrepute": {"alert": "now", "severity": "high"}},
        "frequent_contact": {"max_messages": 2, "window_hours": 48},
    }
    answer = await admin.put("/api/rules", json=body)
    assert answer.status_code == 200
    shown = answer.json()
    disrepute = next(r for r in shown["rules"] if r["id"] == "disrepute")
    assert (disrepute["alert"], disrepute["severity"]) == ("now", "high")
    assert shown["frequent_contact"] == {"max_messages": 2, "window_hours": 48, "own": True}
    # A rule left out is back to the installation's choices.
    shown = (await admin.put("/api/rules", json={})).json()
    disrepute = next(r for r in shown["rules"] if r["id"] == "disrepute")
    assert (disrepute["own_alert"], disrepute["own_severity"]) == (None, None)
    assert shown["frequent_contact"]["own"] is False


async def test_holding_whatsapp_messages_is_chosen_per_rule_and_kept_by_later_saves(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    page = await admin.get("/rules")
    assert 'name="hold:abusive-to-parent"' in page.text
    form = {**every_rule_on(), "hold:abusive-to-parent": "on"}
    assert (await admin.form("/rules", form)).status_code == 303
    shown = {r["id"]: r for r in (await admin.get("/api/rules")).json()["rules"]}
    assert shown["abusive-to-parent"]["hold"] is True
    assert shown["disrepute"]["hold"] is False
    async with sessions() as session:
        school = await session.get(School, seeded_school.id)
        assert school is not None
        assert settings_of(school).rule(RuleId.ABUSIVE_TO_PARENT).hold is True
    # The API takes it too.
    body = {"rules": {"abusive-to-parent": {"hold": True, "severity": "high"}}}
    shown = {r["id"]: r for r in (await admin.put("/api/rules", json=body)).json()["rules"]}
    assert shown["abusive-to-parent"]["hold"] is True


async def test_extra_terms_are_used_once_saved(sign_in: SignIn, sessions: Sessions) -> None:
    admin = await sign_in(UserRole.ADMIN)
    assert "No rule broken" in await tried(admin, NEW_WORD)
    saved = await admin.form("/rules/lexicons", {"terms:abuse.insults": "gronkle\n\n  numpty  \n"})
    assert saved.status_code == 303
    assert "abusive-to-parent" in await tried(admin, NEW_WORD)
    shown = (await admin.get("/api/rules")).json()
    insults = next(x for x in shown["lexicons"] if x["name"] == "abuse.insults")
    assert insults["terms"] == ["gronkle", "numpty"]
    [event] = await choices_saved(sessions)
    assert event.details["changed"] == "lexicon terms"
    # Emptying the box removes them.
    assert (await admin.form("/rules/lexicons", {"terms:abuse.insults": ""})).status_code == 303
    assert "No rule broken" in await tried(admin, NEW_WORD)


@pytest.mark.parametrize(
    ("terms", "problem"),
    [
        ({"abuse.insults": ["(gronkle"]}, "lexicons.abuse.insults: '(gronkle' has unbalanced"),
        ({"abuse.insults": ["{nobody} gronkle"]}, "uses unknown class {nobody}"),
        ({"abuse.insults": ["re:[a-"]}, "a raw regular expression cannot be added here"),
        ({"abuse.gossip": ["gronkle"]}, "lexicons.abuse.gossip: there is no lexicon list"),
        ({"abuse.insults": ["gron\x00kle"]}, "has a control character"),
    ],
)
async def test_a_term_the_engine_cannot_use_is_a_clear_400(
    sign_in: SignIn, sessions: Sessions, terms: dict[str, list[str]], problem: str
) -> None:
    admin = await sign_in(UserRole.ADMIN)
    refused = await admin.put("/api/rules/lexicons", json={"lexicons": terms})
    assert refused.status_code == 400
    assert problem in refused.json()["detail"]
    if "gossip" not in problem:
        form: dict[str, object] = {f"terms:{n}": "\n".join(w) for n, w in terms.items()}
        page = await admin.form("/rules/lexicons", form)
        assert page.status_code == 400
        assert problem.replace("'", "&#39;") in page.text
    assert not await choices_saved(sessions)


async def test_trying_a_message_shows_each_rule_its_clause_and_evidence(sign_in: SignIn) -> None:
    slt = await sign_in(UserRole.SLT)
    page = await tried(slt, "@mr_okafor is PE on monday?", sent_at="2026-11-29T10:00")
    assert "Breaks 2 rules" in page
    assert "staff-contact" in page
    assert "out-of-hours" in page
    assert "All communications to school staff must be sent via the permitted school platforms" in (
        page
    )
    assert "@mr_okafor" in page
    assert "Sunday" in page  # the evidence says when it was sent
    assert "No rule broken" in await tried(slt, "@mr_okafor is PE on monday?", role="staff")
    bad_time = await slt.form("/rules/try", {"text": "hello", "sent_at": "soon"})
    assert bad_time.status_code == 400
    assert "is not a date and time" in bad_time.text
    assert (await slt.form("/rules/try", {"text": ""})).status_code == 422
    long_ago = await slt.form("/rules/try", {"text": "hello", "sent_at": "1900-01-01T10:00"})
    assert long_ago.status_code == 400
    assert "between the years 2000 and 2100" in long_ago.text
    ancient = {"text": "hi", "sent_at": "0001-01-01T00:00:00+00:00"}
    assert (await slt.post("/api/classify", json=ancient)).status_code == 400


async def test_false_positive_rates_come_from_this_schools_decisions(
    sign_in: SignIn, sessions: Sessions, seeded_school: School, engine: PolicyEngine
) -> None:
    ours = [FlagStatus.FALSE_POSITIVE, FlagStatus.CONFIRMED, FlagStatus.ESCALATED, FlagStatus.OPEN]
    theirs = [FlagStatus.FALSE_POSITIVE] * 3
    async with transaction(sessions) as session:
        elsewhere = await another_school(session)
        for school, chat_id, flagged in (
            (seeded_school, "-1001", ours),
            (elsewhere, "-2002", theirs),
        ):
            chat = await a_chat(session, school, platform_chat_id=chat_id)
            becky = await a_member(session, chat)
            await consent.give(session, chat, becky, "button", NOW)
            for number, status in enumerate(flagged):
                checked = await check_message(
                    session, engine, chat, becky, message(MOAN, id=str(number)), RETENTION, NOW
                )
                assert checked.flag is not None
                checked.flag.status = status
    slt = await sign_in(UserRole.SLT)
    page = await slt.get("/rules")
    row = re.search(r"<strong>disrepute</strong>.*?</tr>", page.text, re.S)
    assert row is not None
    assert "1 of 3 (33.3%)" in row.group()
    shown = (await slt.get("/api/rules")).json()
    disrepute = next(r for r in shown["rules"] if r["id"] == "disrepute")
    assert disrepute["false_positives"] == {
        "decided": 3, "false_positives": 1, "rate": pytest.approx(1 / 3), "text": "1 of 3 (33.3%)",
    }  # fmt: skip


async def test_rules_are_always_the_users_own_schools(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        elsewhere = await another_school(session)
    theirs = await sign_in(UserRole.ADMIN, at=elsewhere)
    body: dict[str, Any] = {"rules": {"disrepute": {"enabled": False}}}
    assert (await theirs.put("/api/rules", json=body)).status_code == 200
    lexicons = {"lexicons": {"abuse.insults": ["gronkle"]}}
    assert (await theirs.put("/api/rules/lexicons", json=lexicons)).status_code == 200
    assert "No rule broken" in await tried(theirs, MOAN)
    mine = await sign_in(UserRole.ADMIN)
    assert "disrepute" in await tried(mine, MOAN)
    assert "No rule broken" in await tried(mine, NEW_WORD)
    async with sessions() as session:
        ours = await session.get(School, seeded_school.id)
        assert ours is not None
        assert ours.settings == {}


async def test_learning_from_decisions_is_turned_on_and_off_by_a_manager(
    sign_in: SignIn, sessions: Sessions, seeded_school: School
) -> None:
    async with transaction(sessions) as session:
        chat = await a_chat(session, seeded_school)
        member = await a_member(session, chat)
        await consent.give(session, chat, member, "button", NOW)
    slt = await sign_in(UserRole.SLT)
    page = await slt.get("/rules")
    assert "No flagged message is kept as an example." in page.text
    assert 'action="/rules/learning"' not in page.text
    assert (await slt.form("/rules/learning", {"learn": "on"})).status_code == 403
    assert (await slt.form("/rules/learning/retrain")).status_code == 403

    admin = await sign_in(UserRole.ADMIN)
    assert (await admin.form("/rules/learning", {"learn": "maybe"})).status_code == 422
    turned_on = await admin.form("/rules/learning", {"learn": "on"})
    assert turned_on.status_code == 303
    page = await admin.get("/rules")
    assert "every member is asked to agree again" in page.text
    assert "Kept: 0 confirmed, 0 not a breach." in page.text
    assert "own model is not trained yet" in page.text
    async with sessions() as session:
        school = await session.get(School, seeded_school.id)
        assert school is not None
        assert settings_of(school).learning is not None
        refreshed = await session.get(type(chat), chat.id)
        assert refreshed is not None
        assert not await consent.has_consented(session, refreshed, member)
        actions = [e.action for e in await session.scalars(select(AuditEvent))]
        assert "learning.started" in actions

    assert (await admin.form("/rules/learning/retrain")).status_code == 303
    assert "Retraining is waiting to run." in (await admin.get("/rules")).text

    assert (await admin.form("/rules/learning", {"learn": "off"})).status_code == 303
    page = await admin.get("/rules")
    assert "No flagged message is kept as an example." in page.text
    async with sessions() as session:
        actions = [e.action for e in await session.scalars(select(AuditEvent))]
        assert "learning.stopped" in actions
