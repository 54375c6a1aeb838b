"""Which channels a member of staff's alerts go on (bot.services.alerts.channels_of)."""

from __future__ import annotations

import pytest

from bot.services.alerts import channels_of
from bot.store.models import StaffMember

EVERYTHING = frozenset({"telegram", "email", "whatsapp", "sms"})
PHONE = "+447700900777"


def head(alert_channels: list[str] | None, *, phone: str | None = PHONE) -> StaffMember:
    return StaffMember(
        name="Mrs Anita Patel", slt=True, dsl=True, telegram_user_id=7001,
        email="head@peartree.example.sch.uk", phone=phone, alert_channels=alert_channels,
    )  # fmt: skip


def test_someone_who_chose_nothing_gets_telegram_and_email_not_their_phone() -> None:
    assert channels_of(head(None), EVERYTHING) == [
        ("telegram", "7001"),
        ("email", "head@peartree.example.sch.uk"),
    ]


def test_whatsapp_and_sms_go_to_their_phone_when_chosen() -> None:
    assert channels_of(head(["whatsapp", "sms"]), EVERYTHING) == [
        ("whatsapp", f"whatsapp:{PHONE}"),
        ("sms", PHONE),
    ]


@pytest.mark.parametrize(
    ("member", "installation", "expected"),
    [
        # Chosen, but this installation does not send on it.
        (head(["whatsapp", "telegram"]), frozenset({"telegram", "sms"}), ["telegram"]),
        # Chosen, but there is no phone number to send to.
        (head(["whatsapp", "sms"], phone=None), EVERYTHING, []),
        (head(["email"]), frozenset({"telegram"}), []),
    ],
)
def test_a_channel_needs_both_an_address_and_the_installation(
    member: StaffMember, installation: frozenset[str], expected: list[str]
) -> None:
    assert [channel for channel, _ in channels_of(member, installation)] == expected
