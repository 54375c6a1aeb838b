"""School settings: working hours, bank holidays, closures, permitted platforms, the consent
notice, reminder texts, retention and alert routing.

Always the signed-in person's own school. The page has one form per section; each saves that
section alone (audited by the service it calls) and comes back with a notice, or with the
problem shown beside the section and nothing changed. The JSON API replaces one section per PUT.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from api.admin.deps import (
    DbSession,
    SignedIn,
    requires,
    runtime_of,
    school_of,
    settings_of,
    wake_outbox_after_commit,
)
from api.admin.templating import redirect, render
from bot.errors import BadInputError
from bot.policy.rules import RULES, RuleId
from bot.policy.school import HOLIDAY_REGIONS, WEEKDAYS, SchoolConfig
from bot.policy_files import describe_validation_error
from bot.runtime import retention
from bot.services import school_file
from bot.services import school_settings as settings_service
from bot.services.access import Permission
from bot.services.alerts import SAFEGUARDING_RULES
from bot.services.notices import (
    ask_again_if_kept_longer,
    current_notice,
    publish_notice,
    retention_of,
)
from bot.services.school_settings import NOTICE_PLACEHOLDERS, REMINDER_PLACEHOLDERS
from bot.store.models import School, utcnow

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/settings", tags=["settings"])

Manager = Annotated[SignedIn, requires(Permission.MANAGE_SETTINGS)]
BAD_INPUT: dict[int | str, dict[str, Any]] = {
    400: {"description": "A value cannot be used (the message names the field); nothing changed"}
}
Weekday = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
CLOCK = r"^([01]\d|2[0-3]):[0-5]\d$"
EARLIEST, LATEST = date(2000, 1, 1), date(2100, 12, 31)


# -- what the API shows and takes -----------------------------------------------------------


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class HoursOut(BaseModel):
    working_hours: dict[str, str]
    """By weekday: "08:00-17:00", several ranges separated by commas, or "closed"."""
    bank_holidays: str | None
    regions: list[str]
    """The bank-holiday regions Schoolgate names (a two-letter country code works too)."""


class ClosureOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    """The last day closed."""
    name: str


class Closure(_In):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start: date = Field(alias="from", ge=EARLIEST, le=LATEST)
    end: date = Field(alias="to", ge=EARLIEST, le=LATEST)
    """The last day closed."""
    name: str = Field(default="school closure", min_length=1, max_length=100)


class NoticeOut(BaseModel):
    version: str
    text: str
    """With its placeholders, as written."""
    own: bool
    """The school's own words (else the installation's)."""
    default_text: str
    placeholders: list[str]


class ReminderOut(BaseModel):
    rule: RuleId
    text: str
    own: bool
    default_text: str


class RetentionOut(BaseModel):
    metadata_days: int | None
    flag_days: int | None
    audit_days: int | None
    default_metadata_days: int
    default_flag_days: int
    default_audit_days: int


class AlertRoutingOut(BaseModel):
    dsl_rules: list[RuleId]
    own_dsl_rules: bool
    escalate_after_minutes: float | None
    default_escalate_after_minutes: float
    digest_time: str | None
    default_digest_time: str


class SettingsOut(BaseModel):
    hours: HoursOut
    closures: list[ClosureOut]
    permitted_platforms: list[str]
    notice: NoticeOut
    reminders: list[ReminderOut]
    reminder_placeholders: list[str]
    retention: RetentionOut
    alerts: AlertRoutingOut


class HoursIn(_In):
    working_hours: dict[Weekday, Annotated[str, Field(max_length=100)]] = Field(
        default_factory=dict
    )
    """A weekday left out is closed."""
    bank_holidays: str | None = Field(default=None, max_length=40)


class ClosuresIn(_In):
    closures: list[Closure] = Field(default_factory=list, max_length=200)


class PlatformsIn(_In):
    permitted_platforms: list[Annotated[str, Field(min_length=1, max_length=300)]] = Field(
        min_length=1, max_length=20
    )


class NoticeIn(_In):
    text: str = Field(max_length=4000)
    """Blank: the installation's notice. New words ask every member to agree again."""


