"""Precision and recall of the engine per rule over labelled messages (``schoolgate evaluate``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from bot.policy.rules import RULE_ORDER


@dataclass
class Counts:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0

    @property
    def precision(self) -> float:
        flagged = self.true_positives + self.false_positives
        return self.true_positives / flagged if flagged else 1.0

    @property
    def recall(self) -> float:
        expected = self.true_positives + self.false_negatives
        return self.true_positives / expected if expected else 1.0

    @property
    def f1(self) -> float:
        p, r = self.precision, self.recall
        return 2 * p * r / (p + r) if p + r else 0.0

    def add(self, other: Counts) -> None:
        self.true_positives += other.true_positives
        self.false_positives += other.false_positives
        self.false_negatives += other.false_negatives


@dataclass(frozen=True, slots=True)
class Mistake:
    message_id: str
    text: str
    expected: frozenset[str]
    predicted: frozenset[str]


@dataclass
class Evaluation:
    per_rule: dict[str, Counts] = field(default_factory=dict)
    messages: int = 0
    exact: int = 0
    mistakes: list[Mistake] = field(default_factory=list)

    def record(
        self, message_id: str, text: str, expected: Iterable[str], predicted: Iterable[str]
    ) -> None:
        expected_set, predicted_set = frozenset(expected), frozenset(predicted)
        self.messages += 1
        if expected_set == predicted_set:
            self.exact += 1
        else:
            self.mistakes.append(Mistake(message_id, text, expected_set, predicted_set))
        for rule in expected_set | predicted_set:
            counts = self.per_rule.setdefault(rule, Counts())
            if rule in expected_set and rule in predicted_set:
                counts.true_positives += 1
            elif rule in predicted_set:
                counts.false_positives += 1
            else:
                counts.false_negatives += 1

    @property
    def micro(self) -> Counts:
        total = Counts()
        for counts in self.per_rule.values():
            total.add(counts)
        return total

    @property
    def macro_f1(self) -> float:
        scores = [c.f1 for c in self.per_rule.values()]
        return sum(scores) / len(scores) if scores else 1.0

    def report(self) -> str:
        rules = sorted(self.per_rule, key=lambda r: (RULE_ORDER.get(r, 99), r))  # type: ignore[call-overload]
        width = max([len(r) for r in rules] + [len("overall (micro)")])
        lines = [f"{'rule':<{width}}  {'tp':>4} {'fp':>4} {'fn':>4}  precision  recall     f1"]
        for rule in rules:
            lines.append(self._row(rule, self.per_rule[rule], width))
        lines.append(self._row("overall (micro)", self.micro, width))
        lines.append(
            f"{'overall (macro)':<{width}}  {'':>14}  {'':>9}  {'':>6}  {self.macro_f1:5.3f}"
        )
        share = self.exact / self.messages if self.messages else 1.0
        lines.append(f"messages: {self.messages}, all rules right: {self.exact} ({share:.1%})")
        return "\n".join(lines)

    @staticmethod
    def _row(name: str, counts: Counts, width: int) -> str:
        return (
            f"{name:<{width}}  {counts.true_positives:>4} {counts.false_positives:>4} "
            f"{counts.false_negatives:>4}  {counts.precision:9.3f}  {counts.recall:6.3f}"
            f"  {counts.f1:5.3f}"
        )
