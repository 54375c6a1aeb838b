"""One Telegram update, handled inside the caller's transaction.

The handler calls the services and returns the actions to take (``actions.py``); it sends
nothing itself, so that nothing is said about a change that was then rolled back.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession
from telegram import Chat as TelegramChat
from telegram import ChatMember as TelegramChatMember
from telegram import ChatMemberUpdated, Message, Update, User

from bot.channels.telegram.actions import Action, Answer, Say
from bot.channels.telegram.translate import chat_message
from bot.services import consent, review
from bot.services.alerts import ALERT_DATA, TELEGRAM_ONLY, AlertAction, AlertContext, alert_now
from bot.services.moderation import Retention, check_message
from bot.services.notices import (
    CONSENT_DATA,
    agree_button,
    current_notice,
    notice_text,
    retention_of,
)
from bot.services.registration import Outcome, register_chat
from bot.services.reminders import remind_sender
from bot.services.schools import EngineCache
from bot.services.staff_links import link_account, linked_staff
from bot.store.models import Chat, ChatMember, ChatStatus, School
from bot.store.repositories.audit import AuditRepository
from bot.store.repositories.chats import ChatRepository
from bot.store.repositories.members import MemberRepository
from bot.store.repositories.schools import SchoolRepository
from bot.texts import TelegramTexts

log = logging.getLogger(__name__)

PLATFORM = "telegram"
GROUP_TYPES = (TelegramChat.GROUP, TelegramChat.SUPERGROUP)
IsGroupAdmin = Callable[[int, int], Awaitable[bool]]
CountMembers = Callable[[int], Awaitable[int | None]]


@dataclass(frozen=True)
class HandlerSettings:
    retention: Retention
    leave_unregistered_after: timedelta
    bot_id: int
    bot_username: str
    bot_can_read_all: bool
    """Whether the bot sees every group message as a plain member (privacy mode off)."""
    observe_only: bool = False
    remind_every: timedelta = timedelta(hours=24)
    """At most one reminder per member per rule in this time."""
    link_code_valid: timedelta = timedelta(hours=72)
    alert_channels: Collection[str] = TELEGRAM_ONLY
    """The channels staff alerts may go on in this installation (e-mail with SMTP_URL...)."""


class TelegramUpdateHandler:
    def __init__(
        self,
        texts: TelegramTexts,
        engines: EngineCache,
        settings: HandlerSettings,
        is_group_admin: IsGroupAdmin,
        count_members: CountMembers,
    ) -> None:
        self.texts = texts
        self.engines = engines
        self.settings = settings
        self.is_group_admin = is_group_admin
        self.count_members = count_members

    async def handle(self, session: AsyncSession, update: Update, now: datetime) -> list[Action]:
        if update.my_chat_member is not None:
            return await self._bot_membership(session, update.my_chat_member, now)
        if update.chat_member is not None:
            return await self._membership(session, update.chat_member, now)
        if update.callback_query is not None:
            return await self._button(session, update, now)
        message = update.message or update.edited_message
        if message is None:
            return []
        if message.text and message.text.startswith("/"):
            return await self._command(session, message, now)
        if message.chat.type in GROUP_TYPES:
            return await self._group_message(
                session, message, update.edited_message is not None, now
            )
        return []

    # -- the bot joining, leaving, being promoted ----------------------------------------------

    async def _bot_membership(
        self, session: AsyncSession, change: ChatMemberUpdated, now: datetime
    ) -> list[Action]:
        if change.chat.type not in GROUP_TYPES:
            return []
        chats = ChatRepository(session)
        chat = await chats.find_or_add(PLATFORM, str(change.chat.id), change.chat.title or "")
        status = change.new_chat_member.status
        audit = AuditRepository(session)
        actor = _actor(change.from_user)
        if status in (TelegramChatMember.LEFT, TelegramChatMember.BANNED):
            chat.status, chat.left_at = ChatStatus.LEFT, now
            await audit.record(actor, "chat.bot_removed", f"chat:{chat.id}", chat.school_id)
            return []
        was_in_chat = change.old_chat_member.status not in (
            TelegramChatMember.LEFT,
            TelegramChatMember.BANNED,
        )
        chat.bot_is_admin = status in (TelegramChatMember.ADMINISTRATOR, TelegramChatMember.OWNER)
        chat.bot_can_read_all = chat.bot_is_admin or self.settings.bot_can_read_all
        if chat.status == ChatStatus.LEFT:
            chat.status = ChatStatus.REGISTERED if chat.school_id else ChatStatus.UNREGISTERED
            chat.left_at = None
        await audit.record(
            actor, "chat.bot_promoted" if was_in_chat else "chat.bot_added", f"chat:{chat.id}",
            chat.school_id, admin=chat.bot_is_admin, can_read_all=chat.bot_can_read_all,
        )  # fmt: skip
        actions: list[Action] = []
        if chat.status == ChatStatus.UNREGISTERED and chat.explained_at is None:
            actions.append(self._explain(chat, now))
        if not chat.bot_can_read_all and chat.blind_reported_at is None:
            chat.blind_reported_at = now
            # The school hears of it through the audit log (and, with alerts, from SLT's feed).
            await audit.record("system", "chat.bot_cannot_read", f"chat:{chat.id}", chat.school_id)
            log.warning("bot cannot read messages in chat %s (%s)", chat.id, chat.title)
            if not chat.observe_only:  # a chat on trial hears nothing the bot need not say
                actions.append(Say(change.chat.id, self.texts.cannot_read, unprompted=True))
        return actions

    def _explain(self, chat: Chat, now: datetime) -> Say:
        chat.explained_at = now
        wait = self.settings.leave_unregistered_after
        chat.leave_after = now + wait
        minutes = round(wait.total_seconds() / 60)
        text = self.texts.unregistered.format(minutes=minutes)
        return Say(int(chat.platform_chat_id), text, unprompted=True)

    async def _membership(
        self, session: AsyncSession, change: ChatMemberUpdated, now: datetime
    ) -> list[Action]:
        chat = await ChatRepository(session).find(PLATFORM, str(change.chat.id))
        if chat is None or chat.status != ChatStatus.REGISTERED:
            return []
        chat.member_count = await self.count_members(change.chat.id)
        # Only members who have agreed are on record; someone else joining or leaving is not.
        member = await MemberRepository(session).find(chat.id, str(change.new_chat_member.user.id))
        if member is not None and change.new_chat_member.status in (
            TelegramChatMember.LEFT,
            TelegramChatMember.BANNED,
        ):
            member.left_at = now
        return []

    # -- commands ---------------------------------------------------------------------------

    async def _command(
        self, session: AsyncSession, message: Message, now: datetime
    ) -> list[Action]:
        word, _, argument = (message.text or "").partition(" ")
        name, _, addressee = word[1:].partition("@")
        if addressee and addressee.lower() != self.settings.bot_username.lower():
            return []  # a command for another bot in the group
        handlers = {
            "register": self._register,
            "consent": self._consent_command,
            "withdraw": self._withdraw,
            "privacy": self._privacy,
            "mydata": self._mydata,
            "start": self._start,
            "help": self._privacy,
            "link": self._link,
        }
        handler = handlers.get(name.lower())
        if handler is None:
            if message.chat.type in GROUP_TYPES:
                # Another command typed in the group is still a message to check.
                return await self._group_message(session, message, False, now)
            return []
        return await handler(session, message, argument.strip(), now)

    async def _register(
        self, session: AsyncSession, message: Message, code: str, now: datetime
    ) -> list[Action]:
        reply = message.message_id
        if message.chat.type not in GROUP_TYPES:
            return [Say(message.chat.id, self.texts.register_usage)]
        if not code:
            return [Say(message.chat.id, self.texts.register_usage, reply)]
        user = message.from_user
        anonymous_admin = (
            message.sender_chat is not None and message.sender_chat.id == message.chat.id
        )
        if not anonymous_admin and (
            user is None or not await self.is_group_admin(message.chat.id, user.id)
        ):
            return [Say(message.chat.id, self.texts.not_admin, reply)]
        chat = await ChatRepository(session).find_or_add(
            PLATFORM, str(message.chat.id), message.chat.title or ""
        )
        result = await register_chat(
            session, chat, code, _actor(user), self.texts.notice.version, now
        )
        if result.outcome is Outcome.REGISTERED and result.school is not None:
            chat.member_count = await self.count_members(message.chat.id)
            registered = self.texts.registered.format(
                school=result.school.name, class_name=result.class_name
            )
            # Members agree to the school's own notice where it has one.
            chat.notice_version = current_notice(result.school, self.texts.notice).version
            return [Say(message.chat.id, registered, reply), self.notice(chat, result.school)]
        if result.outcome is Outcome.ALREADY and result.school is not None:
            text = self.texts.already_registered.format(school=result.school.name)
            return [Say(message.chat.id, text, reply)]
        text = {
            Outcome.EXPIRED: self.texts.expired_code,
            Outcome.USED: self.texts.used_code,
        }.get(result.outcome, self.texts.bad_code)
        return [Say(message.chat.id, text, reply)]

    def notice(self, chat: Chat, school: School | None) -> Say:
        """The consent notice for ``chat`` (its school's own words where it has them), with its
        "I agree" button."""
        text = self._notice_text(school)
        return Say(int(chat.platform_chat_id), text, button=self._agree_button(chat.notice_version))

    def _notice_text(self, school: School | None) -> str:
        return notice_text(school, self.texts.notice, self.settings.retention)

    def _agree_button(self, version: str | None) -> tuple[str, str]:
        return agree_button(self.texts.notice, version or self.texts.notice.version)

    async def _consent_command(
        self, session: AsyncSession, message: Message, _: str, now: datetime
    ) -> list[Action]:
        if message.chat.type not in GROUP_TYPES or message.from_user is None:
            return [Say(message.chat.id, self.texts.consent_private)]
        chat = await self._registered_chat(session, message.chat)
        if chat is None:
            return []
        member = await self._member(session, chat, message.from_user)
        text = await self._agree(session, chat, member, "command", now)
        return [Say(message.chat.id, text, message.message_id)]

    async def _agree(
        self, session: AsyncSession, chat: Chat, member: ChatMember, method: str, now: datetime
    ) -> str:
        recorded = await consent.give(session, chat, member, method, now)
        template = self.texts.consent_recorded if recorded else self.texts.consent_already
        return template.format(name=member.display_name)

    async def _withdraw(
        self, session: AsyncSession, message: Message, _: str, now: datetime
    ) -> list[Action]:
        user = message.from_user
        if user is None:
            return []
        withdrawn = await consent.withdraw(session, PLATFORM, str(user.id), now)
        text = self.texts.withdrawn if withdrawn else self.texts.not_consented
        return [Say(message.chat.id, text.format(name=user.first_name), message.message_id)]

    async def _privacy(
        self, session: AsyncSession, message: Message, _: str, now: datetime
    ) -> list[Action]:
        chat = await self._registered_chat(session, message.chat)
        school = (
            await SchoolRepository(session).get(chat.school_id) if chat and chat.school_id else None
        )
        text = self._notice_text(school)
        # Only a registered chat has a notice to agree to; elsewhere it is for reading.
        button = self._agree_button(chat.notice_version) if chat else None
        return [Say(message.chat.id, text, message.message_id, button=button)]

    async def _mydata(
        self, session: AsyncSession, message: Message, _: str, now: datetime
    ) -> list[Action]:
        user = message.from_user
        if user is None:
            return []
        if message.chat.type == TelegramChat.PRIVATE:
            return [Say(message.chat.id, await self._subject_access(session, user))]
        members = await MemberRepository(session).everywhere(str(user.id))
        private = next((m.private_chat_id for m in members if m.private_chat_id), None)
        if private is None:
            text = self.texts.mydata_start.format(bot=f"@{self.settings.bot_username}")
            return [Say(message.chat.id, text, message.message_id)]
        return [
            Say(int(private), await self._subject_access(session, user)),
            Say(message.chat.id, self.texts.mydata_sent, message.message_id),
        ]

    @staticmethod
    async def _subject_access(session: AsyncSession, user: User) -> str:
        """Everything held about ``user``, as text for a private chat; the sending is audited."""
        report = await consent.subject_access(session, PLATFORM, str(user.id))
        await AuditRepository(session).record(
            _actor(user), "member.data_sent", f"{PLATFORM}:user:{user.id}"
        )
        return _as_text(report)

    async def _start(
        self, session: AsyncSession, message: Message, _: str, now: datetime
    ) -> list[Action]:
        user = message.from_user
        if message.chat.type != TelegramChat.PRIVATE or user is None:
            return []
        for member in await MemberRepository(session).everywhere(str(user.id)):
            member.private_chat_id = str(message.chat.id)
        return await self._privacy(session, message, "", now)

    # -- buttons ----------------------------------------------------------------------------

    async def _button(self, session: AsyncSession, update: Update, now: datetime) -> list[Action]:
        query = update.callback_query
        assert query is not None  # checked by the caller
        kind, _, version = (query.data or "").partition(":")
        message = query.message
        if kind == ALERT_DATA:
            return await self._alert_button(session, query.id, query.from_user, version, now)
        if kind != CONSENT_DATA or not isinstance(message, Message):
            return [Answer(query.id, "")]
        chat = await self._registered_chat(session, message.chat)
        if chat is None:
            return [Answer(query.id, "")]
        if version != chat.notice_version:
            # A button under an old notice: show the current one instead of agreeing to it.
            school = await SchoolRepository(session).get(chat.school_id or 0)
            return [Answer(query.id, ""), self.notice(chat, school)]
        member = await self._member(session, chat, query.from_user)
        return [Answer(query.id, await self._agree(session, chat, member, "button", now))]

    async def _alert_button(
        self, session: AsyncSession, callback_id: str, user: User, data: str, now: datetime
    ) -> list[Action]:
        """An SLT member pressed a button under an alert: acknowledge, not a breach, remind the
        sender, have the message removed or ask the sender to a meeting (``review`` does it)."""
        flag_id, _, action = data.partition(":")
        case = await review.find_case(session, int(flag_id)) if flag_id.isdecimal() else None
        staff = next(
            (s for s in await linked_staff(session, user.id)
             if case is not None and s.school_id == case.school_id and (s.slt or s.dsl)
             and (s.dsl or not case.flag.safeguarding)),
            None,
        )  # fmt: skip
        if case is None or staff is None or action not in set(AlertAction):
            return [Answer(callback_id, self.texts.alert_not_yours)]
        reviewer = review.Reviewer(f"staff:{staff.id}", staff.name)
        done = self.texts.alert_done
        if action in (AlertAction.ACKNOWLEDGE, AlertAction.FALSE_POSITIVE):
            acknowledge = action == AlertAction.ACKNOWLEDGE
            await review.decide(
                session, case,
                review.Decision.ACKNOWLEDGE if acknowledge else review.Decision.FALSE_POSITIVE,
                reviewer, note=None if acknowledge else "marked from the Telegram alert",
                texts=self.texts, channels=self.settings.alert_channels, now=now,
            )  # fmt: skip
            said = done.acknowledge if acknowledge else done.false_positive
            return [Answer(callback_id, said.format(name=staff.name))]
        step = review.Step(action)
        if not review.acts_on_sender(case):  # a report: its author is not known
            return [Answer(callback_id, review.NOT_THE_AUTHOR)]
        outcome = await review.act(session, case, step, reviewer, texts=self.texts, now=now)
        removal = self.texts.removal_outcomes
        said = {
            review.Step.REMIND: done.remind.format(sender=case.sender.display_name),
            review.Step.MEET: done.meet.format(sender=case.sender.display_name),
            review.Step.REMOVE: done.remove.format(
                name=staff.name,
                outcome=removal.deleted if outcome is review.Outcome.DELETED else removal.asked,
            ),
        }[step]
        return [Answer(callback_id, said)]

    async def _link(
        self, session: AsyncSession, message: Message, code: str, now: datetime
    ) -> list[Action]:
        user = message.from_user
        if user is None:
            return []
        if message.chat.type != TelegramChat.PRIVATE:
            return [Say(message.chat.id, self.texts.link_private_only, message.message_id)]
        if not code:
            return [Say(message.chat.id, self.texts.link_usage)]
        staff = await link_account(session, code, user.id, now)
        if staff is None:
            return [Say(message.chat.id, self.texts.link_bad)]
        school = await SchoolRepository(session).get(staff.school_id)
        text = self.texts.link_done.format(name=staff.name, school=school.name if school else "")
        return [Say(message.chat.id, text)]

    # -- ordinary group messages ------------------------------------------------------------

    async def _group_message(
        self, session: AsyncSession, message: Message, edited: bool, now: datetime
    ) -> list[Action]:
        user = message.from_user
        if user is None or user.is_bot:
            return []
        chats = ChatRepository(session)
        chat = await chats.find_or_add(PLATFORM, str(message.chat.id), message.chat.title or "")
        if chat.status == ChatStatus.LEFT:
            return []
        if chat.status != ChatStatus.REGISTERED or chat.school_id is None:
            # Nothing is read in a chat the school has not registered; say so once.
            return [self._explain(chat, now)] if chat.explained_at is None else []
        # Someone who has not agreed is not looked up by name or kept: only counted.
        member = await MemberRepository(session).find(chat.id, str(user.id))
        if member is None or not await consent.has_consented(session, chat, member):
            await chats.count_unconsented(chat.id)
            return []
        member.display_name, member.username = user.full_name, user.username
        school = await SchoolRepository(session).get(chat.school_id)
        if school is None:
            return []
        engine = await self.engines.for_school(session, school)
        neutral = chat_message(message, edited=edited)
        retention = retention_of(school, self.settings.retention)
        checked = await check_message(session, engine, chat, member, neutral, retention, now)
        if checked.flag is not None and not edited:
            reasons = list(checked.flag.reasons)
            alert = AlertContext(checked.flag, reasons, chat, member, neutral.text)
            await alert_now(session, self.texts, alert, channels=self.settings.alert_channels)
        if not (self.settings.observe_only or chat.observe_only) and not edited:
            await remind_sender(
                session, self.texts, engine, chat, member, neutral.id, checked.verdict,
                school=school, sent_at=neutral.sent_at, every=self.settings.remind_every, now=now,
            )  # fmt: skip
        return []

    # -- helpers ----------------------------------------------------------------------------

    @staticmethod
    async def _registered_chat(session: AsyncSession, telegram_chat: TelegramChat) -> Chat | None:
        chat = await ChatRepository(session).find(PLATFORM, str(telegram_chat.id))
        if chat is None or chat.status != ChatStatus.REGISTERED:
            return None
        return chat

    @staticmethod
    async def _member(session: AsyncSession, chat: Chat, user: User) -> ChatMember:
        return await MemberRepository(session).find_or_add(
            chat.id, str(user.id), user.full_name, user.username
        )


def _actor(user: User | None) -> str:
    return f"{PLATFORM}:user:{user.id}" if user else f"{PLATFORM}:unknown"


def _as_text(report: dict[str, object]) -> str:
    # Telegram's limit is 4,096 characters; a long history is cut, the admin backend has it all.
    text = json.dumps(report, ensure_ascii=False, indent=1)
    return text if len(text) <= 4000 else text[:3950] + "\n... (more: ask the school office)"
