"""Builders of Telegram update payloads, shaped exactly as the Bot API sends them.

Every builder returns plain JSON-ready dicts: what arrives from ``getUpdates`` or on a webhook.
Feed them to ``FakeTelegramAPI.queue_update`` or to ``telegram.Update.de_json``. Optional fields
are left out rather than sent as ``null``, as Telegram does, and dates are Unix timestamps.

    pat = user(1001, "Pat", username="pat_jones")
    year3 = group(title="Year 3 Parents")
    update = message(1, year3, pat, "hi @schoolgate_bot")
"""

from __future__ import annotations

import mimetypes
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

JSON = dict[str, Any]

# Matches FakeTelegramAPI's default token "123:ABC": a token starts with the bot's user id.
BOT_ID = 123
BOT_USERNAME = "schoolgate_bot"
DEFAULT_GROUP_ID = -1001234567890

# Update types Telegram leaves out of getUpdates/webhooks unless asked for by allowed_updates.
OPT_IN_UPDATE_TYPES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})


class _MessageIds:
    """One increasing sequence for every message id the builders and the fake server hand out.

    Telegram numbers messages per chat, increasing; sharing one sequence keeps a test's messages
    and the bot's replies from ever colliding, whatever order they are made in.
    """

    def __init__(self) -> None:
        self._last = 0

    def next(self, after: int = 0) -> int:
        self._last = max(self._last, after) + 1
        return self._last


_message_ids = _MessageIds()


def next_message_id(after: int = 0) -> int:
    """A fresh message id, greater than every one handed out so far and than ``after``."""
    return _message_ids.next(after)


def user(
    id: int,
    first_name: str = "Pat",
    last_name: str | None = None,
    username: str | None = None,
    is_bot: bool = False,
    language_code: str | None = None,
) -> JSON:
    """A User as it appears in ``from`` of an update (``getMe`` adds the bot-only flags)."""
    return _drop_none(
        {
            "id": id,
            "is_bot": is_bot,
            "first_name": first_name,
            "last_name": last_name,
            "username": username,
            "language_code": language_code,
        }
    )


def bot_user(
    id: int = BOT_ID, first_name: str = "Schoolgate", username: str = BOT_USERNAME
) -> JSON:
    """The bot itself as other updates show it (``from`` of its messages, chat member objects)."""
    return user(id, first_name, username=username, is_bot=True)


def group(
    id: int = DEFAULT_GROUP_ID,
    title: str = "Year 3 Parents",
    type: str = "supergroup",
    username: str | None = None,
) -> JSON:
    """A group chat. Supergroup ids start with -100; basic groups are plain negative numbers."""
    return _drop_none({"id": id, "title": title, "type": type, "username": username})


def channel(
    id: int = -1009876543210, title: str = "School News", username: str | None = None
) -> JSON:
    return group(id, title, "channel", username)


def private_chat(of: Mapping[str, Any]) -> JSON:
    """The one-to-one chat between the bot and a user: its id is the user's id."""
    return _drop_none(
        {
            "id": of["id"],
            "first_name": of["first_name"],
            "last_name": of.get("last_name"),
            "username": of.get("username"),
            "type": "private",
        }
    )


def entities_for(text: str) -> list[JSON]:
    """The ``mention`` and ``bot_command`` entities Telegram clients attach to plain text.

    Follows tdlib's rules: a mention is ``@`` plus 5-32 of ``[A-Za-z0-9_]``, a command is ``/``
    plus 1-64 of them with an optional ``@botname``; neither may touch a letter or digit on either
    side. Offsets and lengths count UTF-16 code units, as the Bot API does.
    """
    found: list[tuple[int, int, str]] = []
    for i, char in enumerate(text):
        if char not in "@/" or (i > 0 and _blocks(text[i - 1], char)):
            continue
        end = _word_end(text, i + 1)
        name_len = end - i - 1
        if char == "@":
            if not 5 <= name_len <= 32:
                continue
        else:
            if not 1 <= name_len <= 64:
                continue
            if end < len(text) and text[end] == "@":
                bot_end = _word_end(text, end + 1)
                if not 3 <= bot_end - end - 1 <= 32:
                    continue
                end = bot_end
        if end < len(text) and _blocks(text[end], char):
            continue
        found.append((i, end, "mention" if char == "@" else "bot_command"))
    return [
        {"offset": _utf16_len(text[:start]), "length": _utf16_len(text[start:end]), "type": kind}
        for start, end, kind in found
    ]


