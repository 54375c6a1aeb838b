"""Accounts: the school's administrators add staff who sign in, change their roles, reset a lost
authenticator app, and sign people out.

A new account (or a new password) gets a strong temporary password that is shown once to the
administrator, to hand over in person; Schoolgate never e-mails passwords.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from api.admin.deps import DbSession, SignedIn, requires, school_of
from api.admin.templating import redirect, render
from bot.errors import NotFoundError
from bot.services import accounts, user_sessions
from bot.services.access import ROLE_LABELS, Permission
from bot.store.models import MAX_ID, User, UserRole, utcnow
from bot.store.repositories.accounts import UserRepository

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/accounts", tags=["accounts"])

Admin = Annotated[SignedIn, requires(Permission.MANAGE_ACCOUNTS)]
AccountId = Annotated[int, Path(ge=1, le=MAX_ID, description="The account's id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such account at your school"}
}


class AccountOut(BaseModel):
    id: int
    email: str
    name: str
    role: UserRole
    active: bool
    two_factor: bool
    created_at: datetime
    last_login_at: datetime | None


class NewAccount(BaseModel):
    email: str = Field(min_length=3, max_length=254)
    name: str = Field(min_length=1, max_length=200)
    role: UserRole


class AccountChange(BaseModel):
    name: str = Field(min_length=1, max_length=200)
    role: UserRole
    active: bool


class NewPassword(BaseModel):
    account: AccountOut
    temporary_password: str
    """Shown once: give it to the person, who can change it on their account page."""


def _out(user: User) -> AccountOut:
    return AccountOut(
        id=user.id, email=user.email, name=user.name, role=user.role, active=user.active,
        two_factor=user.totp_confirmed_at is not None, created_at=user.created_at,
        last_login_at=user.last_login_at,
    )  # fmt: skip


async def _account(db: DbSession, admin: SignedIn, account_id: AccountId) -> User:
    found = await UserRepository(db).in_school(admin.school_id, account_id)
    if found is None:
        raise NotFoundError("There is no such account at your school.")
    return found


async def _create(db: DbSession, admin: SignedIn, new: NewAccount) -> tuple[User, str]:
    password = accounts.temporary_password()
    user = await accounts.create_user(
        db, await school_of(db, admin), email=new.email, name=new.name, role=new.role,
        password=password, actor=admin.actor, now=utcnow(),
    )  # fmt: skip
    return user, password


async def _new_password(db: DbSession, admin: SignedIn, user: User) -> str:
    password = accounts.temporary_password()
    await accounts.set_password(db, user, password, actor=admin.actor, now=utcnow())
    await user_sessions.end_all(db, user, utcnow())
    return password


# -- pages ------------------------------------------------------------------------------------


@pages.get("/accounts")
async def accounts_page(request: Request, db: DbSession, admin: Admin) -> HTMLResponse:
    users = await UserRepository(db).for_school(admin.school_id)
    return render(
        request, "accounts/list.html", {"accounts": users, "roles": ROLE_LABELS}, user=admin
    )


@pages.post("/accounts")
async def add_account(
    request: Request,
    db: DbSession,
    admin: Admin,
    email: Annotated[str, Form(max_length=254)],
    name: Annotated[str, Form(max_length=200)],
    role: Annotated[UserRole, Form()],
) -> HTMLResponse:
    user, password = await _create(db, admin, NewAccount(email=email, name=name, role=role))
    return render(
        request, "accounts/password.html", {"account": user, "password": password, "new": True},
        user=admin,
    )  # fmt: skip


@pages.get("/accounts/{account_id}")
async def account_page(
    request: Request, db: DbSession, admin: Admin, account_id: AccountId
) -> HTMLResponse:
    user = await _account(db, admin, account_id)
    return render(
        request, "accounts/detail.html", {"account": user, "roles": ROLE_LABELS}, user=admin
    )


@pages.post("/accounts/{account_id}")
async def change_account(
    request: Request,
    db: DbSession,
    admin: Admin,
    account_id: AccountId,
    name: Annotated[str, Form(max_length=200)],
    role: Annotated[UserRole, Form()],
    active: Annotated[bool, Form()] = False,
) -> Response:
    user = await _account(db, admin, account_id)
    await accounts.update_account(db, user, name=name, role=role, active=active, actor=admin.actor)
    if not user.active:
        await user_sessions.end_all(db, user, utcnow())
    return redirect(request, f"/accounts/{user.id}", f"Saved {user.name}'s account.")


@pages.post("/accounts/{account_id}/password")
async def reset_password(
    request: Request, db: DbSession, admin: Admin, account_id: AccountId
) -> HTMLResponse:
    user = await _account(db, admin, account_id)
    password = await _new_password(db, admin, user)
    return render(
        request, "accounts/password.html", {"account": user, "password": password, "new": False},
        user=admin,
    )  # fmt: skip


@pages.post("/accounts/{account_id}/two-factor")
async def reset_two_factor(
    request: Request, db: DbSession, admin: Admin, account_id: AccountId
) -> Response:
    user = await _account(db, admin, account_id)
    await accounts.reset_two_factor(db, user, actor=admin.actor)
    await user_sessions.end_all(db, user, utcnow())
    return redirect(
        request, f"/accounts/{user.id}",
        f"{user.name} will set up a new authenticator app when they next sign in.",
    )  # fmt: skip


@pages.post("/accounts/{account_id}/sign-out")
async def sign_out_everywhere(
    request: Request, db: DbSession, admin: Admin, account_id: AccountId
) -> Response:
    user = await _account(db, admin, account_id)
    await user_sessions.end_all(db, user, utcnow(), keep=admin.session)
    return redirect(request, f"/accounts/{user.id}", f"{user.name} is signed out everywhere.")


# -- JSON -------------------------------------------------------------------------------------


@api.get("")
async def list_accounts(db: DbSession, admin: Admin) -> list[AccountOut]:
    """Every account of your school."""
    return [_out(user) for user in await UserRepository(db).for_school(admin.school_id)]


@api.post("", status_code=201, responses={409: {"description": "The e-mail has an account"}})
async def create_account(body: NewAccount, db: DbSession, admin: Admin) -> NewPassword:
    """Make an account; its temporary password is in the answer, once."""
    user, password = await _create(db, admin, body)
    return NewPassword(account=_out(user), temporary_password=password)


@api.get("/{account_id}", responses=NOT_FOUND)
async def get_account(account_id: AccountId, db: DbSession, admin: Admin) -> AccountOut:
    return _out(await _account(db, admin, account_id))


@api.put(
    "/{account_id}",
    responses={**NOT_FOUND, 409: {"description": "It would leave no active administrator"}},
)
async def update_account(
    account_id: AccountId, body: AccountChange, db: DbSession, admin: Admin
) -> AccountOut:
    """Change the name, role, or whether the account may sign in (disabling signs it out)."""
    user = await _account(db, admin, account_id)
    await accounts.update_account(
        db, user, name=body.name, role=body.role, active=body.active, actor=admin.actor
    )
    if not user.active:
        await user_sessions.end_all(db, user, utcnow())
    return _out(user)


@api.post("/{account_id}/password", responses=NOT_FOUND)
async def new_password(account_id: AccountId, db: DbSession, admin: Admin) -> NewPassword:
    """A new temporary password (in the answer, once); the account is signed out everywhere."""
    user = await _account(db, admin, account_id)
    return NewPassword(account=_out(user), temporary_password=await _new_password(db, admin, user))


@api.post("/{account_id}/two-factor/reset", status_code=204, responses=NOT_FOUND)
async def api_reset_two_factor(account_id: AccountId, db: DbSession, admin: Admin) -> None:
    """Forget the account's authenticator app (a lost phone); it is set up again at sign-in."""
    user = await _account(db, admin, account_id)
    await accounts.reset_two_factor(db, user, actor=admin.actor)
    await user_sessions.end_all(db, user, utcnow())


@api.post("/{account_id}/sign-out", status_code=204, responses=NOT_FOUND)
async def api_sign_out(account_id: AccountId, db: DbSession, admin: Admin) -> None:
    """End every session of the account (but the administrator's own, if it is theirs)."""
    user = await _account(db, admin, account_id)
    await user_sessions.end_all(db, user, utcnow(), keep=admin.session)
