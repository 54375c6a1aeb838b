from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import case, func, select

from bot.store.models import Chat, Flag, FlagReason, FlagStatus
from bot.store.repositories.base import Repository

DECIDED = (FlagStatus.CONFIRMED, FlagStatus.FALSE_POSITIVE, FlagStatus.ESCALATED)


@dataclass(frozen=True)
class RuleOutcome:
    decided: int
    """Flags with a reason for the rule that SLT decided (confirmed, not a breach, escalated)."""
    false_positives: int
    """Of those, the ones found not to be a breach."""


class RuleOutcomeRepository(Repository):
    async def by_rule(self, school_id: int) -> dict[str, RuleOutcome]:
        """How the school's decided flags turned out, by each rule they were raised for."""
        false_positive = case((Flag.status == FlagStatus.FALSE_POSITIVE, Flag.id))
        query = (
            select(
                FlagReason.rule,
                func.count(Flag.id.distinct()),
                func.count(false_positive.distinct()),
            )
            .join(Flag, Flag.id == FlagReason.flag_id)
            .join(Chat, Chat.id == Flag.chat_id)
            .where(Chat.school_id == school_id, Flag.status.in_(DECIDED))
            .group_by(FlagReason.rule)
        )
        return {
            rule: RuleOutcome(decided, false_positives)
            for rule, decided, false_positives in await self.session.execute(query)
        }
