"""The fake Bot API, driven by the real python-telegram-bot, and the update builders."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from telegram import (
    Bot,
    BotCommand,
    CallbackQuery,
    ChatFullInfo,
    ChatMemberAdministrator,
    ChatMemberLeft,
    ChatMemberMember,
    ChatMemberRestricted,
    ChatMemberUpdated,
    ChatPermissions,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    MessageEntity,
    MessageOriginUser,
    ReplyParameters,
    TelegramObject,
    Update,
    User,
)
from telegram.error import (
    BadRequest,
    Conflict,
    EndPointNotFound,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
)
from telegram.ext import Application, CommandHandler, ContextTypes

from tests.fakes import telegram_updates as tu
from tests.fakes.telegram_api import FakeTelegramAPI, UploadedFile

pytestmark = pytest.mark.anyio

TOKEN = "123:ABC"
PAT = tu.user(1001, "Pat", "Jones", username="pat_jones", language_code="en")
SAM = tu.user(1002, "Sam")
YEAR3 = tu.group()
KEYBOARD = InlineKeyboardMarkup(
    [
        [InlineKeyboardButton("Agree", callback_data="agree:1")],
        [InlineKeyboardButton("No", callback_data="no")],
    ]
)


@pytest.fixture(scope="module")
async def server() -> AsyncIterator[FakeTelegramAPI]:
    async with FakeTelegramAPI(token=TOKEN) as fake:
        yield fake


@pytest.fixture
def api(server: FakeTelegramAPI) -> FakeTelegramAPI:
    server.reset()
    return server


@pytest.fixture(scope="module")
def offline_bot() -> Bot:
    """For Update.de_json: never initialised, so it opens no connection."""
    return Bot(TOKEN)


@pytest.fixture
async def bot(api: FakeTelegramAPI) -> AsyncIterator[Bot]:
    async with Bot(TOKEN, base_url=api.base_url, base_file_url=api.base_file_url) as real:
        yield real


def unknown_fields(obj: object, path: str = "") -> list[str]:
    """Fields PTB did not recognise (kept in api_kwargs), anywhere in a parsed object."""
    if isinstance(obj, list | tuple):
        return [f for i, item in enumerate(obj) for f in unknown_fields(item, f"{path}[{i}]")]
    if not isinstance(obj, TelegramObject) or isinstance(obj, Bot):
        return []
    found = [f"{path}.{key}" for key in obj.api_kwargs]
    for cls in type(obj).__mro__:
        for slot in getattr(cls, "__slots__", ()):
            if slot not in ("_bot", "api_kwargs", "_id_attrs", "_frozen"):
                found += unknown_fields(getattr(obj, slot, None), f"{path}.{slot.lstrip('_')}")
    return found


def contains(actual: object, expected: object) -> bool:
    """Whether ``actual`` holds everything in ``expected``: same values, maybe more keys."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(actual[key], value) for key, value in expected.items()
        )
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(contains(a, e) for a, e in zip(actual, expected, strict=True))
        )
    return actual == expected


# -- Bot methods ----------------------------------------------------------------------------


async def test_get_me_reports_the_bot_and_its_privacy_mode(api: FakeTelegramAPI, bot: Bot) -> None:
    me = await bot.get_me()
    assert (me.id, me.username, me.is_bot) == (123, "schoolgate_bot", True)
    assert me.can_join_groups is True
    assert me.can_read_all_group_messages is False
    assert unknown_fields(me) == []

    api.privacy_mode = False
    assert (await bot.get_me()).can_read_all_group_messages is True


