"""The flag queue, one flag in full (its words: every view is audited), and SLT's decisions and
actions on it. The work is ``bot.services.review``'s, shared with the Telegram alert buttons.

A report (a message a parent forwarded to the school's WhatsApp number) is a flag too, marked as
one: its "sender" is the parent who reported it, so it has no sender actions."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, BackgroundTasks, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator

from api.admin.deps import (
    DbSession,
    SignedIn,
    requires,
    runtime_of,
    school_of,
    wake_outbox_after_commit,
)
from api.admin.templating import redirect, render
from bot.policy.rules import RuleId
from bot.services import review
from bot.services.access import Permission
from bot.services.review import Decision, Outcome, Step
from bot.services.schools import day_bounds, school_zone
from bot.store.models import (
    MAX_ID,
    Chat,
    ChatMember,
    Flag,
    FlagSource,
    FlagStatus,
    OutboxMessage,
    OutboxStatus,
    School,
    utcnow,
)
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.flags import FlagQuery

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api", tags=["flags"])

PER_PAGE = 50
MAX_NOTE = 2000
Reviewing = Annotated[SignedIn, requires(Permission.REVIEW_FLAGS)]
FlagId = Annotated[int, Path(ge=1, le=MAX_ID, description="The flag's id")]
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "No such flag you can see"}}
STATUS_LABELS = {
    FlagStatus.OPEN: "Open",
    FlagStatus.ACKNOWLEDGED: "Acknowledged",
    FlagStatus.CONFIRMED: "Breach confirmed",
    FlagStatus.FALSE_POSITIVE: "Not a breach",
    FlagStatus.ESCALATED: "Escalated to the DSL",
}

SOURCE_LABELS = {
    FlagSource.CHAT: "In a chat",
    FlagSource.REPORT: "Reported to the WhatsApp number",
}
HISTORY = {
    "flag.raised": "Flagged",
    "flag.rechecked": "Checked again after an edit",
    "flag.viewed": "Opened",
    "flag.acknowledged": "Acknowledged",
    "flag.confirmed": "Confirmed as a breach",
    "flag.false_positive": "Recorded as not a breach",
    "flag.escalated": "Escalated to the DSL",
    "flag.reminder_sent": "Reminder sent to the sender",
    "flag.removal_requested": "Removal requested",
    "flag.meeting_requested": "Meeting requested",
    "flag.reported": "Reported to the school's WhatsApp number",
    "flag.reported_from": "The reporter said which group it came from",
}
"""How the detail page words the audit log's actions (others are shown as they are)."""
OUTCOMES = {
    Outcome.DELETED: "the bot is to delete it",
    Outcome.ASKED: "the sender was asked to delete it",
}
"""How the history words a removal request's outcome: what was asked, not yet what happened."""


# -- the queue -------------------------------------------------------------------------------


class QueueFilters(BaseModel):
    """Which flags to list; an empty value (a filter form's "any") means any."""

    model_config = ConfigDict(extra="forbid")

    rule: RuleId | None = None
    severity: Literal["high", "medium", "low"] | None = None
    chat: int | None = Field(default=None, ge=1, le=MAX_ID)
    status: FlagStatus | None = None
    source: FlagSource | None = None
    """"chat" (checked in a chat) or "report" (forwarded to the school's WhatsApp number)."""
    date_from: date | None = Field(default=None, ge=date(2000, 1, 1), le=date(2100, 12, 31))
    """From this day (the school's local date)."""
    date_to: date | None = Field(default=None, ge=date(2000, 1, 1), le=date(2100, 12, 31))
    """Up to and including this day (the school's local date)."""
    page: int = Field(default=1, ge=1, le=10_000)

    @field_validator(
        "rule", "severity", "chat", "status", "source", "date_from", "date_to", mode="before"
    )
    @classmethod
    def _empty_is_any(cls, value: object) -> object:
        return None if value == "" else value

    def query_string(self, page: int) -> str:
        """These filters, on another page, as a URL query."""
        values = self.model_dump(mode="json", exclude_none=True, exclude={"page"})
        return urlencode({**values, "page": page})