class RemindersIn(_In):
    reminders: dict[RuleId, Annotated[str, Field(max_length=1000)]] = Field(default_factory=dict)
    """By rule; blank or left out: the installation's words."""


class RetentionIn(_In):
    metadata_days: int | None = Field(default=None, ge=1, le=3650)
    flag_days: int | None = Field(default=None, ge=1, le=3650)
    audit_days: int | None = Field(default=None, ge=30, le=7300)


class AlertRoutingIn(_In):
    dsl_rules: list[RuleId] = Field(max_length=len(RuleId))
    escalate_after_minutes: float | None = Field(default=None, gt=0, le=7 * 24 * 60)
    digest_time: str | None = Field(default=None, pattern=CLOCK)


# -- reading and saving ----------------------------------------------------------------------


def _clock(moment: time) -> str:
    return "24:00" if moment == time.max else f"{moment:%H:%M}"


def _view(request: Request, school: School) -> SettingsOut:
    config = SchoolConfig.model_validate(school.config)
    chosen = settings_service.settings_of(school)
    installation = settings_of(request)
    texts = runtime_of(request).texts
    notice = current_notice(school, texts.notice)
    info = config.school
    return SettingsOut(
        hours=HoursOut(
            working_hours={
                day: ", ".join(
                    f"{_clock(s)}-{_clock(e)}" for s, e in getattr(info.working_hours, day)
                )
                or "closed"
                for day in WEEKDAYS
            },
            bank_holidays=info.bank_holidays,
            regions=list(HOLIDAY_REGIONS),
        ),
        closures=[ClosureOut(start=c.start, end=c.end, name=c.name) for c in info.closures],
        permitted_platforms=list(config.permitted_platforms),
        notice=NoticeOut(
            version=notice.version,
            text=notice.template,
            own=notice.own,
            default_text=texts.notice.text,
            placeholders=list(NOTICE_PLACEHOLDERS),
        ),
        reminders=[
            ReminderOut(
                rule=RuleId(rule),
                text=chosen.reminders.get(RuleId(rule), default),
                own=RuleId(rule) in chosen.reminders,
                default_text=default,
            )
            for rule, default in texts.reminders.items()
        ],
        reminder_placeholders=list(REMINDER_PLACEHOLDERS),
        retention=RetentionOut(
            **chosen.retention.model_dump(),
            default_metadata_days=installation.keep_metadata_days,
            default_flag_days=installation.keep_flags_days,
            default_audit_days=installation.keep_audit_days,
        ),
        alerts=AlertRoutingOut(
            dsl_rules=sorted(chosen.routed_to_dsl(SAFEGUARDING_RULES)),
            own_dsl_rules=chosen.dsl_rules is not None,
            escalate_after_minutes=chosen.escalate_after_minutes,
            default_escalate_after_minutes=installation.escalate_after_minutes,
            digest_time=chosen.digest_time,
            default_digest_time=installation.digest_time,
        ),
    )


async def _save_hours(request: Request, db: DbSession, user: SignedIn, body: HoursIn) -> str:
    school = await school_of(db, user)
    hours = {str(day): text for day, text in body.working_hours.items()}
    await school_file.save_hours(db, school, hours, body.bank_holidays, user.actor)
    return "Working hours saved."


async def _save_closures(request: Request, db: DbSession, user: SignedIn, body: ClosuresIn) -> str:
    school = await school_of(db, user)
    closures = [c.model_dump(mode="json", by_alias=True) for c in body.closures]
    await school_file.save_closures(db, school, closures, user.actor)
    return "Closures saved."


async def _save_platforms(
    request: Request, db: DbSession, user: SignedIn, body: PlatformsIn
) -> str:
    school = await school_of(db, user)
    await school_file.save_platforms(db, school, body.permitted_platforms, user.actor)
    return "Permitted platforms saved."


