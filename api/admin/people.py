"""People: the school's staff (kept in the school file, from which the policy engine learns
their names and handles) and the parents known to the bot, with a parent's subject access
export and erasure."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field

from api.admin.chats import PLAIN, ConsentOut
from api.admin.deps import DbSession, SignedIn, requires, runtime_of, school_of
from api.admin.templating import redirect, render
from bot.errors import BadInputError
from bot.policy.school import WEEKDAYS
from bot.services import people, staff_admin
from bot.services.access import Permission
from bot.services.alerts import UNCHOSEN
from bot.services.people import CONSENT_LABELS, ConsentState, Erased, Parent, SubjectExport
from bot.services.staff_admin import (
    CHANNEL_LABELS,
    CHANNELS,
    FIELD_LABELS,
    StaffDetails,
    StaffInputError,
    StaffView,
)
from bot.store.models import MAX_ID, utcnow

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/people", tags=["people"])

Viewing = Annotated[SignedIn, requires(Permission.VIEW_PEOPLE)]
ManagingStaff = Annotated[SignedIn, requires(Permission.MANAGE_STAFF)]
ParentData = Annotated[SignedIn, requires(Permission.PARENT_DATA)]
StaffId = Annotated[int, Path(ge=1, le=MAX_ID, description="The member of staff's id")]
Platform = Annotated[str, Path(pattern=r"^[a-z]{2,16}$", description='e.g. "telegram"')]
UserId = Annotated[
    str,
    Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_:+.@-]+$",
         description="The person's id on the platform"),
]  # fmt: skip
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
Short = Annotated[str, Field(max_length=200, pattern=PLAIN)]

STAFF_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such member of staff at your school"}
}
PARENT_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"description": "No such parent at your school"}
}
BAD_STAFF: dict[int | str, dict[str, Any]] = {
    400: {"description": "The details are not valid (each problem named by field)"}
}
LINK_HOW = (
    "In Telegram, open a private chat with the bot, press Start, and send: /link {code}. "
    "Alerts for the school then come to that chat."
)


def _channels(request: Request) -> frozenset[str]:
    """The channels this installation sends alerts on."""
    return runtime_of(request).alert_channels


# -- JSON models -----------------------------------------------------------------------------


class StaffIn(BaseModel):
    name: str = Field(min_length=1, max_length=200, pattern=PLAIN)
    """As parents know them, e.g. "Mrs Anita Patel"."""
    role: Short = ""
    aliases: list[Short] = Field(default_factory=list, max_length=20)
    """Other names parents use ("Mrs Patel", "Anita")."""
    handles: list[Annotated[str, Field(max_length=65, pattern=PLAIN)]] = Field(
        default_factory=list, max_length=10
    )
    """Telegram handles, e.g. "@anita_patel"."""
    phone: str = Field(default="", max_length=40, pattern=PLAIN)
    email: str = Field(default="", max_length=254, pattern=PLAIN)
    slt: bool = False
    dsl: bool = False
    working_hours: dict[Weekday, Annotated[str, Field(max_length=100, pattern=PLAIN)]] | None = None
    """Their own hours ("08:30-15:30"; a day left out: not working); null: the school's."""
    alert_channels: list[Literal["telegram", "email", "whatsapp", "sms"]] | None = Field(
        default=None, max_length=4
    )
    """Where they want alerts (WhatsApp and SMS go to their phone); null: Telegram and e-mail,
    where they can be reached on them."""

    def details(self) -> StaffDetails:
        return StaffDetails(
            name=self.name, role=self.role, aliases=tuple(self.aliases),
            handles=tuple(self.handles), phone=self.phone, email=self.email, slt=self.slt,
            dsl=self.dsl,
            working_hours={str(day): text for day, text in self.working_hours.items()}
            if self.working_hours is not None else None,
            alert_channels=tuple(self.alert_channels) if self.alert_channels is not None else None,
        )  # fmt: skip


class StaffOut(BaseModel):
    id: int
    name: str
    role: str
    aliases: list[str]
    handles: list[str]
    email: str
    phone: str
    """Masked ("••••• •••123") unless you may manage staff."""
    slt: bool
    dsl: bool
    working_hours: dict[str, str] | None
    """Their own hours by weekday ("" for a day off); null: the school's hours."""
    telegram_linked: bool
    alert_channels: list[str] | None
    """What they chose; null: Telegram and e-mail, where they can be reached on them."""
    alerts_on: list[str]
    """Where high-severity alerts reach them now (SLT and DSL only)."""


