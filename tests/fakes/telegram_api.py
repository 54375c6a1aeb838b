"""A fake Telegram Bot API server on loopback, for tests that drive the real python-telegram-bot.

    async with FakeTelegramAPI(token="123:ABC") as api:
        api.queue_update(tu.message(None, tu.group(), tu.user(1001), "hello"))
        async with telegram.Bot("123:ABC", base_url=api.base_url) as bot:
            ...  # or an Application built with .base_url(api.base_url)
        [call] = await api.wait_for_call("sendMessage")

It answers like Telegram, including the rules bots trip over, so tests catch the same mistakes:
- A chat must be known before the bot can act in it: chats come from queued updates (or
  ``add_chat``/``observe_update``); an unknown chat is 400 "chat not found", and a user seen only
  in groups cannot be messaged privately (403 "bot can't initiate conversation with a user").
- The bot is a plain member of a known group until ``set_bot_status`` or a queued
  ``my_chat_member`` update says otherwise. Deleting others' messages needs
  ``can_delete_messages``; restricting members and setting permissions need
  ``can_restrict_members``. After leaving or being kicked, sending is 403.
- Messages to reply to, edit or delete must be known (queued or sent by the bot).
- ``chat_member`` updates are only delivered when asked for in allowed_updates; getUpdates
  is 409 while a webhook is set; webhooks need an https URL on ports 80, 88, 443 or 8443.
- ``parse_mode`` is recorded but not rendered: the text comes back as sent.
"""

from __future__ import annotations

import asyncio
import email.parser
import email.policy
import json
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes import telegram_updates as tu
from tests.fakes.loopback import LoopbackServer

JSON = dict[str, Any]
Handler = Callable[[JSON], Awaitable[Any]]

# Form-encoded values are JSON unless they are strings (PTB sends strings raw), so these
# parameters stay strings even when they look like numbers, e.g. text "42" or a query id.
_STRING_PARAMS = frozenset(
    {
        "text",
        "caption",
        "callback_query_id",
        "inline_message_id",
        "parse_mode",
        "url",
        "secret_token",
        "ip_address",
        "title",
        "description",
        "custom_title",
        "language_code",
        "action",
        "business_connection_id",
    }
)

_MESSAGE_KINDS = ("message", "edited_message", "channel_post", "edited_channel_post")
_ADMIN_STATUSES = ("creator", "administrator")
_WEBHOOK_PORTS = (80, 88, 443, 8443)
_MAX_TEXT = 4096


@dataclass(frozen=True)
class Call:
    """One request the bot made: the method as Telegram spells it, and its decoded parameters."""

    method: str
    params: JSON
    at: float = field(default_factory=time.monotonic, compare=False)
    """When it arrived, by ``time.monotonic()`` (for benchmarks)."""


@dataclass(frozen=True)
class UploadedFile:
    """A file part of a multipart request."""

    filename: str
    content_type: str
    data: bytes


@dataclass
class SentMessage:
    """A message the bot sent: the Message as it now stands (edits applied), and if deleted."""

    message: JSON
    deleted: bool = False

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])

    @property
    def text(self) -> str | None:
        text = self.message.get("text")
        return None if text is None else str(text)

    @property
    def reply_markup(self) -> JSON | None:
        markup = self.message.get("reply_markup")
        return None if markup is None else dict(markup)


