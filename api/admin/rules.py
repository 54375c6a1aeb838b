"""The rules: what breaks each one, the school's choices for it (on or off, severity, when SLT
hear of it, whether the sender is reminded), its extra lexicon terms, how often its flags were
found not to be a breach, and trying a message against the school's own policy engine.

Everyone who may see the rules may try a message; changing them needs MANAGE_RULES. Always the
signed-in person's own school.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Request
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
from bot.channels.jsonl import MessageIn, PersonIn, verdict_json
from bot.errors import BadInputError
from bot.policy.config import FrequentContactSettings
from bot.policy.engine import MessageTooLongError
from bot.policy.rules import RuleId, Severity
from bot.policy_files import describe_validation_error
from bot.runtime import retention
from bot.services import learning, rule_settings
from bot.services.access import Permission
from bot.services.checking import verdict_of
from bot.services.rule_settings import RuleRow
from bot.services.school_settings import AlertTiming, RuleSetup
from bot.services.school_settings import settings_of as school_settings_of
from bot.store.models import School, utcnow

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["rules"])

Viewer = Annotated[SignedIn, requires(Permission.VIEW_RULES)]
Manager = Annotated[SignedIn, requires(Permission.MANAGE_RULES)]
BAD_INPUT: dict[int | str, dict[str, Any]] = {
    400: {
        "description": "A choice or a term cannot be used (the message says which); nothing changed"
    }
}
SEVERITIES = ("low", "medium", "high")
ROLES = ("parent", "staff", "unknown")
# A try is a chat message: Telegram's own limit is 4,096 characters.
MAX_TRY_CHARS = 4096
# The school calendar (working hours, bank holidays) covers these years and no others.
EARLIEST, LATEST = datetime(2000, 1, 1), datetime(2100, 12, 31, 23, 59)


# -- what the API shows and takes -----------------------------------------------------------


class FalsePositivesOut(BaseModel):
    decided: int
    """This school's flags for the rule that SLT decided (confirmed, not a breach, escalated)."""
    false_positives: int
    rate: float | None
    """Of the decided ones, the share found not to be a breach; None before any decision."""
    text: str


class RuleOut(BaseModel):
    id: RuleId
    summary: str
    """What breaks it."""
    clause: str
    default_severity: str
    enabled: bool
    severity: str
    own_severity: str | None
    """The school's choice; None: the default."""
    alert: AlertTiming
    own_alert: AlertTiming | None
    """The school's choice; None: by severity (high at once, the others in the digest)."""
    remind: bool | None
    """Whether the sender is reminded; None for rules without a reminder."""
    hold: bool
    """In hosted WhatsApp groups, the message is held back instead of relayed."""
    false_positives: FalsePositivesOut


class FrequentContactOut(BaseModel):
    max_messages: int
    window_hours: float
    own: bool


class LexiconOut(BaseModel):
    name: str
    description: str
    terms: list[str]
    """The school's own terms, added to the list's."""


class RulesOut(BaseModel):
    rules: list[RuleOut]
    frequent_contact: FrequentContactOut
    lexicons: list[LexiconOut]


class RuleChoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    severity: Literal["low", "medium", "high"] | None = None
    alert: AlertTiming | None = None
    remind: bool = True
    hold: bool = False
    """In hosted WhatsApp groups, hold a message breaking this rule back instead of relaying."""

    def setup(self) -> RuleSetup:
        severity = Severity.parse(self.severity) if self.severity else None
        return RuleSetup(
            enabled=self.enabled, severity=severity, alert=self.alert, remind=self.remind,
            hold=self.hold,
        )  # fmt: skip


class FrequentContactIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max_messages: int = Field(ge=1, le=1000)
    window_hours: float = Field(gt=0, le=24 * 90)


class RulesIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    rules: dict[RuleId, RuleChoiceIn] = Field(default_factory=dict)
    """A rule left out: the installation's choices."""
    frequent_contact: FrequentContactIn | None = None
    """None: the installation's limit."""


class LexiconsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lexicons: dict[
        Annotated[str, Field(max_length=80)],
        Annotated[
            list[Annotated[str, Field(max_length=rule_settings.MAX_TERM_CHARS)]],
            Field(max_length=rule_settings.MAX_TERMS),
        ],
    ] = Field(default_factory=dict, max_length=200)
    """The school's extra terms by list (like ``abuse.insults``); a list left out: none."""


class TryIn(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TRY_CHARS)
    role: Literal["parent", "staff", "unknown"] = "parent"
    sent_at: datetime | None = None
    """Without an offset: school time. None: now."""

    def message(self) -> MessageIn:
        sender = PersonIn(id="try", name="", role=self.role)
        return MessageIn(id="try", text=self.text, sent_at=self.sent_at or utcnow(), sender=sender)


# -- reading and saving ----------------------------------------------------------------------


async def _table(request: Request, db: DbSession, school: School) -> list[RuleRow]:
    runtime = runtime_of(request)
    return await rule_settings.rule_table(db, school, runtime.engines, runtime.texts.reminders)


def _lexicons(request: Request, school: School) -> list[LexiconOut]:
    described = rule_settings.lexicon_descriptions(settings_of(request).config_dir / "lexicons")
    own = school_settings_of(school).lexicons
    return [
        LexiconOut(name=name, description=described.get(name, ""), terms=list(own.get(name, ())))
        for name in runtime_of(request).engines.lexicons.lists
    ]


def _frequent(request: Request, school: School) -> FrequentContactOut:
    own = school_settings_of(school).frequent_contact
    limit = own or runtime_of(request).engines.policy.frequent_contact
    return FrequentContactOut(
        max_messages=limit.max_messages, window_hours=limit.window_hours, own=own is not None
    )


def _rule_out(row: RuleRow) -> RuleOut:
    return RuleOut(
        id=row.rule.id,
        summary=row.rule.summary,
        clause=row.clause,
        default_severity=row.default_severity.label,
        enabled=row.enabled,
        severity=row.severity.label,
        own_severity=row.setup.severity.label if row.setup.severity else None,
        alert=row.alert,
        own_alert=row.setup.alert,
        remind=row.setup.remind if row.remindable else None,
        hold=row.setup.hold,
        false_positives=FalsePositivesOut(
            decided=row.outcome.decided,
            false_positives=row.outcome.false_positives,
            rate=row.false_positive_rate,
            text=row.false_positive_text,
        ),
    )


async def _view(request: Request, db: DbSession, school: School) -> RulesOut:
    return RulesOut(
        rules=[_rule_out(row) for row in await _table(request, db, school)],
        frequent_contact=_frequent(request, school),
        lexicons=_lexicons(request, school),
    )


async def _save_rules(request: Request, db: DbSession, user: SignedIn, body: RulesIn) -> None:
    school = await school_of(db, user)
    frequent = (
        FrequentContactSettings(**body.frequent_contact.model_dump())
        if body.frequent_contact
        else None
    )
    choices = {rule: choice.setup() for rule, choice in body.rules.items()}
    await rule_settings.save_rules(
        db, school, choices, frequent, runtime_of(request).engines, user.actor
    )


async def _save_lexicons(request: Request, db: DbSession, user: SignedIn, body: LexiconsIn) -> None:
    school = await school_of(db, user)
    await rule_settings.save_lexicons(
        db, school, body.lexicons, runtime_of(request).engines, user.actor
    )


async def _classify(
    request: Request, db: DbSession, user: SignedIn, message: MessageIn
) -> dict[str, Any]:
    """One message through the school's own engine, as the bot would check it."""
    if not EARLIEST <= message.sent_at.replace(tzinfo=None) <= LATEST:
        raise BadInputError("sent_at: give a time between the years 2000 and 2100")
    engine = await runtime_of(request).engines.for_school(db, await school_of(db, user))
    try:
        verdict = await verdict_of(engine, message.to_message())
    except MessageTooLongError as error:
        raise HTTPException(413, str(error)) from None
    return verdict_json(message.id, verdict)


