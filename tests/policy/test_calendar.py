"""Working hours in the school's time zone: weekends, bank holidays, closures, daylight saving."""

from __future__ import annotations

from datetime import datetime

import pytest

from bot.policy.calendar import WorkingCalendar
from bot.policy.school import SchoolConfig


@pytest.fixture
def calendar(school: SchoolConfig) -> WorkingCalendar:
    return WorkingCalendar.for_school(school.school)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


@pytest.mark.parametrize(
    ("moment", "working"),
    [
        ("2026-11-24T08:00:00+00:00", True),  # Tuesday, opening minute (GMT)
        ("2026-11-24T07:59:00+00:00", False),
        ("2026-11-24T16:59:00+00:00", True),
        ("2026-11-24T17:00:00+00:00", False),  # closing time is outside
        ("2026-11-28T11:00:00+00:00", False),  # Saturday
        ("2026-11-29T11:00:00+00:00", False),  # Sunday
        ("2026-12-25T11:00:00+00:00", False),  # Christmas Day
        ("2026-12-28T11:00:00+00:00", False),  # Boxing Day (observed) - a Monday
        ("2027-01-01T11:00:00+00:00", False),  # New Year's Day
        ("2027-03-26T11:00:00+00:00", False),  # Good Friday
        ("2027-03-29T11:00:00+01:00", False),  # Easter Monday
        ("2027-02-16T11:00:00+00:00", False),  # half-term closure from the school file
        ("2027-02-22T11:00:00+00:00", True),  # back after half term
    ],
)
def test_working_time(calendar: WorkingCalendar, moment: str, working: bool) -> None:
    assert calendar.is_working_time(at(moment)) is working


def test_british_summer_time_shifts_the_utc_hours(calendar: WorkingCalendar) -> None:
    # Friday 23 October 2026 is in BST: 07:30 UTC is 08:30 in London.
    assert calendar.is_working_time(at("2026-10-23T07:30:00+00:00"))
    assert not calendar.is_working_time(at("2026-10-23T16:30:00+00:00"))  # 17:30 BST
    # Monday 26 October 2026, the day after the clocks go back: 07:30 UTC is 07:30 GMT.
    assert not calendar.is_working_time(at("2026-10-26T07:30:00+00:00"))
    # Monday 29 March 2027, the day after the clocks go forward, but Easter Monday.
    assert not calendar.is_working_time(at("2027-03-29T07:30:00+00:00"))
    # Tuesday 30 March 2027: 07:30 UTC is 08:30 BST.
    assert calendar.is_working_time(at("2027-03-30T07:30:00+00:00"))


def test_a_naive_time_is_read_as_school_time(calendar: WorkingCalendar) -> None:
    assert calendar.is_working_time(datetime(2027, 6, 1, 8, 30))  # 08:30 BST, not UTC


def test_reasons_name_the_day(calendar: WorkingCalendar) -> None:
    christmas = calendar.outside_hours(at("2026-12-25T10:00:00+00:00"))
    assert christmas is not None
    assert "Christmas Day" in christmas.reason
    half_term = calendar.outside_hours(at("2027-02-16T10:00:00+00:00"))
    assert half_term is not None
    assert "February half term" in half_term.reason
    evening = calendar.outside_hours(at("2026-11-24T19:40:00+00:00"))
    assert evening is not None
    assert evening.reason.startswith("Tuesday 19:40")


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        ("2026-11-24T19:40:00+00:00", "2026-11-25T08:00:00+00:00"),  # tomorrow morning
        ("2026-11-27T18:00:00+00:00", "2026-11-30T08:00:00+00:00"),  # Friday -> Monday
        ("2026-11-24T10:15:00+00:00", "2026-11-24T10:15:00+00:00"),  # already working
        ("2026-12-24T18:00:00+00:00", "2026-12-29T08:00:00+00:00"),  # over Christmas
        ("2027-03-26T18:00:00+00:00", "2027-03-30T08:00:00+01:00"),  # Easter, into BST
    ],
)
def test_next_working_time(calendar: WorkingCalendar, after: str, expected: str) -> None:
    assert calendar.next_working_time(at(after)) == at(expected)


def test_staff_can_have_their_own_hours(school: SchoolConfig) -> None:
    reilly = next(m for m in school.staff if m.name == "Mr Tom Reilly")
    calendar = WorkingCalendar.for_school(school.school, reilly.working_hours)
    assert not calendar.is_working_time(at("2026-11-24T16:00:00+00:00"))  # after 15:30
    assert not calendar.is_working_time(at("2026-11-26T10:00:00+00:00"))  # not on Thursdays
    assert calendar.is_working_time(at("2026-11-25T10:00:00+00:00"))
