"""The words the bots say, from ``config/texts/``: a school can reword them without code."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.policy.rules import RuleId
from bot.policy_files import read_yaml, validate


class Notice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=32)
    text: str = Field(min_length=1)
    button: str = Field(min_length=1, max_length=64)
    learning: str = Field(min_length=1)
    """Added to the notice (the installation's or the school's own) while the school keeps
    decided flags as examples for its own model; {flag_days} may be used."""


class AlertButtons(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    acknowledge: str
    false_positive: str
    remind: str
    remove: str
    meet: str


class RemovalOutcomes(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    deleted: str
    asked: str


class TelegramTexts(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    notice: Notice
    unregistered: str
    registered: str
    bad_code: str
    expired_code: str
    used_code: str
    register_usage: str
    not_admin: str
    already_registered: str
    leaving: str
    cannot_read: str
    consent_recorded: str
    consent_already: str
    consent_private: str
    withdrawn: str
    not_consented: str
    mydata_sent: str
    mydata_start: str
    link_usage: str
    link_done: str
    link_bad: str
    link_private_only: str
    alert: str
    alert_reason: str
    alert_buttons: AlertButtons
    alert_done: AlertButtons
    alert_not_yours: str
    removal_outcomes: RemovalOutcomes
    reminders: dict[str, str]
    reminder_general: str
    meeting_request: str
    removal_request: str
    closure_notice: str
    closure_cancelled: str
    closure_cannot_lock: str
    closure_slt: str
    digest: str
    digest_line: str
    escalation: str
    escalated_to_dsl: str = (
        "Escalated to the Designated Safeguarding Lead by {name}. Why: {reason}\n\n{alert}"
    )

    @field_validator("reminders")
    @classmethod
    def _known_rules(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {rule.value for rule in RuleId}
        if unknown:
            raise ValueError(f"there is no rule {', '.join(sorted(unknown))}")
        return value


def load_telegram_texts(config_dir: Path) -> TelegramTexts:
    path = config_dir / "texts" / "telegram.yaml"
    return validate(TelegramTexts, read_yaml(path, "texts file"), path, "texts file")


class WhatsAppTexts(BaseModel):
    """What Schoolgate says on WhatsApp (``config/texts/whatsapp.yaml``). The consent notice
    itself is the school's, or the installation's in telegram.yaml: one notice, one version,
    whatever the platform; ``notice_suffix`` adds how agreeing works here."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    join_usage: str
    bad_code: str
    notice_suffix: str
    join_prompt: str
    pending_agree: str
    nothing_to_agree: str
    joined: str
    group_full: str
    in_another_group: str
    try_later: str
    not_consented: str
    agreed: str
    held: str
    held_advice: dict[str, str]
    held_advice_general: str
    left: str
    left_not_removed: str
    not_in_group: str
    mydata: str
    mydata_more: str
    report_thanks: str
    which_group: str
    which_group_noted: str
    which_school: str
    report_usage: str
    whatsapp_only: str
    relay: str
    relay_without_text: str
    someone: str
    invite: str

    @field_validator("held_advice")
    @classmethod
    def _known_rules(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = set(value) - {rule.value for rule in RuleId}
        if unknown:
            raise ValueError(f"there is no rule {', '.join(sorted(unknown))}")
        return value


def load_whatsapp_texts(config_dir: Path) -> WhatsAppTexts:
    path = config_dir / "texts" / "whatsapp.yaml"
    return validate(WhatsAppTexts, read_yaml(path, "texts file"), path, "texts file")