# -- pages -----------------------------------------------------------------------------------


async def _page(
    request: Request,
    db: DbSession,
    user: SignedIn,
    *,
    tried: dict[str, Any] | None = None,
    attempt: TryIn | None = None,
    errors: dict[str, str] | None = None,
    submitted: dict[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    school = await school_of(db, user)
    return render(
        request,
        "rules/page.html",
        {
            "rows": await _table(request, db, school),
            "learning": await learning.status(db, school),
            "frequent": _frequent(request, school),
            "lexicons": _lexicons(request, school),
            "can_manage": user.can(Permission.MANAGE_RULES),
            "severities": SEVERITIES,
            "timings": list(AlertTiming),
            "roles": ROLES,
            "tried": tried,
            "attempt": attempt,
            "errors": errors or {},
            "submitted": submitted or {},
        },
        user=user,
        status_code=status,
    )


def _choice(form: dict[str, str], rule: RuleId, remindable: bool) -> RuleChoiceIn:
    severity = form.get(f"severity:{rule}", "")
    alert = form.get(f"alert:{rule}", "")
    if severity not in ("", *SEVERITIES):
        raise BadInputError(f"rules.{rule}.severity: {severity[:20]!r} is not low, medium or high")
    if alert not in ("", *AlertTiming):
        raise BadInputError(f"rules.{rule}.alert: {alert[:20]!r} is not now, digest or none")
    return RuleChoiceIn(
        enabled=form.get(f"enabled:{rule}") == "on",
        severity=severity or None,
        alert=AlertTiming(alert) if alert else None,
        # Only a rule with a reminder has the box; for the others reminding is moot.
        remind=form.get(f"remind:{rule}") == "on" if remindable else True,
        hold=form.get(f"hold:{rule}") == "on",
    )


def _frequent_from_form(form: dict[str, str]) -> FrequentContactIn | None:
    most, hours = form.get("frequent_max", "").strip(), form.get("frequent_hours", "").strip()
    if not most and not hours:
        return None
    try:
        return FrequentContactIn(max_messages=int(most), window_hours=float(hours))
    except ValueError:
        raise BadInputError(
            "frequent_contact: give both a number of messages (1 to 1000) and a number of hours "
            f"(up to {24 * 90}), or leave both blank for the installation's limit"
        ) from None


def _validated(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """A form's values checked as the JSON API checks them: BadInputError names the field."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise BadInputError("; ".join(describe_validation_error(error))) from None


async def _text_fields(request: Request) -> dict[str, str]:
    form = await request.form()
    return {key: value for key, value in form.items() if isinstance(value, str)}


@pages.get("/rules")
async def rules_page(request: Request, db: DbSession, user: Viewer) -> HTMLResponse:
    return await _page(request, db, user)


@pages.post("/rules")
async def rules_form(request: Request, db: DbSession, user: Manager) -> Response:
    form = await _text_fields(request)
    remindable = rule_settings.remindable_rules(runtime_of(request).texts.reminders)
    try:
        body = RulesIn(
            rules={rule: _choice(form, rule, rule in remindable) for rule in RuleId},
            frequent_contact=_frequent_from_form(form),
        )
        await _save_rules(request, db, user, body)
    except BadInputError as error:
        return await _page(
            request, db, user, errors={"rules": str(error)}, submitted=form, status=400
        )
    return redirect(request, "/rules#choices", "Rule choices saved.")


@pages.post("/rules/lexicons")
async def lexicons_form(request: Request, db: DbSession, user: Manager) -> Response:
    form = await _text_fields(request)
    lists = runtime_of(request).engines.lexicons.lists
    given = {
        name: form.get(f"terms:{name}", "").splitlines()
        for name in lists
        if form.get(f"terms:{name}", "").strip()
    }
    try:
        await _save_lexicons(request, db, user, _validated(LexiconsIn, {"lexicons": given}))
    except BadInputError as error:
        return await _page(
            request, db, user, errors={"lexicons": str(error)}, submitted=form, status=400
        )
    return redirect(request, "/rules#lexicons", "Extra terms saved.")


@pages.post("/rules/learning")
async def learning_form(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    user: Manager,
    learn: Annotated[Literal["on", "off"], Form()],
) -> Response:
    """Turn learning from decisions on (the notice goes out again) or off (examples deleted)."""
    school = await school_of(db, user)
    runtime = runtime_of(request)
    version = await learning.set_learning(
        db, school, learn == "on", runtime.texts.notice, retention(settings_of(request)),
        user.actor, utcnow(), whatsapp_suffix=runtime.whatsapp_texts.notice_suffix,
    )  # fmt: skip
    if learn == "off":
        done = (
            "Learning from decisions is off: every kept example and the school's model are deleted."
        )
    elif version is None:
        done = "Learning from decisions was already on."
    else:
        wake_outbox_after_commit(request, background)  # the notice asking everyone again
        done = (
            f"Learning from decisions is on. The notice now says so (version {version}) and every "
            "member is asked to agree again; flags decided from now on are kept as examples."
        )
    return redirect(request, "/rules#learning", done)


@pages.post("/rules/learning/retrain")
async def retrain_form(request: Request, db: DbSession, user: Manager) -> Response:
    school = await school_of(db, user)
    if not await learning.request_retraining(db, school, user.actor, utcnow()):
        return redirect(request, "/rules#learning", "Turn learning from decisions on first.")
    return redirect(
        request, "/rules#learning",
        "Retraining asked for: the school's model is retrained within a few minutes.",
    )  # fmt: skip


@pages.post("/rules/try")
async def try_form(
    request: Request,
    db: DbSession,
    user: Viewer,
    text: Annotated[str, Form(min_length=1, max_length=MAX_TRY_CHARS)],
    role: Annotated[Literal["parent", "staff", "unknown"], Form()] = "parent",
    sent_at: Annotated[str, Form(max_length=40)] = "",
) -> HTMLResponse:
    try:
        when = datetime.fromisoformat(sent_at) if sent_at.strip() else None
    except ValueError:
        attempt = TryIn(text=text, role=role)
        errors = {"try": f"sent_at: {sent_at!r} is not a date and time"}
        return await _page(request, db, user, attempt=attempt, errors=errors, status=400)
    attempt = TryIn(text=text, role=role, sent_at=when)
    try:
        tried = await _classify(request, db, user, attempt.message())
    except BadInputError as error:
        return await _page(
            request, db, user, attempt=attempt, errors={"try": str(error)}, status=400
        )
    return await _page(request, db, user, tried=tried, attempt=attempt)


# -- JSON -------------------------------------------------------------------------------------


@api.get("/rules")
async def get_rules(request: Request, db: DbSession, user: Viewer) -> RulesOut:
    """Every rule with your school's choices and false-positive rate, and its extra terms."""
    return await _view(request, db, await school_of(db, user))


@api.put("/rules", responses=BAD_INPUT)
async def put_rules(request: Request, body: RulesIn, db: DbSession, user: Manager) -> RulesOut:
    """Replace your school's choices for each rule and its frequent-contact limit."""
    await _save_rules(request, db, user, body)
    return await _view(request, db, await school_of(db, user))


@api.put("/rules/lexicons", responses=BAD_INPUT)
async def put_lexicons(
    request: Request, body: LexiconsIn, db: DbSession, user: Manager
) -> RulesOut:
    """Replace your school's extra terms; each is compiled into the engine before it is kept."""
    await _save_lexicons(request, db, user, body)
    return await _view(request, db, await school_of(db, user))


@api.post(
    "/classify",
    responses={
        400: {"description": "The time is outside the years the calendar covers"},
        413: {"description": "The message is too long"},
    },
)
async def classify(
    message: MessageIn, request: Request, db: DbSession, user: Viewer
) -> dict[str, Any]:
    """Check one message (the ``schoolgate classify`` line format) against your school's rules."""
    return await _classify(request, db, user, message)
