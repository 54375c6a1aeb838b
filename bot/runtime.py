"""Everything a running Schoolgate process holds, built once from the settings at start-up.

One outbox dispatcher delivers every channel this process can send on (Telegram, e-mail,
WhatsApp, its groups and SMS), whichever of them are configured: e-mail and WhatsApp go out
with Telegram off too. Telegram keeps its own work (receiving, its chats' housekeeping) and
wakes the dispatcher when it queues something.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.channels.email.delivery import CHANNEL as EMAIL
from bot.channels.email.delivery import EmailSender
from bot.channels.telegram.delivery import CHANNEL as TELEGRAM
from bot.channels.telegram.delivery import TelegramSender
from bot.channels.telegram.runtime import TelegramRuntime
from bot.channels.whatsapp.closure import WhatsAppClosures
from bot.channels.whatsapp.delivery import (
    SMS,
    WHATSAPP,
    Templates,
    record_status,
    twilio_senders,
)
from bot.channels.whatsapp.runtime import WhatsAppRuntime
from bot.channels.whatsapp.twilio_client import WHATSAPP_PREFIX, WhatsAppApi
from bot.errors import ConfigError
from bot.jobs import Housekeeping, SchoolModelTraining
from bot.periodic import repeat
from bot.policy.context import phone_key
from bot.policy_files import (
    load_learned_model,
    load_lexicons,
    load_policy,
    load_profanity_model,
    load_school,
)
from bot.services.digest import escalate, queue_digests
from bot.services.dispatcher import Dispatcher, Sender
from bot.services.moderation import Retention
from bot.services.notices import refresh_notices
from bot.services.retention import RetentionDefaults
from bot.services.schools import EngineCache
from bot.services.schools import load_school as seed_school
from bot.settings import Settings
from bot.store.db import create_engine, session_factory, transaction
from bot.store.models import utcnow
from bot.store.repositories.schools import SchoolRepository
from bot.texts import TelegramTexts, WhatsAppTexts, load_telegram_texts, load_whatsapp_texts

log = logging.getLogger(__name__)

SWEEP_EVERY = 30.0
"""Seconds between looks for digests and escalations due (with Telegram off)."""
TRAINING_CHECK_EVERY = 60.0
"""Seconds between looks for a school model to retrain (asked for on the Rules page, or nightly)."""
DISPATCHER_STOP_WAIT = 5.0
"""Seconds stopping waits for the dispatcher to finish the batch in hand before cancelling it
(rows it had claimed are then sent again once their lease runs out)."""


@dataclass
class Runtime:
    settings: Settings
    database: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    engines: EngineCache
    telegram: TelegramRuntime | None = field(default=None)
    texts: TelegramTexts = field(init=False)
    """What the bot says (config/texts): the admin pages word their actions with it too."""
    whatsapp_texts: WhatsAppTexts = field(init=False)
    """What it says on WhatsApp besides (config/texts/whatsapp.yaml)."""

    housekeeping: Housekeeping = field(init=False)
    """The retention purge, run on a timer while the process serves."""
    training: SchoolModelTraining = field(init=False)
    """Retrains the models of schools that learn from their decisions, nightly and when asked."""
    alert_channels: frozenset[str] = field(init=False)
    """The channels alerts may go to staff on here (``alert_channels(settings)``)."""
    dispatcher: Dispatcher | None = field(default=None, init=False)
    """Delivers the outbox on every configured channel, once started."""
    twilio: WhatsAppApi | None = field(default=None, init=False)
    """Twilio's API, once started, when WhatsApp or SMS is configured."""
    whatsapp: WhatsAppRuntime | None = field(default=None)
    """Hosted WhatsApp groups and the report line (Twilio's webhooks), when configured."""
    whatsapp_closures: WhatsAppClosures | None = field(default=None, init=False)
    """Takes the steps of closing hosted WhatsApp groups, once started with WhatsApp on."""

    def __post_init__(self) -> None:
        self.texts = load_telegram_texts(self.settings.config_dir)
        self.whatsapp_texts = load_whatsapp_texts(self.settings.config_dir)
        self.alert_channels = alert_channels(self.settings)
        self.housekeeping = Housekeeping(
            self.sessions,
            retention_defaults(self.settings),
            every=self.settings.purge_every_minutes * 60,
        )
        self.training = SchoolModelTraining(
            self.sessions, self.engines, self.settings.corpus_dir, every=TRAINING_CHECK_EVERY
        )
        self._stop_jobs = asyncio.Event()
        self._jobs: list[asyncio.Task[None]] = []
        self._dispatching: asyncio.Task[None] | None = None

    @classmethod
    def build(cls, settings: Settings, database: AsyncEngine | None = None) -> Runtime:
        """Load every file (a bad one stops start-up with a clear error) and connect nothing yet."""
        check_twilio(settings)
        database = database or create_engine(settings.database_url)
        sessions = session_factory(database)
        engines = EngineCache(
            load_lexicons(settings.config_dir / "lexicons"),
            load_policy(settings.policy_file),
            load_profanity_model(),
            load_learned_model(settings.config_dir) if settings.learned_model else None,
        )
        runtime = cls(settings, database, sessions, engines)
        if settings.telegram_bot_token is not None:
            runtime.telegram = TelegramRuntime(
                settings.telegram_bot_token.get_secret_value(),
                settings.telegram_api_base_url,
                sessions,
                engines,
                runtime.texts,
                public_base_url=settings.public_base_url,
                observe_only=settings.observe_only,
                retention=retention(settings),
                leave_unregistered_after=timedelta(minutes=settings.unregistered_leave_minutes),
                remind_every=timedelta(hours=settings.remind_every_hours),
                digest_time=time.fromisoformat(settings.digest_time),
                escalate_after=timedelta(minutes=settings.escalate_after_minutes),
                alert_channels=runtime.alert_channels,
                wake_outbox=runtime.wake_outbox,
            )
        runtime.whatsapp = WhatsAppRuntime.build(
            settings, sessions, engines, runtime.whatsapp_texts, runtime.texts,
            retention=retention(settings), alert_channels=runtime.alert_channels,
        )  # fmt: skip
        return runtime

    async def start(self) -> None:
        await self.seed_school_if_empty()
        self._stop_jobs.clear()
        self._jobs.append(
            asyncio.create_task(self.housekeeping.run_forever(self._stop_jobs), name="retention")
        )
        if self.engines.learned is not None:
            self._jobs.append(
                asyncio.create_task(self.training.run_forever(self._stop_jobs), name="training")
            )
        senders: dict[str, Sender] = {}
        if self.telegram is not None:
            await self.telegram.start()
            senders[TELEGRAM] = TelegramSender(self.telegram.bot)
        else:
            log.warning(
                "Telegram is off: no TELEGRAM_BOT_TOKEN is set. To turn it on, create a bot with "
                "@BotFather and start Schoolgate with TELEGRAM_BOT_TOKEN=<its token>."
            )
            # Telegram's sweep queues them when it is on; staff on other channels need them too.
            summarising = repeat(
                lambda: self.summarise_and_escalate(utcnow()),
                every=SWEEP_EVERY, what="digests and escalations", stop=self._stop_jobs,
            )  # fmt: skip
            self._jobs.append(asyncio.create_task(summarising, name="digests"))
        self.twilio = connect_twilio(self.settings)  # aiohttp: inside the running loop
        senders.update(channel_senders(self.settings, self.sessions, self.twilio))
        self._start_dispatching(senders)
        if self.whatsapp is not None and self.twilio is not None:
            self.whatsapp.wake = self.wake_outbox
            self.whatsapp.on_status = record_status
            await self.whatsapp.start(self.twilio)  # shares the client: its stop leaves it open
            await self.refresh_whatsapp_notices(utcnow())
        if self.twilio is not None and WHATSAPP in senders:
            self.whatsapp_closures = WhatsAppClosures(
                self.sessions, self.twilio, self.texts, self.wake_outbox
            )
            closing = self.whatsapp_closures.run_forever(self._stop_jobs)
            self._jobs.append(asyncio.create_task(closing, name="whatsapp-closures"))

    def _start_dispatching(self, senders: dict[str, Sender]) -> None:
        if not senders:
            log.warning("no channel is configured: queued messages wait in the outbox")
            return
        self.dispatcher = Dispatcher(self.sessions, senders)
        self._dispatching = asyncio.create_task(
            self.dispatcher.run_forever(self._stop_jobs), name="outbox"
        )
        log.info("delivering the outbox on %s", ", ".join(sorted(senders)))

    async def summarise_and_escalate(self, now: datetime) -> int:
        """Queue the daily digests that are due and re-send alerts nobody acknowledged, on
        every channel staff take alerts on; how many were queued."""
        digest_time = time.fromisoformat(self.settings.digest_time)
        after = timedelta(minutes=self.settings.escalate_after_minutes)
        channels = self.alert_channels
        async with transaction(self.sessions) as session:
            queued = await queue_digests(session, self.texts, digest_time, now, channels=channels)
            queued += await escalate(session, self.texts, after, now, channels=channels)
        if queued:
            self.wake_outbox()
        return queued

    async def refresh_whatsapp_notices(self, now: datetime) -> int:
        """Hosted WhatsApp groups under an older notice than their school's get the current
        one, and their members agree anew (Telegram's runtime does this for its chats)."""
        async with transaction(self.sessions) as session:
            asked = await refresh_notices(
                session, WHATSAPP, self.texts.notice, retention(self.settings), now,
                whatsapp_suffix=self.whatsapp_texts.notice_suffix,
            )  # fmt: skip
        if asked:
            log.info("the consent notice has changed: %s WhatsApp groups are asked again", asked)
            self.wake_outbox()
        return asked

    def wake_outbox(self) -> None:
        """Look at the outbox now: something was just queued (and committed)."""
        if self.dispatcher is not None:
            self.dispatcher.wake()

    async def stop(self) -> None:
        """Stop the jobs and the dispatcher (after the batch in hand, for a few seconds at
        most), then Telegram and Twilio. Safe to call more than once."""
        self._stop_jobs.set()
        dispatching, self._dispatching = self._dispatching, None
        if dispatching is not None:
            done, _ = await asyncio.wait([dispatching], timeout=DISPATCHER_STOP_WAIT)
            if not done:
                log.warning("the outbox dispatcher did not stop in time; its claims will lapse")
                dispatching.cancel()
                await asyncio.wait([dispatching])
        for job in self._jobs:
            await job
        self._jobs.clear()
        self.dispatcher = self.whatsapp_closures = None
        if self.telegram is not None:
            await self.telegram.stop()
        if self.whatsapp is not None:
            await self.whatsapp.stop()
        twilio, self.twilio = self.twilio, None
        if twilio is not None:
            await twilio.aclose()
        await self.database.dispose()

    async def seed_school_if_empty(self) -> None:
        """A fresh installation starts with the school in SCHOOL_FILE."""
        async with transaction(self.sessions) as session:
            if await SchoolRepository(session).all():
                return
            path = self.settings.school_path
            school = await seed_school(session, load_school(path), "system", path)
            log.info("seeded the database with %s from %s", school.name, path)

    async def database_ready(self) -> bool:
        try:
            async with self.database.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any failure means "not ready"; the reason is logged
            log.exception("database is not ready")
            return False
        return True


