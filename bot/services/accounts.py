"""Staff accounts for the admin pages: passwords (Argon2id), two-factor codes (TOTP), throttling.

Hashing takes a noticeable fraction of a second on purpose; it runs in a worker thread so the
event loop keeps serving everyone else meanwhile.
"""

from __future__ import annotations

import asyncio
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError, ConflictError, SignInRequiredError, TooManyAttemptsError
from bot.services.access import TWO_FACTOR_REQUIRED
from bot.store.models import School, User, UserRole
from bot.store.repositories.accounts import LoginAttemptRepository, UserRepository
from bot.store.repositories.audit import AuditRepository

MIN_PASSWORD = 12
MAX_PASSWORD = 1024
ISSUER = "Schoolgate"
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class Throttle:
    """Failed attempts allowed within ``window``, per account and per address, before refusing."""

    window: timedelta = timedelta(minutes=15)
    per_account: int = 5
    per_address: int = 20


hasher = PasswordHasher()  # Argon2id, RFC 9106's low-memory profile: 64 MiB, 3 passes
# Verified when no account has the e-mail given, so an unknown address takes as long as a known
# one and the timing does not tell which addresses have accounts.
_DUMMY_HASH = hasher.hash("not a real password, only for timing")

SIGN_IN_FAILED = "That e-mail address and password do not match an account."


def normalise_email(email: str) -> str:
    cleaned = email.strip().lower()
    if not _EMAIL.match(cleaned) or len(cleaned) > 254:
        raise BadInputError(f"{email!r} is not an e-mail address")
    return cleaned


def check_password_rules(password: str, email: str = "") -> None:
    if len(password) < MIN_PASSWORD:
        raise BadInputError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise BadInputError(f"a password has at most {MAX_PASSWORD} characters")
    if email and password.strip().lower() == email.strip().lower():
        raise BadInputError("a password must not be the e-mail address")


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(hasher.hash, password)


