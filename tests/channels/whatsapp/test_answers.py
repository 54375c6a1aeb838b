"""Answers to Twilio: TwiML that carries any text, and long texts in parts Twilio accepts."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ElementTree

from bot.channels.whatsapp.answers import MAX_BODY, pieces, relay, twiml


def test_twiml_carries_any_text_in_messages_of_at_most_1600_characters() -> None:
    notice = "\n\n".join(f"Paragraph {n}: " + " ".join(["word"] * 150) for n in range(4))
    answer = twiml(notice, 'Reply <AGREE> & "join"\x00\x1b', "")

    assert answer.status == 200
    messages = [m.text or "" for m in ElementTree.fromstring(answer.body).iter("Message")]
    assert all(len(m) <= MAX_BODY for m in messages)
    assert messages[-1] == 'Reply <AGREE> & "join"'
    assert "\n\n".join(messages[:-1]) == notice
    assert twiml().body.endswith("<Response></Response>")


def test_long_texts_split_between_paragraphs_then_lines_then_words() -> None:
    assert pieces("") == []
    assert pieces("short") == ["short"]
    assert pieces("aaaa\n\nbbbb\ncccc", limit=10) == ["aaaa", "bbbb\ncccc"]
    assert pieces("aaaa bbbb cccc", limit=10) == ["aaaa bbbb", "cccc"]
    assert pieces("x" * 25, limit=10) == ["x" * 10, "x" * 10, "x" * 5]


def test_a_relay_carries_the_body_to_show_cut_to_what_twilio_takes() -> None:
    answer = relay("Pat: " + "é" * 2000)
    shown = json.loads(answer.body)["body"]
    assert (answer.status, len(shown), shown[-1]) == (200, MAX_BODY, "\u2026")
