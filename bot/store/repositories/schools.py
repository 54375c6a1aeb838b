from __future__ import annotations

from typing import Any

from sqlalchemy import select

from bot.store.models import School, StaffMember
from bot.store.repositories.base import Repository


class SchoolRepository(Repository):
    async def get(self, school_id: int) -> School | None:
        return await self.session.get(School, school_id)

    async def by_slug(self, slug: str) -> School | None:
        return await self.session.scalar(select(School).where(School.slug == slug))

    async def all(self) -> list[School]:
        return list(await self.session.scalars(select(School).order_by(School.id)))

    async def save(self, slug: str, name: str, config: dict[str, Any]) -> School:
        school = await self.by_slug(slug)
        if school is None:
            school = School(slug=slug, name=name, config=config)
            self.session.add(school)
        else:
            school.name, school.config = name, config
        await self.session.flush()
        return school

    async def staff(self, school_id: int) -> list[StaffMember]:
        query = select(StaffMember).where(StaffMember.school_id == school_id)
        return list(await self.session.scalars(query.order_by(StaffMember.id)))

    async def replace_staff(self, school_id: int, members: list[StaffMember]) -> None:
        """Make the staff list ``members`` (matched by name, keeping linked accounts)."""
        existing = {member.name: member for member in await self.staff(school_id)}
        for member in members:
            current = existing.pop(member.name, None)
            if current is None:
                member.school_id = school_id
                self.session.add(member)
            else:
                current.role, current.handles = member.role, member.handles
                current.slt, current.dsl = member.slt, member.dsl
                current.email, current.phone = member.email, member.phone
        for gone in existing.values():
            await self.session.delete(gone)
        await self.session.flush()
