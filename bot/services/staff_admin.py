"""Adding, changing and removing staff from the admin pages.

The staff list lives in the school-file data (``School.config["staff"]``): the policy engine
learns from it who the staff are, by name, alias and handle. So every change is made there and
saved with ``schools.save_config``, which checks the whole file again and re-syncs the ``staff``
table (matched by name, so a linked Telegram account stays linked). What is not in the school
file, the channels a person wants alerts on, is kept on their ``staff`` row: None there means
Telegram and e-mail (``alerts.UNCHOSEN``), as WhatsApp and SMS cost money and ping a phone.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError, NotFoundError
from bot.policy.context import phone_key
from bot.policy.school import WEEKDAYS, SchoolConfig
from bot.policy.school import StaffMember as StaffEntry
from bot.services.alerts import ALERT_CHANNELS, UNCHOSEN, channels_of
from bot.services.schools import save_config, validated_config
from bot.services.staff_links import create_link_code
from bot.store.models import School, StaffMember
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.schools import SchoolRepository

CHANNELS = ALERT_CHANNELS
CHANNEL_LABELS = {"telegram": "Telegram", "email": "E-mail", "whatsapp": "WhatsApp", "sms": "SMS"}
LINK_CODE_VALID = timedelta(hours=72)

FIELD_LABELS = {
    "name": "Name", "role": "Role", "aliases": "Other names", "handles": "Telegram handles",
    "phone": "Phone", "email": "E-mail", "working_hours": "Working hours",
    "alert_channels": "Alerts", "form": "The staff list",
    **{f"working_hours.{day}": f"Working hours on {day.title()}" for day in WEEKDAYS},
}  # fmt: skip
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# The school file's own names for fields the form calls otherwise.
_FORM_FIELD = {"telegram": "handles"}


class StaffInputError(BadInputError):
    """What is wrong with a member of staff's details, by field."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__(
            "; ".join(f"{FIELD_LABELS.get(key, key)}: {text}" for key, text in problems.items())
        )


@dataclass(frozen=True)
class StaffDetails:
    """A member of staff as the form (or the JSON API) gives them."""

    name: str
    role: str = ""
    aliases: tuple[str, ...] = ()
    handles: tuple[str, ...] = ()
    phone: str = ""
    email: str = ""
    slt: bool = False
    dsl: bool = False
    working_hours: dict[str, str] | None = None
    """Their own hours by weekday ("08:30-15:30"; a day left out: not working); None: the
    school's hours."""
    alert_channels: tuple[str, ...] | None = None
    """None: Telegram and e-mail, where they can be reached on them (not WhatsApp or SMS)."""


@dataclass(frozen=True)
class StaffView:
    row: StaffMember
    entry: StaffEntry | None
    """Their entry in the school file (None only if the two have drifted apart)."""
    alerts_on: tuple[str, ...]
    """The channels alerts reach them on now."""

    @property
    def telegram_linked(self) -> bool:
        return self.row.telegram_user_id is not None

    def hours_by_day(self) -> dict[str, str]:
        """Their own hours as the form writes them, by weekday ("" for a day off)."""
        if self.entry is None or self.entry.working_hours is None:
            return {}
        dumped = self.entry.working_hours.model_dump(mode="json")
        return {day: ", ".join(dumped[day]) for day in WEEKDAYS}

    def details(self) -> StaffDetails:
        entry = self.entry or StaffEntry(name=self.row.name)
        hours = self.hours_by_day()
        return StaffDetails(
            name=entry.name, role=entry.role, aliases=entry.aliases, handles=entry.all_handles,
            phone=entry.phone, email=entry.email, slt=entry.slt, dsl=entry.dsl,
            working_hours={day: text for day, text in hours.items() if text} if hours else None,
            alert_channels=tuple(self.row.alert_channels)
            if self.row.alert_channels is not None else None,
        )  # fmt: skip


def mask(text: str) -> str:
    """A phone number with all but its last three digits hidden: "••••• •••123"."""
    digits = sum(ch.isdigit() for ch in text)
    seen = 0
    out = []
    for ch in text:
        if ch.isdigit():
            seen += 1
            out.append(ch if seen > digits - 3 else "•")
        else:
            out.append(ch)
    return "".join(out)


