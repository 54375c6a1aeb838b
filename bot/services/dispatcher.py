"""Delivering the outbox: claim due rows, send each outside any transaction, record the result.

A claim is a lease: the rows are the dispatcher's until ``claimed_until``, renewed while it
works. A dispatcher that dies (a crash, a kill, a lost machine) stops renewing, the lease runs
out, and another dispatcher claims the rows again: nothing is lost. A row sent but not yet
marked when its dispatcher died is sent a second time, so a crash duplicates at most the
messages that were in flight: one, unless ``concurrency`` says otherwise.

Each recipient gets its messages in the order they were queued: a dispatcher sends one
recipient's rows one after another, stops at the first that must wait, and a claim never takes
a row while an older one to the same recipient is waiting or in flight elsewhere.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.store.db import transaction
from bot.store.models import OutboxMessage, utcnow
from bot.store.repositories.outbox import OutboxRepository

log = logging.getLogger(__name__)

BACKOFF_FIRST = timedelta(seconds=1)
BACKOFF_MAX = timedelta(minutes=10)
POLL_INTERVAL = 1.0
"""Seconds between looks at the outbox when nobody calls ``wake()``."""
# Waiting for a database that is down: from one second up to a minute between tries.
OUTAGE_FIRST, OUTAGE_MAX = 1.0, 60.0

DATABASE_DOWN = (DBAPIError, OSError, PoolTimeoutError)


class RetryLater(Exception):  # noqa: N818 (an outcome a sender reports, named as such)
    """A transient failure (network, HTTP 5xx, flood control): try again, after ``after``
    at the earliest when the server said so."""

    def __init__(self, after: timedelta | None, reason: str) -> None:
        super().__init__(reason)
        self.after = after
        self.reason = reason


class PermanentFailure(Exception):  # noqa: N818
    """Sending again cannot help (the bot was blocked or removed, the chat does not exist)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Sender(Protocol):
    async def send(self, message: OutboxMessage) -> str | None:
        """Deliver ``message``; the platform's id for it, if it has one.

        Raises RetryLater or PermanentFailure; anything else is taken as transient.
        """
        ...


def backoff(attempts: int, retry_after: timedelta | None = None) -> timedelta:
    """How long to wait after the ``attempts``-th failed attempt: 1 s, 2 s, 4 s ... up to ten
    minutes, or the server's ``retry_after`` when that is longer."""
    delay = min(BACKOFF_FIRST * (1 << min(max(attempts - 1, 0), 20)), BACKOFF_MAX)
    return max(delay, retry_after) if retry_after is not None else delay


class _Clock:
    """``now`` as given (tests) or the wall clock, moving on in real time from there."""

    def __init__(self, start: datetime | None) -> None:
        self.start = start or utcnow()
        self.started = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.started)


@dataclass
class _Claim:
    """One batch of claimed rows, and the lease they are held under."""

    held: set[int]
    until: datetime
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    """Held while the lease is renewed or a row is marked, so each sees the current lease."""
    sent: int = 0
    retried: int = 0
    failed: int = 0


