"""The report line end to end: a message forwarded to the school's number is a flag in the
right school's queue, acknowledged, and asked about when it does not say where it came from."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.store.db import transaction
from bot.store.models import ChatMember, Flag, FlagSource, FlagStatus, School, StoredMessage
from tests.channels.whatsapp.support import ABUSIVE, HEAD_EMAIL, WhatsApp, said
from tests.factories import another_school
from tests.fakes.twilio_webhooks import parent

pytestmark = pytest.mark.anyio


async def test_a_forwarded_message_is_a_report_the_school_hears_of_and_is_asked_about(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    answer = await whatsapp.write(20, ABUSIVE, name="Jo Bloggs", forwarded=True)

    assert said(answer) == [whatsapp.texts.which_group]
    [flag] = await whatsapp.rows(Flag)
    assert (flag.source, flag.status, flag.severity) == (FlagSource.REPORT, FlagStatus.OPEN, "high")
    assert [r.rule for r in flag.reasons] == ["abusive-to-parent"]
    assert flag.reported_from is None
    report_line = await whatsapp.chat(flag.chat_id)
    assert (report_line.platform, report_line.platform_chat_id, report_line.title) == (
        "whatsapp",
        f"report-line:{seeded_school.id}",
        "WhatsApp report line",
    )
    assert report_line.school_id == seeded_school.id
    [reporter] = await whatsapp.rows(ChatMember)
    assert (reporter.id, reporter.platform_user_id, reporter.display_name) == (
        flag.member_id,
        parent(20),
        "Jo Bloggs",
    )
    [message] = await whatsapp.rows(StoredMessage)
    assert message.text == ABUSIVE
    [alert] = await whatsapp.outbox("alert")
    assert (alert.recipient, alert.flag_id) == (HEAD_EMAIL, flag.id)

    # Their next message says where it came from.
    assert said(await whatsapp.write(20, "Year 3 Parents")) == [
        "Thank you: noted that it came from Year 3 Parents."
    ]
    [flag] = await whatsapp.rows(Flag)
    assert flag.reported_from == "Year 3 Parents"
    assert len(await whatsapp.rows(StoredMessage)) == 1  # the answer is not another report


async def test_a_report_that_names_its_group_is_not_asked_about(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    answer = await whatsapp.write(21, f"From Year 6 mums: {ABUSIVE}", forwarded=True)

    assert said(answer) == [whatsapp.texts.report_thanks]
    [flag] = await whatsapp.rows(Flag)
    assert flag.reported_from == "Year 6 mums"
    [message] = await whatsapp.rows(StoredMessage)
    assert message.text == ABUSIVE


async def test_a_report_no_rule_matches_is_still_a_flag_without_reasons_and_no_alert(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    said(await whatsapp.write(22, "From Year 3 Parents: see you all at the fair!", forwarded=True))

    [flag] = await whatsapp.rows(Flag)
    assert (flag.source, flag.severity, flag.reasons) == (FlagSource.REPORT, "low", [])
    assert await whatsapp.outbox("alert") == []


async def test_the_answer_to_which_group_only_counts_within_the_hour(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    said(await whatsapp.write(23, ABUSIVE, forwarded=True))
    async with transaction(whatsapp.sessions) as session:
        flag = await session.get(Flag, (await whatsapp.rows(Flag))[0].id)
        assert flag is not None
        flag.created_at -= timedelta(hours=2)

    assert said(await whatsapp.write(23, "Year 3 Parents")) == [whatsapp.texts.which_group]
    first, second = await whatsapp.rows(Flag)
    assert first.reported_from is None  # too late: the short message is a report of its own
    assert second.source == FlagSource.REPORT


async def test_reports_go_to_the_school_whose_group_they_name_or_that_they_belong_to(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    async with transaction(whatsapp.sessions) as session:
        elsewhere = await another_school(session)
    reception = await whatsapp.new_group(elsewhere, "Reception")
    await whatsapp.new_group(seeded_school, "Year 3")
    await whatsapp.join(reception, 30)
    assert not (await whatsapp.say(reception, 30, "/leave")).accepted

    # Parent 30 was in Elsewhere's group: their report is Elsewhere's.
    said(await whatsapp.write(30, ABUSIVE, forwarded=True))
    # Parent 31 names Peartree's group: Peartree's.
    said(await whatsapp.write(31, f"From Year 3 Parents: {ABUSIVE}", forwarded=True))
    # Parent 32 gives no clue, and there are two schools: asked, nothing kept.
    assert said(await whatsapp.write(32, ABUSIVE, forwarded=True)) == [whatsapp.texts.which_school]

    flags = await whatsapp.rows(Flag)
    schools = [(await whatsapp.chat(f.chat_id)).school_id for f in flags]
    assert schools == [elsewhere.id, seeded_school.id]
    reporters = {m.id: m.platform_user_id for m in await whatsapp.rows(ChatMember)}
    assert [reporters[f.member_id] for f in flags] == [parent(30), parent(31)]
    assert parent(32) not in reporters.values()


async def test_an_empty_message_gets_the_instructions(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    assert said(await whatsapp.write(24, "   ")) == [whatsapp.texts.join_usage]
    assert await whatsapp.rows(Flag) == []


async def test_an_sms_to_the_number_is_told_it_is_whatsapp_only(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    answer = await whatsapp.twilio.deliver_incoming("+447700900025", "+447700900999", ABUSIVE)

    assert said(answer) == [whatsapp.texts.whatsapp_only]
    assert await whatsapp.rows(Flag) == []


async def test_a_report_asked_for_is_taken_even_while_asked_to_agree(
    whatsapp: WhatsApp, seeded_school: School
) -> None:
    group = await whatsapp.new_group(seeded_school)
    said(await whatsapp.write(26, f"JOIN {group.code}"))

    assert said(await whatsapp.write(26, "/report")) == [whatsapp.texts.report_usage]
    answer = await whatsapp.write(26, f"/report From Year 3 Parents: {ABUSIVE}")

    assert said(answer) == [whatsapp.texts.report_thanks]
    [flag] = await whatsapp.rows(Flag)
    assert (flag.source, flag.reported_from) == (FlagSource.REPORT, "Year 3 Parents")