def alerts_on(row: StaffMember, channels: Collection[str]) -> tuple[str, ...]:
    """Where this person's alerts go: SLT and the DSL only, by the channels they can be reached
    on (Telegram once linked, e-mail once listed, WhatsApp and SMS with a phone number; each
    only where the service sends on it: ``channels``) and chose."""
    if not (row.slt or row.dsl):
        return ()
    return tuple(channel for channel, _ in channels_of(row, channels))


def _config_staff(school: School) -> list[dict[str, Any]]:
    return list(school.config.get("staff", []))


def _entries(school: School) -> dict[str, StaffEntry]:
    found = {}
    for data in _config_staff(school):
        entry = StaffEntry.model_validate(data)
        found[entry.name] = entry
    return found


async def staff_list(
    session: AsyncSession, school: School, *, channels: Collection[str]
) -> list[StaffView]:
    """The school's staff; ``channels``: those the service sends on."""
    entries = _entries(school)
    return [
        StaffView(row, entries.get(row.name), alerts_on(row, channels))
        for row in await SchoolRepository(session).staff(school.id)
    ]


async def staff_view(
    session: AsyncSession, school: School, staff_id: int, *, channels: Collection[str]
) -> StaffView:
    row = await _row(session, school, staff_id)
    return StaffView(row, _entries(school).get(row.name), alerts_on(row, channels))


async def _row(session: AsyncSession, school: School, staff_id: int) -> StaffMember:
    found = next((r for r in await SchoolRepository(session).staff(school.id) if r.id == staff_id),
                 None)  # fmt: skip
    if found is None:
        raise NotFoundError("There is no such member of staff at your school.")
    return found


# -- checking ---------------------------------------------------------------------------------


def _clean_list(values: tuple[str, ...]) -> list[str]:
    return list(dict.fromkeys(v.strip() for v in values if v.strip()))


def _entry_data(details: StaffDetails, keep_id: str) -> dict[str, Any]:
    data: dict[str, Any] = {
        "name": " ".join(details.name.split()),
        "role": details.role.strip(),
        "aliases": _clean_list(details.aliases),
        "telegram": _clean_list(details.handles),
        "phone": details.phone.strip(),
        "email": details.email.strip(),
        "slt": details.slt,
        "dsl": details.dsl,
    }
    if keep_id:
        data["id"] = keep_id
    if details.working_hours is not None:
        data["working_hours"] = {
            day: text.strip() for day, text in details.working_hours.items() if text.strip()
        }
    return data


def _problems(error: ValidationError) -> dict[str, str]:
    problems: dict[str, str] = {}
    for problem in error.errors():
        loc = [str(part) for part in problem["loc"]]
        key = _FORM_FIELD.get(loc[0], loc[0]) if loc else "form"
        if key == "working_hours" and len(loc) > 1 and loc[1] in WEEKDAYS:
            key = f"working_hours.{loc[1]}"
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "extra_forbidden":
            message = "is not a weekday"
        problems.setdefault(key, message)
    return problems


@dataclass(frozen=True)
class _Checked:
    data: dict[str, Any]
    """The school-file entry, as written."""
    entry: StaffEntry
    channels: list[str] | None
    """The alert channels to store."""


def _check(details: StaffDetails, others: list[StaffEntry], keep_id: str) -> _Checked:
    """The school-file entry for ``details`` and the alert channels to store, or
    StaffInputError naming each problem by field. ``others`` are the rest of the staff."""
    data = _entry_data(details, keep_id)
    problems: dict[str, str] = {}
    try:
        entry = StaffEntry.model_validate(data)
    except ValidationError as error:
        problems = _problems(error)
        entry = None
    if not data["name"]:
        problems["name"] = "give the name parents know them by, e.g. Mrs Anita Patel"
    elif any(other.name.lower() == data["name"].lower() for other in others):
        problems["name"] = f"{data['name']} is already on the staff list"
    if data["email"] and not _EMAIL.match(data["email"]):
        problems["email"] = f"{data['email']!r} is not an e-mail address like name@school.sch.uk"
    if data["phone"] and phone_key(data["phone"]) is None:
        problems["phone"] = f"{data['phone']!r} is not a phone number like 07700 900123"
    if entry is not None:
        taken = {h.lower(): other.name for other in others for h in other.all_handles}
        clash = [h for h in entry.all_handles if h.lower() in taken]
        if clash:
            problems["handles"] = f"{clash[0]} is {taken[clash[0].lower()]}'s handle"
    channels = details.alert_channels
    if channels is not None:
        unknown = [c for c in channels if c not in CHANNELS]
        if unknown:
            problems["alert_channels"] = f"{unknown[0]!r} is not one of {', '.join(CHANNELS)}"
        chosen = tuple(c for c in CHANNELS if c in channels)
        channels = None if chosen == UNCHOSEN else chosen
    if problems or entry is None:
        raise StaffInputError(problems)
    return _Checked(data, entry, list(channels) if channels is not None else None)


