"""What a school sets in the admin pages beyond its school file: how each rule acts, extra
lexicon terms, retention periods, alert routing, the digest time, its own notice and reminders.

Stored as JSON in ``schools.settings``; every field is optional, and an unset one falls back to
the installation's default (the policy file, the settings, ``config/texts``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, time
from enum import StrEnum
from string import Formatter
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator
from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError
from bot.policy.config import FrequentContactSettings, PolicyConfig, RuleSettings
from bot.policy.rules import RuleId, Severity
from bot.policy_files import describe_validation_error
from bot.store.models import School, utcnow
from bot.store.repositories.audit import AuditRepository

log = logging.getLogger(__name__)

_CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")

# Control characters (other than line breaks and tabs) have no place in a message, and a
# database may refuse some of them (PostgreSQL: NUL).
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
NOTICE_PLACEHOLDERS = ("school", "metadata_days", "flag_days")
REMINDER_PLACEHOLDERS = ("name", "platforms", "who", "when")


def check_plain(text: str) -> str:
    """``text`` if it has no control characters (ValueError if it has)."""
    if _CONTROL.search(text):
        raise ValueError("has a control character; write plain text")
    return text


def check_placeholders(text: str, allowed: tuple[str, ...]) -> str:
    """``text`` if every {placeholder} in it is one of ``allowed`` (each may be left out), so
    that filling it in can never fail or reach beyond the values given."""
    check_plain(text)
    known = ", ".join(f"{{{name}}}" for name in allowed)
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in Formatter().parse(text)]
    except ValueError:
        raise ValueError(
            f"a {{ or }} does not belong to a placeholder (placeholders: {known}; "
            "write {{ or }} for a brace itself)"
        ) from None
    for name, spec, conversion in fields:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            written = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            shown = "{" + written + "}"
            raise ValueError(f"{shown} is not a placeholder you can use here (use {known})")
    return text


def _notice_placeholders(text: str) -> str:
    return check_placeholders(text, NOTICE_PLACEHOLDERS)


def _reminder_placeholders(text: str) -> str:
    return check_placeholders(text, REMINDER_PLACEHOLDERS)


ReminderText = Annotated[
    str, Field(min_length=1, max_length=1000), AfterValidator(_reminder_placeholders)
]


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
    hold: bool = False
    """In a hosted WhatsApp group, hold the message back instead of relaying it (the sender is
    told why). Telegram cannot hold a message: there it is flagged as usual."""

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
    text: Annotated[
        str, Field(min_length=20, max_length=4000), AfterValidator(_notice_placeholders)
    ]


class Learning(_Model):
    """The school keeps SLT's decisions on flagged messages as examples for its own model."""

    since: datetime
    """When the school chose it: only flags raised after it, from members who agreed to the
    notice that says so, are kept as examples."""


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
    notices_written: int = Field(default=0, ge=0)
    """How many times the school has changed its notice: numbers the next version, so that a
    version is never used twice for different words."""
    reminders: dict[RuleId, ReminderText] = Field(default_factory=dict)
    """Reworded reminders, by rule; the rest as in config/texts."""
    learning: Learning | None = None
    """None: flagged messages are never kept as examples (the default)."""

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

    def routed_to_dsl(self, default: frozenset[RuleId]) -> frozenset[RuleId]:
        """The rules whose flags also go to the DSL."""
        return frozenset(self.dsl_rules) if self.dsl_rules is not None else default

    def changed(self, **fields: object) -> SchoolSettings:
        """These settings with ``fields`` replaced, validated as a whole (BadInputError names
        each problem by field)."""
        data = self.model_dump(mode="json", exclude_defaults=True)
        data.update(
            {
                name: value.model_dump(mode="json") if isinstance(value, BaseModel) else value
                for name, value in fields.items()
            }
        )
        return validated_settings(data)


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


async def save_reminders(
    session: AsyncSession,
    school: School,
    reminders: Mapping[RuleId, str],
    defaults: Mapping[str, str],
    actor: str,
) -> None:
    """The school's own words for the reminders in ``defaults`` (the installation's, by rule);
    a blank text, or the installation's own, means the installation's."""
    own: dict[str, str] = {}
    for rule, text in reminders.items():
        if str(rule) not in defaults:
            raise BadInputError(f"reminders.{rule}: there is no reminder for this rule")
        cleaned = text.strip()
        if cleaned and cleaned != defaults[str(rule)].strip():
            own[str(rule)] = cleaned
    changed = settings_of(school).changed(reminders=own)
    await save_settings(session, school, changed, actor, "reminders")


async def save_retention(
    session: AsyncSession,
    school: School,
    *,
    metadata_days: int | None,
    flag_days: int | None,
    audit_days: int | None,
    actor: str,
) -> None:
    """How long the school keeps what it keeps; None: the installation's period."""
    retention = {"metadata_days": metadata_days, "flag_days": flag_days, "audit_days": audit_days}
    changed = settings_of(school).changed(retention=retention)
    await save_settings(session, school, changed, actor, "retention")


async def save_alert_routing(
    session: AsyncSession,
    school: School,
    *,
    dsl_rules: Iterable[RuleId],
    default_dsl_rules: frozenset[RuleId],
    escalate_after_minutes: float | None,
    digest_time: str | None,
    actor: str,
) -> None:
    """Which rules also go to the DSL, when an unacknowledged alert is sent again, and when
    the digest goes; None (or the installation's own choice of rules): the installation's."""
    chosen = frozenset(dsl_rules)
    changed = settings_of(school).changed(
        dsl_rules=None if chosen == default_dsl_rules else sorted(chosen),
        escalate_after_minutes=escalate_after_minutes,
        digest_time=digest_time or None,
    )
    await save_settings(session, school, changed, actor, "alert routing")