class TelegramAPIError(Exception):
    """A failure answered the way Telegram does: HTTP status = error_code, JSON body."""

    def __init__(
        self,
        error_code: int,
        description: str,
        *,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(f"{error_code} {description}")
        self.error_code = error_code
        self.description = description
        self.parameters = {
            key: value
            for key, value in (
                ("retry_after", retry_after),
                ("migrate_to_chat_id", migrate_to_chat_id),
            )
            if value is not None
        }

    def response(self) -> JSONResponse:
        body: JSON = {"ok": False, "error_code": self.error_code, "description": self.description}
        if self.parameters:
            body["parameters"] = self.parameters
        return JSONResponse(body, status_code=self.error_code)


def _bad_request(description: str) -> TelegramAPIError:
    return TelegramAPIError(400, f"Bad Request: {description}")


@dataclass
class _Described:
    """A successful result that Telegram accompanies with a description (webhook methods)."""

    result: Any
    description: str


@dataclass
class _ChatState:
    chat: JSON
    members: dict[int, JSON] = field(default_factory=dict)
    messages: dict[int, JSON] = field(default_factory=dict)
    sent: list[SentMessage] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    permissions: JSON | None = None
    last_message_id: int = 0

    @property
    def type(self) -> str:
        return str(self.chat["type"])


class FakeTelegramAPI:
    """The Bot API for one bot, served by uvicorn on 127.0.0.1 while used as a context manager."""

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        first_name: str = "Schoolgate",
        username: str = tu.BOT_USERNAME,
        privacy_mode: bool = True,
        can_join_groups: bool = True,
    ) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError(f"a bot token looks like '123:ABC', not {token!r}")
        self.token = token
        self.bot_user: JSON = tu.bot_user(int(bot_id), first_name, username)
        self._flags = (privacy_mode, can_join_groups)
        self.port = 0
        self._call_arrived = asyncio.Event()
        self._update_arrived = asyncio.Event()
        self._closing = False
        self._polls = 0
        self.reset()
        self._loopback: LoopbackServer | None = None
        self._methods: dict[str, tuple[str, Handler]] = {
            name.lower(): (name, handler)
            for name, handler in {
                "getMe": self._get_me,
                "getUpdates": self._get_updates,
                "sendMessage": self._send_message,
                "editMessageText": self._edit_message_text,
                "editMessageReplyMarkup": self._edit_message_reply_markup,
                "deleteMessage": self._delete_message,
                "deleteMessages": self._delete_messages,
                "answerCallbackQuery": self._answer_callback_query,
                "sendChatAction": self._send_chat_action,
                "setChatPermissions": self._set_chat_permissions,
                "restrictChatMember": self._restrict_chat_member,
                "leaveChat": self._leave_chat,
                "getChat": self._get_chat,
                "getChatMember": self._get_chat_member,
                "getChatAdministrators": self._get_chat_administrators,
                "getChatMemberCount": self._get_chat_member_count,
                "setWebhook": self._set_webhook,
                "deleteWebhook": self._delete_webhook,
                "getWebhookInfo": self._get_webhook_info,
                "setMyCommands": self._set_my_commands,
                "getMyCommands": self._get_my_commands,
                "deleteMyCommands": self._delete_my_commands,
            }.items()
        }

    def reset(self) -> None:
        """Forget every call, update, chat and setting, as if just started (the port stays).

        Lets one server serve a whole test module: starting and stopping uvicorn costs ~0.2 s.
        """
        self.privacy_mode, self.can_join_groups = self._flags
        self._calls: list[Call] = []
        self._failures: dict[str, list[TelegramAPIError]] = defaultdict(list)
        self._pending: list[JSON] = []
        self._last_update_id = 0
        self._allowed_updates: frozenset[str] | None = None
        self._chats: dict[int, _ChatState] = {}
        self._users: dict[int, JSON] = {}
        self._webhook: JSON = {}
        self._commands: dict[tuple[str, str], list[JSON]] = {}

    # -- Lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> FakeTelegramAPI:
        self._closing = False
        app = Starlette(
            routes=[
                Route("/bot{token}/{method}", self._endpoint, methods=["GET", "POST"]),
                Route("/{path:path}", _not_found, methods=["GET", "POST"]),
            ]
        )
        self._loopback = LoopbackServer(app)
        self.port = await self._loopback.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Release long polls at once, or uvicorn would wait for them to time out.
        self._closing = True
        self._wake_pollers()
        if self._loopback is not None:
            await self._loopback.stop()

    @property
    def base_url(self) -> str:
        """For ``telegram.Bot(token, base_url=...)``: PTB appends the token and the method."""
        return f"http://127.0.0.1:{self.port}/bot"

    @property
    def base_file_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/file/bot"

    # -- What the bot did --------------------------------------------------------------------

    @property
    def calls(self) -> list[Call]:
        """Every request with the right token, in order, including failed ones."""
        return list(self._calls)

    def calls_to(self, method: str) -> list[Call]:
        return [call for call in self._calls if call.method.lower() == method.lower()]

    async def wait_for_call(self, method: str, count: int = 1, timeout: float = 5) -> list[Call]:
        """Wait until ``count`` calls to ``method`` have arrived; return all calls to it."""
        try:
            async with asyncio.timeout(timeout):
                while len(self.calls_to(method)) < count:
                    await self._call_arrived.wait()
        except TimeoutError:
            seen = [call.method for call in self._calls]
            raise AssertionError(
                f"expected {count} call(s) to {method} within {timeout}s, "
                f"got {len(self.calls_to(method))}; calls seen: {seen}"
            ) from None
        return self.calls_to(method)

    def sent_messages(self, chat_id: int) -> list[SentMessage]:
        """The bot's messages in a chat, oldest first, deleted ones included and marked."""
        state = self._chats.get(chat_id)
        return list(state.sent) if state else []

    def deleted_message_ids(self, chat_id: int) -> list[int]:
        """Ids of every message the bot deleted in a chat, its own and others', in order."""
        state = self._chats.get(chat_id)
        return list(state.deleted) if state else []

    def webhook(self) -> JSON:
        """The webhook as set by setWebhook (url, allowed_updates, secret_token...), or {}."""
        return dict(self._webhook)

    # -- What the test arranges --------------------------------------------------------------

    def queue_update(self, update: Mapping[str, Any]) -> JSON:
        """Queue an update for getUpdates, numbering it if it has no update_id; returns it."""
        if "update_id" not in update:
            update = {"update_id": self._last_update_id + 1} | dict(update)
        elif update["update_id"] <= self._last_update_id:
            raise ValueError(
                f"update_id {update['update_id']} is not above the last one, "
                f"{self._last_update_id}: Telegram's update ids increase"
            )
        queued = dict(update)
        self._last_update_id = queued["update_id"]
        self.observe_update(queued)
        self._pending.append(queued)
        self._wake_pollers()
        return queued

    def observe_update(self, update: Mapping[str, Any]) -> None:
        """Learn chats, users, messages and memberships from an update without queueing it.

        For tests that hand updates to the bot directly (``Application.process_update``) and
        then expect the bot to reply to, edit or delete those messages.
        """
        kind = tu.update_type(update)
        payload = update[kind]
        if kind in _MESSAGE_KINDS:
            self._observe_message(payload)
        elif kind == "callback_query":
            self._users[payload["from"]["id"]] = payload["from"]
            # An inaccessible message (date 0) is only a stub: nothing to learn from it.
            if payload.get("message", {}).get("date"):
                self._observe_message(payload["message"])
        elif kind in ("my_chat_member", "chat_member"):
            state = self._chat_state(payload["chat"])
            new = payload["new_chat_member"]
            self._users[payload["from"]["id"]] = payload["from"]
            self._users[new["user"]["id"]] = new["user"]
            state.members[new["user"]["id"]] = new

    def add_chat(self, chat: Mapping[str, Any]) -> None:
        """Make a chat known, e.g. ``private_chat(parent)`` after the parent pressed Start."""
        self._chat_state(chat)

    def set_bot_status(
        self,
        chat: int | Mapping[str, Any],
        status: str,
        *,
        can_delete_messages: bool = False,
        can_restrict_members: bool = False,
        can_pin_messages: bool = False,
    ) -> None:
        """The bot's membership in a chat: "administrator" (with rights), "member", "left"...

        An unknown chat id is added as a supergroup (or basic group if not -100...).
        """
        self.set_member_status(
            chat,
            self.bot_user,
            status,
            can_delete_messages=can_delete_messages,
            can_restrict_members=can_restrict_members,
            can_pin_messages=can_pin_messages,
        )

    def set_member_status(
        self,
        chat: int | Mapping[str, Any],
        member: Mapping[str, Any],
        status: str,
        **rights: Any,
    ) -> None:
        """Anyone's membership, e.g. a "creator" or "administrator" for getChatAdministrators."""
        if isinstance(chat, Mapping):
            state = self._chat_state(chat)
        else:
            state = self._chats.get(chat) or self._chat_state(
                tu.group(chat, "Group", "supergroup" if str(chat).startswith("-100") else "group")
            )
        self._users[member["id"]] = dict(member)
        state.members[member["id"]] = tu.chat_member_object(member, status, **rights)

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        description: str | None = None,
        retry_after: int | None = None,
        *,
        migrate_to_chat_id: int | None = None,
        times: int = 1,
    ) -> None:
        """Make the next ``times`` calls to ``method`` fail as Telegram does.

        429 carries ``parameters.retry_after`` (default 1 s) and its usual description; other
        codes default to the bare reason, e.g. pass 403 with "Forbidden: bot was kicked from
        the group chat" or 400 with "Bad Request: message can't be deleted".
        """
        if error_code == 429 and retry_after is None:
            retry_after = 1
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if error_code == 429
                else HTTPStatus(error_code).phrase
            )
        error = TelegramAPIError(
            error_code, description, retry_after=retry_after, migrate_to_chat_id=migrate_to_chat_id
        )
        self._failures[method.lower()].extend([error] * times)

    # -- HTTP --------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        if request.path_params["token"] != self.token:
            return TelegramAPIError(401, "Unauthorized").response()
        name = request.path_params["method"]
        try:
            params = await _read_params(request)
        except ValueError as exc:
            return _bad_request(f"can't parse request: {exc}").response()
        method, handler = self._methods.get(name.lower(), (name, None))
        self._calls.append(Call(method, params))
        self._call_arrived.set()
        self._call_arrived = asyncio.Event()
        try:
            if self._failures[method.lower()]:
                raise self._failures[method.lower()].pop(0)
            if handler is None:
                raise TelegramAPIError(404, "Not Found: method not found")
            result = await handler(params)
        except TelegramAPIError as error:
            return error.response()
        except (ValueError, TypeError, AttributeError) as exc:
            # A parameter of the wrong shape, e.g. a user_id that is not a number.
            return _bad_request(f"invalid parameters: {exc}").response()
        if isinstance(result, _Described):
            return JSONResponse(
                {"ok": True, "result": result.result, "description": result.description}
            )
        return JSONResponse({"ok": True, "result": result})

    # -- Methods -----------------------------------------------------------------------------

    async def _get_me(self, params: JSON) -> JSON:
        return self.bot_user | {
            "can_join_groups": self.can_join_groups,
            "can_read_all_group_messages": not self.privacy_mode,
            "supports_inline_queries": False,
            "can_connect_to_business": False,
            "has_main_web_app": False,
            "has_topics_enabled": False,
            "allows_users_to_create_topics": False,
        }

    async def _get_updates(self, params: JSON) -> list[JSON]:
        if self._webhook:
            raise TelegramAPIError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        if "allowed_updates" in params:
            # An empty list means the default again; leaving it out keeps the last setting.
            self._allowed_updates = frozenset(params["allowed_updates"]) or None
        offset = int(params.get("offset") or 0)
        # A positive offset confirms every update below it; a negative one keeps the last -offset.
        if offset > 0:
            self._pending = [u for u in self._pending if u["update_id"] >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]
        limit = min(max(int(params.get("limit") or 100), 1), 100)
        # A newer getUpdates ends the one still waiting, as when two bot instances poll.
        self._polls += 1
        poll = self._polls
        self._wake_pollers()
        try:
            async with asyncio.timeout(max(float(params.get("timeout") or 0), 0)):
                while not self._deliverable() and not self._closing and poll == self._polls:
                    await self._update_arrived.wait()
        except TimeoutError:
            pass
        if poll != self._polls and not self._closing:
            raise TelegramAPIError(
                409,
                "Conflict: terminated by other getUpdates request; "
                "make sure that only one bot instance is running",
            )
        return self._deliverable()[:limit]

    async def _send_message(self, params: JSON) -> JSON:
        state = self._chat_of(params)
        self._check_can_send(state)
        text = _required(params, "text", "message text is empty")
        if len(text) > _MAX_TEXT:
            raise _bad_request("message is too long")
        quoted = self._quoted(state, params)
        msg: JSON = {
            "message_id": tu.next_message_id(after=state.last_message_id),
            "from": self.bot_user,
            "chat": state.chat,
            "date": int(time.time()),
            "text": text,
        }
        self._set_entities(msg, params)
        markup = _inline_markup(params.get("reply_markup"))
        if markup:
            msg["reply_markup"] = markup
        if quoted is not None:
            msg["reply_to_message"] = quoted
        state.last_message_id = msg["message_id"]
        state.messages[msg["message_id"]] = msg
        state.sent.append(SentMessage(msg))
        return msg

    async def _edit_message_text(self, params: JSON) -> JSON | bool:
        if "inline_message_id" in params:
            return True  # Inline messages are not kept; Telegram answers True for them.
        state = self._chat_of(params)
        msg = self._editable(state, params)
        text = _required(params, "text", "message text is empty")
        markup = _inline_markup(params.get("reply_markup"))
        if text == msg.get("text") and markup == msg.get("reply_markup"):
            raise _not_modified()
        msg["text"] = text
        msg.pop("entities", None)
        self._set_entities(msg, params)
        # Editing the text without a reply_markup removes the keyboard, as on Telegram.
        _set_or_drop(msg, "reply_markup", markup)
        msg["edit_date"] = int(time.time())
        return msg

    async def _edit_message_reply_markup(self, params: JSON) -> JSON | bool:
        if "inline_message_id" in params:
            return True
        state = self._chat_of(params)
        msg = self._editable(state, params)
        markup = _inline_markup(params.get("reply_markup"))
        if markup == msg.get("reply_markup"):
            raise _not_modified()
        _set_or_drop(msg, "reply_markup", markup)
        msg["edit_date"] = int(time.time())
        return msg

    async def _delete_message(self, params: JSON) -> bool:
        state = self._chat_of(params)
        message_id = int(_required(params, "message_id", "message identifier is not specified"))
        if message_id not in state.messages:
            raise _bad_request("message to delete not found")
        self._delete(state, [message_id])
        return True

    async def _delete_messages(self, params: JSON) -> bool:
        state = self._chat_of(params)
        ids = _required(params, "message_ids", "message identifiers are not specified")
        # Telegram skips ids it cannot find rather than failing the whole call.
        self._delete(state, [int(i) for i in ids if int(i) in state.messages])
        return True

    async def _answer_callback_query(self, params: JSON) -> bool:
        _required(params, "callback_query_id", "query is too old and response timeout expired")
        return True

    async def _send_chat_action(self, params: JSON) -> bool:
        state = self._chat_of(params)
        _required(params, "action", "wrong parameter action in request")
        self._check_can_send(state)
        return True

    async def _set_chat_permissions(self, params: JSON) -> bool:
        state = self._chat_of(params)
        if state.type not in ("group", "supergroup"):
            raise _bad_request("method is available for supergroup and group chats only")
        permissions = _required(params, "permissions", "permissions are not specified")
        self._require_right(
            state, "can_restrict_members", "not enough rights to change chat permissions"
        )
        state.permissions = dict(permissions)
        return True

    async def _restrict_chat_member(self, params: JSON) -> bool:
        state = self._chat_of(params)
        if state.type != "supergroup":
            raise _bad_request("method is available only for supergroups")
        user_id = int(_required(params, "user_id", "user not found"))
        permissions = _required(params, "permissions", "permissions are not specified")
        self._require_right(
            state, "can_restrict_members", "not enough rights to restrict/unrestrict chat member"
        )
        member = self._member(state, user_id)
        if member["status"] in _ADMIN_STATUSES:
            raise _bad_request("user is an administrator of the chat")
        if all(permissions.get(name) for name in tu.CHAT_PERMISSIONS):
            state.members[user_id] = tu.chat_member_object(member["user"], "member")
        else:
            state.members[user_id] = tu.chat_member_object(
                member["user"],
                "restricted",
                permissions=permissions,
                until_date=int(params.get("until_date") or 0),
            )
        return True

    async def _leave_chat(self, params: JSON) -> bool:
        state = self._chat_of(params)
        if state.type == "private":
            raise _bad_request("chat member status can't be changed in private chats")
        state.members[self.bot_user["id"]] = tu.chat_member_object(self.bot_user, "left")
        return True

    async def _get_chat(self, params: JSON) -> JSON:
        state = self._chat_of(params)
        # ChatFullInfo: the Chat plus fields Telegram always fills in.
        info = state.chat | {
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": {
                "unlimited_gifts": False,
                "limited_gifts": False,
                "unique_gifts": False,
                "premium_subscription": False,
                "gifts_from_channels": False,
            },
        }
        if state.type in ("group", "supergroup"):
            info["permissions"] = state.permissions or _default_permissions()
        return info

    async def _get_chat_member(self, params: JSON) -> JSON:
        state = self._chat_of(params)
        return self._member(state, int(_required(params, "user_id", "user not found")))

    async def _get_chat_administrators(self, params: JSON) -> list[JSON]:
        state = self._chat_of(params)
        if state.type == "private":
            raise _bad_request("there are no administrators in the private chat")
        return [m for m in self._members(state) if m["status"] in _ADMIN_STATUSES]

    async def _get_chat_member_count(self, params: JSON) -> int:
        state = self._chat_of(params)
        if state.type == "private":
            return 2
        present = ("creator", "administrator", "member")
        return sum(1 for m in self._members(state) if m["status"] in present or m.get("is_member"))

    async def _set_webhook(self, params: JSON) -> _Described:
        url = str(params.get("url") or "")
        if not url:
            return await self._delete_webhook(params)
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise _bad_request("bad webhook: An HTTPS URL must be provided for webhook")
        if (parts.port or 443) not in _WEBHOOK_PORTS:
            raise _bad_request(
                "bad webhook: Webhook can be set up only on ports 80, 88, 443 or 8443"
            )
        if "allowed_updates" in params:
            self._allowed_updates = frozenset(params["allowed_updates"]) or None
        if params.get("drop_pending_updates"):
            self._pending.clear()
        already = self._webhook.get("url") == url
        self._webhook = {key: params[key] for key in params if key != "certificate"}
        return _Described(True, "Webhook is already set" if already else "Webhook was set")

    async def _delete_webhook(self, params: JSON) -> _Described:
        if params.get("drop_pending_updates"):
            self._pending.clear()
        had_webhook = bool(self._webhook)
        self._webhook = {}
        return _Described(
            True, "Webhook was deleted" if had_webhook else "Webhook is already deleted"
        )

    async def _get_webhook_info(self, params: JSON) -> JSON:
        info: JSON = {
            "url": self._webhook.get("url", ""),
            "has_custom_certificate": "certificate" in self._webhook,
            "pending_update_count": len(self._pending),
        }
        if self._webhook:
            info["max_connections"] = int(self._webhook.get("max_connections") or 40)
            info["ip_address"] = self._webhook.get("ip_address", "203.0.113.10")
        if self._allowed_updates is not None:
            info["allowed_updates"] = sorted(self._allowed_updates)
        return info

    async def _set_my_commands(self, params: JSON) -> bool:
        commands = _required(params, "commands", "commands are not specified")
        for command in commands:
            name = str(command.get("command", ""))
            if not (
                1 <= len(name) <= 32 and all(c.islower() or c.isdigit() or c == "_" for c in name)
            ):
                raise _bad_request("BOT_COMMAND_INVALID")
            if not 1 <= len(str(command.get("description", ""))) <= 256:
                raise _bad_request("command description is empty")
        self._commands[_commands_key(params)] = [dict(c) for c in commands]
        return True

    async def _get_my_commands(self, params: JSON) -> list[JSON]:
        return self._commands.get(_commands_key(params), [])

    async def _delete_my_commands(self, params: JSON) -> bool:
        self._commands.pop(_commands_key(params), None)
        return True

    # -- State -------------------------------------------------------------------------------

    def _chat_state(self, chat: Mapping[str, Any]) -> _ChatState:
        state = self._chats.get(chat["id"])
        if state is None:
            state = self._chats[chat["id"]] = _ChatState(dict(chat))
        else:
            state.chat = dict(chat)  # A later update carries the current title.
        return state

    def _observe_message(self, msg: Mapping[str, Any]) -> None:
        state = self._chat_state(msg["chat"])
        state.messages[msg["message_id"]] = dict(msg)
        state.last_message_id = max(state.last_message_id, msg["message_id"])
        sender = msg.get("from")
        if sender is not None:
            self._users[sender["id"]] = sender
            if state.type != "channel" and sender["id"] not in state.members:
                state.members[sender["id"]] = tu.chat_member_object(sender, "member")
        quoted = msg.get("reply_to_message")
        if quoted is not None and quoted["message_id"] not in state.messages:
            self._observe_message(quoted)

    def _chat_of(self, params: JSON) -> _ChatState:
        chat_id = _required(params, "chat_id", "chat_id is empty")
        if isinstance(chat_id, str) and chat_id.startswith("@"):
            for state in self._chats.values():
                if f"@{state.chat.get('username')}".lower() == chat_id.lower():
                    return state
            raise _bad_request("chat not found")
        chat_id = int(chat_id)
        if chat_id in self._chats:
            return self._chats[chat_id]
        if chat_id in self._users:
            raise TelegramAPIError(403, "Forbidden: bot can't initiate conversation with a user")
        raise _bad_request("chat not found")

    def _member(self, state: _ChatState, user_id: int) -> JSON:
        if user_id in state.members:
            return state.members[user_id]
        if user_id == self.bot_user["id"]:
            return tu.chat_member_object(self.bot_user, "member")
        if user_id in self._users:
            return tu.chat_member_object(self._users[user_id], "left")
        raise _bad_request("user not found")

    def _members(self, state: _ChatState) -> list[JSON]:
        bot_id = self.bot_user["id"]
        return list(state.members.values()) + (
            [] if bot_id in state.members else [self._member(state, bot_id)]
        )

    def _check_can_send(self, state: _ChatState) -> None:
        member = self._member(state, self.bot_user["id"])
        status, kind = member["status"], state.type
        if kind == "private" and status == "kicked":
            raise TelegramAPIError(403, "Forbidden: bot was blocked by the user")
        if status == "kicked":
            raise TelegramAPIError(403, f"Forbidden: bot was kicked from the {kind} chat")
        if status == "left":
            raise TelegramAPIError(403, f"Forbidden: bot is not a member of the {kind} chat")
        if status == "restricted" and not member.get("can_send_messages"):
            raise _bad_request("not enough rights to send text messages to the chat")

    def _require_right(self, state: _ChatState, right: str, description: str) -> None:
        bot = self._member(state, self.bot_user["id"])
        if state.type == "private" or bot["status"] == "creator" or bot.get(right):
            return
        raise _bad_request(description)

    def _delete(self, state: _ChatState, message_ids: list[int]) -> None:
        bot_id = self.bot_user["id"]
        # Bots may always delete their own messages; others' need the admin right.
        if any(state.messages[i].get("from", {}).get("id") != bot_id for i in message_ids):
            self._require_right(state, "can_delete_messages", "message can't be deleted")
        for message_id in message_ids:
            del state.messages[message_id]
            state.deleted.append(message_id)
            for sent in state.sent:
                if sent.message_id == message_id:
                    sent.deleted = True

    def _editable(self, state: _ChatState, params: JSON) -> JSON:
        message_id = int(_required(params, "message_id", "message identifier is not specified"))
        msg = state.messages.get(message_id)
        if msg is None:
            raise _bad_request("message to edit not found")
        if msg.get("from", {}).get("id") != self.bot_user["id"]:
            raise _bad_request("message can't be edited")
        return msg

    def _quoted(self, state: _ChatState, params: JSON) -> JSON | None:
        reply = params.get("reply_parameters") or {}
        target = reply.get("message_id", params.get("reply_to_message_id"))
        if target is None:
            return None
        quoted = state.messages.get(int(target))
        if quoted is None:
            if reply.get("allow_sending_without_reply") or params.get(
                "allow_sending_without_reply"
            ):
                return None
            raise _bad_request("message to be replied not found")
        # Telegram never nests replies in reply_to_message.
        return {key: value for key, value in quoted.items() if key != "reply_to_message"}

    def _set_entities(self, msg: JSON, params: JSON) -> None:
        if "entities" in params:
            entities = list(params["entities"])
        elif "parse_mode" in params:
            entities = []  # Not rendered: the tags stay in the text and yield no entities.
        else:
            entities = tu.entities_for(msg["text"])
        if entities:
            msg["entities"] = entities

    def _deliverable(self) -> list[JSON]:
        allowed = self._allowed_updates
        # Telegram never creates updates of types the bot did not ask for: drop them for good.
        self._pending = [
            u
            for u in self._pending
            if (
                tu.update_type(u) in allowed
                if allowed is not None
                else tu.update_type(u) not in tu.OPT_IN_UPDATE_TYPES
            )
        ]
        return self._pending

    def _wake_pollers(self) -> None:
        self._update_arrived.set()
        self._update_arrived = asyncio.Event()


