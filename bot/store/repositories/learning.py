"""The examples a school keeps from its decisions, and its own model."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, or_, select, update

from bot.store.models import (
    Flag,
    FlagReason,
    FlagStatus,
    LearningExample,
    SchoolModel,
    StoredMessage,
)
from bot.store.repositories.base import Repository


@dataclass(frozen=True)
class KeptExample:
    """A kept example as training reads it: the flagged words, the rules the flag was raised
    for, and whether SLT confirmed it (else: not a breach)."""

    flag_id: int
    text: str
    sent_at: datetime
    rules: frozenset[str]
    confirmed: bool


class LearningRepository(Repository):
    async def keep(self, flag_id: int, school_id: int, member_id: int, now: datetime) -> None:
        if await self.session.get(LearningExample, flag_id) is None:
            self.session.add(
                LearningExample(
                    flag_id=flag_id, school_id=school_id, member_id=member_id, kept_at=now
                )
            )
            await self.session.flush()

    async def kept_among(self, flag_ids: Sequence[int]) -> set[int]:
        """Which of these flags are kept as examples."""
        if not flag_ids:
            return set()
        found = await self.session.scalars(
            select(LearningExample.flag_id).where(LearningExample.flag_id.in_(flag_ids))
        )
        return set(found)

    async def drop(self, flag_id: int) -> bool:
        result = await self.session.execute(
            delete(LearningExample).where(LearningExample.flag_id == flag_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def drop_members(self, member_ids: Sequence[int]) -> list[int]:
        """Delete these members' examples; the schools that had any."""
        if not member_ids:
            return []
        schools = await self.session.scalars(
            select(LearningExample.school_id)
            .where(LearningExample.member_id.in_(member_ids))
            .distinct()
        )
        found = sorted(schools)
        if found:
            await self.session.execute(
                delete(LearningExample).where(LearningExample.member_id.in_(member_ids))
            )
        return found

    async def drop_school(self, school_id: int) -> int:
        result = await self.session.execute(
            delete(LearningExample).where(LearningExample.school_id == school_id)
        )
        await self.session.execute(delete(SchoolModel).where(SchoolModel.school_id == school_id))
        return int(getattr(result, "rowcount", 0) or 0)

    async def counts(self, school_id: int) -> dict[FlagStatus, int]:
        """The school's kept examples, by their flag's status."""
        rows = await self.session.execute(
            select(Flag.status, func.count())
            .join(LearningExample, LearningExample.flag_id == Flag.id)
            .where(LearningExample.school_id == school_id)
            .group_by(Flag.status)
        )
        return {FlagStatus(status): count for status, count in rows}

    async def examples(self, school_id: int) -> list[KeptExample]:
        """The school's examples whose words are still held, oldest first."""
        rows = await self.session.execute(
            select(Flag.id, Flag.status, StoredMessage.text, StoredMessage.sent_at)
            .join(LearningExample, LearningExample.flag_id == Flag.id)
            .join(StoredMessage, StoredMessage.id == Flag.message_id)
            .where(
                LearningExample.school_id == school_id,
                StoredMessage.text.is_not(None),
                Flag.status.in_((FlagStatus.CONFIRMED, FlagStatus.FALSE_POSITIVE)),
            )
            .order_by(Flag.id)
        )
        found = [row for row in rows if row.text is not None]
        rules: dict[int, set[str]] = {row.id: set() for row in found}
        if rules:
            for flag_id, rule in await self.session.execute(
                select(FlagReason.flag_id, FlagReason.rule).where(FlagReason.flag_id.in_(rules))
            ):
                rules[flag_id].add(rule)
        return [
            KeptExample(
                row.id,
                row.text,
                row.sent_at,
                frozenset(rules[row.id]),
                row.status == FlagStatus.CONFIRMED,
            )
            for row in found
        ]

    # -- the school's model -------------------------------------------------------------------

    async def model(self, school_id: int) -> SchoolModel | None:
        return await self.session.get(SchoolModel, school_id)

    async def model_row(self, school_id: int) -> SchoolModel:
        """The school's model row, made (untrained) when it has none."""
        row = await self.session.get(SchoolModel, school_id)
        if row is None:
            row = SchoolModel(school_id=school_id, examples=0, report={})
            self.session.add(row)
            await self.session.flush()
        return row

    async def due(self, school_ids: Sequence[int], now: datetime) -> list[int]:
        """Of ``school_ids``, those asked to retrain that no trainer is at work on."""
        if not school_ids:
            return []
        rows = await self.session.scalars(
            select(SchoolModel.school_id).where(
                SchoolModel.school_id.in_(school_ids),
                SchoolModel.requested_at.is_not(None),
                SchoolModel.requested_at <= now,
                or_(SchoolModel.claimed_until.is_(None), SchoolModel.claimed_until < now),
            )
        )
        return sorted(rows)

    async def claim(self, school_id: int, now: datetime, until: datetime) -> datetime | None:
        """Take the retraining asked for (one process wins); the request it answers, or None
        when another process holds it or nothing is asked."""
        row = await self.session.get(SchoolModel, school_id)
        if row is None or row.requested_at is None:
            return None
        result = await self.session.execute(
            update(SchoolModel)
            .where(
                SchoolModel.school_id == school_id,
                or_(SchoolModel.claimed_until.is_(None), SchoolModel.claimed_until < now),
            )
            .values(claimed_until=until)
        )
        if not getattr(result, "rowcount", 0):
            return None
        return row.requested_at
