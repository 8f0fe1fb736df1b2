"""Email-to-case end to end on every database: a real SMTP client (smtplib) talks to the listener
started here on a free port; outbound replies go to an aiosmtpd sink whose headers are checked."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import select

from crm_core import attachment_store
from crm_core.config import attachments_dir
from crm_core.db import Database
from crm_core.errors import ValidationFailed
from crm_core.mail.listener import make_controller
from crm_core.mail.outbound import MailSettings, send_queued_mail
from crm_core.models import Case, CaseStatus
from crm_core.models.service import CaseEvent, CaseEventKind, CaseMessage
from crm_core.rules.mail import MAX_MESSAGE_BYTES
from crm_core.services import contacts, mail_settings, sla_settings
from crm_core.services.case_attachments import NewFile
from crm_core.services.cases import CaseInput, add_case_reply, create_case, transition_case
from tests.factories import World, build_world, create_random_customer, customer_with_contact, tenant_slug
from tests.hosting import free_port
from tests.mail_sink import Sink


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def listener(db: Database) -> Iterator[int]:
    port = free_port()
    controller = make_controller(db, "127.0.0.1", port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()


def message(sender: str, subject: str, body: str = "My printer is broken.", **headers: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = "support@example.test"
    email["Subject"] = subject
    for name, value in headers.items():
        email[name.replace("_", "-")] = value
    email.set_content(body)
    return email


def send(port: int, email: EmailMessage | bytes, to: str, sender: str = "li.lei@example.test") -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=10) as client:
        if isinstance(email, bytes):
            client.sendmail(sender, [to], email)
        else:
            client.send_message(email, from_addr=sender, to_addrs=[to])


def cases_of(db: Database, customer_id: int) -> list[Case]:
    with db.system_session("test") as session:
        found = list(session.scalars(select(Case).where(Case.customer_id == customer_id).order_by(Case.id)))
        session.expunge_all()
        return found


def events_of(db: Database, case_id: int, kind: str) -> list[CaseEvent]:
    with db.system_session("test") as session:
        found = list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id, CaseEvent.kind == kind)))
        session.expunge_all()
        return found


def messages_of(db: Database, case_id: int) -> list[CaseMessage]:
    with db.system_session("test") as session:
        found = list(session.scalars(select(CaseMessage).where(CaseMessage.case_id == case_id)
                                     .order_by(CaseMessage.id)))
        session.expunge_all()
        return found


def test_a_mail_from_a_known_contact_opens_an_email_case(db: Database, world: World, listener: int) -> None:
    customer_id, contact_id = customer_with_contact(db, world, "Li.Lei@Example.test")
    send(listener, message("Li Lei <li.lei@example.test>", "Printer broken", Message_ID="<m1@example.test>"),
         f"support+{tenant_slug(db, world)}@example.test")
    [case] = cases_of(db, customer_id)
    assert (case.subject, case.channel, case.status, case.contact_id) == ("Printer broken", "email", "new", contact_id)
    assert case.description == "My printer is broken."
    [stored] = messages_of(db, case.id)
    assert (stored.direction, stored.message_id, stored.from_address) == ("in", "<m1@example.test>",
                                                                          "li.lei@example.test")


def test_an_html_only_mail_is_stored_as_text(db: Database, world: World, listener: int) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    email = message("li.lei@example.test", "Html")
    email.set_content("<p>Hello <b>there</b></p><script>alert(1)</script><p>a &lt;tag&gt;</p>", subtype="html")
    send(listener, email, f"support+{tenant_slug(db, world)}@example.test")
    [case] = cases_of(db, customer_id)
    assert case.description == "Hello there\n\na <tag>"


def test_a_reply_threads_by_the_case_tag_and_reopens_a_pending_case(db: Database, world: World,
                                                                    listener: int) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    to = f"support+{tenant_slug(db, world)}@example.test"
    send(listener, message("li.lei@example.test", "Printer broken", Message_ID="<m1@example.test>"), to)
    [case] = cases_of(db, customer_id)
    transition_case(db, world.admin, case.id, "pending", expected_version=case.version)
    send(listener, message("li.lei@example.test", f"Re: [#CASE-{case.id}] Printer broken", "Still broken.",
                           Message_ID="<m2@example.test>"), to)
    [same] = cases_of(db, customer_id)
    assert same.status == CaseStatus.OPEN.value
    [inbound] = events_of(db, case.id, "inbound")
    assert inbound.body == "Still broken."
    assert [m.message_id for m in messages_of(db, case.id)] == ["<m1@example.test>", "<m2@example.test>"]


def test_a_reply_threads_by_in_reply_to(db: Database, world: World, listener: int) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    to = f"support+{tenant_slug(db, world)}@example.test"
    send(listener, message("li.lei@example.test", "Printer broken", Message_ID="<m1@example.test>"), to)
    send(listener, message("li.lei@example.test", "Re: Printer broken", "More.", Message_ID="<m2@example.test>",
                           In_Reply_To="<m1@example.test>", References="<m1@example.test>"), to)
    [case] = cases_of(db, customer_id)
    assert len(events_of(db, case.id, "inbound")) == 1
    assert messages_of(db, case.id)[1].in_reply_to == "<m1@example.test>"


def test_the_same_message_delivered_twice_is_filed_once(db: Database, world: World, listener: int) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    to = f"support+{tenant_slug(db, world)}@example.test"
    for _ in range(2):
        send(listener, message("li.lei@example.test", "Printer broken", Message_ID="<m1@example.test>"), to)
    assert len(cases_of(db, customer_id)) == 1


@pytest.mark.parametrize("headers", [
    {"Auto_Submitted": "auto-replied"},
    {"Precedence": "bulk"},
    {"X_Autoreply": "yes"},
    {"Message_ID": "<case-1.abc@kestrel-crm.invalid>"},
])
def test_automatic_mail_is_accepted_but_never_becomes_a_case(db: Database, world: World, listener: int,
                                                             headers: dict[str, str]) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    send(listener, message("li.lei@example.test", "Out of office", **headers),
         f"support+{tenant_slug(db, world)}@example.test")
    assert cases_of(db, customer_id) == []


def test_a_bounce_from_the_mailer_daemon_is_not_filed(db: Database, world: World, listener: int) -> None:
    customer_id, _ = customer_with_contact(db, world, "mailer-daemon@example.test")
    send(listener, message("MAILER-DAEMON@example.test", "Undelivered"),
         f"support+{tenant_slug(db, world)}@example.test", sender="mailer-daemon@example.test")
    assert cases_of(db, customer_id) == []


def test_an_unknown_sender_is_refused(db: Database, world: World, listener: int) -> None:
    with pytest.raises(smtplib.SMTPDataError) as refused:
        send(listener, message("stranger@example.test", "Hello"), f"support+{tenant_slug(db, world)}@example.test")
    assert refused.value.smtp_code == 550


def test_malformed_mail_is_refused(db: Database, world: World, listener: int) -> None:
    to = f"support+{tenant_slug(db, world)}@example.test"
    with pytest.raises(smtplib.SMTPDataError) as no_from:
        send(listener, b"Subject: no sender\r\n\r\nbody\r\n", to)
    assert no_from.value.smtp_code == 550
    with pytest.raises(smtplib.SMTPDataError) as bad_from:
        send(listener, b"From: not an address\r\nSubject: x\r\n\r\nbody\r\n", to)
    assert bad_from.value.smtp_code == 550


def test_oversize_mail_is_refused(db: Database, world: World, listener: int) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    big = message("li.lei@example.test", "Huge", "x" * 70 + ("\n" + "x" * 70) * (MAX_MESSAGE_BYTES // 70))
    with pytest.raises(smtplib.SMTPException) as refused:
        send(listener, big, f"support+{tenant_slug(db, world)}@example.test")
    assert "552" in str(refused.value) or getattr(refused.value, "smtp_code", None) == 552
    assert cases_of(db, customer_id) == []


def test_a_recipient_that_names_no_tenant_is_refused(db: Database, world: World, listener: int) -> None:
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        send(listener, message("li.lei@example.test", "Hello"), "sales@example.test")
    with pytest.raises(smtplib.SMTPDataError):
        send(listener, message("li.lei@example.test", "Hello"), "support+no-such-tenant@example.test")


def test_tenants_are_isolated(db: Database, world: World, listener: int) -> None:
    customer_a, _ = customer_with_contact(db, world, "li.lei@example.test")
    customer_b, _ = customer_with_contact(db, world, "li.lei@example.test", other=True)
    send(listener, message("li.lei@example.test", "For B", Message_ID="<b1@example.test>"),
         f"support+{tenant_slug(db, world, other=True)}@example.test")
    assert cases_of(db, customer_a) == []
    [case_b] = cases_of(db, customer_b)
    # a tag naming B's case, sent to A, opens a case in A and never touches B's
    send(listener, message("li.lei@example.test", f"[#CASE-{case_b.id}] For A", Message_ID="<a1@example.test>",
                           In_Reply_To="<b1@example.test>"), f"support+{tenant_slug(db, world)}@example.test")
    [case_a] = cases_of(db, customer_a)
    assert case_a.id != case_b.id
    assert events_of(db, case_b.id, "inbound") == []


def test_a_public_reply_goes_out_threaded_and_meets_the_first_response(
        db: Database, world: World, listener: int, sink: tuple[Sink, int]) -> None:
    keeper, sink_port = sink
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    slug = tenant_slug(db, world)
    send(listener, message("li.lei@example.test", "Printer broken", Message_ID="<m1@example.test>"),
         f"support+{slug}@example.test")
    [case] = cases_of(db, customer_id)
    add_case_reply(db, world.admin, case.id, "We are on it.\n<b>not html</b>")
    add_case_reply(db, world.admin, case.id, "internal only", internal=True)
    settings = MailSettings(host="127.0.0.1", port=sink_port, from_address="help@kestrel.test",
                            inbound_domain="kestrel.test")
    assert send_queued_mail(db, world.admin.tenant_id, settings) == {"sent": 1, "failed": 0}
    [(mail_from, rcpt_tos, sent)] = keeper.messages
    assert (mail_from, rcpt_tos) == ("help@kestrel.test", ["li.lei@example.test"])
    assert sent["Subject"] == f"[#CASE-{case.id}] Re: Printer broken"
    assert sent["In-Reply-To"] == "<m1@example.test>"
    assert sent["References"] == "<m1@example.test>"
    assert sent["Reply-To"] == f"support+{slug}@kestrel.test"
    assert sent.get_content_type() == "text/plain"
    assert sent.get_content().replace("\r\n", "\n").strip() == "We are on it.\n<b>not html</b>"
    outbound = messages_of(db, case.id)[-1]
    assert (outbound.status, outbound.message_id, outbound.attempts) == ("sent", sent["Message-ID"], 1)
    [same] = cases_of(db, customer_id)
    assert same.first_responded_at is not None
    # the customer's answer to our reply threads back by In-Reply-To, without a tag
    send(listener, message("li.lei@example.test", "Thanks", "Thanks!", Message_ID="<m2@example.test>",
                           In_Reply_To=sent["Message-ID"]), f"support+{slug}@example.test")
    assert [event.body for event in events_of(db, case.id, "inbound")] == ["Thanks!"]


def test_a_failed_send_is_kept_visible_and_retried(db: Database, world: World, listener: int,
                                                   sink: tuple[Sink, int]) -> None:
    keeper, sink_port = sink
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    send(listener, message("li.lei@example.test", "Printer broken"), f"support+{tenant_slug(db, world)}@example.test")
    [case] = cases_of(db, customer_id)
    add_case_reply(db, world.admin, case.id, "We are on it.")
    down = MailSettings(host="127.0.0.1", port=free_port(), from_address="help@kestrel.test",
                        inbound_domain="kestrel.test")
    assert send_queued_mail(db, world.admin.tenant_id, down) == {"sent": 0, "failed": 1}
    failed = messages_of(db, case.id)[-1]
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert failed.error
    assert send_queued_mail(db, world.admin.tenant_id, None) == {"sent": 0, "failed": 1}
    assert "not configured" in (messages_of(db, case.id)[-1].error or "")
    up = MailSettings(host="127.0.0.1", port=sink_port, from_address="help@kestrel.test", inbound_domain="kestrel.test")
    assert send_queued_mail(db, world.admin.tenant_id, up) == {"sent": 1, "failed": 0}
    assert len(keeper.messages) == 1
    assert messages_of(db, case.id)[-1].status == "sent"


def test_resolving_a_case_mails_the_customer_the_two_rating_links_in_their_language(
        db: Database, world: World, listener: int, sink: tuple[Sink, int], monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 13's CSAT: on resolution a signed one-click link (good / bad) reaches the customer by email."""
    import re
    from urllib.parse import parse_qs, urlsplit

    from crm_core.services.csat import read_csat_token

    monkeypatch.setenv("CRM_PUBLIC_URL", "https://crm.kestrel.test/")
    keeper, sink_port = sink
    customer_id, _ = customer_with_contact(db, world, "wang.fang@example.test")
    send(listener, message("wang.fang@example.test", "打印机坏了", "打印机无法开机。", Message_ID="<z1@example.test>"),
         f"support+{tenant_slug(db, world)}@example.test")
    [case] = cases_of(db, customer_id)
    version = transition_case(db, world.admin, case.id, CaseStatus.RESOLVED.value, expected_version=case.version)
    assert version > case.version
    settings = MailSettings(host="127.0.0.1", port=sink_port, from_address="help@kestrel.test",
                            inbound_domain="kestrel.test")
    assert send_queued_mail(db, world.admin.tenant_id, settings) == {"sent": 1, "failed": 0}
    [(_, rcpt_tos, sent)] = keeper.messages
    assert rcpt_tos == ["wang.fang@example.test"] and sent["In-Reply-To"] == "<z1@example.test>"
    body = sent.get_content()
    assert f"#{case.id}" in body and "已解决" in body  # written in the customer's language
    links = re.findall(r"https://crm\.kestrel\.test/\S+", body)
    assert [parse_qs(urlsplit(link).query)["score"] for link in links] == [["good"], ["bad"]]
    claim = read_csat_token(urlsplit(links[0]).path.rsplit("/", 1)[-1])
    assert claim.case_id == case.id and claim.language == "zh-CN"