async def test_send_message_returns_a_telegram_message(api: FakeTelegramAPI, bot: Bot) -> None:
    api.add_chat(YEAR3)
    first = await bot.send_message(YEAR3["id"], "Welcome, @pat_jones", reply_markup=KEYBOARD)
    second = await bot.send_message(YEAR3["id"], "Second")

    assert second.message_id > first.message_id
    assert first.chat.id == YEAR3["id"]
    assert first.chat.title == YEAR3["title"]
    assert first.from_user is not None
    assert first.from_user.id == 123
    assert first.reply_markup == KEYBOARD
    assert first.entities == (MessageEntity("mention", 9, 10),)
    assert time.time() - first.date.timestamp() < 5
    assert unknown_fields(first) == []

    [call, _] = api.calls_to("sendMessage")
    assert call.params["chat_id"] == YEAR3["id"]
    assert call.params["reply_markup"] == KEYBOARD.to_dict()
    sent = api.sent_messages(YEAR3["id"])
    assert [(m.message_id, m.text, m.deleted) for m in sent] == [
        (first.message_id, "Welcome, @pat_jones", False),
        (second.message_id, "Second", False),
    ]


async def test_send_message_replies_to_a_known_message(api: FakeTelegramAPI, bot: Bot) -> None:
    question = api.queue_update(tu.message(None, YEAR3, PAT, "Is school open tomorrow?"))
    asked = question["message"]["message_id"]

    reply = await bot.send_message(YEAR3["id"], "Yes", reply_parameters=ReplyParameters(asked))
    legacy = await bot.send_message(YEAR3["id"], "Still yes", reply_to_message_id=asked)

    for msg in (reply, legacy):
        assert msg.reply_to_message is not None
        assert msg.reply_to_message.text == "Is school open tomorrow?"
        assert msg.reply_to_message.from_user == User.de_json(PAT, None)
    assert reply.message_id > asked
    with pytest.raises(BadRequest, match=r"(?i)message to be replied not found"):
        await bot.send_message(YEAR3["id"], "?", reply_parameters=ReplyParameters(asked + 500))


async def test_unknown_chats_and_strangers_cannot_be_messaged(
    api: FakeTelegramAPI, bot: Bot
) -> None:
    with pytest.raises(BadRequest, match=r"(?i)chat not found"):
        await bot.send_message(-100999, "hello")
    api.queue_update(tu.message(None, YEAR3, PAT, "hi"))  # Pat is seen, but only in the group.
    with pytest.raises(Forbidden, match=r"(?i)can't initiate conversation"):
        await bot.send_message(PAT["id"], "hello")

    api.add_chat(tu.private_chat(PAT))  # Pat pressed Start.
    assert (await bot.send_message(PAT["id"], "hello")).chat.type == "private"


async def test_edit_message_text_and_reply_markup(api: FakeTelegramAPI, bot: Bot) -> None:
    api.add_chat(YEAR3)
    sent = await bot.send_message(YEAR3["id"], "Vote", reply_markup=KEYBOARD)

    edited = await bot.edit_message_text("Vote (closed)", YEAR3["id"], sent.message_id)
    assert isinstance(edited, Message)
    assert edited.text == "Vote (closed)"
    assert edited.edit_date is not None
    assert edited.reply_markup is None  # An edit without reply_markup drops the keyboard.
    with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
        await bot.edit_message_text("Vote (closed)", YEAR3["id"], sent.message_id)

    relabelled = await bot.edit_message_reply_markup(
        YEAR3["id"], sent.message_id, reply_markup=KEYBOARD
    )
    assert isinstance(relabelled, Message)
    assert relabelled.reply_markup == KEYBOARD
    assert api.sent_messages(YEAR3["id"])[0].reply_markup == KEYBOARD.to_dict()

    pats = api.queue_update(tu.message(None, YEAR3, PAT, "mine"))["message"]["message_id"]
    with pytest.raises(BadRequest, match=r"(?i)message can't be edited"):
        await bot.edit_message_text("theirs", YEAR3["id"], pats)


async def test_answer_callback_query(api: FakeTelegramAPI, bot: Bot) -> None:
    api.add_chat(YEAR3)
    await bot.send_message(YEAR3["id"], "Agree?", reply_markup=KEYBOARD)
    press = tu.callback_query(None, PAT, api.sent_messages(YEAR3["id"])[0].message, "agree:1")
    query = Update.de_json(api.queue_update(press), bot).callback_query
    assert query is not None
    assert query.data == "agree:1"

    assert await bot.answer_callback_query(query.id, text="Thanks!") is True
    [call] = api.calls_to("answerCallbackQuery")
    assert call.params == {"callback_query_id": query.id, "text": "Thanks!"}


