"""Telegram messages as the policy engine's neutral ChatMessage."""

from __future__ import annotations

from telegram import Message, MessageEntity, User

from bot.policy import ChatMessage, Media, Person, ReplyTo, Role


def person(user: User | None) -> Person:
    if user is None:
        return Person()
    handle = f"@{user.username}" if user.username else ""
    return Person(id=f"tg:{user.id}", name=user.full_name, role=Role.UNKNOWN, handle=handle)


def media_of(message: Message) -> tuple[Media, ...]:
    caption = message.caption or ""
    kinds = []
    if message.photo:
        kinds.append("photo")
    if message.video:
        kinds.append("video")
    if message.animation:
        kinds.append("animation")
    if message.video_note:
        kinds.append("video_note")
    if message.document and not message.animation:
        mime = message.document.mime_type or ""
        kinds.append("image" if mime.startswith("image/") else "document")
    if message.sticker:
        kinds.append("sticker")
    return tuple(Media(kind, caption) for kind in kinds)


def mentions_of(message: Message) -> tuple[str, ...]:
    found: list[str] = []
    for entities in (message.parse_entities(), message.parse_caption_entities()):
        for entity, text in entities.items():
            if entity.type == MessageEntity.MENTION:
                found.append(text)
            elif entity.type == MessageEntity.TEXT_MENTION and entity.user:
                found.append(f"@{entity.user.username}" if entity.user.username else text)
    return tuple(dict.fromkeys(found))


def chat_message(message: Message, *, edited: bool = False) -> ChatMessage:
    reply = message.reply_to_message
    return ChatMessage(
        id=str(message.message_id),
        text=message.text or message.caption or "",
        sent_at=message.date,
        sender=person(message.from_user),
        chat_id=str(message.chat.id),
        chat_title=message.chat.title or "",
        mentions=mentions_of(message),
        reply_to=ReplyTo(person(reply.from_user), reply.text or reply.caption or "")
        if reply is not None
        else None,
        media=media_of(message),
        forwarded=message.forward_origin is not None,
        edited=edited,
    )
