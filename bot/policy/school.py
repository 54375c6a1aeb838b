"""The school file's model, validated on load so that a mistake is reported by field."""

from __future__ import annotations

import re
from datetime import date, time
from functools import cached_property
from itertools import pairwise
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

# Named regions a school can write, mapped onto the `holidays` package's country/subdivision.
HOLIDAY_REGIONS: dict[str, tuple[str, str | None]] = {
    "england-and-wales": ("GB", "ENG"),
    "england": ("GB", "ENG"),
    "wales": ("GB", "WLS"),
    "scotland": ("GB", "SCT"),
    "northern-ireland": ("GB", "NIR"),
}

_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class Strict(BaseModel):
    """Unknown keys are errors: a typo in a school file must not be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _parse_clock(hours: str, minutes: str, text: str) -> time:
    h, m = int(hours), int(minutes)
    if h == 24 and m == 0:
        return time.max
    if not (0 <= h < 24 and 0 <= m < 60):
        raise ValueError(f"{text!r} has an impossible time of day")
    return time(h, m)


def _parse_day_hours(value: Any) -> tuple[tuple[time, time], ...]:
    """``"08:00-17:00"``, ``"08:00-12:00, 13:00-17:00"``, a list of those, or null/"closed"."""
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "closed")):
        return ()
    parts: list[str]
    if isinstance(value, str):
        parts = value.split(",")
    elif isinstance(value, list | tuple) and all(isinstance(p, str) for p in value):
        parts = list(value)
    else:
        raise ValueError('write working hours as "08:00-17:00" (or "closed")')
    ranges = []
    for part in parts:
        match = _RANGE.match(part)
        if match is None:
            raise ValueError(f'{part.strip()!r} is not a time range like "08:00-17:00"')
        start = _parse_clock(match[1], match[2], part)
        end = _parse_clock(match[3], match[4], part)
        if start >= end:
            raise ValueError(f"{part.strip()!r} ends before it starts")
        ranges.append((start, end))
    ranges.sort()
    for (_, end), (start, _) in pairwise(ranges):
        if start < end:
            raise ValueError("working-hour ranges on one day overlap")
    return tuple(ranges)


def _format_day_hours(ranges: tuple[tuple[time, time], ...]) -> list[str]:
    """Written back the way the school file writes it, so saved data loads again."""

    def clock(moment: time) -> str:
        return "24:00" if moment == time.max else f"{moment:%H:%M}"

    return [f"{clock(start)}-{clock(end)}" for start, end in ranges]


DayHours = Annotated[
    tuple[tuple[time, time], ...],
    BeforeValidator(_parse_day_hours),
    PlainSerializer(_format_day_hours, when_used="json"),
]


class WorkingHours(Strict):
    monday: DayHours = ()
    tuesday: DayHours = ()
    wednesday: DayHours = ()
    thursday: DayHours = ()
    friday: DayHours = ()
    saturday: DayHours = ()
    sunday: DayHours = ()

    def for_weekday(self, weekday: int) -> tuple[tuple[time, time], ...]:
        hours: tuple[tuple[time, time], ...] = getattr(self, WEEKDAYS[weekday])
        return hours

    def describe(self) -> str:
        """A short human summary such as ``Mon-Fri 08:00-17:00``."""
        groups: list[tuple[list[str], str]] = []
        for day in WEEKDAYS:
            hours: tuple[tuple[time, time], ...] = getattr(self, day)
            if not hours:
                continue
            text = ", ".join(
                f"{s:%H:%M}-{'24:00' if e == time.max else f'{e:%H:%M}'}" for s, e in hours
            )
            if (
                groups
                and groups[-1][1] == text
                and WEEKDAYS.index(day) == WEEKDAYS.index(groups[-1][0][-1]) + 1
            ):
                groups[-1][0].append(day)
            else:
                groups.append(([day], text))
        parts = []
        for days, text in groups:
            first, last = days[0][:3].title(), days[-1][:3].title()
            parts.append(f"{first}-{last} {text}" if len(days) > 1 else f"{first} {text}")
        return "; ".join(parts) or "no working hours"


class Closure(Strict):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    start: date = Field(alias="from")
    end: date = Field(alias="to")
    name: str = "school closure"

    @model_validator(mode="after")
    def _ordered(self) -> Closure:
        if self.end < self.start:
            raise ValueError(
                f"closure {self.name!r} ends ({self.end}) before it starts ({self.start})"
            )
        return self


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


StrList = Annotated[tuple[str, ...], BeforeValidator(_as_list)]


class StaffMember(Strict):
    name: str = Field(min_length=1)
    role: str = ""
    id: str = ""
    aliases: StrList = ()
    telegram: StrList = ()
    handles: StrList = ()
    phone: str = ""
    email: str = ""
    slt: bool = False
    dsl: bool = False
    working_hours: WorkingHours | None = None

    @field_validator("telegram", "handles")
    @classmethod
    def _handles_start_with_at(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        cleaned = []
        for handle in value:
            handle = handle.strip()
            if not re.fullmatch(r"@?[A-Za-z0-9_]{2,64}", handle):
                raise ValueError(f"{handle!r} is not a handle like @mr_okafor")
            cleaned.append(handle if handle.startswith("@") else f"@{handle}")
        return tuple(cleaned)

    @property
    def all_handles(self) -> tuple[str, ...]:
        return (*self.telegram, *self.handles)


class SchoolInfo(Strict):
    name: str = Field(min_length=1)
    aliases: StrList = ()
    timezone: str = "Europe/London"
    working_hours: WorkingHours
    bank_holidays: str | None = "england-and-wales"
    closures: tuple[Closure, ...] = ()
    phone: str = ""
    email: str = ""
    public_contacts: StrList = ()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone name like Europe/London") from None
        return value

    @field_validator("bank_holidays")
    @classmethod
    def _known_region(cls, value: str | None) -> str | None:
        if value is None or value.strip().lower() in ("", "none"):
            return None
        region = value.strip().lower()
        if region in HOLIDAY_REGIONS or re.fullmatch(r"[a-z]{2}(-[a-z0-9]{1,3})?", region):
            return region
        known = ", ".join(HOLIDAY_REGIONS)
        raise ValueError(f"{value!r} is not a bank-holiday region ({known}, or none)")

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class SchoolConfig(Strict):
    """Everything the engine needs to know about one school."""

    model_config = ConfigDict(extra="forbid", frozen=True, ignored_types=(cached_property,))

    school: SchoolInfo
    permitted_platforms: StrList = Field(min_length=1)
    staff: tuple[StaffMember, ...] = ()

    @model_validator(mode="after")
    def _unique_handles(self) -> SchoolConfig:
        seen: dict[str, str] = {}
        for member in self.staff:
            for handle in member.all_handles:
                key = handle.lower()
                if key in seen and seen[key] != member.name:
                    raise ValueError(
                        f"handle {handle} belongs to both {seen[key]} and {member.name}"
                    )
                seen[key] = member.name
        return self
