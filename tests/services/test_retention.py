from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.jobs import Housekeeping
from bot.policy import PolicyEngine
from bot.services import consent
from bot.services.moderation import Retention, check_message
from bot.services.retention import INBOX_KEEP, RetentionDefaults, purge_expired
from bot.services.school_settings import RetentionSettings, SchoolSettings, save_settings
from bot.store.db import transaction
from bot.store.models import (
    AuditEvent,
    Flag,
    InboxItem,
    InboxStatus,
    LoginAttempt,
    School,
    StoredMessage,
)
from bot.store.repositories.inbox import InboxRepository
from tests.conftest import message
from tests.factories import NOW, a_chat, a_member

pytestmark = pytest.mark.anyio
Sessions = async_sessionmaker[AsyncSession]
RETENTION = Retention(metadata=timedelta(days=30), flags=timedelta(days=365))
DEFAULTS = RetentionDefaults(
    metadata=RETENTION.metadata, flags=RETENTION.flags, audit=timedelta(days=2190)
)


async def count(session: AsyncSession, model: type[object]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def a_plain_and_a_flagged_message(session: AsyncSession, engine: PolicyEngine) -> School:
    chat = await a_chat(session)
    member = await a_member(session, chat)
    await consent.give(session, chat, member, "button", NOW)
    plain = message("see you at pick up", id="1")
    rude = message("you absolute idiot", id="2", reply_to="Kerry Marsh")
    for each in (plain, rude):
        await check_message(session, engine, chat, member, each, RETENTION, NOW)
    for row in await session.scalars(select(StoredMessage)):
        row.created_at = NOW
    school = await session.get(School, chat.school_id)
    assert school is not None
    return school


async def test_each_record_goes_when_its_time_is_up(
    sessions: Sessions, engine: PolicyEngine
) -> None:
    async with transaction(sessions) as session:
        await a_plain_and_a_flagged_message(session, engine)
        inbox = InboxRepository(session)
        await inbox.add("telegram", 1, {"update_id": 1})
        await inbox.add("telegram", 2, {"update_id": 2})
        (done,) = [i for i in await session.scalars(select(InboxItem)) if i.update_id == 1]
        inbox.finish(done, InboxStatus.PROCESSED)
        for item in await session.scalars(select(InboxItem)):
            item.received_at = NOW

    async with transaction(sessions) as session:
        soon = await purge_expired(session, NOW + timedelta(days=1), DEFAULTS)
        assert not soon.anything
        month = await purge_expired(session, NOW + RETENTION.metadata + INBOX_KEEP, DEFAULTS)
        assert (month.messages, month.flags, month.updates) == (1, 0, 1)
        assert await count(session, StoredMessage) == 1  # the flagged one is kept longer
        assert await count(session, InboxItem) == 1  # a pending update is never dropped
        year = await purge_expired(session, NOW + RETENTION.flags + timedelta(days=1), DEFAULTS)
        assert (year.messages, year.flags) == (1, 1)
        assert await count(session, Flag) == 0
        recorded = list(await session.scalars(select(AuditEvent).where(
            AuditEvent.action == "retention.purged"
        )))  # fmt: skip
        assert {(e.school_id is None, e.details["messages"]) for e in recorded} == {
            (False, 1),  # the school's message records, each time
            (True, 0),  # the processed update, installation-wide
        }


async def test_a_school_that_shortens_its_periods_loses_older_records_at_once(
    sessions: Sessions, engine: PolicyEngine
) -> None:
    async with transaction(sessions) as session:
        school = await a_plain_and_a_flagged_message(session, engine)
        await save_settings(
            session, school,
            SchoolSettings(retention=RetentionSettings(metadata_days=7, flag_days=60)),
            "test", "retention",
        )  # fmt: skip
    async with transaction(sessions) as session:
        week = await purge_expired(session, NOW + timedelta(days=8), DEFAULTS)
        assert (week.messages, week.flags) == (1, 0)
        two_months = await purge_expired(session, NOW + timedelta(days=61), DEFAULTS)
        assert (two_months.messages, two_months.flags) == (1, 1)
        assert await count(session, StoredMessage) == 0


async def test_the_audit_log_and_sign_in_attempts_are_purged_too(sessions: Sessions) -> None:
    long_ago = NOW - DEFAULTS.audit - timedelta(days=1)
    async with transaction(sessions) as session:
        chat = await a_chat(session)
        for action, school_id, at in (
            ("old.event", chat.school_id, long_ago),
            ("old.installation.event", None, long_ago),
            ("recent.event", chat.school_id, NOW - timedelta(days=1)),
        ):
            session.add(AuditEvent(actor="test", action=action, school_id=school_id, created_at=at))
        at = NOW - timedelta(days=2)
        session.add(LoginAttempt(email="a@b.example", ip="1.2.3.4", succeeded=False, at=at))
    async with transaction(sessions) as session:
        purged = await purge_expired(session, NOW, DEFAULTS)
        assert purged.audit_events == 2
        assert purged.updates == 1  # the sign-in attempt, older than a day
        left = set(await session.scalars(select(AuditEvent.action)))
        assert {"old.event", "old.installation.event"}.isdisjoint(left)
        assert "recent.event" in left
        assert await count(session, LoginAttempt) == 0


async def test_housekeeping_purges_on_a_timer_in_the_process(
    sessions: Sessions, engine: PolicyEngine
) -> None:
    async with transaction(sessions) as session:
        await a_plain_and_a_flagged_message(session, engine)
    job = Housekeeping(sessions, DEFAULTS, every=3600)
    purged = await job.run_once(NOW + RETENTION.flags + timedelta(days=1))
    assert (purged.messages, purged.flags) == (2, 1)


async def test_housekeeping_runs_until_stopped_and_survives_a_failure(
    sessions: Sessions, monkeypatch: pytest.MonkeyPatch
) -> None:
    import asyncio

    runs: list[str] = []
    job = Housekeeping(sessions, DEFAULTS, every=0.01)
    stop = asyncio.Event()

    async def flaky(now: object = None) -> object:
        runs.append("run")
        if len(runs) == 1:
            raise RuntimeError("a bug in one purge")
        if len(runs) == 3:
            stop.set()
        return None

    monkeypatch.setattr(job, "run_once", flaky)
    await asyncio.wait_for(job.run_forever(stop), timeout=5)
    assert runs == ["run", "run", "run"]
