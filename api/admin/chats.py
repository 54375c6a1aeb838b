"""Chats: each chat's consent coverage and health, registration codes, a chat's members on
record, its observe-only switch, and closing it (the running bot carries a closure out).

With WhatsApp configured, also hosted WhatsApp groups: making one (its join code shown once), a
new join code, and inviting a parent by number. Without it those routes answer 409."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, Form, Path, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, Field

from api.admin.deps import (
    DbSession,
    SignedIn,
    requires,
    runtime_of,
    school_of,
    wake_outbox_after_commit,
)
from api.admin.templating import redirect, render
from bot.channels.whatsapp.runtime import WhatsAppRuntime
from bot.channels.whatsapp.twilio_client import WHATSAPP_PREFIX, WhatsAppApi
from bot.errors import ConflictError
from bot.services import chat_admin, closure
from bot.services.access import Permission
from bot.services.chat_admin import ChatDetail, ChatOverview, CodeState, GroupFacts
from bot.services.people import CONSENT_LABELS, ConsentState
from bot.store.models import (
    MAX_ID,
    ChatClosure,
    ChatStatus,
    ClosureStatus,
    RegistrationCode,
    utcnow,
)

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/chats", tags=["chats"])

Viewing = Annotated[SignedIn, requires(Permission.VIEW_CHATS)]
Managing = Annotated[SignedIn, requires(Permission.MANAGE_CHATS)]
Closing = Annotated[SignedIn, requires(Permission.CLOSE_CHATS)]
ChatId = Annotated[int, Path(ge=1, le=MAX_ID, description="The chat's id")]
# Printable text: no control characters (PostgreSQL refuses NUL, and nobody types the rest).
PLAIN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$"
MAX_REASON = 1000
DEFAULT_GRACE_HOURS = 24

NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such chat at your school"}}
CONFLICT: dict[int | str, dict[str, Any]] = {
    409: {"description": "The chat is not registered, or a closure is (or is not) under way"}
}
MAX_NUMBER = 32
NOT_SET_UP = "WhatsApp is not set up: see the README's WhatsApp section."
WHATSAPP_ERRORS: dict[int | str, dict[str, Any]] = {
    409: {
        "description": "WhatsApp is not set up; or the chat is not a hosted WhatsApp group "
        "people may join (closed, closing), or is full, or has the number already"
    },
    502: {"description": "Twilio refused: nothing was done"},
    503: {"description": "Twilio did not answer, or WhatsApp is not running yet: try again"},
}


def how_to_register(code: str) -> str:
    return (
        f"Add the bot to the class's Telegram group; then a group admin sends /register {code} "
        "in the group. The bot posts the school's notice there and asks members to agree."
    )


def whatsapp_of(request: Request) -> WhatsAppRuntime | None:
    """The WhatsApp channel, when Twilio is configured."""
    return runtime_of(request).whatsapp


def _whatsapp(request: Request) -> WhatsAppRuntime:
    channel = whatsapp_of(request)
    if channel is None:
        raise ConflictError(NOT_SET_UP)
    return channel


def _twilio(channel: WhatsAppRuntime) -> WhatsAppApi:
    """The channel's Twilio client (the one the running process shares)."""
    if channel.api is None:
        raise chat_admin.TwilioUnavailableError(
            "WhatsApp is not running in this process yet. Please try again in a moment."
        )
    return channel.api


def school_number(channel: WhatsAppRuntime) -> str:
    return chat_admin.display_number(channel.settings.whatsapp_from)


# -- JSON models -----------------------------------------------------------------------------


class ClosureStep(BaseModel):
    what: str
    at: datetime | None
    """When it happened (or, for a step still to come, when it is due, if known)."""
    done: bool
    problem: bool


class ClosureOut(BaseModel):
    id: int
    status: ClosureStatus
    reason: str
    requested_by: str
    requested_at: datetime
    grace_until: datetime
    problem: str | None
    """What the bot could not do itself (a right it lacks)."""
    timeline: list[ClosureStep]


class ChatOut(BaseModel):
    id: int
    title: str
    class_name: str | None
    platform: str
    """"telegram" or "whatsapp"."""
    platform_label: str
    """E.g. "Telegram", "WhatsApp", "WhatsApp report line"."""
    report_line: bool
    """The WhatsApp report line: reports forwarded to the school's number, not a group."""
    status: ChatStatus
    consented: int
    """Members who agreed to the chat's current notice."""
    members: int
    """People in the chat as the platform last reported (or those on record, if it has not)."""
    coverage: str
    """E.g. "12 of 20 agreed"."""
    unconsented_messages: int
    """Messages dropped unread because the sender had not agreed: a count, nothing more."""
    observe_only: bool
    bot_is_admin: bool
    bot_can_read_all: bool
    warning: str | None
    """Set when the bot cannot see ordinary messages, with the fix."""
    closure: ClosureOut | None
    """The closure under way, if any."""