def _validated(school: School, staff: list[dict[str, Any]]) -> SchoolConfig:
    """The school file with this staff list, checked as a whole before anything is written."""
    try:
        return validated_config({**school.config, "staff": staff})
    except BadInputError as error:
        raise StaffInputError({"form": str(error)}) from None


async def _by_name(session: AsyncSession, school: School, name: str) -> StaffMember:
    for row in await SchoolRepository(session).staff(school.id):
        if row.name == name:
            return row
    raise NotFoundError(f"{name} is not in the staff table after saving")  # an invariant broke


# -- changes ----------------------------------------------------------------------------------


async def add(
    session: AsyncSession, school: School, details: StaffDetails, actor: str
) -> StaffMember:
    """Add a member of staff to the school file (and so to the policy engine)."""
    staff = _config_staff(school)
    checked = _check(details, [StaffEntry.model_validate(d) for d in staff], keep_id="")
    config = _validated(school, [*staff, checked.data])
    await save_config(session, school, config, actor, f"staff: added {checked.entry.name}")
    row = await _by_name(session, school, checked.entry.name)
    row.alert_channels = checked.channels
    await AuditRepository(session).record(
        actor, "staff.added", f"staff:{row.id}", school.id, name=row.name
    )
    return row


async def update(
    session: AsyncSession, school: School, staff_id: int, details: StaffDetails, actor: str
) -> StaffMember:
    """Change a member of staff; a new name keeps their row, and so their linked Telegram."""
    view = await staff_view(session, school, staff_id, channels=())
    row, current = view.row, view.entry
    staff = _config_staff(school)
    index = next(
        (i for i, d in enumerate(staff) if StaffEntry.model_validate(d).name == row.name), None
    )
    others = [StaffEntry.model_validate(d) for i, d in enumerate(staff) if i != index]
    checked = _check(details, others, keep_id=current.id if current else "")
    changed = [
        field
        for field in StaffEntry.model_fields
        if current is None or getattr(current, field) != getattr(checked.entry, field)
    ]
    if checked.channels != row.alert_channels:
        changed.append("alert_channels")
    if index is None:
        staff.append(checked.data)
    else:
        staff[index] = checked.data
    config = _validated(school, staff)
    old_name, name = row.name, checked.entry.name
    if name != old_name:
        # Renamed here first, so that re-syncing by name keeps this row (and its linked
        # Telegram account) rather than deleting it and adding a new one.
        row.name = name
        await session.flush()
    await save_config(session, school, config, actor, f"staff: changed {name}")
    row.alert_channels = checked.channels
    await AuditRepository(session).record(
        actor, "staff.updated", f"staff:{row.id}", school.id,
        name=row.name, renamed_from=old_name if old_name != row.name else None, changed=changed,
    )  # fmt: skip
    return row


async def remove(session: AsyncSession, school: School, staff_id: int, actor: str) -> str:
    """Remove a member of staff from the school file and the staff table; their name."""
    row = await _row(session, school, staff_id)
    name = row.name
    staff = [d for d in _config_staff(school) if StaffEntry.model_validate(d).name != name]
    config = _validated(school, staff)
    await save_config(session, school, config, actor, f"staff: removed {name}")
    await AuditRepository(session).record(
        actor, "staff.removed", f"staff:{staff_id}", school.id, name=name
    )
    return name


@dataclass(frozen=True)
class LinkCode:
    staff: StaffMember
    code: str
    expires_at: datetime


async def link_code(
    session: AsyncSession, school: School, staff_id: int, actor: str, now: datetime
) -> LinkCode:
    """A one-time code the person sends the bot privately (/link CODE) to get alerts there."""
    row = await _row(session, school, staff_id)
    code = await create_link_code(session, row, LINK_CODE_VALID, now, actor=actor)
    return LinkCode(row, code, now + LINK_CODE_VALID)
