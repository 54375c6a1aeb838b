"""Staff linking their own Telegram account, with a one-time code, to receive alerts."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.services.registration import code_hash, new_code
from bot.store.models import StaffLinkCode, StaffMember
from bot.store.repositories.audit import AuditRepository


async def create_link_code(
    session: AsyncSession,
    staff: StaffMember,
    valid_for: timedelta,
    now: datetime,
    *,
    actor: str = "cli",
) -> str:
    code = new_code()
    session.add(
        StaffLinkCode(
            staff_id=staff.id, code_hash=code_hash(code), created_at=now, expires_at=now + valid_for
        )
    )
    await session.flush()
    await AuditRepository(session).record(
        actor, "staff.link_code_created", f"staff:{staff.id}", staff.school_id
    )
    return code


async def link_account(
    session: AsyncSession, code: str, telegram_user_id: int, now: datetime
) -> StaffMember | None:
    """The staff member the code belongs to, now linked; None for a bad or expired code."""
    query = select(StaffLinkCode).where(StaffLinkCode.code_hash == code_hash(code))
    found = await session.scalar(query.with_for_update())
    if found is None or found.used_at is not None or found.expires_at <= now:
        return None
    staff = await session.get(StaffMember, found.staff_id)
    if staff is None:
        return None
    found.used_at = now
    staff.telegram_user_id = telegram_user_id
    await AuditRepository(session).record(
        f"telegram:user:{telegram_user_id}", "staff.linked", f"staff:{staff.id}", staff.school_id
    )
    return staff


async def linked_staff(session: AsyncSession, telegram_user_id: int) -> list[StaffMember]:
    query = select(StaffMember).where(StaffMember.telegram_user_id == telegram_user_id)
    return list(await session.scalars(query))