class ConsentOut(BaseModel):
    notice_version: str
    method: str
    given_at: datetime
    withdrawn_at: datetime | None


class MemberOut(BaseModel):
    id: int
    name: str
    username: str | None
    first_seen_at: datetime
    left_at: datetime | None
    consent: ConsentState
    consents: list[ConsentOut]


class WhatsAppGroupOut(BaseModel):
    """A hosted WhatsApp group's numbers."""

    participants: int
    """Members in the group now (they agreed and have not left)."""
    limit: int
    """At most this many WhatsApp participants in one group (Twilio's limit)."""
    waiting_to_agree: int
    """People who asked to join or were invited and have not agreed yet."""
    join_code_set: bool


class ChatDetailOut(ChatOut):
    registered_at: datetime | None
    notice_version: str | None
    members_on_record: list[MemberOut]
    """Members on record: only those who agreed to the notice are ever stored."""
    closures: list[ClosureOut]
    """Every closure of the chat, the latest first."""
    whatsapp_group: WhatsAppGroupOut | None
    """For a hosted WhatsApp group."""


class NewCodeIn(BaseModel):
    class_name: str = Field(min_length=1, max_length=100, pattern=PLAIN)


class NewCodeOut(BaseModel):
    code: str
    """Shown this once: only its hash is stored."""
    class_name: str
    expires_at: datetime
    instructions: str


class CodeOut(BaseModel):
    id: int
    class_name: str
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    state: CodeState
    chat_id: int | None


class NewGroupIn(BaseModel):
    class_name: str = Field(min_length=1, max_length=100, pattern=PLAIN)


class JoinCodeOut(BaseModel):
    chat_id: int
    title: str
    code: str
    """Shown this once: only its hash is stored. A new one stops the old one working."""
    number: str
    """The school's WhatsApp number, where parents send JOIN CODE."""
    instructions: str


class NewGroupOut(JoinCodeOut):
    class_name: str


class InviteIn(BaseModel):
    number: str = Field(min_length=1, max_length=MAX_NUMBER, pattern=PLAIN)
    """A UK number (07700 900123) or one with its country code (+44 7700 900123)."""


class InviteOut(BaseModel):
    chat_id: int
    number: str
    """The number invited, as WhatsApp knows it (+447700900123)."""
    expires_at: datetime
    """They may reply JOIN until then."""
    message: str


class ObserveOnlyIn(BaseModel):
    observe_only: bool


class CloseIn(BaseModel):
    reason: str = Field(min_length=1, max_length=MAX_REASON, pattern=PLAIN)
    """Members are told it."""
    grace_hours: float = Field(default=DEFAULT_GRACE_HOURS, ge=0, le=72)


def _closure(found: ChatClosure) -> ClosureOut:
    return ClosureOut(
        id=found.id, status=found.status, reason=found.reason, requested_by=found.requested_by,
        requested_at=found.requested_at, grace_until=found.grace_until, problem=found.problem,
        timeline=[ClosureStep(what=s.what, at=s.at, done=s.done, problem=s.problem)
                  for s in closure.timeline(found)],
    )  # fmt: skip


def _chat(view: ChatOverview) -> ChatOut:
    chat = view.chat
    return ChatOut(
        id=chat.id, title=chat.title, class_name=chat.class_name, platform=chat.platform,
        platform_label=view.platform, report_line=chat_admin.is_report_line(chat),
        status=chat.status, consented=view.coverage.consented, members=view.coverage.members,
        coverage=chat_admin.coverage_text(view.coverage),
        unconsented_messages=chat.unconsented_messages, observe_only=chat.observe_only,
        bot_is_admin=chat.bot_is_admin, bot_can_read_all=chat.bot_can_read_all,
        warning=view.warning, closure=_closure(view.closure) if view.closure else None,
    )  # fmt: skip


def _detail(found: ChatDetail) -> ChatDetailOut:
    chat = found.overview.chat
    return ChatDetailOut(
        **dict(_chat(found.overview)), registered_at=chat.registered_at,
        notice_version=chat.notice_version,
        members_on_record=[MemberOut(id=m.member.id, name=m.member.display_name,
                           username=m.member.username, first_seen_at=m.member.first_seen_at,
                           left_at=m.member.left_at, consent=m.state,
                           consents=[ConsentOut(notice_version=c.notice_version, method=c.method,
                                                given_at=c.given_at, withdrawn_at=c.withdrawn_at)
                                     for c in m.consents])
                 for m in found.members],
        closures=[_closure(c) for c in found.closures],
        whatsapp_group=_group(found.group) if found.group else None,
    )  # fmt: skip