class FlagSummary(BaseModel):
    """A flag in the queue: no message words here (only the audited detail has them)."""

    id: int
    rules: list[str]
    severity: str
    status: FlagStatus
    safeguarding: bool
    chat_id: int
    chat: str
    sender: str
    """Who wrote it; for a report, the parent who reported it (the author is not known)."""
    source: FlagSource
    """"report": forwarded to the school's WhatsApp number, not seen in a chat."""
    reported_from: str | None
    """For a report: the group it came from, as the reporter said (None: not said)."""
    created_at: datetime
    acknowledged_at: datetime | None


class FlagQueue(BaseModel):
    items: list[FlagSummary]
    page: int
    per_page: int
    total: int
    pages: int


def _chat_name(chat: Chat) -> str:
    return chat.title or chat.class_name or f"chat {chat.id}"


def _summary(flag: Flag, chat: Chat, sender: ChatMember) -> FlagSummary:
    return FlagSummary(
        id=flag.id, rules=[r.rule for r in flag.reasons], severity=flag.severity,
        status=flag.status, safeguarding=flag.safeguarding, chat_id=chat.id,
        chat=_chat_name(chat), sender=sender.display_name, source=flag.source,
        reported_from=flag.reported_from, created_at=flag.created_at,
        acknowledged_at=flag.acknowledged_at,
    )  # fmt: skip


async def _queue(db: DbSession, user: SignedIn, school: School, filters: QueueFilters) -> FlagQueue:
    since, before = day_bounds(school_zone(school), filters.date_from, filters.date_to)
    wanted = FlagQuery(
        school_id=user.school_id, with_safeguarding=user.can(Permission.VIEW_SAFEGUARDING),
        rule=filters.rule, severity=filters.severity, chat_id=filters.chat,
        status=filters.status, source=filters.source, since=since, before=before,
    )  # fmt: skip
    found = await review.queue(db, wanted, filters.page, PER_PAGE)
    return FlagQueue(
        items=[_summary(*row) for row in found.rows], page=filters.page, per_page=PER_PAGE,
        total=found.total, pages=max(1, math.ceil(found.total / PER_PAGE)),
    )  # fmt: skip


@pages.get("/flags")
async def queue_page(
    request: Request,
    db: DbSession,
    user: Reviewing,
    filters: Annotated[QueueFilters, Query()],
) -> HTMLResponse:
    school = await school_of(db, user)
    listing = await _queue(db, user, school, filters)
    chats = await ChatRepository(db).for_school(user.school_id)
    return render(
        request, "flags/queue.html",
        {
            "listing": listing, "filters": filters, "chats": chats, "rules": list(RuleId),
            "status_labels": STATUS_LABELS, "source_labels": SOURCE_LABELS,
            "zone": school_zone(school),
        },
        user=user,
    )  # fmt: skip


@api.get("/flags", responses={400: {"description": "The dates are the wrong way round"}})
async def queue_json(
    db: DbSession, user: Reviewing, filters: Annotated[QueueFilters, Query()]
) -> FlagQueue:
    """Your school's flags, newest first, 50 a page, filtered by rule, severity, chat, status,
    source (in a chat, or reported to the school's WhatsApp number) and the school's local
    dates. No message words: open a flag for those."""
    return await _queue(db, user, await school_of(db, user), filters)


# -- one flag --------------------------------------------------------------------------------


class Reason(BaseModel):
    rule: str
    severity: str
    clause: str
    """The clause of the code of conduct the rule enforces."""
    evidence: str
    source: str
    """Who found it: "rules" (the word rules) or "model" (the learned layer)."""


class DecisionState(BaseModel):
    acknowledged_at: datetime | None
    acknowledged_by: str
    decided_at: datetime | None
    decided_by: str
    note: str | None


class ContextMessage(BaseModel):
    id: int
    sender: str
    sent_at: datetime
    text: str | None
    """The words, only where they are kept (flagged messages) and yours to read."""
    why_not: str | None
    this: bool
    """The flagged message itself."""


class HistoryEntry(BaseModel):
    at: datetime
    who: str
    action: str
    details: dict[str, Any]


class Removal(BaseModel):
    """The bot's deletion of the flagged message from its chat, once asked for."""

    state: Literal["waiting", "deleted", "failed"]
    deleted_at: datetime | None
    error: str | None
    """Why Telegram refused (so far, while waiting to try again)."""


def _removal(row: OutboxMessage | None) -> Removal | None:
    if row is None:
        return None
    if row.status == OutboxStatus.SENT:
        return Removal(state="deleted", deleted_at=row.sent_at, error=None)
    state: Literal["waiting", "failed"] = (
        "failed" if row.status == OutboxStatus.FAILED else "waiting"
    )
    return Removal(state=state, deleted_at=None, error=row.error)