async def _verify(stored_hash: str, password: str) -> bool:
    def verify() -> bool:
        try:
            return hasher.verify(stored_hash, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(verify)


def needs_two_factor(user: User) -> bool:
    """Whether signing in takes a code as well: required for some roles, chosen by others."""
    return user.role in TWO_FACTOR_REQUIRED or user.totp_confirmed_at is not None


async def create_user(
    session: AsyncSession,
    school: School,
    *,
    email: str,
    name: str,
    role: UserRole,
    password: str,
    actor: str,
    now: datetime,
) -> User:
    email = normalise_email(email)
    if not name.strip():
        raise BadInputError("give the person's name")
    check_password_rules(password, email)
    users = UserRepository(session)
    if await users.by_email(email) is not None:
        raise ConflictError(f"there is already an account for {email}")
    user = await users.add(
        User(
            school_id=school.id,
            email=email,
            name=name.strip(),
            role=UserRole(role),
            password_hash=await hash_password(password),
            created_at=now,
            password_changed_at=now,
        )
    )
    await AuditRepository(session).record(
        actor, "account.created", f"user:{user.id}", school.id, email=email, role=str(role)
    )
    return user


async def _throttled(
    session: AsyncSession, email: str, ip: str, throttle: Throttle, now: datetime
) -> None:
    attempts = LoginAttemptRepository(session)
    since = now - throttle.window
    for scope, limit in (
        ({"email": email}, throttle.per_account),
        ({"ip": ip}, throttle.per_address),
    ):
        if await attempts.failures_since(since, **scope) >= limit:
            oldest = await attempts.oldest_failure_since(since, **scope) or now
            wait = max(1, round((oldest + throttle.window - now).total_seconds() / 60))
            raise TooManyAttemptsError(
                f"Too many attempts to sign in. Please wait {wait} minute{'s' * (wait != 1)} "
                "and try again."
            )


async def check_password(
    session: AsyncSession, email: str, password: str, *, ip: str, throttle: Throttle, now: datetime
) -> User:
    """The account whose password this is; SignInRequiredError (one message for every reason)
    or TooManyAttemptsError otherwise. Every try is recorded for throttling."""
    email = email.strip().lower()[:254]
    await _throttled(session, email, ip, throttle, now)
    user = await UserRepository(session).by_email(email)
    if user is None:
        await _verify(_DUMMY_HASH, password)
        ok = False
    else:
        ok = await _verify(user.password_hash, password) and user.active
    await LoginAttemptRepository(session).record(email, ip, ok, now)
    if not ok or user is None:
        raise SignInRequiredError(SIGN_IN_FAILED)
    if hasher.check_needs_rehash(user.password_hash):
        user.password_hash = await hash_password(password)
    return user


# -- two-factor ------------------------------------------------------------------------------


def new_totp_secret() -> str:
    return pyotp.random_base32()


def provisioning_uri(user: User, secret: str, school_name: str) -> str:
    """What the authenticator app scans: it names the school and the account."""
    return pyotp.TOTP(secret).provisioning_uri(
        name=user.email, issuer_name=f"{ISSUER} ({school_name})"
    )


def _matching_step(secret: str, code: str, now: datetime) -> int | None:
    """The time step ``code`` belongs to, allowing one step of clock drift either way."""
    code = re.sub(r"\s", "", code)
    if not re.fullmatch(r"\d{6}", code):
        return None
    totp = pyotp.TOTP(secret)
    current = totp.timecode(now)
    for step in (current - 1, current, current + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


async def check_code(
    session: AsyncSession, user: User, code: str, *, ip: str, throttle: Throttle, now: datetime
) -> None:
    """Accept a code from the user's authenticator app once; refuse a wrong or reused one."""
    await _throttled(session, user.email, ip, throttle, now)
    step = None
    if user.totp_secret is not None and user.totp_confirmed_at is not None:
        step = _matching_step(user.totp_secret, code, now)
    ok = step is not None and (user.totp_last_step is None or step > user.totp_last_step)
    await LoginAttemptRepository(session).record(user.email, ip, ok, now)
    if not ok:
        raise SignInRequiredError("That code is not right. Use the newest code your app shows.")
    user.totp_last_step = step


async def enrol_two_factor(
    session: AsyncSession,
    user: User,
    secret: str,
    code: str,
    *,
    ip: str,
    throttle: Throttle,
    now: datetime,
) -> None:
    """Turn two-factor on once the app shows a right code for the new secret."""
    await _throttled(session, user.email, ip, throttle, now)
    step = _matching_step(secret, code, now)
    await LoginAttemptRepository(session).record(user.email, ip, step is not None, now)
    if step is None:
        raise BadInputError(
            "That code does not match. Check the app's clock is right and enter the newest code."
        )
    user.totp_secret, user.totp_confirmed_at, user.totp_last_step = secret, now, step
    await AuditRepository(session).record(
        f"user:{user.id}", "account.two_factor_enabled", f"user:{user.id}", user.school_id
    )


async def change_password(
    session: AsyncSession, user: User, current: str, new: str, *, actor: str, now: datetime
) -> None:
    if not await _verify(user.password_hash, current):
        raise BadInputError("the current password is not right")
    check_password_rules(new, user.email)
    await set_password(session, user, new, actor=actor, now=now)


async def set_password(
    session: AsyncSession, user: User, new: str, *, actor: str, now: datetime
) -> None:
    """Set a new password (sessions elsewhere are the caller's to end)."""
    check_password_rules(new, user.email)
    user.password_hash = await hash_password(new)
    user.password_changed_at = now
    await AuditRepository(session).record(
        actor, "account.password_changed", f"user:{user.id}", user.school_id
    )


async def reset_two_factor(session: AsyncSession, user: User, *, actor: str) -> None:
    """Forget the account's authenticator app (a lost phone); it is set up again at sign-in."""
    user.totp_secret, user.totp_confirmed_at, user.totp_last_step = None, None, None
    await AuditRepository(session).record(
        actor, "account.two_factor_reset", f"user:{user.id}", user.school_id
    )


def temporary_password() -> str:
    """A strong password for a new account, shown once to the administrator who made it."""
    return "-".join(secrets.token_urlsafe(6) for _ in range(3))


async def update_account(
    session: AsyncSession,
    user: User,
    *,
    name: str,
    role: UserRole,
    active: bool,
    actor: str,
) -> None:
    """Change an account's name, role or whether it may sign in, keeping at least one active
    administrator so that nobody can lock the school out of its own configuration."""
    if not name.strip():
        raise BadInputError("give the person's name")
    losing_admin = (
        user.role == UserRole.ADMIN and user.active and (role != UserRole.ADMIN or not active)
    )
    if losing_admin:
        admins = [
            other
            for other in await UserRepository(session).for_school(user.school_id)
            if other.role == UserRole.ADMIN and other.active and other.id != user.id
        ]
        if not admins:
            raise ConflictError("the school needs at least one active administrator")
    changes = {
        key: value
        for key, value, old in (
            ("name", name.strip(), user.name),
            ("role", str(role), str(user.role)),
            ("active", active, user.active),
        )
        if value != old
    }
    user.name, user.role, user.active = name.strip(), UserRole(role), active
    if changes:
        await AuditRepository(session).record(
            actor, "account.changed", f"user:{user.id}", user.school_id, **changes
        )