def _group(facts: GroupFacts) -> WhatsAppGroupOut:
    return WhatsAppGroupOut(
        participants=facts.participants, limit=facts.limit, waiting_to_agree=facts.waiting,
        join_code_set=facts.join_code_set,
    )  # fmt: skip


def _code(code: RegistrationCode, now: datetime) -> CodeOut:
    return CodeOut(
        id=code.id, class_name=code.class_name, created_at=code.created_at,
        expires_at=code.expires_at, used_at=code.used_at, state=chat_admin.code_state(code, now),
        chat_id=code.chat_id,
    )  # fmt: skip


# -- the work, shared by pages and JSON ------------------------------------------------------


async def _new_code(request: Request, db: DbSession, user: SignedIn, class_name: str) -> NewCodeOut:
    valid_for = timedelta(hours=runtime_of(request).settings.registration_code_hours)
    now = utcnow()
    code = await chat_admin.new_code(
        db, await school_of(db, user), class_name, user.actor, valid_for, now
    )
    return NewCodeOut(
        code=code, class_name=class_name.strip(), expires_at=now + valid_for,
        instructions=how_to_register(code),
    )  # fmt: skip


async def _close(db: DbSession, user: SignedIn, chat_id: int, body: CloseIn) -> ChatClosure:
    chat = await chat_admin.chat_of_school(db, user.school_id, chat_id)
    # The report line is refused (409) by request_closure itself.
    return await closure.request_closure(
        db, chat, body.reason, user.user.name, timedelta(hours=body.grace_hours), utcnow(),
        actor=user.actor,
    )  # fmt: skip


async def _cancel(request: Request, db: DbSession, user: SignedIn, chat_id: int) -> ChatClosure:
    chat = await chat_admin.chat_of_school(db, user.school_id, chat_id)
    return await closure.cancel_closure(
        db, chat, user.user.name, utcnow(), texts=runtime_of(request).texts, actor=user.actor
    )


async def _new_group(
    request: Request, db: DbSession, user: SignedIn, class_name: str
) -> NewGroupOut:
    channel = _whatsapp(request)
    made = await chat_admin.create_whatsapp_group(
        db, _twilio(channel), await school_of(db, user), class_name, actor=user.actor,
        notice=channel.bot_texts.notice, now=utcnow(),
    )  # fmt: skip
    number = school_number(channel)
    return NewGroupOut(
        chat_id=made.chat.id, title=made.chat.title, class_name=made.chat.class_name or "",
        code=made.code, number=number,
        instructions=chat_admin.join_instructions(made.code, number),
    )  # fmt: skip


async def _new_join_code(
    request: Request, db: DbSession, user: SignedIn, chat_id: int
) -> JoinCodeOut:
    chat = await chat_admin.chat_of_school(db, user.school_id, chat_id)
    channel = _whatsapp(request)
    code = await chat_admin.new_join_code(db, chat, user.actor)
    number = school_number(channel)
    return JoinCodeOut(
        chat_id=chat.id, title=chat.title, code=code, number=number,
        instructions=chat_admin.join_instructions(code, number),
    )  # fmt: skip


async def _invite(
    request: Request, db: DbSession, user: SignedIn, chat_id: int, number: str
) -> InviteOut:
    chat = await chat_admin.chat_of_school(db, user.school_id, chat_id)
    channel = _whatsapp(request)
    invited = await chat_admin.invite_parent(
        db, chat, await school_of(db, user), number, actor=user.actor, texts=channel.texts,
        now=utcnow(),
    )  # fmt: skip
    shown = invited.address.removeprefix(WHATSAPP_PREFIX)
    return InviteOut(
        chat_id=chat.id, number=shown, expires_at=invited.expires_at,
        message=f"Invitation on its way to {chat_admin.display_number(shown)}: they join "
        f"{chat.title} by replying JOIN, then AGREE to the notice.",
    )  # fmt: skip


# -- pages ------------------------------------------------------------------------------------


