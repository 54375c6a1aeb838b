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
    school_file: Path | None = None
    """Defaults to the example school in ``config_dir``."""
    policy_file: Path | None = None
    public_base_url: str | None = None
    telegram_bot_token: SecretStr | None = None
    telegram_api_base_url: str = "https://api.telegram.org/bot"
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_whatsapp_from: str | None = None
    twilio_api_base_url: str | None = None
    smtp_url: SecretStr | None = None
    observe_only: bool = False
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    log_level: str = "INFO"

    @property
    def school_path(self) -> Path:
        return self.school_file or self.config_dir / "school.example.yaml"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