async def test_delete_message_needs_the_right_for_others_messages(
    api: FakeTelegramAPI, bot: Bot
) -> None:
    api.add_chat(YEAR3)
    own = (await bot.send_message(YEAR3["id"], "temporary")).message_id
    pats = api.queue_update(tu.message(None, YEAR3, PAT, "rude words"))["message"]["message_id"]

    assert await bot.delete_message(YEAR3["id"], own) is True  # Its own: always allowed.
    assert api.sent_messages(YEAR3["id"])[0].deleted
    with pytest.raises(BadRequest, match=r"(?i)message can't be deleted"):
        await bot.delete_message(YEAR3["id"], pats)

    api.set_bot_status(YEAR3["id"], "administrator", can_delete_messages=True)
    assert await bot.delete_message(YEAR3["id"], pats) is True
    assert api.deleted_message_ids(YEAR3["id"]) == [own, pats]
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):
        await bot.delete_message(YEAR3["id"], pats)


async def test_set_chat_permissions_and_restrict_member(api: FakeTelegramAPI, bot: Bot) -> None:
    api.queue_update(tu.message(None, YEAR3, PAT, "hello"))
    muted = ChatPermissions.no_permissions()
    with pytest.raises(BadRequest, match=r"(?i)not enough rights"):
        await bot.set_chat_permissions(YEAR3["id"], muted)

    api.set_bot_status(YEAR3["id"], "administrator", can_restrict_members=True)
    assert await bot.set_chat_permissions(YEAR3["id"], muted) is True
    chat = await bot.get_chat(YEAR3["id"])
    assert chat.permissions is not None
    assert chat.permissions.can_send_messages is False

    assert await bot.restrict_chat_member(YEAR3["id"], PAT["id"], muted) is True
    member = await bot.get_chat_member(YEAR3["id"], PAT["id"])
    assert isinstance(member, ChatMemberRestricted)
    assert member.can_send_messages is False
    assert unknown_fields(member) == []


async def test_get_chat_member_tells_admin_from_member(api: FakeTelegramAPI, bot: Bot) -> None:
    api.queue_update(tu.message(None, YEAR3, PAT, "hello"))
    me = await bot.get_chat_member(YEAR3["id"], bot.id)
    assert isinstance(me, ChatMemberMember)

    api.set_bot_status(YEAR3["id"], "administrator", can_delete_messages=True)
    me = await bot.get_chat_member(YEAR3["id"], bot.id)
    assert isinstance(me, ChatMemberAdministrator)
    assert (me.can_delete_messages, me.can_restrict_members) == (True, False)
    assert unknown_fields(me) == []

    admins = await bot.get_chat_administrators(YEAR3["id"])
    assert [a.user.id for a in admins] == [bot.id]
    assert await bot.get_chat_member_count(YEAR3["id"]) == 2
    info = await bot.get_chat(YEAR3["id"])
    assert isinstance(info, ChatFullInfo)
    assert info.title == "Year 3 Parents"
    assert unknown_fields(info) == []


async def test_a_queued_my_chat_member_update_changes_the_bots_status(
    api: FakeTelegramAPI, bot: Bot
) -> None:
    api.queue_update(
        tu.my_chat_member(None, YEAR3, PAT, "member", "administrator", can_restrict_members=True)
    )
    me = await bot.get_chat_member(YEAR3["id"], bot.id)
    assert isinstance(me, ChatMemberAdministrator)
    assert me.can_restrict_members


async def test_after_leaving_the_bot_cannot_send(api: FakeTelegramAPI, bot: Bot) -> None:
    api.add_chat(YEAR3)
    assert await bot.leave_chat(YEAR3["id"]) is True
    assert isinstance(await bot.get_chat_member(YEAR3["id"], bot.id), ChatMemberLeft)
    with pytest.raises(Forbidden, match=r"(?i)bot is not a member of the supergroup chat"):
        await bot.send_message(YEAR3["id"], "still here?")