@pages.get("/chats")
async def chats_page(request: Request, db: DbSession, user: Viewing) -> HTMLResponse:
    return render(
        request, "chats/list.html",
        {"chats": await chat_admin.overview(db, user.school_id),
         "codes": await chat_admin.codes(db, user.school_id), "now": utcnow(),
         "code_state": chat_admin.code_state,
         "observe_only_everywhere": runtime_of(request).settings.observe_only,
         "coverage_text": chat_admin.coverage_text, **_whatsapp_context(request)},
        user=user,
    )  # fmt: skip


def _whatsapp_context(request: Request) -> dict[str, Any]:
    channel = whatsapp_of(request)
    return {
        "whatsapp_on": channel is not None,
        "whatsapp_number": school_number(channel) if channel else None,
        "whatsapp_reachable": channel is not None and channel.settings.public_base_url is not None,
    }


@pages.post("/chats/codes")
async def new_code_page(
    request: Request,
    db: DbSession,
    user: Managing,
    class_name: Annotated[str, Form(min_length=1, max_length=100, pattern=PLAIN)],
) -> HTMLResponse:
    # A page, not a redirect: the code exists in clear only in this answer.
    made = await _new_code(request, db, user, class_name)
    return render(request, "chats/code.html", {"made": made}, user=user)


@pages.post("/chats/whatsapp-groups")
async def new_group_page(
    request: Request,
    db: DbSession,
    user: Managing,
    class_name: Annotated[str, Form(min_length=1, max_length=100, pattern=PLAIN)],
) -> HTMLResponse:
    # A page, not a redirect: the join code exists in clear only in this answer.
    made = await _new_group(request, db, user, class_name)
    return render(request, "chats/join_code.html", {"made": made, "new_group": True}, user=user)


@pages.get("/chats/{chat_id}")
async def chat_page(
    request: Request, db: DbSession, user: Viewing, chat_id: ChatId
) -> HTMLResponse:
    found = await chat_admin.detail(db, user.school_id, chat_id)
    chat = found.overview.chat
    return render(
        request, "chats/detail.html",
        {"found": found, "chat": chat, "timeline": closure.timeline,
         "consent_labels": CONSENT_LABELS, "coverage_text": chat_admin.coverage_text,
         "active": closure.ACTIVE, "default_grace": DEFAULT_GRACE_HOURS,
         "registered": chat.status == ChatStatus.REGISTERED,
         "report_line": chat_admin.is_report_line(chat), "max_number": MAX_NUMBER,
         **_whatsapp_context(request)},
        user=user,
    )  # fmt: skip


@pages.post("/chats/{chat_id}/join-code")
async def join_code_page(
    request: Request, db: DbSession, user: Managing, chat_id: ChatId
) -> HTMLResponse:
    made = await _new_join_code(request, db, user, chat_id)
    return render(request, "chats/join_code.html", {"made": made, "new_group": False}, user=user)


@pages.post("/chats/{chat_id}/invitations")
async def invite_page(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    user: Managing,
    chat_id: ChatId,
    number: Annotated[str, Form(min_length=1, max_length=MAX_NUMBER, pattern=PLAIN)],
) -> Response:
    invited = await _invite(request, db, user, chat_id, number)
    wake_outbox_after_commit(request, background)
    return redirect(request, f"/chats/{chat_id}", invited.message)


@pages.post("/chats/{chat_id}/observe-only")
async def observe_only_page(
    request: Request,
    db: DbSession,
    user: Managing,
    chat_id: ChatId,
    observe_only: Annotated[bool, Form()] = False,
) -> Response:
    chat = await chat_admin.chat_of_school(db, user.school_id, chat_id)
    changed = await chat_admin.set_observe_only(db, chat, observe_only, user.actor)
    if not changed:
        notice = "Nothing changed."
    elif observe_only:
        notice = "Observe-only: the bot records but sends no reminders or warnings in this chat."
    else:
        notice = "The bot now reminds and warns in this chat again."
    return redirect(request, f"/chats/{chat.id}", notice)


@pages.post("/chats/{chat_id}/closure")
async def close_page(
    request: Request,
    db: DbSession,
    user: Closing,
    chat_id: ChatId,
    reason: Annotated[str, Form(min_length=1, max_length=MAX_REASON, pattern=PLAIN)],
    grace_hours: Annotated[float, Form(ge=0, le=72)] = DEFAULT_GRACE_HOURS,
) -> Response:
    await _close(db, user, chat_id, CloseIn(reason=reason, grace_hours=grace_hours))
    return redirect(
        request, f"/chats/{chat_id}",
        "Closure requested: the bot posts the notice in the chat, makes it read-only after "
        f"{grace_hours:g} hours, and leaves.",
    )  # fmt: skip


