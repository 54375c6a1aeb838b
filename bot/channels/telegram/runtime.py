"""The running Telegram bot: receiving updates (long polling or webhook), storing each once in
the inbox, processing it in its own transaction, and carrying out the resulting actions.

An update is stored before anything else happens to it, so a crash or a database outage loses
nothing: polling does not confirm an update to Telegram until it is stored, the webhook answers
503 (Telegram retries) when it cannot store, and stored updates are processed until done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from telegram import Bot, ChatMember, ChatPermissions, Update
from telegram.error import TelegramError

from bot.channels.telegram.actions import Action, Leave, Say, perform
from bot.channels.telegram.delivery import CHANNEL, TelegramSender, telegram_bot
from bot.channels.telegram.updates import PLATFORM, HandlerSettings, TelegramUpdateHandler
from bot.periodic import repeat
from bot.services.alerts import TELEGRAM_ONLY, audience, notify
from bot.services.closure import (
    ACTIVE,
    advance_due_closures,
    post_closure_notice,
    record_step,
)
from bot.services.digest import escalate, queue_digests
from bot.services.dispatcher import Dispatcher
from bot.services.moderation import Retention
from bot.services.notices import refresh_notices
from bot.services.outbox import enqueue
from bot.services.schools import EngineCache
from bot.store.db import database_unreachable, transaction
from bot.store.models import Chat, ChatClosure, ClosureStatus, InboxStatus, utcnow
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.inbox import InboxRepository
from bot.texts import TelegramTexts

# PTB 22 warns when it builds RetryAfter (a 429) unless durations are timedeltas: opt in now.
os.environ.setdefault("PTB_TIMEDELTA", "true")

log = logging.getLogger(__name__)

ALLOWED_UPDATES = ["message", "edited_message", "callback_query", "my_chat_member", "chat_member"]
WEBHOOK_PATH = "/telegram/webhook"
POLL_TIMEOUT = 25
# Waiting for a database that is down: from one second up to a minute between tries.
RETRY_FIRST, RETRY_MAX = 1.0, 60.0
SWEEP_EVERY = 30.0
MAX_ATTEMPTS = 3
"""Tries at an update before it is set aside (failed), so that one bad update cannot stall the
inbox, or the service at every restart."""
# How long stopping waits for the dispatcher to finish the batch in hand before cancelling it
# (rows it had claimed are then sent again once their lease runs out).
DISPATCHER_STOP_WAIT = 5.0

DATABASE_DOWN = (OperationalError, DBAPIError, OSError, ConnectionError)


def _summary(error: Exception) -> str:
    """What went wrong, for the inbox row: the first line only, since a database error goes on
    to quote the statement's parameters, which may hold the update's content."""
    first_line = next(iter(str(error).splitlines()), "")
    return f"{type(error).__name__}: {first_line}"[:500]


class DatabaseUnavailableError(Exception):
    """The update could not be stored; the sender should try again later."""


class TelegramRuntime:
    def __init__(
        self,
        token: str,
        api_base_url: str,
        sessions: async_sessionmaker[AsyncSession],
        engines: EngineCache,
        texts: TelegramTexts,
        *,
        public_base_url: str | None,
        observe_only: bool,
        retention: Retention,
        leave_unregistered_after: timedelta,
        remind_every: timedelta = timedelta(hours=24),
        digest_time: time = time(16, 0),
        escalate_after: timedelta = timedelta(minutes=30),
        alert_channels: Collection[str] = TELEGRAM_ONLY,
        wake_outbox: Callable[[], None] | None = None,
        sweep_every: float | None = SWEEP_EVERY,
    ) -> None:
        """``alert_channels``: those staff alerts may go on in this installation.

        ``wake_outbox`` wakes the process's dispatcher (``bot.runtime.Runtime`` runs one for
        every channel) after something is queued. Without it this runtime delivers the outbox
        itself, on Telegram only, with a dispatcher of its own that it starts and stops: for a
        process (or a test) that runs Telegram alone.
        """
        self.bot: Bot = telegram_bot(token, api_base_url)
        self.remind_every = remind_every
        self.sweep_every = sweep_every
        """Seconds between housekeeping sweeps (leaving, closures, digests); None
        runs none in the background, for tests that take each step themselves."""
        self.digest_time = digest_time
        self.escalate_after = escalate_after
        self.sessions = sessions
        self.engines = engines
        self.texts = texts
        self.public_base_url = public_base_url.rstrip("/") if public_base_url else None
        self.observe_only = observe_only
        self.webhook_secret = secrets.token_urlsafe(32)
        self.retention = retention
        self.leave_unregistered_after = leave_unregistered_after
        self.handler: TelegramUpdateHandler | None = None
        self.alert_channels = frozenset(alert_channels)
        self.dispatcher: Dispatcher | None = None
        """Its own dispatcher (Telegram only), when not given ``wake_outbox``."""
        if wake_outbox is None:
            self.dispatcher = Dispatcher(sessions, {CHANNEL: TelegramSender(self.bot)})
            wake_outbox = self.dispatcher.wake
        self.wake_outbox = wake_outbox
        """Call after queueing a message (and committing it): it is sent at once."""
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._stop_dispatcher = asyncio.Event()
        self._dispatching: asyncio.Task[None] | None = None

    @property
    def mode(self) -> str:
        return "webhook" if self.public_base_url else "long polling"

    async def start(self) -> None:
        await self.bot.initialize()
        me = self.bot.bot
        self.handler = TelegramUpdateHandler(
            self.texts,
            self.engines,
            HandlerSettings(
                bot_id=me.id,
                bot_username=me.username or "",
                bot_can_read_all=bool(me.can_read_all_group_messages),
                retention=self.retention,
                leave_unregistered_after=self.leave_unregistered_after,
                observe_only=self.observe_only,
                remind_every=self.remind_every,
                alert_channels=self.alert_channels,
            ),
            self._is_group_admin,
            self._count_members,
        )
        await self.refresh_notices()
        if self.public_base_url:
            await self.bot.set_webhook(
                f"{self.public_base_url}{WEBHOOK_PATH}",
                secret_token=self.webhook_secret,
                allowed_updates=ALLOWED_UPDATES,
            )
        else:
            await self.bot.delete_webhook()
            self._tasks.append(asyncio.create_task(self._poll(), name="telegram-poll"))
        self._tasks.append(asyncio.create_task(self._process_forever(), name="telegram-inbox"))
        if self.sweep_every is not None:
            # One job each: a step that keeps failing must not hold up the others (digests and
            # escalations above all).
            for name, step in (
                ("unregistered chats", self.leave_unregistered),
                ("closures", self.advance_closures),
                ("digests and escalations", self.summarise_and_escalate),
            ):
                job = repeat(_at_now(step), every=self.sweep_every, what=f"Telegram {name}")
                self._tasks.append(asyncio.create_task(job, name=f"telegram {name}"))
        if self.dispatcher is not None:
            self._stop_dispatcher.clear()
            self._dispatching = asyncio.create_task(
                self.dispatcher.run_forever(self._stop_dispatcher), name="telegram-outbox"
            )
        log.info("Telegram bot @%s is on (%s)", me.username, self.mode)

    async def stop(self) -> None:
        """Stop receiving, processing and delivering. Safe to call more than once."""
        await self._stop_dispatching()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        await self.bot.shutdown()

    async def _stop_dispatching(self) -> None:
        task, self._dispatching = self._dispatching, None
        if task is None:
            return
        self._stop_dispatcher.set()
        try:
            await asyncio.wait_for(task, timeout=DISPATCHER_STOP_WAIT)
        except TimeoutError:
            log.warning("the outbox dispatcher did not stop in time; its claims will lapse")

    # -- receiving --------------------------------------------------------------------------

    async def receive(self, payload: dict[str, Any]) -> bool:
        """Store an update once (False: already stored). Raises DatabaseUnavailableError."""
        update_id = payload.get("update_id")
        if not isinstance(update_id, int):
            raise ValueError("an update needs an integer update_id")
        try:
            async with transaction(self.sessions) as session:
                stored = await InboxRepository(session).add(PLATFORM, update_id, payload)
        except DATABASE_DOWN as error:
            raise DatabaseUnavailableError(str(error)) from error
        self._wake.set()
        return stored

    async def _poll(self) -> None:
        offset: int | None = None
        delay = RETRY_FIRST
        while True:
            try:
                updates = await self.bot.get_updates(
                    offset=offset,
                    timeout=POLL_TIMEOUT,
                    allowed_updates=ALLOWED_UPDATES,
                    read_timeout=POLL_TIMEOUT + 10,
                )
            except Exception as error:
                # Polling must not die, of a network failure or of an update python-telegram-bot
                # cannot parse (PTB logs the data; tried again, as PTB's own Updater would).
                unexpected = not isinstance(error, TelegramError)
                log.warning(
                    "getUpdates failed (%s); retrying in %.0fs", error, delay, exc_info=unexpected
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)
                continue
            delay = RETRY_FIRST
            for update in updates:
                # Telegram forgets an update only when a later offset confirms it, so do not
                # move on until it is safely stored.
                await self._store_until_stored(update.to_dict())
                offset = update.update_id + 1

    async def _store_until_stored(self, payload: dict[str, Any]) -> None:
        delay = RETRY_FIRST
        while True:
            try:
                await self.receive(payload)
                return
            except DatabaseUnavailableError as error:
                log.error("database unavailable (%s); retrying in %.0fs", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    # -- processing -------------------------------------------------------------------------

    async def _process_forever(self) -> None:
        delay = RETRY_FIRST
        while True:
            try:
                await self.process_pending()
                delay = RETRY_FIRST
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=SWEEP_EVERY)
                self._wake.clear()
            except DATABASE_DOWN as error:
                log.error("database unavailable while processing (%s); retrying", error)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RETRY_MAX)

    async def process_pending(self) -> int:
        """Process every stored update not yet done, oldest first; how many were tried.

        An update that fails is tried again (after the others) until it has had
        ``MAX_ATTEMPTS``, then set aside: each attempt is counted in a transaction of its own
        before the work starts, so one that crashes or hangs the process counts too.
        """
        tried: Counter[int] = Counter()
        while True:
            async with self.sessions() as session:
                pending = await InboxRepository(session).pending(PLATFORM)
            due = [update_id for update_id in pending if tried[update_id] < MAX_ATTEMPTS]
            if not due:
                return sum(tried.values())
            for update_id in due:
                tried[update_id] += 1
                await self._process_one(update_id)

    async def _process_one(self, update_id: int) -> None:
        assert self.handler is not None, "start() first"
        attempt = await self._count_attempt(update_id)
        if attempt is None:
            return
        actions: list[Action] = []
        try:
            async with transaction(self.sessions) as session:
                inbox = InboxRepository(session)
                item = await inbox.claim(PLATFORM, update_id)
                if item is None:
                    return  # done meanwhile by another worker
                update = Update.de_json(item.payload or {}, self.bot)
                actions = await self.handler.handle(session, update, utcnow())
                inbox.finish(item, InboxStatus.PROCESSED)
            # What the update queued in the outbox is committed now: send it at once.
            self.wake_outbox()
        except Exception as error:  # a bad update or a bug must not stop the others
            if database_unreachable(error):
                raise
            log.exception(
                "update %s could not be processed (attempt %d of %d)",
                update_id, attempt, MAX_ATTEMPTS,
            )  # fmt: skip
            await self._record_failure(update_id, _summary(error), final=attempt >= MAX_ATTEMPTS)
            return
        await perform(self.bot, actions, observe_only=self.observe_only)

    async def _count_attempt(self, update_id: int) -> int | None:
        """Count one more attempt at an update and commit it; None when there is nothing to try
        (done meanwhile, or set aside now because its attempts ran out without finishing)."""
        async with transaction(self.sessions) as session:
            item = await InboxRepository(session).claim(PLATFORM, update_id)
            if item is None:
                return None
            if item.attempts >= MAX_ATTEMPTS:
                log.error(
                    "update %s set aside: %d attempts did not finish", update_id, item.attempts
                )
                reason = item.error or "the process stopped while it was being processed"
                InboxRepository.finish(item, InboxStatus.FAILED, reason)
                return None
            item.attempts += 1
            return item.attempts

    async def _record_failure(self, update_id: int, error: str, *, final: bool) -> None:
        """Keep what went wrong; after the last attempt, set the update aside (its content goes).
        Should the database be down after all, this raises and the update stays pending."""
        async with transaction(self.sessions) as session:
            item = await InboxRepository(session).claim(PLATFORM, update_id)
            if item is None:
                return
            if final:
                log.error("update %s set aside after %d attempts", update_id, item.attempts)
                InboxRepository.finish(item, InboxStatus.FAILED, error)
            else:
                item.error = error

    # -- housekeeping -----------------------------------------------------------------------

    async def refresh_notices(self) -> int:
        """Chats registered under an older notice get their school's current one, and members
        agree anew (``bot.services.notices.refresh_notices``): the notice is the school's own
        (set in the admin pages, which post it at once) or the one in config/texts, reworded
        there with a new version; consent to the old words does not count for the new ones."""
        async with transaction(self.sessions) as session:
            asked = await refresh_notices(
                session, PLATFORM, self.texts.notice, self.retention, utcnow()
            )
        if asked:
            self.wake_outbox()
        return asked

    async def summarise_and_escalate(self, now: datetime) -> int:
        """Queue the daily digests that are due and re-send alerts nobody acknowledged."""
        async with transaction(self.sessions) as session:
            channels = self.alert_channels
            queued = await queue_digests(
                session, self.texts, self.digest_time, now, channels=channels
            )
            queued += await escalate(
                session, self.texts, self.escalate_after, now, channels=channels
            )
        if queued:
            self.wake_outbox()
        return queued

    async def advance_closures(self, now: datetime) -> int:
        """Take each Telegram chat's closure under way one step further; how many moved."""
        moved = await advance_due_closures(
            self.sessions, PLATFORM, now, self._advance_closure, TelegramError
        )
        if moved:
            self.wake_outbox()
        return moved

    async def _advance_closure(self, closure_id: int, now: datetime) -> int:
        async with transaction(self.sessions) as session:
            closure = await session.get(ChatClosure, closure_id, with_for_update=True)
            chat = await session.get(Chat, closure.chat_id) if closure else None
            if closure is None or chat is None or closure.status not in ACTIVE:
                return 0
            telegram_chat = int(chat.platform_chat_id)
            if closure.status == ClosureStatus.REQUESTED:
                await post_closure_notice(session, closure, chat, self.texts, now)
            elif closure.status == ClosureStatus.NOTICE_POSTED:
                me = await self.bot.get_chat_member(telegram_chat, self.bot.bot.id)
                if getattr(me, "can_restrict_members", False):
                    await self.bot.set_chat_permissions(
                        telegram_chat, ChatPermissions.no_permissions()
                    )
                    await record_step(session, closure, chat, ClosureStatus.LOCKED, now)
                else:
                    problem = "the bot is not an admin allowed to restrict members"
                    await enqueue(
                        session, key=f"closure:{closure.id}:cannot-lock", channel="telegram",
                        recipient=chat.platform_chat_id, text=self.texts.closure_cannot_lock,
                        purpose="closure", school_id=chat.school_id,
                    )  # fmt: skip
                    text = self.texts.closure_slt.format(chat=chat.title, problem=problem)
                    school_id = chat.school_id or 0
                    slt = await audience(session, school_id, set(), channels=self.alert_channels)
                    await notify(
                        session, slt, key=f"closure:{closure.id}:slt", text=text,
                        purpose="closure", school_id=school_id,
                    )  # fmt: skip
                    await record_step(session, closure, chat, ClosureStatus.LOCKED, now, problem)
            else:
                await self.bot.leave_chat(telegram_chat)
                await record_step(session, closure, chat, ClosureStatus.CLOSED, now)
        return 1

    async def leave_unregistered(self, now: datetime) -> int:
        """Leave chats that were not registered in time."""
        actions: list[Action] = []
        async with transaction(self.sessions) as session:
            chats = await ChatRepository(session).due_to_leave(now)
            for chat in chats:
                chat.leave_after = None
                await AuditRepository(session).record(
                    "system", "chat.left_unregistered", f"chat:{chat.id}", None, title=chat.title
                )
                chat_id = int(chat.platform_chat_id)
                actions += [Say(chat_id, self.texts.leaving, unprompted=True), Leave(chat_id)]
        await perform(self.bot, actions, observe_only=self.observe_only)
        return len(actions) // 2

    async def _count_members(self, chat_id: int) -> int | None:
        """People in the chat, not counting the bot; None when Telegram will not say."""
        try:
            return max(0, await self.bot.get_chat_member_count(chat_id) - 1)
        except TelegramError as error:
            log.warning("could not count the members of chat %s: %s", chat_id, error)
            return None

    async def _is_group_admin(self, chat_id: int, user_id: int) -> bool:
        member = await self.bot.get_chat_member(chat_id, user_id)
        return member.status in (ChatMember.ADMINISTRATOR, ChatMember.OWNER)


def _at_now(step: Callable[[datetime], Awaitable[object]]) -> Callable[[], Awaitable[object]]:
    """``step`` as a timer job: each round, for the time it runs."""
    return lambda: step(utcnow())
