"""The outbox's SQL: queueing a message once, claiming due rows under a lease, recording results.

A claim is fenced by its ``claimed_until``: every claim of a row sets it later than any earlier
claim's (a row is only claimed again once the last lease has run out), so a dispatcher that
passes the value it was given changes the row only while the claim is still its own.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import and_, func, not_, or_, select, text, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.sql.elements import ColumnElement

from bot.store.models import OutboxMessage, OutboxStatus
from bot.store.repositories.base import Repository

UNFINISHED = (OutboxStatus.PENDING, OutboxStatus.SENDING)
# Claims on PostgreSQL take this transaction-level advisory lock, one claim at a time, so that a
# claim sees every earlier one (see claim_due). Any fixed 64-bit number will do.
CLAIM_LOCK = 0x5C4001_0B0C


def _claimable(row: type[OutboxMessage], now: datetime) -> ColumnElement[bool]:
    """Pending and due, or being sent by a dispatcher whose lease has run out (it died)."""
    return or_(
        and_(row.status == OutboxStatus.PENDING, row.next_attempt_at <= now),
        and_(row.status == OutboxStatus.SENDING, row.claimed_until < now),
    )


class OutboxRepository(Repository):
    async def enqueue(
        self,
        *,
        key: str,
        channel: str,
        recipient: str,
        text: str,
        purpose: str,
        buttons: list[list[str]],
        reply_to: str | None,
        school_id: int | None,
        flag_id: int | None,
        member_id: int | None,
        staff_id: int | None,
        rule: str | None,
        created_at: datetime,
        due_at: datetime,
    ) -> OutboxMessage:
        """Queue a message; when ``key`` was queued before, nothing changes and that row is
        returned (with PostgreSQL, a concurrent transaction queueing the same key waits for
        this one to end)."""
        dialect = self.session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        statement = (
            insert(OutboxMessage)
            .values(
                idempotency_key=key,
                channel=channel,
                recipient=recipient,
                purpose=purpose,
                text=text,
                buttons=buttons,
                reply_to=reply_to,
                school_id=school_id,
                flag_id=flag_id,
                member_id=member_id,
                staff_id=staff_id,
                rule=rule,
                status=OutboxStatus.PENDING,
                attempts=0,
                next_attempt_at=due_at,
                created_at=created_at,
            )
            .on_conflict_do_nothing(index_elements=["idempotency_key"])
        )
        await self.session.execute(statement)
        row = await self.by_key(key)
        assert row is not None, "inserted or already there"
        return row

    async def by_key(self, key: str) -> OutboxMessage | None:
        query = select(OutboxMessage).where(OutboxMessage.idempotency_key == key)
        return await self.session.scalar(query)

    async def claim_due(
        self,
        now: datetime,
        lease: timedelta,
        limit: int,
        *,
        channels: Collection[str] | None = None,
    ) -> list[OutboxMessage]:
        """Claim up to ``limit`` rows that are due, oldest first: each becomes ``sending`` with
        ``claimed_until = now + lease`` and one more attempt.

        A row waits while an older row to the same recipient is unfinished and not claimable
        (in backoff, or claimed by a live dispatcher), so each recipient gets its messages in
        order. On PostgreSQL claimed rows are locked ``FOR UPDATE SKIP LOCKED`` (two
        dispatchers never claim the same row), and claims take turns on an advisory lock so
        that each sees the rows the last one claimed and does not overtake them; SQLite's
        immediate transactions serialise claims already.
        """
        if self.session.get_bind().dialect.name == "postgresql":
            await self.session.execute(
                text("SELECT pg_advisory_xact_lock(:key)"), {"key": CLAIM_LOCK}
            )
        # Per recipient, the oldest unfinished row that cannot be claimed now: rows after it wait.
        waiting = (
            select(
                OutboxMessage.channel,
                OutboxMessage.recipient,
                func.min(OutboxMessage.id).label("first_id"),
            )
            .where(OutboxMessage.status.in_(UNFINISHED), not_(_claimable(OutboxMessage, now)))
            .group_by(OutboxMessage.channel, OutboxMessage.recipient)
            .subquery()
        )
        due = (
            select(OutboxMessage.id)
            .outerjoin(
                waiting,
                and_(
                    waiting.c.channel == OutboxMessage.channel,
                    waiting.c.recipient == OutboxMessage.recipient,
                ),
            )
            .where(
                _claimable(OutboxMessage, now),
                or_(waiting.c.first_id.is_(None), OutboxMessage.id < waiting.c.first_id),
            )
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True, of=OutboxMessage)
        )
        if channels is not None:
            due = due.where(OutboxMessage.channel.in_(list(channels)))
        claim = (
            update(OutboxMessage)
            .where(OutboxMessage.id.in_(due.scalar_subquery()))
            .values(
                status=OutboxStatus.SENDING,
                claimed_until=now + lease,
                attempts=OutboxMessage.attempts + 1,
            )
            .returning(OutboxMessage)
            .execution_options(synchronize_session=False, populate_existing=True)
        )
        claimed = list(await self.session.scalars(claim))
        return sorted(claimed, key=lambda row: row.id)

    async def extend(
        self, ids: Collection[int], claimed_until: datetime, until: datetime
    ) -> set[int]:
        """Renew a claim's lease to ``until``; the ids still claimed under ``claimed_until``."""
        statement = (
            update(OutboxMessage)
            .where(*self._held(ids, claimed_until))
            .values(claimed_until=until)
            .returning(OutboxMessage.id)
        )
        return set(await self.session.scalars(statement))

    async def release(self, ids: Collection[int], claimed_until: datetime) -> int:
        """Give back claimed rows that were not attempted: pending again, the attempt undone."""
        statement = (
            update(OutboxMessage)
            .where(*self._held(ids, claimed_until))
            .values(
                status=OutboxStatus.PENDING,
                claimed_until=None,
                attempts=OutboxMessage.attempts - 1,
            )
        )
        return await self._count(statement)

    async def mark_sent(self, id: int, delivered_id: str | None, now: datetime) -> bool:
        """Record a delivery. Not fenced: the message went out whoever holds the row now."""
        statement = (
            update(OutboxMessage)
            .where(OutboxMessage.id == id, OutboxMessage.status != OutboxStatus.SENT)
            .values(
                status=OutboxStatus.SENT,
                sent_at=now,
                delivered_id=delivered_id,
                claimed_until=None,
                error=None,
            )
        )
        return await self._count(statement) == 1

    async def mark_retry(
        self,
        id: int,
        error: str,
        next_attempt_at: datetime,
        *,
        claimed_until: datetime | None = None,
    ) -> bool:
        """Pending again from ``next_attempt_at``; with ``claimed_until``, only under that claim."""
        statement = (
            update(OutboxMessage)
            .where(*self._held([id], claimed_until))
            .values(
                status=OutboxStatus.PENDING,
                next_attempt_at=next_attempt_at,
                claimed_until=None,
                error=error[:2000],
            )
        )
        return await self._count(statement) == 1

    async def mark_failed(
        self, id: int, error: str, *, claimed_until: datetime | None = None
    ) -> bool:
        """Given up on; with ``claimed_until``, only under that claim."""
        statement = (
            update(OutboxMessage)
            .where(*self._held([id], claimed_until))
            .values(status=OutboxStatus.FAILED, claimed_until=None, error=error[:2000])
        )
        return await self._count(statement) == 1

    async def mark_undelivered(self, delivered_id: str, error: str) -> bool:
        """A message the platform took and then could not deliver (a status callback said so):
        failed after all, with the reason."""
        statement = (
            update(OutboxMessage)
            .where(
                OutboxMessage.delivered_id == delivered_id,
                OutboxMessage.status == OutboxStatus.SENT,
            )
            .values(status=OutboxStatus.FAILED, error=error[:2000])
        )
        return await self._count(statement) == 1

    # -- queries for tests and reports --------------------------------------------------------

    async def listing(
        self,
        *,
        status: OutboxStatus | None = None,
        purpose: str | None = None,
        recipient: str | None = None,
        limit: int = 10_000,
    ) -> list[OutboxMessage]:
        query = select(OutboxMessage).order_by(OutboxMessage.id).limit(limit)
        if status is not None:
            query = query.where(OutboxMessage.status == status)
        if purpose is not None:
            query = query.where(OutboxMessage.purpose == purpose)
        if recipient is not None:
            query = query.where(OutboxMessage.recipient == recipient)
        return list(await self.session.scalars(query))

    async def counts(self) -> dict[OutboxStatus, int]:
        """Rows per status (every status present, zero when none)."""
        query = select(OutboxMessage.status, func.count()).group_by(OutboxMessage.status)
        found = {OutboxStatus(status): int(n) for status, n in await self.session.execute(query)}
        return {status: found.get(status, 0) for status in OutboxStatus}

    async def oldest_unsent_created_at(self) -> datetime | None:
        """When the oldest message still waiting was queued: how far behind delivery is."""
        query = select(OutboxMessage.created_at).where(OutboxMessage.status.in_(UNFINISHED))
        return await self.session.scalar(query.order_by(OutboxMessage.id).limit(1))

    # -- helpers ------------------------------------------------------------------------------

    @staticmethod
    def _held(ids: Collection[int], claimed_until: datetime | None) -> Sequence[Any]:
        conditions: list[Any] = [
            OutboxMessage.id.in_(list(ids)),
            OutboxMessage.status == OutboxStatus.SENDING,
        ]
        if claimed_until is not None:
            conditions.append(OutboxMessage.claimed_until == claimed_until)
        return conditions

    async def _count(self, statement: Any) -> int:
        result = cast("CursorResult[Any]", await self.session.execute(statement))
        return result.rowcount