def retention_defaults(settings: Settings) -> RetentionDefaults:
    return RetentionDefaults(
        metadata=timedelta(days=settings.keep_metadata_days),
        flags=timedelta(days=settings.keep_flags_days),
        audit=timedelta(days=settings.keep_audit_days),
    )


def retention(settings: Settings) -> Retention:
    return Retention(
        metadata=timedelta(days=settings.keep_metadata_days),
        flags=timedelta(days=settings.keep_flags_days),
    )


def check_twilio(settings: Settings) -> None:
    """A clear error for Twilio settings that cannot work, before anything starts."""
    sending = [name for name, value in (
        ("TWILIO_WHATSAPP_FROM", settings.twilio_whatsapp_from),
        ("TWILIO_SMS_FROM", settings.twilio_sms_from),
    ) if value]  # fmt: skip
    if sending and not (settings.twilio_account_sid and settings.twilio_auth_token):
        raise ConfigError(
            f"{' and '.join(sending)} set, but not TWILIO_ACCOUNT_SID and TWILIO_AUTH_TOKEN: "
            "give both (Twilio console, Account info) or unset them to leave Twilio off"
        )
    whatsapp = settings.twilio_whatsapp_from
    if whatsapp and not (
        whatsapp.startswith(WHATSAPP_PREFIX) and phone_key(whatsapp.removeprefix(WHATSAPP_PREFIX))
    ):
        raise ConfigError(
            f"TWILIO_WHATSAPP_FROM is a WhatsApp address like whatsapp:+441632960000, "
            f"not {whatsapp!r}"
        )
    sms = settings.twilio_sms_from
    if sms and not (sms.startswith("+") and phone_key(sms)):
        raise ConfigError(f"TWILIO_SMS_FROM is a number like +441632960001, not {sms!r}")