def message(
    update_id: int | None,
    chat: Mapping[str, Any],
    from_user: Mapping[str, Any],
    text: str | None = None,
    *,
    date: int | datetime | None = None,
    message_id: int | None = None,
    reply_to: Mapping[str, Any] | None = None,
    entities: Sequence[Mapping[str, Any]] | None = None,
    caption: str | None = None,
    photo: bool = False,
    video: bool = False,
    document: str | None = None,
    forward_origin: Mapping[str, Any] | None = None,
) -> JSON:
    """An update carrying a new ``message``.

    ``update_id`` None leaves it out, so FakeTelegramAPI numbers the update. ``message_id``
    defaults to :func:`next_message_id`. ``reply_to`` is the replied-to Message dict, e.g.
    ``earlier["message"]``.
    ``entities`` default to those computed from the text (or caption) by :func:`entities_for`.
    ``photo``/``video``/``document`` (a file name) attach media; their text goes in ``caption``.
    """
    msg = _message_object(
        update_id,
        chat,
        from_user,
        text,
        date=date,
        message_id=message_id,
        reply_to=reply_to,
        entities=entities,
        caption=caption,
        photo=photo,
        video=video,
        document=document,
        forward_origin=forward_origin,
    )
    return _update(update_id, "message", msg)


def command(
    update_id: int | None,
    chat: Mapping[str, Any],
    from_user: Mapping[str, Any],
    text: str,
    *,
    date: int | datetime | None = None,
    message_id: int | None = None,
) -> JSON:
    """A message holding a command, e.g. ``"/register ABC123"`` or ``"/help@schoolgate_bot"``."""
    if not text.startswith("/"):
        raise ValueError(f"a command starts with '/': {text!r}")
    return message(update_id, chat, from_user, text, date=date, message_id=message_id)


def photo_message(
    update_id: int | None,
    chat: Mapping[str, Any],
    from_user: Mapping[str, Any],
    caption: str | None = None,
    *,
    date: int | datetime | None = None,
    message_id: int | None = None,
    reply_to: Mapping[str, Any] | None = None,
    forward_origin: Mapping[str, Any] | None = None,
) -> JSON:
    """A photo (as the array of sizes Telegram sends) with an optional caption."""
    return message(
        update_id,
        chat,
        from_user,
        caption=caption,
        photo=True,
        date=date,
        message_id=message_id,
        reply_to=reply_to,
        forward_origin=forward_origin,
    )


def edited_message(
    update_id: int | None,
    chat: Mapping[str, Any],
    from_user: Mapping[str, Any],
    text: str,
    *,
    message_id: int,
    date: int | datetime | None = None,
    edit_date: int | datetime | None = None,
    entities: Sequence[Mapping[str, Any]] | None = None,
) -> JSON:
    """An ``edited_message`` update: the whole message as it now reads, with its ``edit_date``."""
    msg = _message_object(
        update_id, chat, from_user, text, date=date, message_id=message_id, entities=entities
    )
    msg["edit_date"] = _timestamp(edit_date) if edit_date is not None else msg["date"] + 60
    return _update(update_id, "edited_message", msg)


def bot_message(
    chat: Mapping[str, Any],
    text: str,
    *,
    message_id: int,
    reply_markup: Mapping[str, Any] | None = None,
    date: int | datetime | None = None,
    bot: Mapping[str, Any] | None = None,
) -> JSON:
    """A Message the bot sent (for :func:`callback_query`), when the fake did not send it."""
    return _drop_none(
        {
            "message_id": message_id,
            "from": dict(bot or bot_user()),
            "chat": dict(chat),
            "date": _timestamp(date),
            "text": text,
            "entities": entities_for(text) or None,
            "reply_markup": dict(reply_markup) if reply_markup else None,
        }
    )


def callback_query(
    update_id: int | None,
    from_user: Mapping[str, Any],
    message: Mapping[str, Any],
    data: str,
    *,
    id: str | None = None,
    chat_instance: str | None = None,
) -> JSON:
    """A press on an inline keyboard button under ``message`` (the bot's Message dict)."""
    # Telegram's ids are opaque numeric strings; derive them so a test can predict them.
    query_id = id or str(4_000_000_000_000_000_000 + next_message_id())
    instance = chat_instance or str(-6_000_000_000_000_000_000 - abs(message["chat"]["id"]))
    return _update(
        update_id,
        "callback_query",
        {
            "id": query_id,
            "from": dict(from_user),
            "message": dict(message),
            "chat_instance": instance,
            "data": data,
        },
    )


