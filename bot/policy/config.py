"""A school's rule settings: which rules run, how serious each is, and its own extra terms.

This is what ``schoolgate classify --policy FILE`` reads and what the admin backend's Rules page
will edit. Everything is optional: an empty policy means the catalogue's defaults.
"""

from __future__ import annotations

from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.policy.detectors.frequent import ContactLimit
from bot.policy.rules import RULES, RuleId, Severity


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSettings(_Strict):
    enabled: bool = True
    severity: Severity | None = None
    clause: str | None = Field(default=None, min_length=1)

    @field_validator("severity", mode="before")
    @classmethod
    def _severity_by_name(cls, value: object) -> object:
        return Severity.parse(value) if isinstance(value, str) else value


class FrequentContactSettings(_Strict):
    max_messages: int = Field(default=3, ge=1)
    window_hours: float = Field(default=168, gt=0)

    @property
    def limit(self) -> ContactLimit:
        return ContactLimit(self.max_messages, timedelta(hours=self.window_hours))


class PolicyConfig(_Strict):
    rules: dict[RuleId, RuleSettings] = Field(default_factory=dict)
    lexicons: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Extra terms for a lexicon list, keyed like ``abuse.insults``."""
    frequent_contact: FrequentContactSettings = FrequentContactSettings()

    def settings_for(self, rule: RuleId) -> RuleSettings:
        return self.rules.get(rule, RuleSettings())

    def severity(self, rule: RuleId) -> Severity:
        return self.settings_for(rule).severity or RULES[rule].severity

    def clause(self, rule: RuleId) -> str:
        return self.settings_for(rule).clause or RULES[rule].clause

    def enabled(self, rule: RuleId) -> bool:
        return self.settings_for(rule).enabled
