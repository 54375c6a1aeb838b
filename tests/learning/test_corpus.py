"""The labelled corpus: what it holds, that it is what its readings settle to, and agreement."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.channels.jsonl import parse_line
from bot.learning.corpus import (
    JUDGED_RULES,
    CorpusError,
    agreement,
    build_corpus,
    cohen_kappa,
    read_jsonl,
)
from bot.policy_files import load_school
from tests.conftest import ROOT

CORPUS = ROOT / "corpus"
FIVE = ("abusive-to-parent", "abusive-about-others", "confidential-info", "disrepute",
        "harassment-campaign")  # fmt: skip


@pytest.fixture(scope="module")
def rows() -> list[dict[str, Any]]:
    return read_jsonl(CORPUS / "messages.jsonl")


def test_the_corpus_is_what_its_two_readings_and_adjudication_settle_to(
    rows: list[dict[str, Any]],
) -> None:
    built = build_corpus(CORPUS, load_school(CORPUS / "school.yaml"))
    assert built == rows  # rebuild with: schoolgate corpus build


def test_the_corpus_is_broad_enough(rows: list[dict[str, Any]]) -> None:
    assert len(rows) >= 3000
    authors = Counter(str(row["author"]) for row in rows)
    assert len(authors) >= 6
    assert min(authors.values()) >= 300  # no author is a token presence
    labels: Counter[str] = Counter()
    for row in rows:
        labels.update(row["expected"])
    for rule in FIVE:
        assert labels[rule] >= 250, rule
    assert labels["staff-contact"] >= 150
    assert labels["images-consent"] >= 150
    harmless = [r for r in rows if not r["expected"] and r["sender"]["role"] != "staff"]
    assert len(harmless) >= 1200


def test_every_line_is_a_classify_line_with_a_unique_id(rows: list[dict[str, Any]]) -> None:
    ids = [row["id"] for row in rows]
    assert len(set(ids)) == len(ids)
    for row in rows:
        _, message = parse_line(json.dumps(row))
        assert message.text or message.media


def test_out_of_hours_comes_only_with_staff_contact(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        expected = row["expected"]
        assert "out-of-hours" not in expected or "staff-contact" in expected


def test_the_two_readers_agree_well_on_every_rule() -> None:
    measured = {a.rule: a for a in agreement(CORPUS)}
    assert set(measured) == set(JUDGED_RULES)
    for rule, figures in measured.items():
        assert figures.kappa >= 0.8, (rule, figures)


def test_cohen_kappa_on_known_answers() -> None:
    assert cohen_kappa([True, False, True, False], [True, False, True, False]) == 1.0
    # Agreement no better than chance.
    assert cohen_kappa([True, True, False, False], [True, False, True, False]) == 0.0
    assert cohen_kappa([True, True, True, False], [True, True, False, False]) == pytest.approx(0.5)


def test_a_disagreement_nobody_settled_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "corpus"
    shutil.copytree(CORPUS, copy, ignore=shutil.ignore_patterns("messages.jsonl"))
    settled = read_jsonl(copy / "adjudication.jsonl")
    (copy / "adjudication.jsonl").write_text(
        "".join(json.dumps(row) + "\n" for row in settled[1:]), encoding="utf-8"
    )
    with pytest.raises(CorpusError, match="not adjudicated"):
        build_corpus(copy, load_school(copy / "school.yaml"))


def test_the_batch_checker_knows_the_same_rules_as_the_corpus() -> None:
    """corpus/check.py runs without the project's environment, so it keeps its own list."""
    import runpy

    checker = runpy.run_path(str(CORPUS / "check.py"))
    assert checker["LABELS"] == set(JUDGED_RULES)
