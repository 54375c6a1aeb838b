"""The words the bots say, from ``config/texts/``: a school can reword them without code."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from bot.policy_files import read_yaml, validate


class Notice(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str = Field(min_length=1, max_length=32)
    text: str = Field(min_length=1)
    button: str = Field(min_length=1, max_length=64)


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


def load_telegram_texts(config_dir: Path) -> TelegramTexts:
    path = config_dir / "texts" / "telegram.yaml"
    return validate(TelegramTexts, read_yaml(path, "texts file"), path, "texts file")
