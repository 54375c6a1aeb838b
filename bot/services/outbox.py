"""Queueing what the system will say, in the caller's transaction (the transactional outbox).

Whatever decides to say something (a flag, a decision, a reminder) calls ``enqueue`` in its own
transaction, so the message exists if and only if the decision was committed. The dispatcher
(``bot.services.dispatcher``) delivers it afterwards, with retries.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import OutboxMessage, utcnow
from bot.store.repositories.outbox import OutboxRepository

MAX_KEY = 160
MAX_RECIPIENT = 254


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    channel: str,
    recipient: str,
    text: str,
    purpose: str,
    buttons: Iterable[Sequence[str]] = (),
    reply_to: str | None = None,
    school_id: int | None = None,
    flag_id: int | None = None,
    member_id: int | None = None,
    staff_id: int | None = None,
    rule: str | None = None,
    now: datetime | None = None,
) -> OutboxMessage:
    """Queue a message to ``recipient`` on ``channel`` ("telegram": a chat id; "email": an
    address), due at once. ``key`` names the message: queueing the same key again (a replayed
    update, a retried job) changes nothing and returns the row queued first.

    ``buttons`` are (label, callback data) pairs, shown one per row under the message.
    ``reply_to`` is the platform's id of a message to answer. Never commits.
    """
    if not key or len(key) > MAX_KEY:
        raise ValueError(f"an outbox key has 1 to {MAX_KEY} characters, not {len(key)}: {key!r}")
    if not recipient or len(recipient) > MAX_RECIPIENT:
        raise ValueError(f"an outbox message needs a recipient, not {recipient!r}")
    if not text:
        raise ValueError("an outbox message needs a text")
    pairs: list[list[str]] = []
    for button in buttons:
        if len(button) != 2:
            raise ValueError(f"a button is a (label, callback data) pair, not {button!r}")
        label, data = button
        pairs.append([str(label), str(data)])
    return await OutboxRepository(session).enqueue(
        key=key,
        channel=channel,
        recipient=recipient,
        text=text,
        purpose=purpose,
        buttons=pairs,
        reply_to=reply_to,
        school_id=school_id,
        flag_id=flag_id,
        member_id=member_id,
        staff_id=staff_id,
        rule=rule,
        created_at=now or utcnow(),
        # Due at once, even when the caller's clock is ahead of the dispatcher's.
        due_at=min(now or utcnow(), utcnow()),
    )