async def _save_notice(
    request: Request, background: BackgroundTasks, db: DbSession, user: SignedIn, body: NoticeIn
) -> str:
    school = await school_of(db, user)
    runtime = runtime_of(request)
    version = await publish_notice(
        db, school, body.text, runtime.texts.notice, retention(settings_of(request)),
        user.actor, utcnow(), whatsapp_suffix=runtime.whatsapp_texts.notice_suffix,
    )  # fmt: skip
    if version is None:
        return "The notice is unchanged."
    wake_outbox_after_commit(request, background)  # the new notice, posted to every chat
    return f"Notice saved as version {version}: every member is asked to agree to it again."


async def _save_reminders(
    request: Request, db: DbSession, user: SignedIn, body: RemindersIn
) -> str:
    school = await school_of(db, user)
    defaults = runtime_of(request).texts.reminders
    await settings_service.save_reminders(db, school, body.reminders, defaults, user.actor)
    return "Reminder texts saved."


async def _save_retention(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    user: SignedIn,
    body: RetentionIn,
) -> str:
    school = await school_of(db, user)
    runtime, installation = runtime_of(request), retention(settings_of(request))
    before = retention_of(school, installation)
    await settings_service.save_retention(
        db, school, metadata_days=body.metadata_days, flag_days=body.flag_days,
        audit_days=body.audit_days, actor=user.actor,
    )  # fmt: skip
    version = await ask_again_if_kept_longer(
        db, school, before, runtime.texts.notice, installation, user.actor, utcnow(),
        whatsapp_suffix=runtime.whatsapp_texts.notice_suffix,
    )  # fmt: skip
    if version is None:
        return "Retention periods saved."
    wake_outbox_after_commit(request, background)  # the notice asking everyone again
    return (
        f"Retention periods saved. Things are now kept longer than members agreed to, so the "
        f"notice goes out again (version {version}) and every member is asked to agree."
    )


async def _save_alerts(
    request: Request, db: DbSession, user: SignedIn, body: AlertRoutingIn
) -> str:
    school = await school_of(db, user)
    await settings_service.save_alert_routing(
        db, school, dsl_rules=body.dsl_rules, default_dsl_rules=SAFEGUARDING_RULES,
        escalate_after_minutes=body.escalate_after_minutes, digest_time=body.digest_time,
        actor=user.actor,
    )  # fmt: skip
    return "Alert routing saved."


# -- pages -----------------------------------------------------------------------------------