@pages.post("/chats/{chat_id}/closure/cancel")
async def cancel_page(
    request: Request, background: BackgroundTasks, db: DbSession, user: Closing, chat_id: ChatId
) -> Response:
    cancelled = await _cancel(request, db, user, chat_id)
    wake_outbox_after_commit(request, background)  # the word that the closure is withdrawn
    told = " The chat is told it is withdrawn." if cancelled.notice_at else ""
    return redirect(request, f"/chats/{chat_id}", f"The closure is cancelled.{told}")


# -- JSON -------------------------------------------------------------------------------------


@api.get("")
async def list_chats(db: DbSession, user: Viewing) -> list[ChatOut]:
    """Every chat of your school, with its consent coverage, health and any closure."""
    return [_chat(view) for view in await chat_admin.overview(db, user.school_id)]


@api.get("/codes")
async def list_codes(db: DbSession, user: Viewing) -> list[CodeOut]:
    """Your school's latest registration codes: never the codes themselves."""
    now = utcnow()
    return [_code(code, now) for code in await chat_admin.codes(db, user.school_id)]


@api.post("/codes", status_code=201)
async def create_code(
    body: NewCodeIn, request: Request, db: DbSession, user: Managing
) -> NewCodeOut:
    """A single-use registration code for a class; it is in this answer only, once."""
    return await _new_code(request, db, user, body.class_name)


@api.post(
    "/whatsapp-groups",
    status_code=201,
    responses={400: {"description": "The class name cannot be used"}, **WHATSAPP_ERRORS},
)
async def create_whatsapp_group(
    body: NewGroupIn, request: Request, db: DbSession, user: Managing
) -> NewGroupOut:
    """A hosted WhatsApp group for a class, registered to your school, with its join code (in
    this answer only, once). Parents send JOIN CODE to the school's WhatsApp number."""
    return await _new_group(request, db, user, body.class_name)


@api.get("/{chat_id}", responses=NOT_FOUND)
async def get_chat(chat_id: ChatId, db: DbSession, user: Viewing) -> ChatDetailOut:
    """The chat, its coverage, members on record and closures."""
    return _detail(await chat_admin.detail(db, user.school_id, chat_id))


@api.put("/{chat_id}/observe-only", responses=NOT_FOUND)
async def set_observe_only(
    chat_id: ChatId, body: ObserveOnlyIn, db: DbSession, user: Managing
) -> ChatOut:
    """Observe-only: the bot records, but neither reminds nor warns in this chat."""
    chat = await chat_admin.chat_of_school(db, user.school_id, chat_id)
    await chat_admin.set_observe_only(db, chat, body.observe_only, user.actor)
    return _chat(await chat_admin.overview_of(db, chat))


@api.post("/{chat_id}/closure", status_code=201, responses={**NOT_FOUND, **CONFLICT})
async def request_closure(
    chat_id: ChatId, body: CloseIn, db: DbSession, user: Closing
) -> ClosureOut:
    """Close the chat: a notice now, read-only after ``grace_hours``, then the bot leaves."""
    return _closure(await _close(db, user, chat_id, body))


@api.delete("/{chat_id}/closure", responses={**NOT_FOUND, **CONFLICT})
async def cancel_closure(
    chat_id: ChatId, request: Request, background: BackgroundTasks, db: DbSession, user: Closing
) -> ClosureOut:
    """Stop the closure under way; the chat is told if it was told of the closure."""
    cancelled = await _cancel(request, db, user, chat_id)
    wake_outbox_after_commit(request, background)  # the word that the closure is withdrawn
    return _closure(cancelled)


@api.post("/{chat_id}/join-code", status_code=201, responses={**NOT_FOUND, **WHATSAPP_ERRORS})
async def renew_join_code(
    chat_id: ChatId, request: Request, db: DbSession, user: Managing
) -> JoinCodeOut:
    """A new join code for a hosted WhatsApp group (in this answer only); the old one stops
    working. Members already in the group stay."""
    return await _new_join_code(request, db, user, chat_id)


@api.post(
    "/{chat_id}/invitations",
    status_code=201,
    responses={**NOT_FOUND, 400: {"description": "Not a phone number"}, **WHATSAPP_ERRORS},
)
async def invite_to_group(
    chat_id: ChatId,
    body: InviteIn,
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    user: Managing,
) -> InviteOut:
    """Invite a parent's number to a hosted WhatsApp group: they are sent the invitation (the
    approved template outside WhatsApp's 24-hour window) and join by replying JOIN, then
    AGREE to the notice."""
    invited = await _invite(request, db, user, chat_id, body.number)
    wake_outbox_after_commit(request, background)
    return invited
