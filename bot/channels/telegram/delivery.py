"""Delivering outbox rows on Telegram: the dispatcher's sender for the "telegram" channel.

Give it the runtime's bot: its AIORateLimiter keeps to Telegram's limits (about 30 messages a
second overall, 20 a minute per group) and waits out a 429 a few times itself; what still
fails is reported to the dispatcher as RetryLater or PermanentFailure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.ext import AIORateLimiter, ExtBot

from bot.services.dispatcher import PermanentFailure, RetryLater
from bot.store.models import OutboxMessage

# PTB 22 warns when it builds RetryAfter (a 429) unless durations are timedeltas: opt in now.
os.environ.setdefault("PTB_TIMEDELTA", "true")

CHANNEL = "telegram"
DELETE = "delete"
"""The purpose of an outbox row that deletes a message rather than sending one."""


def telegram_bot(token: str, api_base_url: str) -> Bot:
    """The bot everything sends with: python-telegram-bot's rate limiter keeps it within
    Telegram's limits and waits out a few 429s itself before reporting one."""
    return ExtBot(
        token,
        base_url=api_base_url,
        base_file_url=api_base_url.replace("/bot", "/file/bot"),
        rate_limiter=AIORateLimiter(max_retries=3),
    )


def _chat_id(recipient: str) -> int | str:
    """A chat id as Telegram takes it: a number, or a public "@username"."""
    try:
        return int(recipient)
    except ValueError:
        return recipient


def keyboard(buttons: list[list[str]]) -> InlineKeyboardMarkup | None:
    """``[[label, callback data], ...]`` as an inline keyboard, one button per row."""
    if not buttons:
        return None
    return InlineKeyboardMarkup(
        [[InlineKeyboardButton(label, callback_data=data)] for label, data in buttons]
    )


class TelegramSender:
    def __init__(self, bot: Bot) -> None:
        self.bot = bot

    async def send(self, message: OutboxMessage) -> str | None:
        """Send ``message``; a row whose purpose is "delete" instead deletes the message
        ``reply_to`` from the chat ``recipient``."""
        with _outcomes():
            if message.purpose == DELETE:
                await self._delete(message)
                return None
            reply = (
                ReplyParameters(int(message.reply_to), allow_sending_without_reply=True)
                if message.reply_to
                else None
            )
            sent = await self.bot.send_message(
                _chat_id(message.recipient),
                message.text,
                reply_markup=keyboard(message.buttons),
                reply_parameters=reply,
            )
            return str(sent.message_id)

    async def _delete(self, message: OutboxMessage) -> None:
        if not (message.reply_to or "").isdigit():
            raise PermanentFailure(f"no message to delete was named: {message.reply_to!r}")
        try:
            await self.bot.delete_message(_chat_id(message.recipient), int(message.reply_to or 0))
        except BadRequest as error:
            # Deleted already, older than 48 hours, or the bot lost its admin right.
            raise PermanentFailure(
                f"the message could not be deleted (already gone, older than 48 hours, or the "
                f"bot is no longer an admin): {error.message}"
            ) from error


@contextmanager
def _outcomes() -> Iterator[None]:
    """Telegram's errors as the dispatcher's outcomes: try again later, or give up."""
    try:
        yield
    except RetryAfter as error:
        after = error.retry_after
        wait = after if isinstance(after, timedelta) else timedelta(seconds=after)
        raise RetryLater(wait, f"flood control: {error.message}") from error
    except Forbidden as error:  # blocked by the user, removed from the group
        raise PermanentFailure(error.message) from error
    except BadRequest as error:  # chat not found, and the like (BadRequest is a NetworkError)
        raise PermanentFailure(f"Bad Request: {error.message}") from error
    except ChatMigrated as error:
        raise PermanentFailure(
            f"the group became a supergroup, now chat {error.new_chat_id}"
        ) from error
    except InvalidToken as error:
        # The token was revoked or mistyped: every row would fail the same way, so keep
        # them waiting until someone fixes the configuration.
        raise RetryLater(None, f"invalid bot token: {error.message}") from error
    except TelegramError as error:
        # Timeouts, connection failures and HTTP 5xx (PTB raises NetworkError for them).
        raise RetryLater(None, f"{type(error).__name__}: {error.message}") from error
