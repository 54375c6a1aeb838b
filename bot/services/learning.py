"""Learning from the school's decisions: a school may choose to keep flags SLT decided
(confirmed, or not a breach) as examples for its own model.

The choice is off by default and said in the notice members agree to: turning it on publishes
the notice again with a paragraph about it, so nobody's messages are kept as examples under a
notice that did not say so, and only flags raised after that are kept. An example holds no
words of its own (it points at the flagged message), and it goes when the member withdraws or
is erased (the school's model, refitted with it, is dropped at once and retrained without it),
when the flag's retention ends, when the decision becomes an escalation (a safeguarding matter
is never an example), and when the school turns the choice off (with its model).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.policy import SchoolConfig
from bot.services.moderation import Retention
from bot.services.notices import ask_again
from bot.services.school_settings import Learning, save_settings, settings_of
from bot.store.models import Flag, FlagSource, FlagStatus, School, SchoolModel, utcnow
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.learning import LearningRepository
from bot.store.repositories.schools import SchoolRepository
from bot.texts import Notice

KEPT_DECISIONS = (FlagStatus.CONFIRMED, FlagStatus.FALSE_POSITIVE)
NIGHTLY = time(2, 0)
"""School time at which a learning school's model is retrained each night."""


async def keep_decision(
    session: AsyncSession, flag: Flag, school: School, member_id: int, now: datetime
) -> None:
    """After SLT decide ``flag``: keep it as an example if the school learns and the decision
    can teach (confirmed or not a breach, about a chat message from a member who agreed to a
    notice saying so); otherwise make sure it is not kept."""
    learning = settings_of(school).learning
    keepable = (
        learning is not None
        and flag.source == FlagSource.CHAT
        and flag.status in KEPT_DECISIONS
        and not flag.safeguarding
        and flag.created_at >= learning.since
    )
    examples = LearningRepository(session)
    if keepable:
        await examples.keep(flag.id, school.id, member_id, now)
    elif await examples.drop(flag.id):
        await _forget_model(session, school.id, now)


async def forget_members(session: AsyncSession, member_ids: Sequence[int], now: datetime) -> int:
    """Delete these members' examples and drop every model refitted with them (each school
    falls back to the corpus model until its own is retrained without them); how many schools
    had some."""
    schools = await LearningRepository(session).drop_members(member_ids)
    for school_id in schools:
        await _forget_model(session, school_id, now)
    return len(schools)


async def _forget_model(session: AsyncSession, school_id: int, now: datetime) -> None:
    row = await LearningRepository(session).model_row(school_id)
    row.weights, row.trained_at, row.requested_at = None, None, now
    school = await SchoolRepository(session).get(school_id)
    if school is not None:
        school.updated_at = utcnow()  # every process rebuilds the school's engine without it
    await session.flush()


async def set_learning(
    session: AsyncSession,
    school: School,
    on: bool,
    default: Notice,
    installation: Retention,
    actor: str,
    now: datetime,
    *,
    whatsapp_suffix: str = "",
) -> str | None:
    """Turn learning from decisions on or off. On: the notice goes out again as a new version
    that says so, and every member is asked to agree again (its version is returned). Off:
    every example and the school's model are deleted. Nothing changes when already so."""
    settings = settings_of(school)
    if (settings.learning is not None) == on:
        return None
    learning = Learning(since=now) if on else None
    await save_settings(
        session, school, settings.changed(learning=learning), actor, "learning from decisions"
    )
    if not on:
        deleted = await LearningRepository(session).drop_school(school.id)
        await AuditRepository(session).record(
            actor, "learning.stopped", f"school:{school.id}", school.id, examples_deleted=deleted
        )
        return None
    await AuditRepository(session).record(
        actor, "learning.started", f"school:{school.id}", school.id
    )
    return await ask_again(
        session, school, default, installation, actor, now, whatsapp_suffix=whatsapp_suffix
    )


async def request_retraining(
    session: AsyncSession, school: School, actor: str, now: datetime
) -> bool:
    """Ask for the school's model to be retrained (by the trainer in a serve or worker
    process, within a minute or so); False when the school does not learn from decisions."""
    if settings_of(school).learning is None:
        return False
    row = await LearningRepository(session).model_row(school.id)
    row.requested_at = now
    await AuditRepository(session).record(
        actor, "learning.retrain_requested", f"school:{school.id}", school.id
    )
    return True


def last_nightly(config: SchoolConfig, now: datetime) -> datetime:
    """The most recent nightly retraining time, in school time, at or before ``now``."""
    zone = config.school.zone
    local = now.astimezone(zone)
    tonight = datetime.combine(local.date(), NIGHTLY, tzinfo=zone)
    return tonight if tonight <= local else tonight - timedelta(days=1)


async def ask_nightly(session: AsyncSession, now: datetime) -> list[int]:
    """Ask for every learning school's nightly retraining that is due; the schools that learn
    from their decisions."""
    learning = LearningRepository(session)
    schools = []
    for school in await SchoolRepository(session).all():
        if settings_of(school).learning is None:
            continue
        schools.append(school.id)
        row = await learning.model_row(school.id)
        nightly = last_nightly(SchoolConfig.model_validate(school.config), now)
        if row.requested_at is None and (row.trained_at is None or row.trained_at < nightly):
            row.requested_at = now
    return schools


@dataclass(frozen=True)
class RuleChange:
    rule: str
    examples: int
    confirmed: int
    before_flagged: int
    before_not_a_breach: int
    after_flagged: int
    after_not_a_breach: int

    @staticmethod
    def rate(flagged: int, not_a_breach: int) -> float | None:
        return not_a_breach / flagged if flagged else None

    @property
    def before_rate(self) -> float | None:
        return self.rate(self.before_flagged, self.before_not_a_breach)

    @property
    def after_rate(self) -> float | None:
        return self.rate(self.after_flagged, self.after_not_a_breach)


@dataclass(frozen=True)
class LearningStatus:
    on: bool
    since: datetime | None
    confirmed: int
    not_a_breach: int
    trained_at: datetime | None
    trained_on: int
    """The school's examples its model was refitted with."""
    waiting: bool
    """A retraining is asked for and not yet done."""
    problem: str | None
    changes: list[RuleChange]


async def status(session: AsyncSession, school: School) -> LearningStatus:
    learning = settings_of(school).learning
    counts = await LearningRepository(session).counts(school.id)
    row: SchoolModel | None = await LearningRepository(session).model(school.id)
    report = (row.report if row is not None and row.weights is not None else None) or {}
    changes = [
        RuleChange(
            rule=rule,
            examples=int(data["examples"]),
            confirmed=int(data["confirmed"]),
            before_flagged=int(data["before"]["flagged"]),
            before_not_a_breach=int(data["before"]["not_a_breach"]),
            after_flagged=int(data["after"]["flagged"]),
            after_not_a_breach=int(data["after"]["not_a_breach"]),
        )
        for rule, data in report.items()
    ]
    return LearningStatus(
        on=learning is not None,
        since=learning.since if learning else None,
        confirmed=counts.get(FlagStatus.CONFIRMED, 0),
        not_a_breach=counts.get(FlagStatus.FALSE_POSITIVE, 0),
        trained_at=row.trained_at if row is not None and row.weights is not None else None,
        trained_on=row.examples if row is not None and row.weights is not None else 0,
        waiting=row is not None and row.requested_at is not None,
        problem=row.problem if row is not None else None,
        changes=changes,
    )