async def test_webhook_methods(api: FakeTelegramAPI, bot: Bot) -> None:
    url = "https://schoolgate.example/telegram"
    assert await bot.set_webhook(url, secret_token="s3cret", allowed_updates=["message"]) is True
    info = await bot.get_webhook_info()
    assert (info.url, info.allowed_updates) == (url, ("message",))
    assert api.webhook()["secret_token"] == "s3cret"
    with pytest.raises(Conflict, match=r"(?i)webhook is active"):
        await bot.get_updates()
    with pytest.raises(BadRequest, match=r"(?i)HTTPS URL must be provided"):
        await bot.set_webhook("http://schoolgate.example/telegram")

    assert await bot.delete_webhook() is True
    assert (await bot.get_webhook_info()).url == ""


async def test_commands_and_chat_action(api: FakeTelegramAPI, bot: Bot) -> None:
    commands = [BotCommand("register", "Register with your school's code")]
    assert await bot.set_my_commands(commands) is True
    assert await bot.get_my_commands() == tuple(commands)
    with pytest.raises(BadRequest, match=r"(?i)BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand("Register", "Capitals are not allowed")])

    api.add_chat(YEAR3)
    assert await bot.send_chat_action(YEAR3["id"], "typing") is True


# -- getUpdates -----------------------------------------------------------------------------


async def test_get_updates_serves_queued_updates_and_honours_offset(
    api: FakeTelegramAPI, bot: Bot
) -> None:
    first = api.queue_update(tu.message(None, YEAR3, PAT, "one"))
    second = api.queue_update(tu.message(None, YEAR3, SAM, "two"))
    assert (first["update_id"], second["update_id"]) == (1, 2)

    updates = await bot.get_updates()
    assert [u.message.text for u in updates if u.message] == ["one", "two"]
    assert await bot.get_updates(limit=1) == (Update.de_json(first, bot),)
    # Asking from update 2 confirms update 1: it is gone for good.
    assert [u.update_id for u in await bot.get_updates(offset=2)] == [2]
    assert [u.update_id for u in await bot.get_updates()] == [2]
    assert await bot.get_updates(offset=3) == ()


async def test_chat_member_updates_only_when_asked_for(api: FakeTelegramAPI, bot: Bot) -> None:
    api.queue_update(tu.chat_member(None, YEAR3, SAM))
    api.queue_update(tu.message(None, YEAR3, SAM, "hi all"))
    assert [u.message is not None for u in await bot.get_updates()] == [True]

    api.queue_update(tu.chat_member(None, YEAR3, SAM, old_status="member", new_status="left"))
    [update] = await bot.get_updates(offset=3, allowed_updates=["message", "chat_member"])
    assert update.chat_member is not None
    assert update.chat_member.new_chat_member.status == "left"


async def test_get_updates_long_polls_until_an_update_arrives(
    api: FakeTelegramAPI, bot: Bot
) -> None:
    started = time.monotonic()
    poll = asyncio.ensure_future(bot.get_updates(timeout=5))
    await api.wait_for_call("getUpdates")
    await asyncio.sleep(0.05)
    assert not poll.done()

    api.queue_update(tu.message(None, YEAR3, PAT, "wake up"))
    [update] = await poll
    assert update.message is not None
    assert update.message.text == "wake up"
    assert time.monotonic() - started < 1


async def test_get_updates_returns_nothing_after_the_timeout(bot: Bot) -> None:
    started = time.monotonic()
    assert await bot.get_updates(timeout=1) == ()
    assert 1 <= time.monotonic() - started < 2


async def test_a_second_poller_ends_the_first_with_conflict(api: FakeTelegramAPI, bot: Bot) -> None:
    first = asyncio.ensure_future(bot.get_updates(timeout=5))
    await api.wait_for_call("getUpdates")
    async with Bot(TOKEN, base_url=api.base_url) as second_instance:
        assert await second_instance.get_updates() == ()
    with pytest.raises(Conflict, match=r"(?i)terminated by other getUpdates request"):
        await first


async def test_an_application_polls_and_replies(api: FakeTelegramAPI) -> None:
    async def start(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.effective_message is not None
        await update.effective_message.reply_text("Welcome to Schoolgate")

    app = Application.builder().token(TOKEN).base_url(api.base_url).build()
    app.add_handler(CommandHandler("start", start))
    api.queue_update(tu.command(None, tu.private_chat(PAT), PAT, "/start"))
    async with app:
        await app.start()
        assert app.updater is not None
        await app.updater.start_polling(poll_interval=0, timeout=5)
        await api.wait_for_call("sendMessage")
        await app.updater.stop()
        await app.stop()

    [reply] = api.sent_messages(PAT["id"])
    assert reply.text == "Welcome to Schoolgate"
    # Stopping confirmed the update, so a restarted bot would not see /start again.
    assert api.calls_to("getUpdates")[-1].params["offset"] == 2


# -- Failures -------------------------------------------------------------------------------


async def test_injected_flood_wait_is_retry_after(
    api: FakeTelegramAPI, bot: Bot, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without PTB_TIMEDELTA, PTB 22 warns (PTBDeprecationWarning) while building RetryAfter.
    monkeypatch.setenv("PTB_TIMEDELTA", "true")
    api.add_chat(YEAR3)
    api.fail_next("sendMessage", retry_after=7)
    with pytest.raises(RetryAfter) as raised:
        await bot.send_message(YEAR3["id"], "hello")
    assert raised.value.retry_after == timedelta(seconds=7)
    assert (await bot.send_message(YEAR3["id"], "hello")).text == "hello"


async def test_injected_errors_map_to_ptb_exceptions(api: FakeTelegramAPI, bot: Bot) -> None:
    api.add_chat(YEAR3)
    api.fail_next("sendMessage", 403, "Forbidden: bot was kicked from the group chat")
    api.fail_next("deleteMessage", 400, "Bad Request: message can't be deleted", times=2)
    api.fail_next("getChat", 500)

    with pytest.raises(Forbidden, match=r"(?i)kicked"):
        await bot.send_message(YEAR3["id"], "hello")
    for _ in range(2):
        with pytest.raises(BadRequest, match=r"(?i)message can't be deleted"):
            await bot.delete_message(YEAR3["id"], 1)
    with pytest.raises(BadRequest, match=r"(?i)message to delete not found"):  # Injection used up.
        await bot.delete_message(YEAR3["id"], 1)
    with pytest.raises(NetworkError, match="Internal Server Error"):
        await bot.get_chat(YEAR3["id"])


async def test_a_wrong_token_is_invalid_token(api: FakeTelegramAPI) -> None:
    with pytest.raises(InvalidToken):
        async with Bot("999:WRONG", base_url=api.base_url):
            pass
    assert api.calls == []


async def test_an_unknown_method_is_not_found(bot: Bot) -> None:
    with pytest.raises(EndPointNotFound):
        await bot.do_api_request("frobnicateChat")


async def test_servers_run_side_by_side_on_free_ports_and_stop() -> None:
    async with FakeTelegramAPI() as one, FakeTelegramAPI("456:DEF") as two:
        assert one.port != two.port
        async with Bot("456:DEF", base_url=two.base_url) as bot:
            assert bot.id == 456
    async with httpx.AsyncClient() as client:
        with pytest.raises(httpx.ConnectError):
            await client.post(f"{one.base_url}123:ABC/getMe")


async def test_a_long_poll_does_not_hold_up_shutdown() -> None:
    started = time.monotonic()
    async with FakeTelegramAPI() as api:
        bot = Bot("123:ABC", base_url=api.base_url)
        await bot.initialize()
        poll = asyncio.ensure_future(bot.get_updates(timeout=30))
        await api.wait_for_call("getUpdates")
    try:
        assert await poll == ()  # Answered empty when the server stopped.
    finally:
        await bot.shutdown()
    assert time.monotonic() - started < 2


# -- Raw HTTP -------------------------------------------------------------------------------


async def test_methods_are_case_insensitive_and_every_body_encoding_is_read(
    api: FakeTelegramAPI,
) -> None:
    api.add_chat(YEAR3)
    url = f"{api.base_url}{TOKEN}"
    async with httpx.AsyncClient() as client:
        as_json = await client.post(
            f"{url}/SENDMESSAGE", json={"chat_id": YEAR3["id"], "text": "a"}
        )
        as_form = await client.post(
            f"{url}/sendmessage", data={"chat_id": str(YEAR3["id"]), "text": "42"}
        )
        as_query = await client.get(f"{url}/getChat", params={"chat_id": YEAR3["id"]})
        as_files = await client.post(
            f"{url}/setWebhook",
            data={"url": "https://schoolgate.example/hook", "max_connections": "10"},
            files={
                "certificate": (
                    "cert.pem",
                    b"-----BEGIN CERTIFICATE-----",
                    "application/x-pem-file",
                )
            },
        )
        unknown = await client.post(f"{url}/frobnicate")
        wrong_token = await client.post(f"{api.base_url}1:X/getMe")

    assert [r.json()["ok"] for r in (as_json, as_form, as_query, as_files)] == [True] * 4
    assert as_form.json()["result"]["text"] == "42"
    assert [c.method for c in api.calls] == [
        "sendMessage",
        "sendMessage",
        "getChat",
        "setWebhook",
        "frobnicate",
    ]
    assert api.calls[1].params == {"chat_id": YEAR3["id"], "text": "42"}
    webhook = api.calls[3].params
    assert webhook["max_connections"] == 10
    assert webhook["certificate"] == UploadedFile(
        "cert.pem", "application/x-pem-file", b"-----BEGIN CERTIFICATE-----"
    )
    assert (unknown.status_code, unknown.json()) == (
        404,
        {"ok": False, "error_code": 404, "description": "Not Found: method not found"},
    )
    assert (wrong_token.status_code, wrong_token.json()) == (
        401,
        {"ok": False, "error_code": 401, "description": "Unauthorized"},
    )


async def test_wait_for_call_times_out_with_the_calls_seen(api: FakeTelegramAPI, bot: Bot) -> None:
    with pytest.raises(AssertionError, match=r"sendMessage.*got 0; calls seen: \['getMe'\]"):
        await api.wait_for_call("sendMessage", timeout=0.05)


# -- Update builders ------------------------------------------------------------------------

BOT_SAYS = tu.bot_message(YEAR3, "Agree?", message_id=7, reply_markup=KEYBOARD.to_dict())
HELLO = tu.message(10, YEAR3, PAT, "hello")

BUILDERS: dict[str, tuple[dict[str, Any], Callable[[Update], object]]] = {
    "message": (
        tu.message(11, YEAR3, SAM, "hi @pat_jones", reply_to=HELLO["message"]),
        lambda u: u.message,
    ),
    "private message": (tu.message(12, tu.private_chat(PAT), PAT, "hi"), lambda u: u.message),
    "forward": (
        tu.message(13, YEAR3, SAM, "fwd", forward_origin=tu.origin_user(PAT)),
        lambda u: u.message and u.message.forward_origin,
    ),
    "hidden forward": (
        tu.message(14, YEAR3, SAM, "fwd", forward_origin=tu.origin_hidden_user("Anon")),
        lambda u: u.message and u.message.forward_origin,
    ),
    "channel forward": (
        tu.message(15, YEAR3, SAM, "fwd", forward_origin=tu.origin_channel(tu.channel(), 5)),
        lambda u: u.message and u.message.forward_origin,
    ),
    "video": (tu.message(16, YEAR3, PAT, video=True, caption="/help"), lambda u: u.message),
    "document": (tu.message(17, YEAR3, PAT, document="minutes.pdf"), lambda u: u.message),
    "photo": (tu.photo_message(18, YEAR3, PAT, "look @sam_smith"), lambda u: u.message),
    "edited": (
        tu.edited_message(19, YEAR3, PAT, "hello (edited)", message_id=10),
        lambda u: u.edited_message,
    ),
    "command": (tu.command(20, YEAR3, PAT, "/register ABC123"), lambda u: u.message),
    "callback": (tu.callback_query(21, PAT, BOT_SAYS, "agree:1"), lambda u: u.callback_query),
    "bot added": (tu.my_chat_member(22, YEAR3, PAT), lambda u: u.my_chat_member),
    "bot promoted": (
        tu.my_chat_member(
            23,
            YEAR3,
            PAT,
            "member",
            "administrator",
            can_delete_messages=True,
            can_restrict_members=True,
        ),
        lambda u: u.my_chat_member,
    ),
    "bot removed": (
        tu.my_chat_member(24, YEAR3, PAT, "member", "kicked"),
        lambda u: u.my_chat_member,
    ),
    "bot blocked": (
        tu.my_chat_member(25, tu.private_chat(PAT), PAT, "member", "kicked"),
        lambda u: u.my_chat_member,
    ),
    "member joined": (tu.chat_member(26, YEAR3, SAM), lambda u: u.chat_member),
    "member added": (tu.chat_member(27, YEAR3, PAT, SAM), lambda u: u.chat_member),
    "member left": (
        tu.chat_member(28, YEAR3, SAM, None, "member", "left"),
        lambda u: u.chat_member,
    ),
}


@pytest.mark.parametrize("name", BUILDERS)
def test_builders_parse_into_ptb_objects_without_unknown_fields(
    name: str, offline_bot: Bot
) -> None:
    data, payload_of = BUILDERS[name]
    update = Update.de_json(data, offline_bot)
    payload = payload_of(update)
    kind = tu.update_type(data)
    expected = {
        "message": Message,
        "edited_message": Message,
        "callback_query": CallbackQuery,
        "my_chat_member": ChatMemberUpdated,
        "chat_member": ChatMemberUpdated,
    }[kind]
    assert update.update_id == data["update_id"]
    assert isinstance(getattr(update, kind), expected)
    assert payload
    assert unknown_fields(update) == []
    # Nothing renamed, dropped or reshaped (PTB only adds its default False flags).
    assert contains(update.to_dict(), data)


def test_builders_make_the_right_details() -> None:
    forwarded = Update.de_json(BUILDERS["forward"][0], None).message
    assert forwarded is not None
    assert isinstance(forwarded.forward_origin, MessageOriginUser)
    photo = Update.de_json(BUILDERS["photo"][0], None).message
    assert photo is not None
    assert photo.caption == "look @sam_smith"
    assert photo.caption_entities == (MessageEntity("mention", 5, 10),)
    assert [p.width for p in photo.photo] == [90, 320, 800, 1280]
    command = Update.de_json(BUILDERS["command"][0], None).message
    assert command is not None
    assert command.entities == (MessageEntity("bot_command", 0, 9),)
    reply = Update.de_json(BUILDERS["message"][0], None).message
    assert reply is not None
    assert reply.reply_to_message is not None
    assert reply.reply_to_message.text == "hello"
    promoted = Update.de_json(BUILDERS["bot promoted"][0], None).my_chat_member
    assert promoted is not None
    assert isinstance(promoted.new_chat_member, ChatMemberAdministrator)
    assert promoted.new_chat_member.can_delete_messages


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hi @pat_jones!", [(3, 10, "mention")]),
        # 👋 is two UTF-16 code units, as Telegram counts offsets.
        ("👋 @pat_jones /register@schoolgate_bot X", [(3, 10, "mention"), (14, 24, "bot_command")]),
        ("/start", [(0, 6, "bot_command")]),
        ("mail pat@school.org, @abc too short, a/b, /é", []),
    ],
)
def test_entities_follow_telegram(text: str, expected: list[tuple[int, int, str]]) -> None:
    assert [(e["offset"], e["length"], e["type"]) for e in tu.entities_for(text)] == expected
