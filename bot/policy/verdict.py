"""What the engine concludes about a message."""

from __future__ import annotations

from dataclasses import dataclass

from bot.policy.rules import RULE_ORDER, RuleId, Severity

FROM_RULES = "rules"
"""A finding of the word rules (lexicons, patterns and their context)."""
FROM_MODEL = "model"
"""A finding of the learned layer, which the word rules did not make."""


@dataclass(frozen=True, slots=True)
class Finding:
    """A detector's conclusion: this rule is broken, and these words (or this signal) show it."""

    rule: RuleId
    evidence: str
    source: str = FROM_RULES


@dataclass(frozen=True, slots=True)
class Explanation:
    rule: RuleId
    severity: Severity
    clause: str
    evidence: str
    source: str = FROM_RULES
    """Who found it: the word rules (``FROM_RULES``) or the learned layer (``FROM_MODEL``)."""


@dataclass(frozen=True, slots=True)
class Verdict:
    message_id: str
    explanations: tuple[Explanation, ...] = ()
    contacted_staff: tuple[str, ...] = ()
    """Names of the staff the message addresses, for a reminder to name them."""

    def with_explanation(self, extra: Explanation) -> Verdict:
        return Verdict(
            self.message_id, self.ordered([*self.explanations, extra]), self.contacted_staff
        )

    @property
    def flagged(self) -> bool:
        return bool(self.explanations)

    @property
    def rules(self) -> tuple[RuleId, ...]:
        return tuple(e.rule for e in self.explanations)

    @property
    def severity(self) -> Severity | None:
        return max((e.severity for e in self.explanations), default=None)

    @staticmethod
    def ordered(explanations: list[Explanation]) -> tuple[Explanation, ...]:
        return tuple(sorted(explanations, key=lambda e: RULE_ORDER[e.rule]))
