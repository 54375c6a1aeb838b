"""The consent notice members agree to: the school's own words or the installation's (in
config/texts), a new version whenever the words change, and publishing a new one to every chat.

Consent is given to one version: a chat asks for its school's current version, so members who
agreed to older words are asked again and nothing they write is read until they agree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.errors import BadInputError
from bot.services.moderation import Retention
from bot.services.outbox import enqueue
from bot.services.school_settings import save_settings, settings_of
from bot.store.models import Chat, ChatStatus, School
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.schools import SchoolRepository
from bot.store.repositories.whatsapp import REPORT_LINE_PREFIX
from bot.texts import Notice

# Platforms' names as chats and outbox channels have them (a hosted group is posted to as one).
WHATSAPP, WHATSAPP_GROUP = "whatsapp", "whatsapp-group"
CONSENT_DATA = "consent"
"""Callback data of the "I agree" button: ``consent:<version>``."""
# Telegram's limit on one message.
MAX_MESSAGE = 4096


@dataclass(frozen=True)
class CurrentNotice:
    version: str
    template: str
    """With its {placeholders} still in it."""
    own: bool
    """The school's own words (else the installation's)."""


def current_notice(school: School | None, default: Notice) -> CurrentNotice:
    own = settings_of(school).notice if school is not None else None
    if own is None:
        return CurrentNotice(default.version, default.text, own=False)
    return CurrentNotice(own.version, own.text, own=True)


def retention_of(school: School | None, installation: Retention) -> Retention:
    """How long the school keeps what it keeps: its own periods, else the installation's."""
    return installation.for_school(settings_of(school).retention) if school else installation


def notice_text(school: School | None, default: Notice, installation: Retention) -> str:
    """The notice as members read it, with the school's name and retention periods in it."""
    retention = retention_of(school, installation)
    return fill_notice(
        current_notice(school, default).template,
        school.name if school else "your school",
        retention,
        learning_paragraph(school, default),
    )


def learning_paragraph(school: School | None, default: Notice) -> str | None:
    """What the notice adds while the school keeps decided flags as examples (else None)."""
    if school is None or settings_of(school).learning is None:
        return None
    return default.learning


def fill_notice(
    template: str, school_name: str, retention: Retention, learning: str | None = None
) -> str:
    # Placeholders were checked when the words were saved (or are the installation's own).
    words = template if learning is None else f"{template.rstrip()}\n\n{learning.strip()}"
    return words.format(
        school=school_name,
        metadata_days=retention.metadata.days,
        flag_days=retention.flags.days,
    )


def agree_button(default: Notice, version: str) -> tuple[str, str]:
    return (default.button, f"{CONSENT_DATA}:{version}")


def _clean(words: str) -> str:
    return "\n".join(line.rstrip() for line in words.strip().splitlines())


async def publish_notice(
    session: AsyncSession,
    school: School,
    words: str,
    default: Notice,
    installation: Retention,
    actor: str,
    now: datetime,
    *,
    again: bool = False,
    whatsapp_suffix: str = "",
) -> str | None:
    """Make ``words`` the school's notice (blank, or the installation's words: the
    installation's notice) and ask every member of its registered chats to agree again: each
    chat gets the new version, and the notice with its "I agree" button is queued to it.

    ``whatsapp_suffix`` (how agreeing works there) follows the notice in hosted WhatsApp groups.

    Returns the new version, or None when the words are the ones in force already (unless
    ``again``: a new version of the same words, for something they describe has changed).
    Raises BadInputError (changing nothing) for words that cannot be used.
    """
    settings = settings_of(school)
    cleaned = _clean(words)
    own = cleaned if cleaned and cleaned != _clean(default.text) else None
    in_force = settings.notice.text if settings.notice else None
    if own == in_force and not again:
        return None
    if again and own is None:
        own = _clean(default.text)  # the installation's words, as the school's, to version them
    serial = settings.notices_written + 1
    version = f"{now:%Y-%m-%d}.{serial}" if own else default.version
    changed = settings.changed(
        notice={"version": version, "text": own} if own else None,
        notices_written=serial,
    )
    text = fill_notice(
        own or default.text, school.name, installation.for_school(changed.retention),
        default.learning if changed.learning is not None else None,
    )  # fmt: skip
    if len(text) > MAX_MESSAGE:
        raise BadInputError(
            f"notice.text: with the school's name and the periods filled in, the notice is "
            f"{len(text):,} characters; a chat message can have at most {MAX_MESSAGE:,}"
        )
    await save_settings(session, school, changed, actor, "consent notice")
    for chat in await ChatRepository(session).for_school(school.id):
        if chat.status != ChatStatus.REGISTERED or chat.platform_chat_id.startswith(
            REPORT_LINE_PREFIX
        ):
            continue  # a report line is no chat: nobody there agrees to a notice
        await _post_notice(
            session, chat, version, text, default, actor, now,
            key=f"notice:{chat.id}:{school.id}:{serial}", whatsapp_suffix=whatsapp_suffix,
        )  # fmt: skip
    return version


