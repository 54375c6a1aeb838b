"""The one settings object, read from the environment (and a ``.env`` file) once at start-up."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    # Relative to the working directory: the repository for `make run`, /app in the image.
    database_url: str = "sqlite+aiosqlite:///var/schoolgate.db"
    config_dir: Path = PROJECT_ROOT / "config"
    migrations_dir: Path = PROJECT_ROOT / "migrations"
    corpus_dir: Path = PROJECT_ROOT / "corpus"
    school_file: Path | None = None
    """Defaults to the example school in ``config_dir``."""
    policy_file: Path | None = None
    learned_model: bool = True
    """Whether the learned layer (``config/model``, built by ``schoolgate train``) checks
    messages beside the word rules."""
    public_base_url: str | None = None
    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_whatsapp_from: str | None = None
    """The school's WhatsApp sender, e.g. whatsapp:+441632960000: groups, reports, alerts."""
    twilio_sms_from: str | None = None
    """The number that sends SMS alerts, e.g. +441632960001."""
    twilio_conversations_service_sid: str | None = None
    """The Conversation Service the class groups live in (default: the account's default)."""
    twilio_api_base_url: str | None = None
    """Twilio's API (a local fake in tests): https://<domain>.twilio.com/... becomes
    <this>/<domain>/...."""
    twilio_template_alert: str | None = None
    """Content SID of the approved template for alerts outside WhatsApp's 24-hour window."""
    twilio_template_reminder: str | None = None
    """Content SID of the approved template for reminders to parents outside the window."""
    twilio_template_invite: str | None = None
    """Content SID of the approved template inviting a parent to a group by number."""
    smtp_url: SecretStr | None = None
    smtp_from: str = "schoolgate@localhost"
    """The From address of e-mail alerts."""
    observe_only: bool = False
    """Record everything, say nothing in chats (see the README for exactly what that means)."""
    registration_code_hours: float = Field(default=72, gt=0)
    unregistered_leave_minutes: float = Field(default=60, ge=0)
    """How long the bot stays in a chat that has not been registered before it leaves."""
    keep_metadata_days: int = Field(default=30, ge=1)
    """How long the record that a consented message was sent is kept (never its words)."""
    keep_flags_days: int = Field(default=365, ge=1)
    """How long a flagged message's words and its flag are kept."""
    keep_audit_days: int = Field(default=2190, ge=30)
    """How long the audit log is kept (six years by default)."""
    purge_every_minutes: float = Field(default=60, gt=0)
    """How often the retention purge runs."""
    digest_time: str = Field(default="16:00", pattern=r"^\d{2}:\d{2}$")
    """When (school time) the daily digest goes to SLT (schools may choose their own time)."""
    escalate_after_minutes: float = Field(default=30, gt=0)
    """An alert (a flag the school hears of at once) nobody acknowledges in this time is sent
    again."""
    remind_every_hours: float = Field(default=24, gt=0)
    """At most one reminder per member per rule in this time."""
    max_update_bytes: int = Field(default=1_048_576, ge=1024)
    """Webhook bodies larger than this are refused (Telegram's own updates are far smaller)."""
    max_request_bytes: int = Field(default=1_048_576, ge=1024)
    """Any other request body larger than this is refused with 413."""
    admin_idle_minutes: float = Field(default=30, gt=0)
    """An admin session unused for this long ends."""
    admin_session_hours: float = Field(default=10, gt=0)
    """An admin session ends this long after signing in, however busy."""
    forwarded_allow_ips: str = "127.0.0.1"
    """Proxies trusted to say (X-Forwarded-For/-Proto) who the client is and that it used TLS."""
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"

    @property
    def school_path(self) -> Path:
        return self.school_file or self.config_dir / "school.example.yaml"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
