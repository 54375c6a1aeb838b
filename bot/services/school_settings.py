"""What a school sets in the admin pages beyond its school file: how each rule acts, extra
lexicon terms, retention periods, alert routing, the digest time, its own notice and reminders.

Stored as JSON in ``schools.settings``; every field is optional, and an unset one falls back to
the installation's default (the policy file, the settings, ``config/texts``).
"""

from __future__ import annotations

import logging
import re
from datetime import time
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError
from bot.policy.config import FrequentContactSettings, PolicyConfig, RuleSettings
from bot.policy.rules import RuleId, Severity
from bot.policy_files import describe_validation_error
from bot.store.models import School, utcnow
from bot.store.repositories.audit import AuditRepository

log = logging.getLogger(__name__)

_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")


class AlertTiming(StrEnum):
    NOW = "now"
    """SLT (and the DSL where routed) are alerted at once."""
    DIGEST = "digest"
    """In the daily digest."""
    NONE = "none"
    """Only in the flag queue."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSetup(_Model):
    enabled: bool = True
    severity: Severity | None = None
    """None: the catalogue's default severity."""
    alert: AlertTiming | None = None
    """None: by severity (high at once, the others in the digest)."""
    remind: bool = True
    """Send the sender a kind reminder, for the rules that have one."""

    @field_validator("severity", mode="before")
    @classmethod
    def _severity_by_name(cls, value: object) -> object:
        return Severity.parse(value) if isinstance(value, str) else value


class RetentionSettings(_Model):
    metadata_days: int | None = Field(default=None, ge=1, le=3650)
    """How long the record that a consented message was sent is kept (never its words)."""
    flag_days: int | None = Field(default=None, ge=1, le=3650)
    """How long a flagged message's words and its flag are kept."""
    audit_days: int | None = Field(default=None, ge=30, le=7300)
    """How long the audit log is kept."""


class NoticeText(_Model):
    version: str = Field(min_length=1, max_length=32)
    """A new version asks every member to agree again."""
    text: str = Field(min_length=20, max_length=4000)


class SchoolSettings(_Model):
    rules: dict[RuleId, RuleSetup] = Field(default_factory=dict)
    lexicons: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    """Extra terms for a lexicon list, keyed like ``abuse.insults``."""
    frequent_contact: FrequentContactSettings | None = None
    retention: RetentionSettings = RetentionSettings()
    digest_time: str | None = None
    """HH:MM, school time; None: the DIGEST_TIME setting."""
    escalate_after_minutes: float | None = Field(default=None, gt=0, le=7 * 24 * 60)
    dsl_rules: tuple[RuleId, ...] | None = None
    """Rules whose flags also go to the DSL; None: confidential-info and harassment-campaign."""
    notice: NoticeText | None = None
    """None: the notice in config/texts."""
    reminders: dict[RuleId, str] = Field(default_factory=dict)
    """Reworded reminders, by rule; the rest as in config/texts."""

    @field_validator("digest_time")
    @classmethod
    def _clock(cls, value: str | None) -> str | None:
        if value is not None and not _CLOCK.match(value):
            raise ValueError(f"{value!r} is not a time like 16:00")
        return value

    def rule(self, rule: RuleId) -> RuleSetup:
        return self.rules.get(rule, RuleSetup())

    def policy(self, base: PolicyConfig) -> PolicyConfig:
        """The installation's policy with this school's choices laid over it."""
        rules = dict(base.rules)
        for rule, setup in self.rules.items():
            current = rules.get(rule, RuleSettings())
            rules[rule] = current.model_copy(
                update={
                    "enabled": setup.enabled,
                    "severity": setup.severity if setup.severity is not None else current.severity,
                }
            )
        lexicons = dict(base.lexicons)
        for name, terms in self.lexicons.items():
            lexicons[name] = (*lexicons.get(name, ()), *terms)
        return base.model_copy(
            update={
                "rules": rules,
                "lexicons": lexicons,
                "frequent_contact": self.frequent_contact or base.frequent_contact,
            }
        )

    def alert_timing(self, rule: RuleId, severity: Severity) -> AlertTiming:
        chosen = self.rule(rule).alert
        if chosen is not None:
            return chosen
        return AlertTiming.NOW if severity >= Severity.HIGH else AlertTiming.DIGEST

    def digest_clock(self, default: time) -> time:
        return time.fromisoformat(self.digest_time) if self.digest_time else default


def settings_of(school: School) -> SchoolSettings:
    """The school's settings; stored data that no longer validates falls back to the defaults
    (and says so in the log) rather than stopping the bot."""
    try:
        return SchoolSettings.model_validate(school.settings or {})
    except ValidationError as error:
        log.error(
            "school %s has settings that are not valid (%s); using the defaults",
            school.id, "; ".join(describe_validation_error(error)),
        )  # fmt: skip
        return SchoolSettings()


def validated_settings(data: object) -> SchoolSettings:
    try:
        return SchoolSettings.model_validate(data)
    except ValidationError as error:
        raise BadInputError("; ".join(describe_validation_error(error))) from None


async def save_settings(
    session: AsyncSession, school: School, settings: SchoolSettings, actor: str, what: str
) -> None:
    """Store new settings (``what`` changed, for the audit log); the school's policy engine is
    rebuilt on its next use."""
    school.settings = settings.model_dump(mode="json", exclude_defaults=True)
    school.updated_at = utcnow()
    await session.flush()
    await AuditRepository(session).record(
        actor, "school.settings_changed", f"school:{school.id}", school.id, changed=what
    )
