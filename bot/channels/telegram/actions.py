"""What the bot decides to do, as data: the handler describes it, ``perform`` carries it out
after the transaction that decided it has committed."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, ReplyParameters
from telegram.error import TelegramError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Say:
    chat_id: int
    text: str
    reply_to: int | None = None
    button: tuple[str, str] | None = None
    """(label, callback data) of one inline button, e.g. the consent notice's "I agree"."""
    unprompted: bool = False
    """Said of the bot's own accord (an explanation, a warning, a goodbye), not in answer to
    something a member did: observe-only mode keeps these to itself."""


@dataclass(frozen=True)
class Answer:
    """The small notice a person sees after pressing a button."""

    callback_id: str
    text: str


@dataclass(frozen=True)
class Leave:
    chat_id: int


Action = Say | Answer | Leave


async def perform(bot: Bot, actions: Iterable[Action], *, observe_only: bool) -> None:
    for action in actions:
        try:
            await _perform(bot, action, observe_only)
        except TelegramError as error:
            # Delivery with retries arrives with the outbox; until then a failure is logged.
            log.warning("telegram action %s failed: %s", type(action).__name__, error)


async def _perform(bot: Bot, action: Action, observe_only: bool) -> None:
    if isinstance(action, Say):
        if observe_only and action.unprompted:
            log.info("observe-only: not saying in chat %s: %s", action.chat_id, action.text[:80])
            return
        markup = None
        if action.button:
            label, data = action.button
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(label, callback_data=data)]])
        await bot.send_message(
            action.chat_id,
            action.text,
            reply_markup=markup,
            reply_parameters=ReplyParameters(action.reply_to, allow_sending_without_reply=True)
            if action.reply_to
            else None,
        )
    elif isinstance(action, Answer):
        await bot.answer_callback_query(action.callback_id, text=action.text)
    else:
        await bot.leave_chat(action.chat_id)
