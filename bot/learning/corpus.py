"""The labelled corpus: batches by independent authors, read again by second readers, settled.

``corpus/`` holds the provenance and ``corpus/messages.jsonl`` the result:

- ``authored/AUTHOR.jsonl``: each author's messages with their own labels (the first reading);
- ``second-reading/AUTHOR.jsonl``: another reader's labels for the same ids, given blind;
- ``adjudication.jsonl``: where the two differed, the labels settled by the guide, with why;
- ``messages.jsonl``: every message in the ``classify`` format with its settled labels, its
  ``author``, and ``out-of-hours`` added where a staff contact was sent outside the school's
  hours (a fact of the calendar, not a judgement, so never labelled by hand).

``build_corpus`` makes ``messages.jsonl`` from the rest; ``agreement`` measures the readers.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bot.policy.calendar import WorkingCalendar
from bot.policy.rules import RuleId
from bot.policy.school import SchoolConfig

JUDGED_RULES: tuple[str, ...] = (
    RuleId.ABUSIVE_TO_PARENT,
    RuleId.ABUSIVE_ABOUT_OTHERS,
    RuleId.STAFF_CONTACT,
    RuleId.CONFIDENTIAL_INFO,
    RuleId.DISREPUTE,
    RuleId.IMAGES_CONSENT,
    RuleId.HARASSMENT_CAMPAIGN,
)
"""The rules readers label; ``out-of-hours`` follows from the time, ``frequent-contact`` from
history."""


class CorpusError(ValueError):
    """The corpus files do not fit together (a missing reading, an unknown id)."""


@dataclass(frozen=True)
class RuleAgreement:
    rule: str
    first: int
    second: int
    both: int
    disagreements: int
    kappa: float


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")


def authors(corpus: Path) -> list[str]:
    return sorted(p.stem for p in (corpus / "authored").glob("*.jsonl"))


def readings(corpus: Path) -> tuple[dict[str, dict[str, Any]], dict[str, set[str]]]:
    """Every authored message by id, and the second reader's labels by id."""
    first: dict[str, dict[str, Any]] = {}
    second: dict[str, set[str]] = {}
    for author in authors(corpus):
        for row in read_jsonl(corpus / "authored" / f"{author}.jsonl"):
            first[row["id"]] = row | {"author": author}
        second_path = corpus / "second-reading" / f"{author}.jsonl"
        if not second_path.exists():
            raise CorpusError(f"{author}: no second reading ({second_path})")
        for row in read_jsonl(second_path):
            second[row["id"]] = set(row["expected"])
    missing = first.keys() - second.keys()
    if missing:
        raise CorpusError(
            f"{len(missing)} messages were not read a second time, e.g. {min(missing)}"
        )
    return first, second


def cohen_kappa(first: Sequence[bool], second: Sequence[bool]) -> float:
    """Agreement beyond chance between two readers' yes/no answers."""
    count = len(first)
    observed = sum(a == b for a, b in zip(first, second, strict=True)) / count
    p_first, p_second = sum(first) / count, sum(second) / count
    expected = p_first * p_second + (1 - p_first) * (1 - p_second)
    return 1.0 if expected == 1 else (observed - expected) / (1 - expected)


def agreement(corpus: Path) -> list[RuleAgreement]:
    """Per rule: how often each reader said yes, and Cohen's kappa between them."""
    first, second = readings(corpus)
    ids = sorted(first)
    out = []
    for rule in JUDGED_RULES:
        a = [rule in first[i]["expected"] for i in ids]
        b = [rule in second[i] for i in ids]
        out.append(
            RuleAgreement(
                rule,
                sum(a),
                sum(b),
                sum(x and y for x, y in zip(a, b, strict=True)),
                sum(x != y for x, y in zip(a, b, strict=True)),
                cohen_kappa(a, b),
            )
        )
    return out


def build_corpus(corpus: Path, school: SchoolConfig) -> list[dict[str, Any]]:
    """The settled corpus: both readers' labels where they agree, the adjudicated ones where
    they did not, and ``out-of-hours`` from the calendar."""
    first, second = readings(corpus)
    settled = {row["id"]: row for row in read_jsonl(corpus / "adjudication.jsonl")}
    unknown = settled.keys() - first.keys()
    if unknown:
        raise CorpusError(f"adjudication.jsonl names unknown ids, e.g. {min(unknown)}")
    calendar = WorkingCalendar.for_school(school.school)
    rows = []
    for message_id, row in first.items():
        labels = set(row["expected"])
        if labels != second[message_id]:
            if message_id not in settled:
                raise CorpusError(f"{message_id}: the readers differ and it was not adjudicated")
            labels = set(settled[message_id]["expected"])
        sent_at = datetime.fromisoformat(row["sent_at"])
        if RuleId.STAFF_CONTACT in labels and calendar.outside_hours(sent_at) is not None:
            labels.add(RuleId.OUT_OF_HOURS)
        ordered = [rule for rule in RuleId if rule in labels]
        rows.append(
            {k: v for k, v in row.items() if k not in ("expected", "author", "note")}
            | {"expected": [str(rule) for rule in ordered], "author": row["author"]}
        )
    return rows