async def _not_found(request: Request) -> JSONResponse:
    return TelegramAPIError(404, "Not Found").response()


async def _read_params(request: Request) -> JSON:
    """Parameters from the query string and a JSON, form-encoded or multipart body."""
    params: JSON = {key: _decode(key, value) for key, value in request.query_params.items()}
    body = await request.body()
    content_type = request.headers.get("content-type", "")
    if not body:
        return params
    if content_type.startswith("application/json"):
        decoded = json.loads(body)
        if not isinstance(decoded, dict):
            raise ValueError("a JSON body must be an object")
        return params | decoded
    if content_type.startswith("application/x-www-form-urlencoded"):
        pairs = parse_qsl(body.decode(), keep_blank_values=True)
        return params | {key: _decode(key, value) for key, value in pairs}
    if content_type.startswith("multipart/form-data"):
        return params | _multipart(content_type, body)
    raise ValueError(f"unsupported content type {content_type!r}")


def _multipart(content_type: str, body: bytes) -> JSON:
    # The standard library's MIME parser reads form-data without python-multipart.
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    parsed = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    params: JSON = {}
    for part in parsed.iter_parts():
        name = str(part.get_param("name", header="content-disposition"))
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        filename = part.get_filename()
        if filename is None:
            params[name] = _decode(name, data.decode())
        else:
            params[name] = UploadedFile(filename, part.get_content_type(), data)
    return params


def _decode(name: str, value: str) -> Any:
    """A form value as Telegram reads it: JSON (numbers, objects, lists) unless a string field."""
    if name in _STRING_PARAMS:
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _required(params: JSON, name: str, description: str) -> Any:
    value = params.get(name)
    if value is None or value == "":
        raise _bad_request(description)
    return value


def _inline_markup(markup: Any) -> JSON | None:
    # Only inline keyboards belong to a message; reply keyboards are not echoed back.
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        return markup
    return None


def _set_or_drop(msg: JSON, key: str, value: Any) -> None:
    if value is None:
        msg.pop(key, None)
    else:
        msg[key] = value


def _not_modified() -> TelegramAPIError:
    return _bad_request(
        "message is not modified: specified new message content and reply markup are exactly "
        "the same as a current content and reply markup of the message"
    )


def _default_permissions() -> JSON:
    # A new group lets members do everything except change its info, pin and manage topics.
    locked = {"can_change_info", "can_pin_messages", "can_manage_topics"}
    return {name: name not in locked for name in tu.CHAT_PERMISSIONS}


def _commands_key(params: JSON) -> tuple[str, str]:
    scope = params.get("scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(params.get("language_code") or "")
