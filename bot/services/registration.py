"""Registering a chat to a school with a single-use, expiring code."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy.ext.asyncio import AsyncSession

from bot.store.models import Chat, ChatStatus, RegistrationCode, School
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.registration import RegistrationCodeRepository
from bot.store.repositories.schools import SchoolRepository

# No 0/O or 1/I: codes are read out over the phone and typed on phones.
_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"
CODE_PATTERN = "[A-HJ-NP-Z2-9]{4}[ -]?[A-HJ-NP-Z2-9]{4}"
"""A code as ``new_code`` makes it (as typed: any case, the hyphen a space or left out), for
telling a code from words: no I, O, 0 or 1, so few English words fit it."""


def new_code() -> str:
    raw = "".join(secrets.choice(_ALPHABET) for _ in range(8))
    return f"{raw[:4]}-{raw[4:]}"


def code_hash(code: str) -> str:
    cleaned = "".join(ch for ch in code.upper() if ch.isalnum())
    return hashlib.sha256(cleaned.encode()).hexdigest()


async def create_code(
    session: AsyncSession,
    school: School,
    class_name: str,
    created_by: str,
    valid_for: timedelta,
    now: datetime,
) -> str:
    """A new code for ``class_name``; only its hash is stored, so show it to the admin now."""
    code = new_code()
    await RegistrationCodeRepository(session).add(
        RegistrationCode(
            school_id=school.id,
            class_name=class_name,
            code_hash=code_hash(code),
            created_by=created_by,
            created_at=now,
            expires_at=now + valid_for,
        )
    )
    await AuditRepository(session).record(
        created_by, "registration_code.created", f"school:{school.id}", school.id,
        class_name=class_name, expires_at=(now + valid_for).isoformat(),
    )  # fmt: skip
    return code


class Outcome(Enum):
    REGISTERED = "registered"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"
    ALREADY = "already"


@dataclass(frozen=True)
class Registration:
    outcome: Outcome
    school: School | None = None
    class_name: str | None = None


async def register_chat(
    session: AsyncSession, chat: Chat, code: str, actor: str, notice_version: str, now: datetime
) -> Registration:
    schools = SchoolRepository(session)
    if chat.status == ChatStatus.REGISTERED and chat.school_id is not None:
        return Registration(Outcome.ALREADY, await schools.get(chat.school_id), chat.class_name)
    found = await RegistrationCodeRepository(session).by_hash(code_hash(code))
    if found is None:
        return Registration(Outcome.UNKNOWN)
    if found.used_at is not None:
        return Registration(Outcome.USED)
    if found.expires_at <= now:
        return Registration(Outcome.EXPIRED)
    found.used_at, found.chat_id = now, chat.id
    chat.school_id, chat.class_name = found.school_id, found.class_name
    chat.status, chat.registered_at, chat.leave_after = ChatStatus.REGISTERED, now, None
    chat.notice_version = notice_version
    await session.flush()
    await AuditRepository(session).record(
        actor, "chat.registered", f"chat:{chat.id}", found.school_id,
        class_name=found.class_name, title=chat.title,
    )  # fmt: skip
    return Registration(Outcome.REGISTERED, await schools.get(found.school_id), found.class_name)