def chat_member_object(
    of: Mapping[str, Any],
    status: str,
    *,
    can_delete_messages: bool = False,
    can_restrict_members: bool = False,
    can_pin_messages: bool = False,
    can_invite_users: bool = True,
    custom_title: str | None = None,
    permissions: Mapping[str, bool] | None = None,
    until_date: int | datetime = 0,
) -> JSON:
    """A ChatMember of the given status: creator, administrator, member, restricted, left, kicked.

    Rights apply to administrators; ``permissions`` (ChatPermissions fields, default none) to
    restricted members. ``until_date`` 0 means forever, as Telegram sends it.
    """
    base: JSON = {"status": status, "user": dict(of)}
    if status == "creator":
        return base | _drop_none({"is_anonymous": False, "custom_title": custom_title})
    if status == "administrator":
        return base | _drop_none(
            {
                "can_be_edited": False,
                "is_anonymous": False,
                "can_manage_chat": True,
                "can_delete_messages": can_delete_messages,
                "can_manage_video_chats": False,
                "can_restrict_members": can_restrict_members,
                "can_promote_members": False,
                "can_change_info": False,
                "can_invite_users": can_invite_users,
                "can_post_stories": False,
                "can_edit_stories": False,
                "can_delete_stories": False,
                "can_pin_messages": can_pin_messages,
                "custom_title": custom_title,
            }
        )
    if status == "restricted":
        allowed = dict.fromkeys(CHAT_PERMISSIONS, False) | dict(permissions or {})
        return base | {"is_member": True} | allowed | {"until_date": _timestamp(until_date)}
    if status == "kicked":
        return base | {"until_date": _timestamp(until_date)}
    if status in ("member", "left"):
        return base
    raise ValueError(f"unknown chat member status {status!r}")


# The fields of ChatPermissions (Bot API 10.0), all of which ChatMemberRestricted carries.
CHAT_PERMISSIONS = (
    "can_send_messages",
    "can_send_audios",
    "can_send_documents",
    "can_send_photos",
    "can_send_videos",
    "can_send_video_notes",
    "can_send_voice_notes",
    "can_send_polls",
    "can_send_other_messages",
    "can_add_web_page_previews",
    "can_react_to_messages",
    "can_edit_tag",
    "can_change_info",
    "can_invite_users",
    "can_pin_messages",
    "can_manage_topics",
)


def my_chat_member(
    update_id: int | None,
    chat: Mapping[str, Any],
    from_user: Mapping[str, Any],
    old_status: str = "left",
    new_status: str = "member",
    *,
    bot: Mapping[str, Any] | None = None,
    can_delete_messages: bool = False,
    can_restrict_members: bool = False,
    can_pin_messages: bool = False,
    date: int | datetime | None = None,
) -> JSON:
    """The bot's own membership changed: added (left→member), promoted (member→administrator,
    with the given rights), removed (→left/kicked), or blocked in a private chat (→kicked)."""
    me = bot or bot_user()
    rights: JSON = {
        "can_delete_messages": can_delete_messages,
        "can_restrict_members": can_restrict_members,
        "can_pin_messages": can_pin_messages,
    }
    # The old side of a promotion or demotion keeps no rights: tests state the new ones.
    return _update(
        update_id,
        "my_chat_member",
        {
            "chat": dict(chat),
            "from": dict(from_user),
            "date": _timestamp(date),
            "old_chat_member": chat_member_object(me, old_status),
            "new_chat_member": chat_member_object(me, new_status, **rights),
        },
    )


def chat_member(
    update_id: int | None,
    chat: Mapping[str, Any],
    from_user: Mapping[str, Any],
    member: Mapping[str, Any] | None = None,
    old_status: str = "left",
    new_status: str = "member",
    *,
    date: int | datetime | None = None,
    invite_link: Mapping[str, Any] | None = None,
    via_join_request: bool | None = None,
) -> JSON:
    """Someone else's membership changed, e.g. ``member`` joined (left→member) or left.

    ``member`` defaults to ``from_user`` (a user joining or leaving by themselves); an admin
    adding or removing someone is ``from_user`` with the other person as ``member``. Telegram
    only sends these when ``chat_member`` is in allowed_updates and the bot is an administrator.
    """
    who = member or from_user
    return _update(
        update_id,
        "chat_member",
        _drop_none(
            {
                "chat": dict(chat),
                "from": dict(from_user),
                "date": _timestamp(date),
                "old_chat_member": chat_member_object(who, old_status),
                "new_chat_member": chat_member_object(who, new_status),
                "invite_link": dict(invite_link) if invite_link else None,
                "via_join_request": via_join_request,
            }
        ),
    )


def origin_user(sender: Mapping[str, Any], date: int | datetime | None = None) -> JSON:
    """``forward_origin`` of a message forwarded from a user who allows linking to them."""
    return {"type": "user", "date": _timestamp(date), "sender_user": dict(sender)}


