"""A school's own settings taking effect: its rules and terms in its engine, its alert timing,
routing and channels, its digest time and escalation delay, its reminders, its retention, its
consent notice; and the edits of its school-file data."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.errors import BadInputError, NotFoundError
from bot.policy import RuleId
from bot.policy.config import FrequentContactSettings, PolicyConfig
from bot.policy.lexicon import LexiconData
from bot.policy.rules import Severity
from bot.services import consent, school_file
from bot.services.alerts import SAFEGUARDING_RULES, AlertContext, alert_now, flag_timing
from bot.services.digest import escalate, queue_digests
from bot.services.moderation import Retention, check_message
from bot.services.notices import (
    current_notice,
    notice_text,
    publish_notice,
    refresh_notices,
)
from bot.services.reminders import remind
from bot.services.rule_settings import lexicon_descriptions, rule_table, save_lexicons, save_rules
from bot.services.school_settings import (
    AlertTiming,
    NoticeText,
    RetentionSettings,
    RuleSetup,
    SchoolSettings,
    save_alert_routing,
    save_reminders,
    save_retention,
    save_settings,
    settings_of,
)
from bot.services.schools import EngineCache
from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    Chat,
    ChatMember,
    ChatStatus,
    Flag,
    FlagReason,
    FlagStatus,
    OutboxMessage,
    School,
    StaffMember,
)
from bot.texts import TelegramTexts, load_telegram_texts
from tests.conftest import CONFIG_DIR, message
from tests.factories import NOW, a_chat, a_member, a_school, another_school

pytestmark = pytest.mark.anyio
TG = frozenset({"telegram"})  # the channels of an installation without e-mail
MAIL = frozenset({"telegram", "email"})  # the channels of an installation with e-mail
Sessions = async_sessionmaker[AsyncSession]
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
MOAN = "honestly this school is a total shambles, worst school in the area"
RUDE = "you absolute idiot"
ASKING = "@mr_okafor is the trip still on?"
# Sunday 29 November 2026, 10:00 in London: outside working hours.
SUNDAY = "2026-11-29T10:00:00+00:00"


@pytest.fixture(scope="module")
def texts() -> TelegramTexts:
    return load_telegram_texts(CONFIG_DIR)


@pytest.fixture
def engines(lexicons: LexiconData) -> EngineCache:
    return EngineCache(lexicons, PolicyConfig(), None)


async def choose(session: AsyncSession, school: School, **fields: object) -> None:
    await save_settings(session, school, settings_of(school).changed(**fields), "test", "test")


async def linked_head(session: AsyncSession, school: School) -> StaffMember:
    """Mrs Anita Patel (SLT and DSL), with Telegram linked."""
    head = await session.scalar(
        select(StaffMember).where(
            StaffMember.school_id == school.id, StaffMember.name == "Mrs Anita Patel"
        )
    )
    assert head is not None
    head.telegram_user_id = 7001
    return head


async def said(
    session: AsyncSession,
    engines: EngineCache,
    school: School,
    text: str,
    *,
    number: int = 1,
    sent_at: str = NOW.isoformat(),
    chat: Chat | None = None,
    member: ChatMember | None = None,
) -> tuple[Chat, ChatMember, Flag | None]:
    """Becky, who agreed, says ``text`` in a chat of ``school``; the flag, if any."""
    chat = chat or await a_chat(session, school)
    member = member or await a_member(session, chat)
    await consent.give(session, chat, member, "button", NOW)
    checked = await check_message(
        session, await engines.for_school(session, school), chat, member,
        message(text, id=str(number), sent_at=sent_at, sender="Becky Sutton"),
        RETENTION.for_school(settings_of(school).retention), NOW,
    )  # fmt: skip
    return chat, member, checked.flag


async def alerts(session: AsyncSession) -> list[OutboxMessage]:
    query = select(OutboxMessage).where(OutboxMessage.purpose == "alert")
    return list(await session.scalars(query.order_by(OutboxMessage.id)))


async def raise_alert(
    session: AsyncSession, texts: TelegramTexts, chat: Chat, member: ChatMember, flag: Flag
) -> int:
    context = AlertContext(flag, list(flag.reasons), chat, member, "words")
    return await alert_now(session, texts, context, channels=MAIL)


# -- the text rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Hello {pupil}, and this is long enough",
        "{school.__class__} is long enough to be a notice",
        "An unclosed {school brace, long enough",
        "{school!r} is a conversion, long enough",
        "{}{}{}{}{}{}{}{}{}{}{}",
    ],
)
def test_a_notice_may_use_only_its_own_placeholders(text: str) -> None:
    with pytest.raises(BadInputError, match=r"notice\.text: "):
        SchoolSettings().changed(notice={"version": "1", "text": text})


def test_placeholders_are_optional_and_braces_can_be_written() -> None:
    chosen = SchoolSettings().changed(
        notice={"version": "1", "text": "Hello from {school} {{the office}}, kept {flag_days} days"}
    )
    assert chosen.notice == NoticeText(
        version="1", text="Hello from {school} {{the office}}, kept {flag_days} days"
    )


def test_a_reminder_may_use_only_its_own_placeholders() -> None:
    with pytest.raises(BadInputError, match=r"reminders\.staff-contact: \{school\} is not"):
        SchoolSettings().changed(reminders={"staff-contact": "Hi {name}, from {school}"})
    assert SchoolSettings().changed(reminders={"staff-contact": "Hi {name}"}).reminders == {
        RuleId.STAFF_CONTACT: "Hi {name}"
    }


def test_the_schools_retention_periods_replace_the_installations_where_set() -> None:
    assert RETENTION.for_school(RetentionSettings()) == RETENTION
    assert RETENTION.for_school(RetentionSettings(flag_days=90)) == Retention(
        metadata=timedelta(days=30), flags=timedelta(days=90)
    )


def test_a_flag_is_as_urgent_as_its_most_urgent_rule() -> None:
    reasons = [
        FlagReason(rule="disrepute", severity="medium", clause="", evidence=""),
        FlagReason(rule="staff-contact", severity="low", clause="", evidence=""),
    ]
    chosen = SchoolSettings()
    assert flag_timing(chosen, reasons) is AlertTiming.DIGEST
    assert flag_timing(chosen.changed(rules={"disrepute": {"alert": "now"}}), reasons) is (
        AlertTiming.NOW
    )
    quiet = chosen.changed(
        rules={"disrepute": {"alert": "none"}, "staff-contact": {"alert": "none"}}
    )
    assert flag_timing(quiet, reasons) is AlertTiming.NONE
    assert chosen.alert_timing(RuleId.DISREPUTE, Severity.HIGH) is AlertTiming.NOW


# -- the engine ----------------------------------------------------------------------------------


async def test_a_disabled_rule_no_longer_flags(sessions: Sessions, engines: EngineCache) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        _, _, before = await said(session, engines, school, MOAN)
        assert before is not None
        await save_rules(
            session, school, {RuleId.DISREPUTE: RuleSetup(enabled=False)}, None, engines, "test"
        )
        _, _, after = await said(session, engines, school, MOAN, number=2)
        assert after is None


async def test_a_chosen_severity_and_extra_terms_are_in_the_engine(
    sessions: Sessions, engines: EngineCache
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        elsewhere = await another_school(session)
        await save_rules(
            session, school, {RuleId.DISREPUTE: RuleSetup(severity=Severity.HIGH)}, None,
            engines, "test",
        )  # fmt: skip
        rude = message("you absolute gronkle", reply_to="Kerry Marsh")
        assert not (await engines.for_school(session, school)).classify(rude).flagged
        await save_lexicons(session, school, {"abuse.insults": ["gronkle"]}, engines, "test")
        engine = await engines.for_school(session, school)
        assert engine.classify(message(MOAN)).severity is Severity.HIGH
        assert engine.classify(rude).rules == (RuleId.ABUSIVE_TO_PARENT,)
        # Another school's engine is its own.
        assert not (await engines.for_school(session, elsewhere)).classify(rude).flagged
        saved = [e.details["changed"] for e in await session.scalars(select(AuditEvent))
                 if e.action == "school.settings_changed"]  # fmt: skip
        assert saved == ["rules", "lexicon terms"]


async def test_the_frequent_contact_limit_is_the_schools(
    sessions: Sessions, engines: EngineCache
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        limit = FrequentContactSettings(max_messages=1, window_hours=24)
        await save_rules(session, school, {}, limit, engines, "test")
        chat, member, first = await said(session, engines, school, ASKING)
        _, _, second = await said(
            session, engines, school, ASKING + " (again)", number=2, chat=chat, member=member
        )
        assert first is not None
        assert [r.rule for r in first.reasons] == ["staff-contact"]
        assert second is not None
        assert [r.rule for r in second.reasons] == ["staff-contact", "frequent-contact"]


@pytest.mark.parametrize(
    ("terms", "problem"),
    [
        ({"abuse.insults": ["(gronkle"]}, r"lexicons\.abuse\.insults: '\(gronkle' has unbalanced"),
        ({"abuse.insults": ["{nobody} fool"]}, r"lexicons\.abuse\.insults: .*unknown class"),
        ({"abuse.insults": ["re:(a+)+$"]}, r"lexicons\.abuse\.insults: .*regular expression"),
        ({"abuse.nonsense": ["gronkle"]}, r"lexicons\.abuse\.nonsense: there is no lexicon list"),
    ],
)
async def test_terms_the_engine_cannot_use_are_refused_and_nothing_changes(
    sessions: Sessions, engines: EngineCache, terms: dict[str, list[str]], problem: str
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        with pytest.raises(BadInputError, match=problem):
            await save_lexicons(session, school, terms, engines, "test")
        assert settings_of(school) == SchoolSettings()


def test_lexicon_lists_are_described_from_their_files() -> None:
    described = lexicon_descriptions(CONFIG_DIR / "lexicons")
    assert described["abuse.insults"].startswith("Words that insult whoever")
    assert "abuse.sarcasm_markers" not in described  # no comment above it


async def test_false_positive_rates_count_this_schools_decided_flags(
    sessions: Sessions, engines: EngineCache, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        elsewhere = await another_school(session)
        chat, member, _ = await said(session, engines, school, MOAN)
        statuses = [FlagStatus.FALSE_POSITIVE, FlagStatus.CONFIRMED, FlagStatus.ESCALATED,
                    FlagStatus.OPEN, FlagStatus.ACKNOWLEDGED]  # fmt: skip
        flags = [
            (await said(session, engines, school, MOAN, number=n, chat=chat, member=member))[2]
            for n in range(2, 2 + len(statuses))
        ]
        for flag, status in zip(flags, statuses, strict=True):
            assert flag is not None
            flag.status = status
        other_chat = await a_chat(session, elsewhere, platform_chat_id="-2002")
        _, _, theirs = await said(session, engines, elsewhere, MOAN, chat=other_chat, number=9)
        assert theirs is not None
        theirs.status = FlagStatus.FALSE_POSITIVE
        await session.flush()
        rows = {row.rule.id: row for row in await rule_table(session, school, engines, {})}
        assert rows[RuleId.DISREPUTE].false_positive_text == "1 of 3 (33.3%)"
        assert rows[RuleId.ABUSIVE_TO_PARENT].false_positive_text == "no decisions yet"


# -- alerts, the digest, escalation --------------------------------------------------------------


async def test_a_rule_set_to_alert_at_once_alerts_at_once(
    sessions: Sessions, engines: EngineCache, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        await linked_head(session, school)
        chat, member, flag = await said(session, engines, school, MOAN)
        assert flag is not None
        assert flag.severity == "medium"
        assert await raise_alert(session, texts, chat, member, flag) == 0  # the digest's
        await choose(session, school, rules={"disrepute": {"alert": "now"}})
        assert await raise_alert(session, texts, chat, member, flag) == 2  # Telegram, e-mail
        assert {a.channel for a in await alerts(session)} == {"telegram", "email"}


async def test_a_high_rule_set_to_the_digest_does_not_alert(
    sessions: Sessions, engines: EngineCache, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        await linked_head(session, school)
        chat, member, flag = await said(session, engines, school, RUDE)
        assert flag is not None
        assert flag.severity == "high"
        [rule] = [r.rule for r in flag.reasons]
        await choose(session, school, rules={rule: {"alert": "digest"}})
        assert await raise_alert(session, texts, chat, member, flag) == 0
        digest_time = datetime.combine(NOW.date(), time(16, 5), tzinfo=UTC)
        assert await queue_digests(session, texts, time(16, 0), digest_time) == 1


async def test_staff_get_alerts_only_on_the_channels_they_chose(
    sessions: Sessions, engines: EngineCache, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        head = await linked_head(session, school)
        head.alert_channels = ["email"]
        chat, member, flag = await said(session, engines, school, RUDE)
        assert flag is not None
        assert flag.severity == "high"
        assert await raise_alert(session, texts, chat, member, flag) == 1
        [alert] = await alerts(session)
        assert (alert.channel, alert.recipient) == ("email", "head@peartree.example.sch.uk")
        head.alert_channels = ["telegram"]
        await session.flush()
        later = NOW + timedelta(hours=1)
        assert await escalate(session, texts, timedelta(minutes=30), later) == 1
        assert (await alerts(session))[-1].channel == "telegram"


async def test_staff_who_chose_email_get_the_digest_and_repeated_alerts_by_email(
    sessions: Sessions, engines: EngineCache, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        head = await linked_head(session, school)
        head.alert_channels = ["email"]
        chat, member, flag = await said(session, engines, school, RUDE)
        assert flag is not None
        await said(session, engines, school, MOAN, number=2, chat=chat, member=member)
        later = NOW + timedelta(hours=3)
        assert await escalate(session, texts, timedelta(minutes=30), later, channels=MAIL) == 1
        digest_time = datetime.combine(NOW.date(), time(16, 5), tzinfo=UTC)
        assert await queue_digests(session, texts, time(16, 0), digest_time, channels=MAIL) == 1
        sent = list(await session.scalars(select(OutboxMessage).order_by(OutboxMessage.id)))
        assert {(m.purpose, m.channel) for m in sent} == {("alert", "email"), ("digest", "email")}
        # Without e-mail set up, there is nowhere to send them: nothing is queued.
        assert await escalate(session, texts, timedelta(minutes=30), later, channels=TG) == 0


async def test_the_dsl_gets_the_rules_the_school_routes_to_them(
    sessions: Sessions, engines: EngineCache, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        head = await linked_head(session, school)
        head.slt = False  # the DSL alone: they hear only of what is routed to them
        await choose(session, school, rules={"disrepute": {"alert": "now"}})
        chat, member, flag = await said(session, engines, school, MOAN)
        assert flag is not None
        assert await raise_alert(session, texts, chat, member, flag) == 0
        await save_alert_routing(
            session, school, dsl_rules=[RuleId.DISREPUTE], default_dsl_rules=SAFEGUARDING_RULES,
            escalate_after_minutes=None, digest_time=None, actor="test",
        )  # fmt: skip
        assert settings_of(school).dsl_rules == (RuleId.DISREPUTE,)
        assert await raise_alert(session, texts, chat, member, flag) == 2
        await save_alert_routing(
            session, school, dsl_rules=SAFEGUARDING_RULES, default_dsl_rules=SAFEGUARDING_RULES,
            escalate_after_minutes=None, digest_time=None, actor="test",
        )  # fmt: skip
        assert settings_of(school).dsl_rules is None  # the installation's choice again


async def test_the_digest_goes_at_the_schools_time_with_its_digest_flags(
    sessions: Sessions, engines: EngineCache, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        await linked_head(session, school)
        chat, member, _ = await said(session, engines, school, MOAN)
        await said(session, engines, school, ASKING, number=2, chat=chat, member=member)
        await choose(
            session, school, digest_time="09:30", rules={"staff-contact": {"alert": "none"}}
        )
        before = datetime.combine(NOW.date() + timedelta(days=1), time(9, 0), tzinfo=UTC)
        assert await queue_digests(session, texts, time(8, 0), before) == 0  # its own time
        after = before + timedelta(minutes=45)
        assert await queue_digests(session, texts, time(8, 0), after) == 1
        digest = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.purpose == "digest")
        )
        assert digest is not None
        assert "disrepute" in digest.text
        assert "staff-contact" not in digest.text  # the flag queue only


async def test_escalation_waits_for_the_schools_own_delay(
    sessions: Sessions, engines: EngineCache, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        await linked_head(session, school)
        await choose(session, school, escalate_after_minutes=90)
        _, _, flag = await said(session, engines, school, RUDE)
        assert flag is not None
        installation = timedelta(minutes=30)
        assert await escalate(session, texts, installation, NOW + timedelta(minutes=60)) == 0
        assert await escalate(session, texts, installation, NOW + timedelta(minutes=95)) == 1
        [escalation] = await alerts(session)
        assert escalation.text.startswith("Not yet acknowledged after 90 minutes")


# -- reminders, retention ------------------------------------------------------------------------


async def test_reminders_follow_the_schools_choice_and_words(
    sessions: Sessions, engines: EngineCache, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        chat = await a_chat(session, school)
        member = await a_member(session, chat)
        engine = await engines.for_school(session, school)
        verdict = engine.classify(message(ASKING, sent_at=SUNDAY))
        assert {str(r) for r in verdict.rules} == {"staff-contact", "out-of-hours"}

        async def reminded(number: int) -> OutboxMessage | None:
            return await remind(
                session, texts, chat, member, str(number), verdict,
                calendar=engine.school.calendar, platforms=["the office"],
                sent_at=datetime.fromisoformat(SUNDAY), every=timedelta(0), now=NOW,
                school=settings_of(school),
            )  # fmt: skip

        await save_reminders(
            session, school, {RuleId.STAFF_CONTACT: "Hello {name}, use {platforms} please."},
            texts.reminders, "test",
        )  # fmt: skip
        await choose(session, school, rules={"out-of-hours": {"remind": False}})
        sent = await reminded(1)
        assert sent is not None
        assert sent.rule == "staff-contact"
        assert sent.text == "Hello Becky, use the office please."
        await choose(session, school, rules={"out-of-hours": {"remind": False},
                                             "staff-contact": {"remind": False}})  # fmt: skip
        assert await reminded(2) is None


async def test_a_reminder_without_a_text_cannot_be_reworded(
    sessions: Sessions, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        with pytest.raises(BadInputError, match=r"reminders\.disrepute: there is no reminder"):
            await save_reminders(session, school, {RuleId.DISREPUTE: "Hi"}, texts.reminders, "t")
        # The installation's words, or none, mean the installation's.
        await save_reminders(
            session, school, {RuleId.STAFF_CONTACT: texts.reminders["staff-contact"] + "  "},
            texts.reminders, "test",
        )  # fmt: skip
        assert settings_of(school).reminders == {}


async def test_the_schools_retention_sets_keep_until(
    sessions: Sessions, engines: EngineCache
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        await save_retention(
            session, school, metadata_days=7, flag_days=60, audit_days=None, actor="test"
        )
        _, _, flag = await said(session, engines, school, MOAN)
        assert flag is not None
        assert flag.keep_until == NOW + timedelta(days=60)
        with pytest.raises(BadInputError, match=r"retention\.audit_days: "):
            await save_retention(
                session, school, metadata_days=None, flag_days=None, audit_days=3, actor="test"
            )
        assert settings_of(school).retention == RetentionSettings(metadata_days=7, flag_days=60)


# -- the consent notice --------------------------------------------------------------------------


async def test_new_words_are_a_new_version_posted_to_every_chat(
    sessions: Sessions, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        elsewhere = await another_school(session)
        year3 = await a_chat(session, school)
        year4 = await a_chat(session, school, platform_chat_id="-1004", title="Year 4")
        theirs = await a_chat(session, elsewhere, platform_chat_id="-2002", title="Theirs")
        becky = await a_member(session, year3)
        await consent.give(session, year3, becky, "button", NOW)
        await save_retention(
            session, school, metadata_days=14, flag_days=None, audit_days=None, actor="test"
        )
        words = "Hello from {school}. We keep records {metadata_days} days, flags {flag_days}."
        version = await publish_notice(session, school, words, texts.notice, RETENTION, "u:1", NOW)
        assert version == "2026-11-24.1"
        assert (year3.notice_version, year4.notice_version) == (version, version)
        assert theirs.notice_version == "test-1"  # another school's chat is untouched
        assert not await consent.has_consented(session, year3, becky)  # agree again
        notices = select(OutboxMessage).where(OutboxMessage.purpose == "notice")
        posted = list(await session.scalars(notices.order_by(OutboxMessage.id)))
        assert [p.recipient for p in posted] == ["-1001", "-1004"]
        assert posted[0].text == (
            "Hello from Peartree Spring Primary School. We keep records 14 days, flags 365."
        )
        assert posted[0].buttons == [["I agree", f"consent:{version}"]]
        assert current_notice(school, texts.notice).version == version
        assert notice_text(school, texts.notice, RETENTION) == posted[0].text

        # The same words again change nothing; new ones are a new version.
        assert await publish_notice(session, school, words + "\n", texts.notice, RETENTION,
                                    "u:1", NOW) is None  # fmt: skip
        again = await publish_notice(session, school, words + " Thanks.", texts.notice,
                                     RETENTION, "u:1", NOW)  # fmt: skip
        assert again == "2026-11-24.2"
        # Blank goes back to the installation's notice, itself a change to agree to.
        assert await publish_notice(session, school, " ", texts.notice, RETENTION, "u:1", NOW) == (
            texts.notice.version
        )
        assert year3.notice_version == texts.notice.version
        assert not current_notice(school, texts.notice).own
        actions = [e.action for e in await session.scalars(select(AuditEvent))]
        assert actions.count("chat.notice_updated") == 6
        assert actions.count("school.settings_changed") == 4  # retention, then three notices


async def test_a_new_notice_reaches_whatsapp_groups_as_a_post_asking_for_agree(
    sessions: Sessions, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        for platform_chat_id, title in (
            ("CH" + "1" * 32, "Year 3 (WhatsApp)"),
            ("report-line:1", "WhatsApp report line"),
        ):
            session.add(Chat(
                platform="whatsapp", platform_chat_id=platform_chat_id, title=title,
                school_id=school.id, status=ChatStatus.REGISTERED, notice_version="test-1",
            ))  # fmt: skip
        await session.flush()
        words = "Hello from {school}: we check messages of those who agree."
        version = await publish_notice(
            session, school, words, texts.notice, RETENTION, "u:1", NOW,
            whatsapp_suffix="Reply AGREE to agree.",
        )  # fmt: skip
        [posted] = list(await session.scalars(select(OutboxMessage)))
        assert (posted.channel, posted.recipient) == ("whatsapp-group", "CH" + "1" * 32)
        assert posted.text.endswith("\n\nReply AGREE to agree.")
        assert posted.buttons == []
        line = await session.scalar(select(Chat).where(Chat.platform_chat_id == "report-line:1"))
        assert line is not None
        assert line.notice_version == "test-1", "a report line has no notice to agree to"
        assert version is not None


async def test_whatsapp_groups_under_an_older_installation_notice_are_asked_again(
    sessions: Sessions, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        telegram = await a_chat(session, school)
        groups = {}
        for platform_chat_id, version in (
            ("CH" + "1" * 32, "test-1"),  # registered before config/texts was reworded
            ("CH" + "2" * 32, texts.notice.version),  # already under today's words
            ("report-line:1", "test-1"),
        ):
            groups[platform_chat_id] = chat = Chat(
                platform="whatsapp", platform_chat_id=platform_chat_id, title=platform_chat_id,
                school_id=school.id, status=ChatStatus.REGISTERED, notice_version=version,
            )  # fmt: skip
            session.add(chat)
        await session.flush()
        behind = groups["CH" + "1" * 32]
        becky = await a_member(session, behind, user_id="whatsapp:+447700900001")
        await consent.give(session, behind, becky, "reply", NOW)

        asked = await refresh_notices(
            session, "whatsapp", texts.notice, RETENTION, NOW,
            whatsapp_suffix="Reply AGREE to agree.",
        )  # fmt: skip

        assert asked == 1
        assert behind.notice_version == texts.notice.version
        assert not await consent.has_consented(session, behind, becky)  # the old words' consent
        [posted] = list(await session.scalars(select(OutboxMessage)))
        assert (posted.channel, posted.recipient) == ("whatsapp-group", behind.platform_chat_id)
        assert posted.text == (
            notice_text(school, texts.notice, RETENTION) + "\n\nReply AGREE to agree."
        )
        assert groups["report-line:1"].notice_version == "test-1"
        assert (
            telegram.notice_version == "test-1"
        )  # Telegram's runtime posts its own, with a button
        assert await refresh_notices(
            session, "whatsapp", texts.notice, RETENTION, NOW,
            whatsapp_suffix="Reply AGREE to agree.",
        ) == 0  # fmt: skip
        [audited] = list(
            await session.scalars(
                select(AuditEvent).where(AuditEvent.action == "chat.notice_updated")
            )
        )
        assert (audited.actor, audited.subject) == ("system", f"chat:{behind.id}")

        # Telegram's runtime asks its chats the same way, with an "I agree" button.
        assert await refresh_notices(session, "telegram", texts.notice, RETENTION, NOW) == 1
        assert telegram.notice_version == texts.notice.version
        told = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.recipient == telegram.platform_chat_id)
        )
        assert told is not None
        assert (told.channel, told.text) == (
            "telegram",
            notice_text(school, texts.notice, RETENTION),
        )
        assert told.buttons == [["I agree", f"consent:{texts.notice.version}"]]


async def test_a_notice_with_an_unknown_placeholder_changes_nothing(
    sessions: Sessions, texts: TelegramTexts
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        chat = await a_chat(session, school)
        with pytest.raises(BadInputError, match=r"notice\.text: \{pupil\} is not a placeholder"):
            await publish_notice(
                session, school, "Hello {pupil}, this is the notice.", texts.notice, RETENTION,
                "u:1", NOW,
            )  # fmt: skip
        assert chat.notice_version == "test-1"
        assert settings_of(school) == SchoolSettings()
        assert not list(await session.scalars(select(OutboxMessage)))


# -- the school file -----------------------------------------------------------------------------


async def test_working_hours_are_checked_by_field(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        with pytest.raises(BadInputError, match=r"school\.working_hours\.monday: '8-5' is not"):
            await school_file.save_hours(session, school, {"monday": "8-5"}, None, "u:1")
        with pytest.raises(BadInputError, match=r"school\.bank_holidays: "):
            await school_file.save_hours(session, school, {"monday": "08:00-17:00"}, "zz", "u:1")
        config = await school_file.save_hours(
            session, school, {"monday": "08:00-12:00, 13:00-17:00", "tuesday": "closed"},
            "scotland", "u:1",
        )  # fmt: skip
        assert config.school.working_hours.monday == (
            (time(8), time(12)), (time(13), time(17)),
        )  # fmt: skip
        assert config.school.working_hours.tuesday == ()
        assert school.config["school"]["bank_holidays"] == "scotland"


async def test_closures_are_added_and_removed(sessions: Sessions) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        easter = (date(2027, 3, 29), date(2027, 4, 9))
        await school_file.add_closure(session, school, *easter, "Easter", "u:1")
        assert [c.name for c in school_file.school_config(school).school.closures] == [
            "February half term", "Easter",
        ]  # fmt: skip
        with pytest.raises(BadInputError, match=r"ends .* before it starts"):
            await school_file.add_closure(session, school, easter[1], easter[0], "Oops", "u:1")
        await school_file.remove_closure(session, school, *easter, "Easter", "u:1")
        with pytest.raises(NotFoundError):
            await school_file.remove_closure(session, school, *easter, "Easter", "u:1")
        assert [c.name for c in school_file.school_config(school).school.closures] == [
            "February half term"
        ]
        updates = [e.details["changed"] for e in await session.scalars(select(AuditEvent))
                   if e.action == "school.updated"]  # fmt: skip
        assert updates == ["closures", "closures"]
