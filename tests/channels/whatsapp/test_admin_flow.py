"""A WhatsApp flag from the message to SLT's decision, through the real pieces: the admin API
makes the group, parents join and write through the fake Twilio and the app's webhooks, and an
SLT member signed in to the same app opens the flag, decides it, and finds the decision in the
audit log. And a report forwarded to the school's number, acknowledged the same way."""

from __future__ import annotations

import pytest
from fastapi import FastAPI

from bot.store.models import FlagSource, FlagStatus, School, UserRole
from tests.api.conftest import SignIn
from tests.api.support import Browser
from tests.channels.whatsapp.support import ABUSIVE, HEAD_EMAIL, WhatsApp, said
from tests.fakes.twilio_webhooks import parent

pytestmark = pytest.mark.anyio

GROUP = "Year 3 Parents"


@pytest.fixture
def app(whatsapp: WhatsApp) -> FastAPI:
    """The admin pages are the same app that takes Twilio's webhooks."""
    return whatsapp.app


async def join(whatsapp: WhatsApp, code: str, n: int, name: str) -> None:
    notice = said(await whatsapp.write(n, f"JOIN {code}", name=name))
    assert notice[-1] == whatsapp.texts.join_prompt.format(group=GROUP)
    assert said(await whatsapp.write(n, "AGREE", name=name)) == [
        whatsapp.texts.joined.format(group=GROUP)
    ]


async def audited(browser: Browser, subject: str) -> list[tuple[str, str]]:
    log = await browser.get("/api/audit", params={"subject": subject})
    assert log.status_code == 200, log.text
    return [(event["action"], event["actor"]) for event in log.json()["events"]]


@pytest.mark.parametrize(
    ("held", "decision", "note", "status"),
    [
        (False, "confirm", None, FlagStatus.CONFIRMED),
        (True, "false_positive", "A quarrel already settled in person", FlagStatus.FALSE_POSITIVE),
    ],
    ids=["relayed-and-confirmed", "held-and-not-a-breach"],
)
async def test_a_whatsapp_flag_goes_from_the_message_to_slts_decision(
    whatsapp: WhatsApp,
    sign_in: SignIn,
    seeded_school: School,
    held: bool,
    decision: str,
    note: str | None,
    status: FlagStatus,
) -> None:
    slt = await sign_in(UserRole.SLT)
    made = await slt.post("/api/chats/whatsapp-groups", json={"class_name": "Year 3"})
    assert made.status_code == 201, made.text
    group = made.json()
    await join(whatsapp, group["code"], 1, "Pat Jones")
    await join(whatsapp, group["code"], 2, "Sam Reed")
    if held:
        await whatsapp.hold_on(seeded_school, "abusive-to-parent")

    conversation = (await whatsapp.chat(group["chat_id"])).platform_chat_id
    sent = await whatsapp.twilio.send_from_participant(conversation, parent(1), ABUSIVE)

    assert sent.pre_event is not None
    if held:
        assert (sent.accepted, sent.pre_event.status) == (False, 403)
        assert whatsapp.twilio.delivered_to(parent(2)) == []
        [told] = await whatsapp.outbox("held")
        assert told.recipient == parent(1)
    else:
        assert sent.accepted
        assert whatsapp.twilio.delivered_to(parent(2))[-1].body == f"Pat Jones: {ABUSIVE}"
    [alert] = await whatsapp.outbox("alert")
    assert (alert.channel, alert.recipient) == ("email", HEAD_EMAIL)

    # SLT find it in the queue (no words there) and open it.
    queue = (await slt.get("/api/flags", params={"chat": group["chat_id"]})).json()
    [summary] = queue["items"]
    assert summary["id"] == alert.flag_id
    assert (summary["chat"], summary["sender"], summary["source"]) == (GROUP, "Pat Jones", "chat")
    assert ABUSIVE not in str(summary)
    flag = (await slt.get(f"/api/flags/{summary['id']}")).json()
    assert flag["text"] == ABUSIVE
    [reason] = flag["reasons"]
    assert (reason["rule"], reason["severity"]) == ("abusive-to-parent", "high")
    assert reason["clause"]
    assert reason["evidence"]
    assert "vile woman" in reason["evidence"]
    page = await slt.get(f"/flags/{summary['id']}")
    assert GROUP in page.text
    assert reason["clause"] in page.text
    assert "cannot be taken back from members" in page.text

    # Asking for removal on WhatsApp asks the sender: nothing unsends a delivered message.
    removal = await slt.post(f"/api/flags/{summary['id']}/actions", json={"action": "remove"})
    assert removal.json()["outcome"] == "asked sender"
    assert "cannot take a WhatsApp message back" in removal.json()["message"]

    decided = await slt.post(
        f"/api/flags/{summary['id']}/decision", json={"decision": decision, "note": note}
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["flag"]["status"] == status
    actor = f"user:{slt.user.id}"
    log = await audited(slt, f"flag:{summary['id']}")
    assert (f"flag.{'confirmed' if decision == 'confirm' else decision}", actor) in log
    assert ("flag.viewed", actor) in log
    assert ("flag.removal_requested", actor) in log
    [group_made] = await audited(slt, f"chat:{group['chat_id']}")
    assert group_made == ("chat.whatsapp_group_created", actor)


async def test_a_report_forwarded_to_the_number_reaches_the_queue_and_slt_acknowledge_it(
    whatsapp: WhatsApp, sign_in: SignIn, seeded_school: School
) -> None:
    assert said(await whatsapp.write(30, ABUSIVE, name="Jo Bloggs", forwarded=True)) == [
        whatsapp.texts.which_group
    ]
    said(await whatsapp.write(30, GROUP, name="Jo Bloggs"))
    slt = await sign_in(UserRole.SLT)

    [report] = (await slt.get("/api/flags", params={"source": "report"})).json()["items"]
    assert (report["source"], report["sender"], report["reported_from"]) == (
        FlagSource.REPORT, "Jo Bloggs", GROUP,
    )  # fmt: skip
    [alert] = await whatsapp.outbox("alert")
    assert alert.flag_id == report["id"]
    page = await slt.get(f"/flags/{report['id']}")
    assert "Reported by</dt><dd>Jo Bloggs" in page.text
    assert f"<dt>From</dt><dd>{GROUP}</dd>" in page.text
    assert ABUSIVE in page.text

    acknowledged = await slt.post(
        f"/api/flags/{report['id']}/decision", json={"decision": "acknowledge"}
    )
    assert acknowledged.json()["flag"]["status"] == FlagStatus.ACKNOWLEDGED
    log = await audited(slt, f"flag:{report['id']}")
    assert ("flag.acknowledged", f"user:{slt.user.id}") in log
    assert ("flag.reported", f"whatsapp:user:{parent(30)}") in log
