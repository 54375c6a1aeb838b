"""Working hours in the school's time zone: weekends, bank holidays and closures are outside."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from bot.policy.school import HOLIDAY_REGIONS, Closure, SchoolInfo, WorkingHours

# How far ahead to look for the next working time before giving up (a school closed all year).
_SEARCH_DAYS = 400


@dataclass(frozen=True, slots=True)
class OutsideHours:
    """Why a moment is outside working hours, in words a parent would understand."""

    reason: str


@lru_cache(maxsize=16)
def _bank_holidays(region: str | None) -> holidays.HolidayBase | None:
    if region is None:
        return None
    country, subdivision = HOLIDAY_REGIONS.get(region, (region[:2].upper(), None))
    if region not in HOLIDAY_REGIONS and "-" in region:
        subdivision = region.split("-", 1)[1].upper()
    return holidays.country_holidays(country, subdiv=subdivision)


class WorkingCalendar:
    def __init__(
        self,
        zone: ZoneInfo,
        hours: WorkingHours,
        bank_holiday_region: str | None,
        closures: tuple[Closure, ...],
    ) -> None:
        self.zone = zone
        self.hours = hours
        self._holidays = _bank_holidays(bank_holiday_region)
        self._closures = closures

    @classmethod
    def for_school(cls, school: SchoolInfo, hours: WorkingHours | None = None) -> WorkingCalendar:
        return cls(
            school.zone, hours or school.working_hours, school.bank_holidays, school.closures
        )

    def local(self, when: datetime) -> datetime:
        """``when`` in school time; a naive datetime is taken to be school time already."""
        if when.tzinfo is None:
            return when.replace(tzinfo=self.zone)
        return when.astimezone(self.zone)

    def day_closed_because(self, day: date) -> str | None:
        for closure in self._closures:
            if closure.start <= day <= closure.end:
                return closure.name
        if self._holidays is not None:
            name = self._holidays.get(day)
            if name:
                return f"{name} (bank holiday)"
        if not self.hours.for_weekday(day.weekday()):
            return day.strftime("%A")
        return None

    def outside_hours(self, when: datetime) -> OutsideHours | None:
        """None when ``when`` falls within working hours, else the reason it does not."""
        local = self.local(when)
        closed = self.day_closed_because(local.date())
        if closed is not None:
            return OutsideHours(f"{closed}, {local:%H:%M}")
        clock = local.time()
        ranges = self.hours.for_weekday(local.weekday())
        if any(start <= clock < end for start, end in ranges):
            return None
        if clock < ranges[0][0]:
            return OutsideHours(f"{local:%A} {local:%H:%M}, before {ranges[0][0]:%H:%M}")
        return OutsideHours(f"{local:%A} {local:%H:%M}, outside {self.hours.describe()}")

    def is_working_time(self, when: datetime) -> bool:
        return self.outside_hours(when) is None

    def next_working_time(self, after: datetime) -> datetime | None:
        """The first moment at or after ``after`` that is within working hours, in school time."""
        local = self.local(after)
        for offset in range(_SEARCH_DAYS):
            day = local.date() + timedelta(days=offset)
            if self.day_closed_because(day) is not None:
                continue
            for start, end in self.hours.for_weekday(day.weekday()):
                opening = datetime.combine(day, start, tzinfo=self.zone)
                closing = datetime.combine(day, end, tzinfo=self.zone)
                if offset == 0 and local >= closing:
                    continue
                return max(opening, local) if offset == 0 else opening
        return None