class LinkCodeOut(BaseModel):
    code: str
    """Shown this once: only its hash is stored."""
    expires_at: datetime
    instructions: str


class ParentChatOut(BaseModel):
    chat_id: int
    chat: str
    class_name: str | None
    name: str
    """Their name as shown in this chat."""
    username: str | None
    consent: ConsentState
    left_at: datetime | None


class ParentOut(BaseModel):
    platform: str
    user_id: str
    names: list[str]
    chats: list[ParentChatOut]


class ParentChatDetailOut(ParentChatOut):
    first_seen_at: datetime
    consents: list[ConsentOut]


class ParentFlagOut(BaseModel):
    id: int
    chat_id: int
    created_at: datetime
    rules: list[str]
    severity: str
    status: str


class ParentDetailOut(BaseModel):
    platform: str
    user_id: str
    names: list[str]
    chats: list[ParentChatDetailOut]
    messages: int
    """Message records held (their words only while a message is flagged)."""
    flags: list[ParentFlagOut]


class ErasedOut(BaseModel):
    memberships: int
    consents_withdrawn: int
    consents_deleted: int
    messages_deleted: int
    flags_kept: int
    """Kept only as numbers for the annual report: rule, severity, dates, status."""
    outbox_deleted: int


def _staff(view: StaffView, *, full: bool) -> StaffOut:
    details = view.details()
    hours = view.hours_by_day()
    return StaffOut(
        id=view.row.id, name=view.row.name, role=details.role, aliases=list(details.aliases),
        handles=list(details.handles), email=details.email,
        phone=details.phone if full else staff_admin.mask(details.phone), slt=view.row.slt,
        dsl=view.row.dsl, working_hours=hours or None, telegram_linked=view.telegram_linked,
        alert_channels=view.row.alert_channels, alerts_on=list(view.alerts_on),
    )  # fmt: skip


def _parent(found: Parent) -> ParentOut:
    return ParentOut(
        platform=found.platform, user_id=found.user_id, names=found.names,
        chats=[ParentChatOut(chat_id=m.chat.id, chat=m.chat.title, class_name=m.chat.class_name,
                             name=m.member.display_name, username=m.member.username,
                             consent=m.state, left_at=m.member.left_at)
               for m in found.memberships],
    )  # fmt: skip


def _erased(erased: Erased) -> ErasedOut:
    return ErasedOut(
        memberships=erased.memberships, consents_withdrawn=erased.consents_withdrawn,
        consents_deleted=erased.consents_deleted, messages_deleted=erased.messages_deleted,
        flags_kept=erased.flags_kept, outbox_deleted=erased.outbox_deleted,
    )  # fmt: skip


# -- the staff form ---------------------------------------------------------------------------


class StaffForm(BaseModel):
    """The add/edit form: lists as comma-separated text, checkboxes absent when unticked."""

    name: str = Field(default="", max_length=200, pattern=PLAIN)
    role: Short = ""
    aliases: str = Field(default="", max_length=2000, pattern=PLAIN)
    handles: str = Field(default="", max_length=1000, pattern=PLAIN)
    phone: str = Field(default="", max_length=40, pattern=PLAIN)
    email: str = Field(default="", max_length=254, pattern=PLAIN)
    slt: bool = False
    dsl: bool = False
    own_hours: bool = False
    hours_monday: str = Field(default="", max_length=100, pattern=PLAIN)
    hours_tuesday: str = Field(default="", max_length=100, pattern=PLAIN)
    hours_wednesday: str = Field(default="", max_length=100, pattern=PLAIN)
    hours_thursday: str = Field(default="", max_length=100, pattern=PLAIN)
    hours_friday: str = Field(default="", max_length=100, pattern=PLAIN)
    hours_saturday: str = Field(default="", max_length=100, pattern=PLAIN)
    hours_sunday: str = Field(default="", max_length=100, pattern=PLAIN)
    alert_telegram: bool = False
    alert_email: bool = False
    alert_whatsapp: bool = False
    alert_sms: bool = False

    def details(self) -> StaffDetails:
        def split(text: str) -> tuple[str, ...]:
            return tuple(part.strip() for part in text.replace("\n", ",").split(","))

        hours = {day: getattr(self, f"hours_{day}") for day in WEEKDAYS}
        channels = [c for c in CHANNELS if getattr(self, f"alert_{c}")]
        return StaffDetails(
            name=self.name, role=self.role, aliases=split(self.aliases),
            handles=tuple(h for part in split(self.handles) for h in part.split()),
            phone=self.phone, email=self.email, slt=self.slt, dsl=self.dsl,
            working_hours=hours if self.own_hours else None, alert_channels=tuple(channels),
        )  # fmt: skip


