from __future__ import annotations

import pytest

from bot.evaluation import Counts, Evaluation


def test_counts_and_scores() -> None:
    evaluation = Evaluation()
    evaluation.record("1", "", ["staff-contact"], ["staff-contact"])
    evaluation.record("2", "", ["staff-contact", "out-of-hours"], ["staff-contact"])
    evaluation.record("3", "", [], ["disrepute"])
    evaluation.record("4", "", [], [])
    contact = evaluation.per_rule["staff-contact"]
    assert (contact.true_positives, contact.false_positives, contact.false_negatives) == (2, 0, 0)
    micro = evaluation.micro
    assert (micro.true_positives, micro.false_positives, micro.false_negatives) == (2, 1, 1)
    assert micro.precision == pytest.approx(2 / 3)
    assert micro.recall == pytest.approx(2 / 3)
    assert evaluation.macro_f1 == pytest.approx((1.0 + 0.0 + 0.0) / 3)
    assert evaluation.exact == 2
    assert [m.message_id for m in evaluation.mistakes] == ["2", "3"]


def test_empty_counts_do_not_divide_by_zero() -> None:
    assert Counts().precision == Counts().recall == 1.0
    assert Counts(0, 1, 1).f1 == 0.0