class Dispatcher:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        senders: Mapping[str, Sender],
        *,
        lease: timedelta = timedelta(seconds=30),
        max_attempts: int = 8,
        batch: int = 50,
        concurrency: int = 1,
        poll_interval: float = POLL_INTERVAL,
    ) -> None:
        """``senders`` by channel ("telegram", "email"): rows of other channels are left for a
        dispatcher that has their sender.

        ``concurrency`` recipients are sent to at a time (each recipient's rows one after
        another). One is plenty for a school and means a crash duplicates at most one message;
        more helps when network round trips, not Telegram's limits, hold delivery back.
        """
        if lease <= timedelta(0) or max_attempts < 1 or batch < 1 or concurrency < 1:
            raise ValueError("lease, max_attempts, batch and concurrency must be positive")
        self.sessions = sessions
        self.senders = dict(senders)
        self.lease = lease
        self.max_attempts = max_attempts
        self.batch = batch
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """Look at the outbox now: something was just queued."""
        self._wake.set()

    # -- one round --------------------------------------------------------------------------

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Claim a batch of due rows and deliver it; how many rows were claimed.

        Raises a database error when the database is down (rows claimed and not yet marked
        are then delivered again once their lease has run out).
        """
        if not self.senders:
            return 0
        clock = _Clock(now)
        start = clock.now()
        async with transaction(self.sessions) as session:
            rows = await OutboxRepository(session).claim_due(
                start, self.lease, self.batch, channels=self.senders.keys()
            )
        if not rows:
            return 0
        claim = _Claim({row.id for row in rows}, start + self.lease)
        queues: dict[tuple[str, str], list[OutboxMessage]] = {}
        for row in rows:
            queues.setdefault((row.channel, row.recipient), []).append(row)
        turns = asyncio.Semaphore(self.concurrency)
        renewing = asyncio.create_task(self._renew(claim, clock))
        try:
            async with asyncio.TaskGroup() as group:
                for queue in queues.values():
                    group.create_task(self._deliver_in_order(queue, claim, clock, turns))
        finally:
            await _cancel_and_wait([renewing])
            if not renewing.cancelled():
                renewing.result()  # raises the error it died of, if any (it may also just end)
        log.info(
            "outbox: %s sent, %s to try again, %s failed (of %s claimed)",
            claim.sent, claim.retried, claim.failed, len(rows),
        )  # fmt: skip
        return len(rows)

    async def _deliver_in_order(
        self,
        queue: list[OutboxMessage],
        claim: _Claim,
        clock: _Clock,
        turns: asyncio.Semaphore,
    ) -> None:
        """One recipient's rows, oldest first; the rest are given back once one must wait."""
        async with turns:
            for index, row in enumerate(queue):
                if not await self._deliver(row, claim, clock):
                    await self._release([r.id for r in queue[index + 1 :]], claim)
                    return

    async def _deliver(self, row: OutboxMessage, claim: _Claim, clock: _Clock) -> bool:
        """Send one row and record the outcome; False when later rows to the same
        recipient must wait (this one will be tried again, or is no longer ours)."""
        # Sending with less than a third of the lease left could overlap with another
        # dispatcher's claim of the same row: give it back instead.
        if row.id not in claim.held or clock.now() + self.lease / 3 > claim.until:
            await self._release([row.id], claim)
            return False
        if row.attempts > self.max_attempts:
            # Its lease ran out on every try: each dispatcher that took it died with it.
            await self._fail(row, claim, f"abandoned mid-delivery {row.attempts - 1} times")
            return True
        sender = self.senders[row.channel]
        try:
            delivered_id = await sender.send(row)
        except PermanentFailure as failure:
            await self._fail(row, claim, failure.reason)
            return True
        except RetryLater as failure:
            return await self._retry(row, claim, clock, failure.reason, failure.after)
        except Exception as error:  # a bug or an unforeseen error: retried, then given up
            log.exception("outbox row %s: unexpected error from the %s sender", row.id, row.channel)
            return await self._retry(row, claim, clock, f"{type(error).__name__}: {error}", None)
        async with claim.lock, transaction(self.sessions) as session:
            await OutboxRepository(session).mark_sent(row.id, delivered_id, clock.now())
        claim.held.discard(row.id)
        claim.sent += 1
        return True

    async def _retry(
        self,
        row: OutboxMessage,
        claim: _Claim,
        clock: _Clock,
        reason: str,
        after: timedelta | None,
    ) -> bool:
        if row.attempts >= self.max_attempts:
            await self._fail(row, claim, f"gave up after {row.attempts} attempts: {reason}")
            return True
        delay = backoff(row.attempts, after)
        log.info(
            "outbox row %s to %s:%s: %s; attempt %s of %s in %.0fs",
            row.id, row.channel, row.recipient, reason, row.attempts + 1, self.max_attempts,
            delay.total_seconds(),
        )  # fmt: skip
        async with claim.lock, transaction(self.sessions) as session:
            await OutboxRepository(session).mark_retry(
                row.id, reason, clock.now() + delay, claimed_until=claim.until
            )
        claim.held.discard(row.id)
        claim.retried += 1
        return False

    async def _fail(self, row: OutboxMessage, claim: _Claim, reason: str) -> None:
        log.warning(
            "outbox row %s (%s to %s:%s) failed for good: %s",
            row.id, row.purpose, row.channel, row.recipient, reason,
        )  # fmt: skip
        async with claim.lock, transaction(self.sessions) as session:
            await OutboxRepository(session).mark_failed(row.id, reason, claimed_until=claim.until)
        claim.held.discard(row.id)
        claim.failed += 1

    async def _release(self, ids: list[int], claim: _Claim) -> None:
        ids = [id for id in ids if id in claim.held]
        if not ids:
            return
        async with claim.lock, transaction(self.sessions) as session:
            await OutboxRepository(session).release(ids, claim.until)
        claim.held.difference_update(ids)

    async def _renew(self, claim: _Claim, clock: _Clock) -> None:
        """Keep the batch's lease from running out while it is being sent."""
        every = (self.lease / 3).total_seconds()
        while claim.held:
            await asyncio.sleep(every)
            async with claim.lock:
                if not claim.held:
                    return
                until = clock.now() + self.lease
                try:
                    async with transaction(self.sessions) as session:
                        kept = await OutboxRepository(session).extend(
                            claim.held, claim.until, until
                        )
                except DATABASE_DOWN as error:
                    # Senders stop once too little of the lease is left.
                    log.warning("could not renew the outbox lease: %s", error)
                    continue
                lost = claim.held - kept
                if lost:
                    log.warning("outbox rows %s were claimed by another dispatcher", sorted(lost))
                claim.held, claim.until = kept, until

    # -- running ----------------------------------------------------------------------------

    async def run_forever(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop`` is set: at once after ``wake()``, else every poll interval.
        A database outage or an unexpected error is logged and waited out."""
        delay = OUTAGE_FIRST
        while not stop.is_set():
            self._wake.clear()
            try:
                claimed = await self.deliver_due()
            except Exception as error:
                database = _database_error(error)
                log.error(
                    "outbox delivery failed (%s); trying again in %.0fs",
                    "database unavailable" if database else error, delay,
                    exc_info=not database,
                )  # fmt: skip
                await _wait_any(stop, None, delay)
                delay = min(delay * 2, OUTAGE_MAX)
                continue
            delay = OUTAGE_FIRST
            if claimed < self.batch:
                await _wait_any(stop, self._wake, self.poll_interval)


def _database_error(error: BaseException) -> bool:
    if isinstance(error, BaseExceptionGroup):
        return all(_database_error(inner) for inner in error.exceptions)
    return isinstance(error, DATABASE_DOWN)


async def _wait_any(stop: asyncio.Event, wake: asyncio.Event | None, timeout: float) -> None:
    """Sleep up to ``timeout`` seconds, ending early when either event is set."""
    waiters = [asyncio.ensure_future(stop.wait())]
    if wake is not None:
        waiters.append(asyncio.ensure_future(wake.wait()))
    try:
        await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        await _cancel_and_wait(waiters)


async def _cancel_and_wait(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel ``tasks`` and wait until they have ended.

    Not ``await task`` with CancelledError suppressed: that would also swallow a cancellation
    of the caller arriving meanwhile, and a killed dispatcher would carry on.
    """
    for task in tasks:
        task.cancel()
    await asyncio.wait(tasks)
