"""Twilio's webhook parameters as the engine's ChatMessage."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.channels.whatsapp.translate import (
    conversation_message,
    incoming_message,
    media_kind,
)
from bot.policy import Media, Role
from tests.fakes import twilio_webhooks as tw
from tests.fakes.twilio_webhooks import SCHOOL_WHATSAPP, MediaFile, parent

NOW = datetime(2026, 11, 24, 14, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("content_type", "kind"),
    [
        ("image/jpeg", "photo"),
        ("IMAGE/PNG", "photo"),
        ("image/webp", "sticker"),
        ("video/mp4", "video"),
        ("audio/ogg", "audio"),
        ("application/pdf", "document"),
        ("", "document"),
    ],
)
def test_media_kinds(content_type: str, kind: str) -> None:
    assert media_kind(content_type) == kind


def test_an_incoming_message_with_media_forwarded() -> None:
    params = tw.incoming_message(
        parent(1), SCHOOL_WHATSAPP, "look", ["https://a/1", "https://a/2"], "Pat Jones",
        media_types=["image/jpeg", "video/mp4"], forwarded=True,
    )  # fmt: skip

    message = incoming_message(params | {"NumMedia": "2", "Unknown": "x"}, NOW)

    assert (message.id, message.text, message.sent_at) == (params["MessageSid"], "look", NOW)
    assert (message.sender.id, message.sender.name, message.sender.role) == (
        parent(1),
        "Pat Jones",
        Role.UNKNOWN,
    )
    assert message.media == (Media("photo", "look"), Media("video", "look"))
    assert message.forwarded


def test_a_media_count_that_is_not_a_number_means_no_media() -> None:
    params = tw.incoming_message(parent(1), SCHOOL_WHATSAPP, "hi") | {"NumMedia": "lots"}
    assert incoming_message(params, NOW).media == ()
    assert not incoming_message(params, NOW).forwarded


def test_a_conversation_message_and_its_media() -> None:
    params = tw.message_add(
        "CH" + "1" * 32, "MB" + "2" * 32, parent(2), "the kids",
        media=[MediaFile("a.jpg"), MediaFile("clip.mp4", "video/mp4")],
    )  # fmt: skip

    message = conversation_message(
        params, message_id="pre-1", sender_name="Sam", chat_title="Year 3 Parents", now=NOW
    )

    assert (message.id, message.text, message.chat_id, message.chat_title) == (
        "pre-1",
        "the kids",
        "CH" + "1" * 32,
        "Year 3 Parents",
    )
    assert (message.sender.id, message.sender.name) == (parent(2), "Sam")
    assert message.media == (Media("photo", "the kids"), Media("video", "the kids"))


@pytest.mark.parametrize("media", ["not json", '{"Sid": "ME1"}', '["ME1"]'])
def test_media_that_cannot_be_read_still_counts_as_a_file(media: str) -> None:
    params = tw.message_add("CH1", "MB1", parent(2), "") | {"Media": media}
    message = conversation_message(params, message_id="m", sender_name="", chat_title="", now=NOW)
    assert [m.kind for m in message.media] == ["document"]
