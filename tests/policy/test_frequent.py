from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.policy import PolicyEngine
from bot.policy.detectors.frequent import ContactLimit, frequent_contact

NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)
LIMIT = ContactLimit(max_messages=3, window=timedelta(days=7))


def days_ago(*days: float) -> list[datetime]:
    return [NOW - timedelta(days=d) for d in days]


def test_within_the_limit_is_fine() -> None:
    assert frequent_contact(days_ago(0, 1, 2), NOW, LIMIT) is None


def test_over_the_limit_in_the_window() -> None:
    finding = frequent_contact(days_ago(0, 1, 2, 6.9), NOW, LIMIT)
    assert finding is not None
    assert finding.evidence == "4 messages to staff in 7 days (the school's limit is 3)"


def test_old_and_future_contacts_do_not_count() -> None:
    assert frequent_contact([*days_ago(0, 1, 7, 30), NOW + timedelta(hours=1)], NOW, LIMIT) is None


@pytest.mark.parametrize(("count", "window"), [(0, timedelta(days=1)), (3, timedelta(0))])
def test_limits_must_make_sense(count: int, window: timedelta) -> None:
    with pytest.raises(ValueError, match="frequent-contact"):
        ContactLimit(count, window)


def test_engine_applies_the_policy_limit_and_clause(engine: PolicyEngine) -> None:
    explanation = engine.frequent_contact(days_ago(0, 0.5, 1, 2), NOW)
    assert explanation is not None
    assert str(explanation.rule) == "frequent-contact"
    assert "frequent messages to staff" in explanation.clause
