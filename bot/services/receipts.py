"""Answered webhooks: each is handled once, in the transaction that stores its answer, and a
replay (a retry, or a request captured and sent again) gets the stored answer and changes
nothing."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import WebhookReceipt
from bot.store.repositories.whatsapp import ReceiptRepository

MAX_KEY = 128


@dataclass(frozen=True)
class Answer:
    """What a webhook was answered: an HTTP status and a body (TwiML, JSON or nothing)."""

    status: int
    body: str = ""


@dataclass(frozen=True)
class Claim:
    """A webhook to handle now (``answered`` None), or one answered before (its answer)."""

    receipt: WebhookReceipt
    answered: Answer | None

    @property
    def ref(self) -> str:
        """Names this handling (for message ids and outbox keys): the same for a replay, new
        when a key is handled again after ``fresh_for``."""
        receipt = self.receipt
        seed = f"{receipt.platform}:{receipt.key}:{receipt.received_at.isoformat()}"
        return hashlib.sha256(seed.encode()).hexdigest()[:32]


def key_of(*parts: str) -> str:
    """A receipt key from its parts, hashed when it would be too long to store."""
    key = ":".join(parts)
    if len(key) <= MAX_KEY:
        return key
    return f"{parts[0]}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


async def claim(
    session: AsyncSession,
    platform: str,
    key: str,
    now: datetime,
    *,
    fresh_for: timedelta | None = None,
) -> Claim:
    """Claim ``key`` for handling in this transaction, or find how it was answered.

    ``fresh_for``: a key seen longer ago than this is not a replay but the same thing happening
    again (for webhooks whose key is derived from their content): it is handled anew.
    """
    if len(key) > MAX_KEY:
        raise ValueError(f"a receipt key has at most {MAX_KEY} characters: {key!r}")
    receipts = ReceiptRepository(session)
    found = None
    for _ in range(2):  # a receipt purged between the two statements is claimed on the second go
        claimed = await receipts.claim(platform, key, now)
        if claimed is not None:
            return Claim(claimed, None)
        found = await receipts.find(platform, key)
        if found is not None:
            break
    if found is None:
        raise RuntimeError(f"receipt {platform}:{key} can be neither claimed nor found")
    if fresh_for is not None and found.received_at < now - fresh_for:
        found.received_at, found.status_code, found.body = now, 0, ""
        await session.flush()
        return Claim(found, None)
    return Claim(found, Answer(found.status_code, found.body))


async def record(session: AsyncSession, claimed: Claim, answer: Answer) -> None:
    """Store the answer given to a claimed webhook (in the transaction that handled it)."""
    claimed.receipt.status_code = answer.status
    claimed.receipt.body = answer.body
    await session.flush()