async def refresh_notices(
    session: AsyncSession,
    platform: str,
    default: Notice,
    installation: Retention,
    now: datetime,
    *,
    whatsapp_suffix: str = "",
) -> int:
    """Chats on ``platform`` registered under an older notice than their school's current one
    (the installation's words, reworded in config/texts with a new version) get the current
    one, and members agree anew; how many chats were asked. Each runtime calls it as it starts.
    """
    schools = SchoolRepository(session)
    asked = 0
    for chat in await ChatRepository(session).registered(platform):
        school = await schools.get(chat.school_id) if chat.school_id else None
        if school is None or chat.platform_chat_id.startswith(REPORT_LINE_PREFIX):
            continue
        notice = current_notice(school, default)
        if chat.notice_version == notice.version:
            continue
        text = fill_notice(
            notice.template, school.name, retention_of(school, installation),
            learning_paragraph(school, default),
        )  # fmt: skip
        await _post_notice(
            session, chat, notice.version, text, default, "system", now,
            key=f"notice:{chat.id}:{notice.version}:{now.isoformat()}",
            whatsapp_suffix=whatsapp_suffix,
        )  # fmt: skip
        asked += 1
    return asked


async def _post_notice(
    session: AsyncSession,
    chat: Chat,
    version: str,
    text: str,
    default: Notice,
    actor: str,
    now: datetime,
    *,
    key: str,
    whatsapp_suffix: str,
) -> None:
    """Make ``version`` the notice ``chat``'s members agree to and queue ``text`` to them."""
    old, chat.notice_version = chat.notice_version, version
    whatsapp = chat.platform == WHATSAPP
    await enqueue(
        session, key=key, channel=WHATSAPP_GROUP if whatsapp else chat.platform,
        recipient=chat.platform_chat_id,
        # WhatsApp has no buttons: members there reply AGREE, as the suffix says.
        text=f"{text}\n\n{whatsapp_suffix}" if whatsapp and whatsapp_suffix else text,
        purpose="notice",
        buttons=[] if whatsapp else [agree_button(default, version)],
        school_id=chat.school_id, now=now,
    )  # fmt: skip
    await AuditRepository(session).record(
        actor, "chat.notice_updated", f"chat:{chat.id}", chat.school_id,
        old_version=old, new_version=version,
    )  # fmt: skip


async def ask_again_if_kept_longer(
    session: AsyncSession,
    school: School,
    before: Retention,
    default: Notice,
    installation: Retention,
    actor: str,
    now: datetime,
    *,
    whatsapp_suffix: str = "",
) -> str | None:
    """When the school now keeps messages or flags longer than the notice members agreed to
    said, they must agree to the new periods: the notice goes out again as a new version.
    (Shorter periods only favour members, so their consent stands.) The new version, if any."""
    after = retention_of(school, installation)
    if after.metadata <= before.metadata and after.flags <= before.flags:
        return None
    return await ask_again(
        session, school, default, installation, actor, now, whatsapp_suffix=whatsapp_suffix
    )


async def ask_again(
    session: AsyncSession,
    school: School,
    default: Notice,
    installation: Retention,
    actor: str,
    now: datetime,
    *,
    whatsapp_suffix: str = "",
) -> str:
    """Post the school's notice, in its current words, again as a new version, for something
    it describes has changed: every member is asked to agree again. The new version."""
    words = current_notice(school, default).template
    version = await publish_notice(
        session, school, words, default, installation, actor, now, again=True,
        whatsapp_suffix=whatsapp_suffix,
    )  # fmt: skip
    assert version is not None  # a notice published again always gets a new version
    return version