def _form_values(details: StaffDetails) -> dict[str, Any]:
    """What the form's fields show for ``details`` (named as ``StaffForm``'s fields)."""
    hours = details.working_hours or {}
    channels = UNCHOSEN if details.alert_channels is None else details.alert_channels
    return {
        "name": details.name, "role": details.role, "aliases": ", ".join(details.aliases),
        "handles": ", ".join(details.handles), "phone": details.phone, "email": details.email,
        "slt": details.slt, "dsl": details.dsl, "own_hours": details.working_hours is not None,
        **{f"hours_{day}": hours.get(day, "") for day in WEEKDAYS},
        **{f"alert_{channel}": channel in channels for channel in CHANNELS},
    }  # fmt: skip


def _staff_page(
    request: Request,
    user: SignedIn,
    *,
    view: StaffView | None,
    values: dict[str, Any],
    errors: dict[str, str] | None = None,
) -> HTMLResponse:
    return render(
        request, "people/staff.html",
        {"view": view, "values": values, "errors": errors or {}, "weekdays": WEEKDAYS,
         "channels": CHANNEL_LABELS, "available": _channels(request), "labels": FIELD_LABELS,
         "mask": staff_admin.mask},
        user=user, status_code=400 if errors else 200,
    )  # fmt: skip


# -- pages: people and staff -----------------------------------------------------------------


@pages.get("/people")
async def people_page(request: Request, db: DbSession, user: Viewing) -> HTMLResponse:
    school = await school_of(db, user)
    return render(
        request, "people/index.html",
        {"staff": await staff_admin.staff_list(db, school, channels=_channels(request)),
         "parents": await people.parents(db, user.school_id), "consent_labels": CONSENT_LABELS,
         "channels": CHANNEL_LABELS, "mask": staff_admin.mask},
        user=user,
    )  # fmt: skip


@pages.get("/people/staff/new")
async def new_staff_page(request: Request, user: ManagingStaff) -> HTMLResponse:
    return _staff_page(request, user, view=None, values=_form_values(StaffDetails(name="")))


@pages.post("/people/staff/new")
async def add_staff_page(
    request: Request, db: DbSession, user: ManagingStaff, form: Annotated[StaffForm, Form()]
) -> Response:
    try:
        row = await staff_admin.add(db, await school_of(db, user), form.details(), user.actor)
    except StaffInputError as error:
        # Shown again as typed, with the problems beside their fields.
        values = form.model_dump()
        return _staff_page(request, user, view=None, values=values, errors=error.problems)
    return redirect(request, f"/people/staff/{row.id}", f"Added {row.name} to the staff list.")


@pages.get("/people/staff/{staff_id}")
async def staff_page(
    request: Request, db: DbSession, user: Viewing, staff_id: StaffId
) -> HTMLResponse:
    view = await staff_admin.staff_view(
        db, await school_of(db, user), staff_id, channels=_channels(request)
    )
    return _staff_page(request, user, view=view, values=_form_values(view.details()))


@pages.post("/people/staff/{staff_id}")
async def change_staff_page(
    request: Request,
    db: DbSession,
    user: ManagingStaff,
    staff_id: StaffId,
    form: Annotated[StaffForm, Form()],
) -> Response:
    school = await school_of(db, user)
    try:
        row = await staff_admin.update(db, school, staff_id, form.details(), user.actor)
    except StaffInputError as error:
        view = await staff_admin.staff_view(db, school, staff_id, channels=_channels(request))
        return _staff_page(
            request, user, view=view, values=form.model_dump(), errors=error.problems
        )
    return redirect(request, f"/people/staff/{row.id}", f"Saved {row.name}.")