# --- a public reply's files go with its email -----------------------------------------------------

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(64))
CSV = "价格,数量\n12.50,3\n".encode()
OLD_TEXT = "旧系统导出的说明\n".encode("gb18030")


def sink_settings(sink_port: int) -> MailSettings:
    return MailSettings(host="127.0.0.1", port=sink_port, from_address="help@kestrel.test",
                        inbound_domain="kestrel.test")


def emailed_case(db: Database, world: World) -> int:
    customer_id, contact_id = customer_with_contact(db, world, "li.lei@example.test")
    return create_case(db, world.admin, CaseInput(customer_id=customer_id, subject="Scanner", contact_id=contact_id,
                                                  assignee_id=world.admin.user_id))


def test_a_public_reply_sends_its_files_as_attachments_and_a_note_sends_nothing(
        db: Database, world: World, sink: tuple[Sink, int]) -> None:
    keeper, sink_port = sink
    case_id = emailed_case(db, world)
    add_case_reply(db, world.admin, case_id, "Internal: the log", internal=True, files=[NewFile("debug.log", b"x=1\n")])
    add_case_reply(db, world.admin, case_id, "Here are the settings and the price list.",
                   files=[NewFile("settings.png", PNG), NewFile("价格表.csv", CSV), NewFile("旧系统.txt", OLD_TEXT)])
    assert send_queued_mail(db, world.admin.tenant_id, sink_settings(sink_port)) == {"sent": 1, "failed": 0}
    [(_, rcpt_tos, sent)] = keeper.messages
    assert rcpt_tos == ["li.lei@example.test"]
    assert sent.get_content_type() == "multipart/mixed"
    text = sent.get_body(("plain",))
    assert text is not None and text.get_content().strip() == "Here are the settings and the price list."
    files = [(part.get_filename(), part.get_content_type(), part.get_content_charset(), part.get_payload(decode=True))
             for part in sent.iter_attachments()]
    assert files == [("settings.png", "image/png", None, PNG), ("价格表.csv", "text/csv", "utf-8", CSV),
                     ("旧系统.txt", "text/plain", "gb18030", OLD_TEXT)]