class FlagDetail(FlagSummary):
    text: str | None
    sent_at: datetime
    edited_at: datetime | None
    media: list[str]
    reasons: list[Reason]
    decision: DecisionState
    context: list[ContextMessage]
    history: list[HistoryEntry]
    removal: Removal | None
    """Whether the bot has deleted the message, once removal was requested and it could."""


def _reviewer(user: SignedIn) -> review.Reviewer:
    return review.Reviewer(user.actor, user.user.name)


async def _case(db: DbSession, user: SignedIn, flag_id: int) -> review.Case:
    see = user.can(Permission.VIEW_SAFEGUARDING)
    return await review.open_case(db, flag_id, user.school_id, see_safeguarding=see)


async def _examine(db: DbSession, user: SignedIn, flag_id: int, via: str) -> review.Examined:
    case = await _case(db, user, flag_id)
    see = user.can(Permission.VIEW_SAFEGUARDING)
    return await review.examine(db, case, _reviewer(user), see_safeguarding=see, via=via)


def _detail(seen: review.Examined) -> FlagDetail:
    case, flag = seen.case, seen.case.flag
    return FlagDetail(
        **_summary(flag, case.chat, case.sender).model_dump(),
        text=case.message.text, sent_at=case.message.sent_at, edited_at=case.message.edited_at,
        media=list(case.message.media_kinds),
        reasons=[
            Reason(rule=r.rule, severity=r.severity, clause=r.clause, evidence=r.evidence,
                   source=r.source)
            for r in flag.reasons
        ],
        decision=DecisionState(
            acknowledged_at=flag.acknowledged_at, acknowledged_by=seen.name(flag.acknowledged_by),
            decided_at=flag.decided_at, decided_by=seen.name(flag.decided_by),
            note=flag.decision_note,
        ),
        context=[ContextMessage(**asdict(n)) for n in seen.context],
        history=[
            HistoryEntry(
                at=e.created_at, who=seen.name(e.actor), action=e.action, details=e.details
            )
            for e in seen.history
        ],
        removal=_removal(seen.removal),
    )  # fmt: skip


@pages.get("/flags/{flag_id}")
async def flag_page(request: Request, db: DbSession, user: Reviewing, flag_id: FlagId) -> Response:
    seen = await _examine(db, user, flag_id, "page")
    school = await school_of(db, user)
    return render(
        request, "flags/detail.html",
        {
            "flag": _detail(seen), "zone": school_zone(school), "Decision": Decision,
            "Step": Step, "FlagStatus": FlagStatus, "max_note": MAX_NOTE, "history": HISTORY,
            "outcomes": OUTCOMES, "acts_on_sender": review.acts_on_sender(seen.case),
            "not_the_author": review.NOT_THE_AUTHOR, "platform": seen.case.chat.platform,
            "status_labels": STATUS_LABELS, "report": seen.case.reported,
        },
        user=user,
    )  # fmt: skip


@api.get("/flags/{flag_id}", responses=NOT_FOUND)
async def flag_json(db: DbSession, user: Reviewing, flag_id: FlagId) -> FlagDetail:
    """One flag in full: the message's words, each reason, the decision, its history and the
    messages around it. The view is recorded in the audit log."""
    return _detail(await _examine(db, user, flag_id, "api"))


# -- decisions and actions -------------------------------------------------------------------


class DecisionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    decision: Decision
    note: str | None = Field(default=None, max_length=MAX_NOTE)
    """Why: required for "false_positive"."""


class DecisionOut(BaseModel):
    flag: FlagSummary
    changed: bool
    """False when the flag already stood so."""
    dsl_alerts: int
    message: str


class ActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Step


class ActionOut(BaseModel):
    action: Step
    outcome: Outcome
    message: str


DONE = {
    Decision.ACKNOWLEDGE: "Acknowledged.",
    Decision.CONFIRM: "Confirmed as a breach of the code.",
    Decision.FALSE_POSITIVE: "Recorded as not a breach.",
}


def _decided_message(decision: Decision, decided: review.Decided) -> str:
    if not decided.changed:
        return "Nothing changed: the flag already stood so."
    if decision is not Decision.ESCALATE:
        return DONE[decision]
    if decided.alerted == 0:
        return (
            "Escalated to the Designated Safeguarding Lead, but no DSL can be reached on any "
            "channel they chose (Telegram, e-mail, WhatsApp or SMS): please tell them yourself."
        )
    return f"Escalated to the Designated Safeguarding Lead ({decided.alerted} alert(s) on the way)."


