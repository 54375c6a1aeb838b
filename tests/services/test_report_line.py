"""The report line's service: which group and which school a report is for, and the flag it is."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.policy import ChatMessage, Person
from bot.services.moderation import Retention
from bot.services.report_line import answer_which_group, file_report, named_group, school_for
from bot.services.schools import EngineCache
from bot.store.db import transaction
from bot.store.models import FlagSource
from tests.factories import a_chat, a_school, another_school

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]

NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
REPORTER = "whatsapp:+447700900020"


@pytest.mark.parametrize(
    ("text", "group", "rest"),
    [
        ("From Year 3 Parents: you are all idiots", "Year 3 Parents", "you are all idiots"),
        ("from  Year 3   mums :\nline one\nline two", "Year 3 mums", "line one\nline two"),
        ("In Reception: hi", "Reception", "hi"),
        ("From what I hear she is awful", None, "From what I hear she is awful"),
        ("Time: 3pm", None, "Time: 3pm"),
    ],
)
def test_the_group_a_report_names_is_read_from_its_start(
    text: str, group: str | None, rest: str
) -> None:
    named = named_group(text)
    assert (named.group, named.text) == (group, rest)


async def test_the_school_is_the_named_groups_else_the_reporters_else_the_only_one(
    sessions: Sessions,
) -> None:
    async with transaction(sessions) as session:
        peartree = await a_school(session)
        assert (await school_for(session, REPORTER, None)) is peartree  # the only school
        elsewhere = await another_school(session)
        await a_chat(session, peartree, platform_chat_id="-1", title="Year 3 Parents")
        await a_chat(session, elsewhere, platform_chat_id="-2", title="Reception Parents")
        await a_chat(session, elsewhere, platform_chat_id="-3", title="Year 3 Parents")

        assert await school_for(session, REPORTER, "reception parents") is elsewhere
        # Two schools have a "Year 3 Parents": the name does not decide, and nothing else does.
        assert await school_for(session, REPORTER, "Year 3 Parents") is None
        assert await school_for(session, REPORTER, None) is None


async def test_a_report_is_always_a_flag_judged_without_its_reporters_standing(
    sessions: Sessions, engines: EngineCache
) -> None:
    async with transaction(sessions) as session:
        school = await a_school(session)
        engine = await engines.for_school(session, school)
        # The reporter is on the staff list: the words are still someone else's, and judged.
        reporter = Person(id=REPORTER, name="Mrs Anita Patel")
        abusive = ChatMessage("SM1", "ur a vile woman and everyone knows it", NOW, reporter)
        filed = await file_report(
            session, engine, school, abusive, reporter_name="Mrs Anita Patel",
            reported_from=None, retention=RETENTION, now=NOW,
        )  # fmt: skip
        assert [r.rule for r in filed.reasons] == ["abusive-to-parent"]
        assert (filed.flag.source, filed.flag.severity) == (FlagSource.REPORT, "high")
        assert filed.flag.keep_until == NOW + RETENTION.flags

        harmless = ChatMessage("SM2", "see you at the fair", NOW, reporter)
        nothing = await file_report(
            session, engine, school, harmless, reporter_name="Mrs Anita Patel",
            reported_from="Year 3", retention=RETENTION, now=NOW,
        )  # fmt: skip
        assert (nothing.flag.severity, nothing.reasons) == ("low", [])
        assert nothing.chat.id == filed.chat.id
        assert nothing.reporter.id == filed.reporter.id

        # One answer fills every report still waiting for it; a long text is no group's name.
        assert await answer_which_group(session, REPORTER, "x" * 101, NOW) == 0
        assert await answer_which_group(session, REPORTER, " Year  6 ", NOW) == 1
        assert filed.flag.reported_from == "Year 6"
        assert nothing.flag.reported_from == "Year 3"
        assert await answer_which_group(session, REPORTER, "Year 6", NOW) == 0
