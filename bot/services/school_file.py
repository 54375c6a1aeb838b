"""Editing the school-file data from the admin pages: working hours, bank holidays, closures and
the permitted platforms. Each edit is checked as a whole school file before anything is stored
(``validated_config`` names each problem by field) and audited by ``save_config``."""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping
from datetime import date
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError, NotFoundError
from bot.policy.calendar import WorkingCalendar
from bot.policy.school import WEEKDAYS, SchoolConfig
from bot.services.school_settings import check_plain
from bot.services.schools import save_config, validated_config
from bot.store.models import School


def school_config(school: School) -> SchoolConfig:
    return SchoolConfig.model_validate(school.config)


def _plain(text: str, where: str) -> str:
    try:
        return check_plain(text)
    except ValueError as error:
        raise BadInputError(f"{where}: {error}") from None


async def _save(
    session: AsyncSession, school: School, data: dict[str, Any], actor: str, what: str
) -> SchoolConfig:
    config = validated_config(data)
    try:
        # Builds the bank-holiday calendar, which knows only the regions its data covers.
        WorkingCalendar.for_school(config.school)
    except NotImplementedError as error:
        raise BadInputError(f"school.bank_holidays: {error}") from None
    await save_config(session, school, config, actor, what)
    return config


async def save_hours(
    session: AsyncSession,
    school: School,
    hours: Mapping[str, str],
    bank_holidays: str | None,
    actor: str,
) -> SchoolConfig:
    """Working hours by weekday ("08:00-17:00", "08:00-12:00, 13:00-17:00", or blank or
    "closed"; a weekday left out is closed) and the bank-holiday region (None: none)."""
    unknown = set(hours) - set(WEEKDAYS)
    if unknown:
        raise BadInputError(f"school.working_hours: {', '.join(sorted(unknown))} is not a weekday")
    data = copy.deepcopy(school.config)
    data["school"]["working_hours"] = {
        day: hours.get(day, "").strip() or "closed" for day in WEEKDAYS
    }
    data["school"]["bank_holidays"] = (bank_holidays or "").strip() or None
    return await _save(session, school, data, actor, "working hours")


async def save_closures(
    session: AsyncSession, school: School, closures: Iterable[Mapping[str, Any]], actor: str
) -> SchoolConfig:
    """Replace the list of closures (each ``from``, ``to``, ``name``)."""
    data = copy.deepcopy(school.config)
    data["school"]["closures"] = [dict(closure) for closure in closures]
    for number, closure in enumerate(data["school"]["closures"]):
        if isinstance(closure.get("name"), str):
            _plain(closure["name"], f"school.closures[{number}].name")
    return await _save(session, school, data, actor, "closures")


async def add_closure(
    session: AsyncSession, school: School, start: date, end: date, name: str, actor: str
) -> SchoolConfig:
    current = list(school.config["school"].get("closures", []))
    added = {"from": start.isoformat(), "to": end.isoformat(), "name": name.strip()}
    if not added["name"]:
        del added["name"]  # the school file's default name
    return await save_closures(session, school, [*current, added], actor)


async def remove_closure(
    session: AsyncSession, school: School, start: date, end: date, name: str, actor: str
) -> SchoolConfig:
    """Remove the closure from ``start`` to ``end`` named ``name``; NotFoundError if there is
    none (it was removed already)."""
    config = school_config(school)
    kept = [c for c in config.school.closures if (c.start, c.end, c.name) != (start, end, name)]
    if len(kept) == len(config.school.closures):
        raise NotFoundError(f"There is no closure {name!r} from {start} to {end}.")
    closures = [c.model_dump(mode="json", by_alias=True) for c in kept]
    return await save_closures(session, school, closures, actor)


async def save_platforms(
    session: AsyncSession, school: School, platforms: Iterable[str], actor: str
) -> SchoolConfig:
    """The ways parents may contact staff, named in reminders (blank lines are dropped)."""
    data = copy.deepcopy(school.config)
    data["permitted_platforms"] = [
        _plain(p.strip(), f"permitted_platforms[{n}]") for n, p in enumerate(platforms) if p.strip()
    ]
    return await _save(session, school, data, actor, "permitted platforms")