def _acted_message(step: Step, outcome: Outcome, case: review.Case) -> str:
    sender = case.sender.display_name
    if step is Step.REMIND:
        return f"A reminder is on its way to {sender}."
    if step is Step.MEET:
        return f"A meeting request is on its way to {sender}."
    if outcome is Outcome.DELETED:
        return "The bot is deleting the message from the chat."
    if case.chat.platform not in review.DELETES:
        return (
            "The sender has been asked to delete it. Schoolgate cannot take a WhatsApp message "
            "back from members' phones once it is delivered."
        )
    return "The sender has been asked to delete it: the bot cannot delete it itself."


async def _decide(
    request: Request, db: DbSession, user: SignedIn, flag_id: int, body: DecisionIn
) -> tuple[review.Case, review.Decided]:
    case = await _case(db, user, flag_id)
    runtime = runtime_of(request)
    decided = await review.decide(
        db, case, body.decision, _reviewer(user), note=body.note, texts=runtime.texts,
        channels=runtime.alert_channels, now=utcnow(),
    )  # fmt: skip
    return case, decided


async def _act(
    request: Request, db: DbSession, user: SignedIn, flag_id: int, step: Step
) -> tuple[review.Case, Outcome]:
    case = await _case(db, user, flag_id)
    texts = runtime_of(request).texts
    return case, await review.act(db, case, step, _reviewer(user), texts=texts, now=utcnow())


@pages.post("/flags/{flag_id}/decision")
async def decision_form(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    user: Reviewing,
    flag_id: FlagId,
    decision: Annotated[Decision, Form()],
    note: Annotated[str, Form(max_length=MAX_NOTE)] = "",
) -> Response:
    case, decided = await _decide(
        request, db, user, flag_id, DecisionIn(decision=decision, note=note)
    )
    wake_outbox_after_commit(request, background)
    message = _decided_message(decision, decided)
    if case.flag.safeguarding and not user.can(Permission.VIEW_SAFEGUARDING):
        return redirect(request, "/flags", f"Flag {flag_id}: {message} Only the DSL sees it now.")
    return redirect(request, f"/flags/{flag_id}", message)


@pages.post("/flags/{flag_id}/actions")
async def action_form(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    user: Reviewing,
    flag_id: FlagId,
    action: Annotated[Step, Form()],
) -> Response:
    case, outcome = await _act(request, db, user, flag_id, action)
    wake_outbox_after_commit(request, background)
    message = _acted_message(action, outcome, case)
    return redirect(request, f"/flags/{flag_id}", message)


@api.post(
    "/flags/{flag_id}/decision",
    responses={**NOT_FOUND, 400: {"description": "A reason is required"}},
)
async def decision_json(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    user: Reviewing,
    flag_id: FlagId,
    body: DecisionIn,
) -> DecisionOut:
    """Acknowledge, confirm (a breach), mark not a breach (``note`` required) or escalate to
    the DSL (only the DSL sees the flag afterwards). A decision the flag already stands by
    changes nothing; deciding differently later is allowed, and audited."""
    case, decided = await _decide(request, db, user, flag_id, body)
    wake_outbox_after_commit(request, background)
    return DecisionOut(
        flag=_summary(case.flag, case.chat, case.sender), changed=decided.changed,
        dsl_alerts=decided.alerted, message=_decided_message(body.decision, decided),
    )  # fmt: skip


@api.post(
    "/flags/{flag_id}/actions",
    responses={**NOT_FOUND, 409: {"description": "A report: its author is not known"}},
)
async def action_json(
    request: Request,
    background: BackgroundTasks,
    db: DbSession,
    user: Reviewing,
    flag_id: FlagId,
    body: ActionIn,
) -> ActionOut:
    """Remind the sender, have the message removed (the bot deletes it when it can, otherwise
    the sender is asked to: always on WhatsApp), or ask the sender to a meeting. Not for a
    report (409): its author is not known."""
    case, outcome = await _act(request, db, user, flag_id, body.action)
    wake_outbox_after_commit(request, background)
    message = _acted_message(body.action, outcome, case)
    return ActionOut(action=body.action, outcome=outcome, message=message)