async def _page(
    request: Request,
    db: DbSession,
    user: SignedIn,
    *,
    errors: dict[str, str] | None = None,
    submitted: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    school = await school_of(db, user)
    return render(
        request,
        "settings/page.html",
        {
            "view": _view(request, school),
            "school": school,
            "errors": errors or {},
            "submitted": submitted or {},
            "weekdays": WEEKDAYS,
            "rules": list(RULES.values()),
        },
        user=user,
        status_code=status,
    )


async def _form_save(
    request: Request,
    db: DbSession,
    user: SignedIn,
    section: str,
    submitted: dict[str, Any],
    save: Callable[[], Awaitable[str]],
) -> Response:
    """Save one section from its form: back to the page with a notice, or with the problem
    shown beside the section (400; the services check everything before they change
    anything, so nothing has changed)."""
    try:
        notice = await save()
    except BadInputError as error:
        return await _page(
            request, db, user, errors={section: str(error)}, submitted=submitted, status=400
        )
    return redirect(request, f"/settings#{section}", notice)


def _optional_number(value: str, field: str, kind: type[int] | type[float]) -> Any:
    cleaned = value.strip()
    if not cleaned:
        return None
    try:
        return kind(cleaned)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise BadInputError(f"{field}: {cleaned!r} is not {what}") from None


def _validated(model: type[_In], data: dict[str, Any]) -> Any:
    """A form's values checked as the JSON API checks them: BadInputError names the field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadInputError("; ".join(describe_validation_error(error))) from None


@pages.get("/settings")
async def settings_page(request: Request, db: DbSession, user: Manager) -> HTMLResponse:
    return await _page(request, db, user)


@pages.post("/settings/hours")
async def hours_form(
    request: Request,
    db: DbSession,
    user: Manager,
    monday: Annotated[str, Form(max_length=100)] = "",
    tuesday: Annotated[str, Form(max_length=100)] = "",
    wednesday: Annotated[str, Form(max_length=100)] = "",
    thursday: Annotated[str, Form(max_length=100)] = "",
    friday: Annotated[str, Form(max_length=100)] = "",
    saturday: Annotated[str, Form(max_length=100)] = "",
    sunday: Annotated[str, Form(max_length=100)] = "",
    bank_holidays: Annotated[str, Form(max_length=40)] = "",
) -> Response:
    hours = {
        "monday": monday, "tuesday": tuesday, "wednesday": wednesday, "thursday": thursday,
        "friday": friday, "saturday": saturday, "sunday": sunday,
    }  # fmt: skip

    async def save() -> str:
        body = _validated(HoursIn, {"working_hours": hours, "bank_holidays": bank_holidays or None})
        return await _save_hours(request, db, user, body)

    submitted = {f"hours:{day}": value for day, value in hours.items()}
    return await _form_save(
        request, db, user, "hours", {**submitted, "bank_holidays": bank_holidays}, save
    )


@pages.post("/settings/closures")
async def add_closure_form(
    request: Request,
    db: DbSession,
    user: Manager,
    start: Annotated[date, Form(alias="from", ge=EARLIEST, le=LATEST)],
    end: Annotated[date, Form(alias="to", ge=EARLIEST, le=LATEST)],
    name: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    async def add() -> str:
        school = await school_of(db, user)
        await school_file.add_closure(db, school, start, end, name, user.actor)
        return f"Closure added: {name or 'school closure'}, {start:%-d %b %Y} to {end:%-d %b %Y}."

    submitted = {"closure_from": start.isoformat(), "closure_to": end.isoformat()}
    return await _form_save(request, db, user, "closures", {**submitted, "closure_name": name}, add)


@pages.post("/settings/closures/remove")
async def remove_closure_form(
    request: Request,
    db: DbSession,
    user: Manager,
    start: Annotated[date, Form(alias="from", ge=EARLIEST, le=LATEST)],
    end: Annotated[date, Form(alias="to", ge=EARLIEST, le=LATEST)],
    name: Annotated[str, Form(max_length=100)],
) -> Response:
    async def remove() -> str:
        school = await school_of(db, user)
        await school_file.remove_closure(db, school, start, end, name, user.actor)
        return f"Closure removed: {name}."

    return await _form_save(request, db, user, "closures", {}, remove)


@pages.post("/settings/platforms")
async def platforms_form(
    request: Request,
    db: DbSession,
    user: Manager,
    platforms: Annotated[str, Form(max_length=6000)] = "",
) -> Response:
    async def save() -> str:
        lines = [line.strip() for line in platforms.splitlines() if line.strip()]
        return await _save_platforms(
            request, db, user, _validated(PlatformsIn, {"permitted_platforms": lines})
        )

    return await _form_save(request, db, user, "platforms", {"platforms": platforms}, save)


@pages.post("/settings/notice")
async def notice_form(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    user: Manager,
    text: Annotated[str, Form(max_length=4000)] = "",
) -> Response:
    body = NoticeIn(text=text)
    return await _form_save(
        request, db, user, "notice", {"notice_text": text},
        lambda: _save_notice(request, background, db, user, body),
    )  # fmt: skip


@pages.post("/settings/reminders")
async def reminders_form(request: Request, db: DbSession, user: Manager) -> Response:
    form = await request.form()
    given = {
        rule: value
        for rule in runtime_of(request).texts.reminders
        if isinstance(value := form.get(f"reminder:{rule}", ""), str)
    }

    async def save() -> str:
        body = _validated(RemindersIn, {"reminders": given})
        return await _save_reminders(request, db, user, body)

    submitted = {f"reminder:{rule}": text for rule, text in given.items()}
    return await _form_save(request, db, user, "reminders", submitted, save)


@pages.post("/settings/retention")
async def retention_form(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    user: Manager,
    metadata_days: Annotated[str, Form(max_length=10)] = "",
    flag_days: Annotated[str, Form(max_length=10)] = "",
    audit_days: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    async def save() -> str:
        data = {
            "metadata_days": _optional_number(metadata_days, "retention.metadata_days", int),
            "flag_days": _optional_number(flag_days, "retention.flag_days", int),
            "audit_days": _optional_number(audit_days, "retention.audit_days", int),
        }
        body = _validated(RetentionIn, data)
        return await _save_retention(request, background, db, user, body)

    submitted = {"metadata_days": metadata_days, "flag_days": flag_days, "audit_days": audit_days}
    return await _form_save(request, db, user, "retention", submitted, save)


@pages.post("/settings/alerts")
async def alerts_form(
    request: Request,
    db: DbSession,
    user: Manager,
    dsl_rules: Annotated[list[str], Form(max_length=len(RuleId))] = [],  # noqa: B006
    escalate_after_minutes: Annotated[str, Form(max_length=10)] = "",
    digest_time: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    async def save() -> str:
        data = {
            "dsl_rules": dsl_rules,
            "escalate_after_minutes": _optional_number(
                escalate_after_minutes, "escalate_after_minutes", float
            ),
            "digest_time": digest_time.strip() or None,
        }
        return await _save_alerts(request, db, user, _validated(AlertRoutingIn, data))

    submitted = {
        "dsl_rules": dsl_rules,
        "escalate_after_minutes": escalate_after_minutes,
        "digest_time": digest_time,
    }
    return await _form_save(request, db, user, "alerts", submitted, save)


# -- JSON -------------------------------------------------------------------------------------


@api.get("")
async def get_settings(request: Request, db: DbSession, user: Manager) -> SettingsOut:
    """Your school's settings, each with the installation's default beside it."""
    return _view(request, await school_of(db, user))


async def _saved(
    request: Request, db: DbSession, user: SignedIn, saving: Awaitable[str]
) -> SettingsOut:
    await saving
    return _view(request, await school_of(db, user))


@api.put("/hours", responses=BAD_INPUT)
async def put_hours(request: Request, body: HoursIn, db: DbSession, user: Manager) -> SettingsOut:
    """Working hours by weekday and the bank-holiday region."""
    return await _saved(request, db, user, _save_hours(request, db, user, body))


@api.put("/closures", responses=BAD_INPUT)
async def put_closures(
    request: Request, body: ClosuresIn, db: DbSession, user: Manager
) -> SettingsOut:
    """The whole list of school closures (holidays, INSET days)."""
    return await _saved(request, db, user, _save_closures(request, db, user, body))


@api.put("/platforms", responses=BAD_INPUT)
async def put_platforms(
    request: Request, body: PlatformsIn, db: DbSession, user: Manager
) -> SettingsOut:
    """The ways parents may contact staff, named in reminders."""
    return await _saved(request, db, user, _save_platforms(request, db, user, body))


@api.put("/notice", responses=BAD_INPUT)
async def put_notice(
    request: Request, background: BackgroundTasks, body: NoticeIn, db: DbSession, user: Manager
) -> SettingsOut:
    """The consent notice. New words are a new version: it is posted to every registered chat
    and every member must agree again before their messages are read."""
    return await _saved(request, db, user, _save_notice(request, background, db, user, body))


@api.put("/reminders", responses=BAD_INPUT)
async def put_reminders(
    request: Request, body: RemindersIn, db: DbSession, user: Manager
) -> SettingsOut:
    """The school's own words for reminders to senders, by rule."""
    return await _saved(request, db, user, _save_reminders(request, db, user, body))


@api.put("/retention", responses=BAD_INPUT)
async def put_retention(
    request: Request, background: BackgroundTasks, body: RetentionIn, db: DbSession, user: Manager
) -> SettingsOut:
    """How long message records, flags and the audit log are kept (null: the installation's)."""
    return await _saved(request, db, user, _save_retention(request, background, db, user, body))


@api.put("/alerts", responses=BAD_INPUT)
async def put_alerts(
    request: Request, body: AlertRoutingIn, db: DbSession, user: Manager
) -> SettingsOut:
    """Which rules also go to the DSL, when unacknowledged alerts are re-sent, the digest time."""
    return await _saved(request, db, user, _save_alerts(request, db, user, body))