def twilio_on(settings: Settings) -> bool:
    return bool(
        settings.twilio_account_sid
        and settings.twilio_auth_token
        and (settings.twilio_whatsapp_from or settings.twilio_sms_from)
    )


def alert_channels(settings: Settings) -> frozenset[str]:
    """The channels staff alerts may go on: Telegram always (staff link it through the bot, and
    a row queued while this process has no token waits in the outbox for one that has it, as
    before), e-mail with SMTP_URL, WhatsApp with TWILIO_WHATSAPP_FROM, SMS with
    TWILIO_SMS_FROM (the last two with Twilio's credentials)."""
    channels = {TELEGRAM}
    if settings.smtp_url is not None:
        channels.add(EMAIL)
    if twilio_on(settings):
        if settings.twilio_whatsapp_from:
            channels.add(WHATSAPP)
        if settings.twilio_sms_from:
            channels.add(SMS)
    return frozenset(channels)


def connect_twilio(settings: Settings) -> WhatsAppApi | None:
    """Twilio's API when WhatsApp or SMS is configured; call inside the running event loop
    (its HTTP client needs it) and ``aclose`` it when done."""
    sid, token = settings.twilio_account_sid, settings.twilio_auth_token
    if not (twilio_on(settings) and sid and token):
        return None
    return WhatsAppApi.connect(sid, token.get_secret_value(), settings.twilio_api_base_url)


def channel_senders(
    settings: Settings,
    sessions: async_sessionmaker[AsyncSession],
    twilio: WhatsAppApi | None,
) -> dict[str, Sender]:
    """The outbox senders besides Telegram's (which needs the process's bot): e-mail with
    SMTP_URL, and with ``twilio`` WhatsApp, its groups and SMS, as configured."""
    senders: dict[str, Sender] = {}
    if settings.smtp_url is not None:
        senders[EMAIL] = EmailSender(settings.smtp_url.get_secret_value(), settings.smtp_from)
    if twilio is not None:
        senders.update(
            twilio_senders(
                twilio, sessions,
                whatsapp_from=settings.twilio_whatsapp_from, sms_from=settings.twilio_sms_from,
                templates=Templates(
                    alert=settings.twilio_template_alert,
                    reminder=settings.twilio_template_reminder,
                    invite=settings.twilio_template_invite,
                ),
                public_base_url=settings.public_base_url,
            )
        )  # fmt: skip
    return senders