def origin_hidden_user(name: str, date: int | datetime | None = None) -> JSON:
    """``forward_origin`` of a forward from a user who hides their account."""
    return {"type": "hidden_user", "date": _timestamp(date), "sender_user_name": name}


def origin_channel(
    chat: Mapping[str, Any], message_id: int, date: int | datetime | None = None
) -> JSON:
    """``forward_origin`` of a forwarded channel post."""
    return {
        "type": "channel",
        "date": _timestamp(date),
        "chat": dict(chat),
        "message_id": message_id,
    }


def update_type(update: Mapping[str, Any]) -> str:
    """The kind of an update: the one key beside ``update_id`` (e.g. ``"message"``)."""
    kinds = [key for key in update if key != "update_id"]
    if len(kinds) != 1:
        raise ValueError(f"an update has exactly one payload key, got {kinds}")
    return kinds[0]


def _message_object(
    update_id: int | None,
    chat: Mapping[str, Any],
    from_user: Mapping[str, Any],
    text: str | None,
    *,
    date: int | datetime | None = None,
    message_id: int | None = None,
    reply_to: Mapping[str, Any] | None = None,
    entities: Sequence[Mapping[str, Any]] | None = None,
    caption: str | None = None,
    photo: bool = False,
    video: bool = False,
    document: str | None = None,
    forward_origin: Mapping[str, Any] | None = None,
) -> JSON:
    has_media = photo or video or document is not None
    if has_media and text is not None:
        raise ValueError("a message with media has a caption, not text")
    if caption is not None and not has_media:
        raise ValueError("a caption needs photo, video or document")
    if text is None and not has_media:
        raise ValueError("a message needs text or media")
    if message_id is None:
        message_id = next_message_id()
    msg: JSON = {
        "message_id": message_id,
        "from": dict(from_user),
        "chat": dict(chat),
        "date": _timestamp(date),
    }
    if forward_origin is not None:
        msg["forward_origin"] = dict(forward_origin)
    if reply_to is not None:
        # Telegram never nests replies: the quoted message loses its own reply_to_message.
        msg["reply_to_message"] = {k: v for k, v in reply_to.items() if k != "reply_to_message"}
    if photo:
        msg["photo"] = _photo_sizes(message_id)
    if video:
        msg["video"] = _file(message_id, "BAACAgQAAxkBAA", 2_345_678) | {
            "width": 1280,
            "height": 720,
            "duration": 12,
            "mime_type": "video/mp4",
        }
    if document is not None:
        mime_type = mimetypes.guess_type(document)[0] or "application/octet-stream"
        msg["document"] = {"file_name": document, "mime_type": mime_type} | _file(
            message_id, "BQACAgQAAxkBAA", 48_213
        )
    body, body_key, entities_key = (
        (caption, "caption", "caption_entities") if has_media else (text, "text", "entities")
    )
    if body is not None:
        msg[body_key] = body
        found = [dict(e) for e in entities] if entities is not None else entities_for(body)
        if found:
            msg[entities_key] = found
    return msg


def _photo_sizes(message_id: int) -> list[JSON]:
    # Telegram sends every size it made, smallest first; each has its own file id.
    sizes = ((90, 68, 1_347), (320, 240, 15_232), (800, 600, 61_822), (1280, 960, 123_456))
    return [
        _file(message_id * 10 + n, "AgACAgQAAxkBAA", size) | {"width": width, "height": height}
        for n, (width, height, size) in enumerate(sizes)
    ]


def _file(seed: int, prefix: str, size: int) -> JSON:
    return {
        "file_id": f"{prefix}{seed:012d}",
        "file_unique_id": f"AQAD{seed:08d}",
        "file_size": size,
    }


def _update(update_id: int | None, kind: str, payload: JSON) -> JSON:
    return ({} if update_id is None else {"update_id": update_id}) | {kind: payload}


def _timestamp(value: int | datetime | None) -> int:
    if value is None:
        return int(time.time())
    if isinstance(value, datetime):
        return int(value.timestamp())
    return value


def _drop_none(fields: JSON) -> JSON:
    return {key: value for key, value in fields.items() if value is not None}


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _blocks(neighbour: str, marker: str) -> bool:
    """Whether a character next to a mention or command stops Telegram from marking it."""
    return _is_word_char(neighbour) or (marker == "/" and neighbour in "/<>")


def _word_end(text: str, start: int) -> int:
    end = start
    while end < len(text) and text[end].isascii() and _is_word_char(text[end]):
        end += 1
    return end


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