@pages.post("/people/staff/{staff_id}/delete")
async def remove_staff_page(
    request: Request, db: DbSession, user: ManagingStaff, staff_id: StaffId
) -> Response:
    name = await staff_admin.remove(db, await school_of(db, user), staff_id, user.actor)
    return redirect(request, "/people", f"Removed {name} from the staff list.")


@pages.post("/people/staff/{staff_id}/link-code")
async def link_code_page(
    request: Request, db: DbSession, user: ManagingStaff, staff_id: StaffId
) -> HTMLResponse:
    # A page, not a redirect: the code exists in clear only in this answer.
    school = await school_of(db, user)
    made = await staff_admin.link_code(db, school, staff_id, user.actor, utcnow())
    return render(
        request, "people/link_code.html",
        {"made": made, "instructions": LINK_HOW.format(code=made.code)}, user=user,
    )  # fmt: skip


# -- pages: parents --------------------------------------------------------------------------


@pages.get("/people/parents/{platform}/{user_id}")
async def parent_page(
    request: Request, db: DbSession, user: Viewing, platform: Platform, user_id: UserId
) -> HTMLResponse:
    record = await people.view_parent(
        db, user.school_id, platform, user_id, user.actor,
        safeguarding=user.can(Permission.VIEW_SAFEGUARDING),
    )  # fmt: skip
    return render(
        request, "people/parent.html", {"record": record, "consent_labels": CONSENT_LABELS},
        user=user,
    )  # fmt: skip


def _attachment(platform: str, user_id: str) -> str:
    """A download's Content-Disposition (the id's characters are safe in a file name)."""
    return f'attachment; filename="schoolgate-{platform}-{user_id.replace(":", "-")}.json"'


async def _export(db: DbSession, user: SignedIn, platform: str, user_id: str) -> SubjectExport:
    return await people.export(
        db, await school_of(db, user), platform, user_id, user.actor, utcnow(),
        safeguarding=user.can(Permission.VIEW_SAFEGUARDING),
    )  # fmt: skip


@pages.get("/people/parents/{platform}/{user_id}/export")
async def export_page(
    db: DbSession, user: ParentData, platform: Platform, user_id: UserId
) -> JSONResponse:
    export = await _export(db, user, platform, user_id)
    return JSONResponse(
        export.model_dump(mode="json"),
        headers={"Content-Disposition": _attachment(platform, user_id)},
    )


@pages.post("/people/parents/{platform}/{user_id}/erase")
async def erase_page(
    request: Request,
    db: DbSession,
    user: ParentData,
    platform: Platform,
    user_id: UserId,
    confirm: Annotated[bool, Form()] = False,
) -> Response:
    if not confirm:
        raise BadInputError("Tick the box to confirm the erasure: it cannot be undone.")
    erased = await people.erase(db, user.school_id, platform, user_id, user.actor, utcnow())
    return redirect(
        request, "/people",
        # A flagged message's record stays (its flag needs it) without its words: say so, or
        # "0 message records" reads as if their words were kept.
        f"Erased: {erased.memberships} membership(s), their consents, "
        f"{erased.messages_deleted} message record(s) and the words of every message of theirs; "
        f"{erased.flags_kept} flag(s) kept as numbers only.",
    )  # fmt: skip


# -- JSON: staff -----------------------------------------------------------------------------


@api.get("/staff")
async def list_staff(request: Request, db: DbSession, user: Viewing) -> list[StaffOut]:
    """Your school's staff; phone numbers are masked unless you may manage staff."""
    school = await school_of(db, user)
    full = user.can(Permission.MANAGE_STAFF)
    views = await staff_admin.staff_list(db, school, channels=_channels(request))
    return [_staff(view, full=full) for view in views]


@api.post("/staff", status_code=201, responses=BAD_STAFF)
async def add_staff(
    body: StaffIn, request: Request, db: DbSession, user: ManagingStaff
) -> StaffOut:
    """Add a member of staff to the school file (the policy engine learns their names)."""
    school = await school_of(db, user)
    row = await staff_admin.add(db, school, body.details(), user.actor)
    view = await staff_admin.staff_view(db, school, row.id, channels=_channels(request))
    return _staff(view, full=True)