def test_a_reply_whose_file_lost_its_bytes_fails_visibly_instead_of_going_without_it(
        db: Database, world: World, sink: tuple[Sink, int]) -> None:
    keeper, sink_port = sink
    case_id = emailed_case(db, world)
    add_case_reply(db, world.admin, case_id, "The screenshot", files=[NewFile("settings.png", PNG)])
    digest = attachment_store.digest(PNG)
    (attachments_dir().resolve() / str(world.admin.tenant_id) / digest[:2] / digest).unlink()
    assert send_queued_mail(db, world.admin.tenant_id, sink_settings(sink_port)) == {"sent": 0, "failed": 1}
    failed = messages_of(db, case_id)[-1]
    assert failed.status == "failed" and "settings.png" in (failed.error or "") and "missing" in (failed.error or "")
    assert keeper.messages == []


def test_files_too_large_for_one_email_refuse_the_public_reply_but_not_a_note(
        db: Database, world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CRM_MAIL_ATTACHMENTS_MAX_BYTES", str(len(PNG) + len(CSV) - 1))
    case_id = emailed_case(db, world)
    files = [NewFile("settings.png", PNG), NewFile("价格表.csv", CSV)]
    with pytest.raises(ValidationFailed) as refused:
        add_case_reply(db, world.admin, case_id, "Too much for one email", files=files)
    assert refused.value.errors["files"][0] == "case_files.error.too_large_for_mail"
    assert events_of(db, case_id, CaseEventKind.REPLY) == [] and messages_of(db, case_id) == []
    add_case_reply(db, world.admin, case_id, "Kept as a note", internal=True, files=files)
    assert len(events_of(db, case_id, CaseEventKind.NOTE)) == 1


# --- which queue a new mail case goes to, and who gets it (decision 0031, amendment) ----------------

def east_members(world: World) -> set[int]:
    return {world.rep.user_id, world.rep_same_team.user_id}


def told_of_case(db: Database, user_id: int, case_id: int) -> int:
    from crm_core.models.notifications import Notification

    with db.system_session("test") as session:
        return len(session.scalars(select(Notification.id).where(
            Notification.user_id == user_id, Notification.kind == "case_assigned",
            Notification.entity == "case", Notification.entity_id == case_id)).all())


def queue_for(db: Database, world: World, team_id: int) -> None:
    sla_settings.save_queue(db, world.admin, team_id=team_id, method="round_robin", calendar_id=None)


def test_a_mail_case_goes_to_the_queue_of_its_receiving_address_and_is_assigned_in_turn(
        db: Database, world: World, listener: int) -> None:
    queue_for(db, world, world.east_team_id)
    mail_settings.save_mail_route(db, world.admin, address="Support@", team_id=world.east_team_id)
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")  # owned by the admin: no team
    to = f"support+{tenant_slug(db, world)}@example.test"
    send(listener, message("li.lei@example.test", "Printer broken"), to)
    send(listener, message("li.lei@example.test", "Scanner broken"), to)
    first, second = cases_of(db, customer_id)
    assert first.team_id == second.team_id == world.east_team_id
    assert first.assignee_id in east_members(world) and second.assignee_id in east_members(world)
    assert first.assignee_id != second.assignee_id  # round robin moved on
    for case in (first, second):
        [assigned] = events_of(db, case.id, CaseEventKind.ASSIGNEE)
        assert assigned.to_value == str(case.assignee_id) and assigned.actor_id is None
        assert case.assignee_id is not None and told_of_case(db, case.assignee_id, case.id) == 1


def test_an_exact_receiving_address_wins_over_the_owners_team(db: Database, world: World, listener: int) -> None:
    queue_for(db, world, world.east_team_id)
    queue_for(db, world, world.west_team_id)
    mail_settings.save_mail_route(db, world.admin, address="billing@acme.example", team_id=world.west_team_id)
    customer_id = create_random_customer(db, world.rep)  # owned by an East rep
    contacts.create_contact(db, world.rep, contacts.ContactInput(customer_id=customer_id, name="Li Lei",
                                                                 email="li.lei@example.test"))
    to = f"support+{tenant_slug(db, world)}@example.test"
    routed = message("li.lei@example.test", "Invoice wrong")
    routed.replace_header("To", "Billing <billing@acme.example>")
    send(listener, routed, to)
    send(listener, message("li.lei@example.test", "Printer broken"), to)  # to support@: no route
    billing, support = cases_of(db, customer_id)
    assert (billing.team_id, billing.assignee_id) == (world.west_team_id, world.rep_other_team.user_id)
    assert support.team_id == world.east_team_id and support.assignee_id in east_members(world)


def test_the_default_queue_takes_the_rest_and_without_one_the_case_waits_unassigned(
        db: Database, world: World, listener: int) -> None:
    queue_for(db, world, world.west_team_id)  # the rep's team East has no queue
    customer_id = create_random_customer(db, world.rep)
    contacts.create_contact(db, world.rep, contacts.ContactInput(customer_id=customer_id, name="Li Lei",
                                                                 email="li.lei@example.test"))
    to = f"support+{tenant_slug(db, world)}@example.test"
    send(listener, message("li.lei@example.test", "Before any default"), to)
    mail_settings.save_mail_settings(db, world.admin, mail_settings.MailSettingsInput(
        default_team_id=world.west_team_id))
    send(listener, message("li.lei@example.test", "After the default"), to)
    before, after = cases_of(db, customer_id)
    assert (before.team_id, before.assignee_id) == (None, None)
    assert events_of(db, before.id, CaseEventKind.ASSIGNEE) == []
    assert (after.team_id, after.assignee_id) == (world.west_team_id, world.rep_other_team.user_id)
    assert told_of_case(db, world.rep_other_team.user_id, after.id) == 1


def test_a_case_opened_on_the_form_in_a_queue_tells_its_assignee_but_not_a_self_assignment(
        db: Database, world: World) -> None:
    queue_for(db, world, world.west_team_id)
    customer_id = create_random_customer(db, world.admin)
    queued = create_case(db, world.admin, CaseInput(customer_id=customer_id, subject="Queued",
                                                     team_id=world.west_team_id))
    mine = create_case(db, world.rep, CaseInput(customer_id=create_random_customer(db, world.rep), subject="Mine",
                                                assignee_id=world.rep.user_id))
    assert told_of_case(db, world.rep_other_team.user_id, queued) == 1
    assert told_of_case(db, world.rep.user_id, mine) == 0
