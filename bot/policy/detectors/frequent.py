"""Frequent contact: a parent contacting staff more often than the school allows.

This needs history, so it is a pure function over the times a sender contacted staff; the live
pipeline supplies them. ``schoolgate classify`` looks at one message at a time and never emits it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.policy.rules import RuleId
from bot.policy.verdict import Finding


@dataclass(frozen=True, slots=True)
class ContactLimit:
    max_messages: int
    window: timedelta

    def __post_init__(self) -> None:
        if self.max_messages < 1:
            raise ValueError("frequent-contact max_messages must be at least 1")
        if self.window <= timedelta(0):
            raise ValueError("frequent-contact window must be positive")


def frequent_contact(
    contact_times: Iterable[datetime], now: datetime, limit: ContactLimit
) -> Finding | None:
    """A finding when the contacts within ``limit.window`` up to ``now`` exceed the limit.

    ``contact_times`` should include the message being judged (sent at ``now``).
    """
    since = now - limit.window
    recent = sorted(t for t in contact_times if since < t <= now)
    if len(recent) <= limit.max_messages:
        return None
    days = limit.window / timedelta(days=1)
    span = f"{days:g} days" if days >= 1 else f"{limit.window / timedelta(hours=1):g} hours"
    return Finding(
        RuleId.FREQUENT_CONTACT,
        f"{len(recent)} messages to staff in {span} (the school's limit is {limit.max_messages})",
    )