@api.get("/staff/{staff_id}", responses=STAFF_NOT_FOUND)
async def get_staff(staff_id: StaffId, request: Request, db: DbSession, user: Viewing) -> StaffOut:
    view = await staff_admin.staff_view(
        db, await school_of(db, user), staff_id, channels=_channels(request)
    )
    return _staff(view, full=user.can(Permission.MANAGE_STAFF))


@api.put("/staff/{staff_id}", responses={**STAFF_NOT_FOUND, **BAD_STAFF})
async def change_staff(
    staff_id: StaffId, body: StaffIn, request: Request, db: DbSession, user: ManagingStaff
) -> StaffOut:
    """Replace a member of staff's details (a linked Telegram account stays linked)."""
    school = await school_of(db, user)
    row = await staff_admin.update(db, school, staff_id, body.details(), user.actor)
    view = await staff_admin.staff_view(db, school, row.id, channels=_channels(request))
    return _staff(view, full=True)


@api.delete("/staff/{staff_id}", status_code=204, responses=STAFF_NOT_FOUND)
async def remove_staff(staff_id: StaffId, db: DbSession, user: ManagingStaff) -> None:
    await staff_admin.remove(db, await school_of(db, user), staff_id, user.actor)


@api.post("/staff/{staff_id}/link-code", responses=STAFF_NOT_FOUND)
async def create_link_code(staff_id: StaffId, db: DbSession, user: ManagingStaff) -> LinkCodeOut:
    """A one-time code to link their own Telegram account for alerts; in this answer only."""
    school = await school_of(db, user)
    made = await staff_admin.link_code(db, school, staff_id, user.actor, utcnow())
    return LinkCodeOut(
        code=made.code, expires_at=made.expires_at, instructions=LINK_HOW.format(code=made.code)
    )


# -- JSON: parents ---------------------------------------------------------------------------


@api.get("/parents")
async def list_parents(db: DbSession, user: Viewing) -> list[ParentOut]:
    """Everyone in your school's chats who has agreed at some point, one entry per person."""
    return [_parent(found) for found in await people.parents(db, user.school_id)]


@api.get("/parents/{platform}/{user_id}", responses=PARENT_NOT_FOUND)
async def get_parent(
    platform: Platform, user_id: UserId, db: DbSession, user: Viewing
) -> ParentDetailOut:
    """A parent's chats, consent history, message count and flags (the view is audited)."""
    record = await people.view_parent(
        db, user.school_id, platform, user_id, user.actor,
        safeguarding=user.can(Permission.VIEW_SAFEGUARDING),
    )  # fmt: skip
    summary = _parent(record.parent)
    return ParentDetailOut(
        platform=summary.platform, user_id=summary.user_id, names=summary.names,
        chats=[ParentChatDetailOut(**dict(chat), first_seen_at=m.member.first_seen_at,
                                   consents=[ConsentOut(notice_version=c.notice_version,
                                                        method=c.method, given_at=c.given_at,
                                                        withdrawn_at=c.withdrawn_at)
                                             for c in m.consents])
               for chat, m in zip(summary.chats, record.parent.memberships, strict=True)],
        messages=record.messages,
        flags=[ParentFlagOut(id=f.id, chat_id=chat.id, created_at=f.created_at,
                             rules=[r.rule for r in f.reasons], severity=f.severity,
                             status=str(f.status))
               for f, chat in record.flags],
    )  # fmt: skip


@api.get("/parents/{platform}/{user_id}/export", responses=PARENT_NOT_FOUND)
async def export_parent(
    platform: Platform, user_id: UserId, response: Response, db: DbSession, user: ParentData
) -> SubjectExport:
    """Subject access: everything your school holds about the person, other people redacted
    (audited). Flags escalated to the DSL are included only for the DSL."""
    export = await _export(db, user, platform, user_id)
    response.headers["Content-Disposition"] = _attachment(platform, user_id)
    return export


@api.delete("/parents/{platform}/{user_id}", responses=PARENT_NOT_FOUND)
async def erase_parent(
    platform: Platform, user_id: UserId, db: DbSession, user: ParentData
) -> ErasedOut:
    """Erase everything your school holds about the person; their flags stay as numbers only
    (rule, severity, dates, status). Cannot be undone."""
    return _erased(await people.erase(db, user.school_id, platform, user_id, user.actor, utcnow()))
