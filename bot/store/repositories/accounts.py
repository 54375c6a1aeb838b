from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update

from bot.store.models import LoginAttempt, User, UserSession
from bot.store.repositories.base import Repository


class UserRepository(Repository):
    async def get(self, user_id: int) -> User | None:
        return await self.session.get(User, user_id)

    async def in_school(self, school_id: int, user_id: int) -> User | None:
        query = select(User).where(User.id == user_id, User.school_id == school_id)
        return await self.session.scalar(query)

    async def by_email(self, email: str) -> User | None:
        return await self.session.scalar(select(User).where(User.email == email.strip().lower()))

    async def for_school(self, school_id: int) -> list[User]:
        query = select(User).where(User.school_id == school_id).order_by(User.name, User.id)
        return list(await self.session.scalars(query))

    async def names(self, user_ids: list[int]) -> dict[int, str]:
        if not user_ids:
            return {}
        query = select(User.id, User.name).where(User.id.in_(user_ids))
        return {int(id): str(name) for id, name in (await self.session.execute(query)).all()}

    async def add(self, user: User) -> User:
        self.session.add(user)
        await self.session.flush()
        return user


class UserSessionRepository(Repository):
    async def by_token_hash(self, token_hash: str) -> UserSession | None:
        query = select(UserSession).where(UserSession.token_hash == token_hash)
        return await self.session.scalar(query)

    async def add(self, user_session: UserSession) -> UserSession:
        self.session.add(user_session)
        await self.session.flush()
        return user_session

    async def active_for(self, user_id: int, now: datetime) -> list[UserSession]:
        query = select(UserSession).where(
            UserSession.user_id == user_id,
            UserSession.revoked_at.is_(None),
            UserSession.expires_at > now,
        )
        return list(await self.session.scalars(query.order_by(UserSession.last_seen_at.desc())))

    async def revoke_all(
        self, user_id: int, now: datetime, *, except_id: int | None = None
    ) -> None:
        statement = (
            update(UserSession)
            .where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
            .values(revoked_at=now)
        )
        if except_id is not None:
            statement = statement.where(UserSession.id != except_id)
        await self.session.execute(statement)

    async def purge_ended(self, before: datetime) -> None:
        """Forget sessions that ended (expired or revoked) before ``before``."""
        await self.session.execute(
            delete(UserSession).where(
                (UserSession.expires_at < before) | (UserSession.revoked_at < before)
            )
        )


class LoginAttemptRepository(Repository):
    async def record(self, email: str, ip: str, succeeded: bool, at: datetime) -> None:
        self.session.add(LoginAttempt(email=email, ip=ip, succeeded=succeeded, at=at))
        await self.session.flush()

    async def failures_since(
        self, since: datetime, *, email: str | None = None, ip: str | None = None
    ) -> int:
        query = (
            select(func.count())
            .select_from(LoginAttempt)
            .where(LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since)
        )
        if email is not None:
            query = query.where(LoginAttempt.email == email)
        if ip is not None:
            query = query.where(LoginAttempt.ip == ip)
        return int(await self.session.scalar(query) or 0)

    async def oldest_failure_since(
        self, since: datetime, *, email: str | None = None, ip: str | None = None
    ) -> datetime | None:
        query = select(func.min(LoginAttempt.at)).where(
            LoginAttempt.succeeded.is_(False), LoginAttempt.at >= since
        )
        if email is not None:
            query = query.where(LoginAttempt.email == email)
        if ip is not None:
            query = query.where(LoginAttempt.ip == ip)
        return await self.session.scalar(query)

    async def purge_before(self, before: datetime) -> None:
        await self.session.execute(delete(LoginAttempt).where(LoginAttempt.at < before))
