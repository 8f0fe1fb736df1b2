"""Email-to-case from an IMAP mailbox, on every database, against a real Dovecot on this machine
(tests/imap_server.py): new messages become cases or answers and are flagged read, refused ones stay
unread for a person, nothing is filed twice (also after the folder is renumbered), the mailbox is its
tenant's whatever the address, TLS and STARTTLS are verified, and a failure is kept for the Mail page."""

from __future__ import annotations

from collections.abc import Iterator
from email.message import EmailMessage

import pytest
from sqlalchemy import select, update

from crm_core.db import Database
from crm_core.errors import MailFetchFailed, ValidationFailed
from crm_core.mail.imap import fetch_inbox
from crm_core.models import Case
from crm_core.models.jobs import JobSchedule
from crm_core.models.mail import MailInbox
from crm_core.models.service import CaseEvent
from crm_core.rules.mail import MAX_MESSAGE_BYTES
from crm_core.services.mail_settings import MailInboxInput, save_mail_inbox
from tests.factories import World, build_world, customer_with_contact, tenant_slug
from tests.imap_server import ImapServer, dovecot_missing, running_imap_server

pytestmark = pytest.mark.skipif(dovecot_missing() is not None, reason=dovecot_missing() or "")


@pytest.fixture(scope="module")
def imap() -> Iterator[ImapServer]:
    with running_imap_server() as server:
        yield server


@pytest.fixture
def world(db: Database, monkeypatch: pytest.MonkeyPatch) -> World:
    monkeypatch.setenv("CRM_SECRET_KEY", "a test key of at least thirty-two characters")
    return build_world(db)


def mailbox(db: Database, world: World, imap: ImapServer, *, security: str = "none", port: int | None = None,
            password: str | None = None) -> str:
    """Tenant A reads a new user's INBOX on the test server; returns the user."""
    user = imap.add_user()
    save_mail_inbox(db, world.admin, MailInboxInput(enabled=True, host="127.0.0.1", port=port or imap.port,
                                                    security=security, username=user,
                                                    password=password or imap.passwords[user]),
                    expected_version=inbox_version(db, world))
    return user


def inbox_version(db: Database, world: World) -> int | None:
    with db.system_session("test") as session:
        return session.scalar(select(MailInbox.version).where(MailInbox.tenant_id == world.admin.tenant_id))


def mail(sender: str, subject: str, body: str = "The scanner does not pair.", *, to: str = "help@acme.example",
         **headers: str) -> bytes:
    email = EmailMessage()
    email["From"], email["To"], email["Subject"] = sender, to, subject
    for name, value in headers.items():
        email[name.replace("_", "-")] = value
    email.set_content(body)
    return email.as_bytes()


def cases_of(db: Database, customer_id: int) -> list[Case]:
    with db.system_session("test") as session:
        found = list(session.scalars(select(Case).where(Case.customer_id == customer_id).order_by(Case.id)))
        session.expunge_all()
        return found


def test_new_mail_becomes_a_case_is_flagged_read_and_is_not_filed_again(db: Database, world: World,
                                                                         imap: ImapServer) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    user = mailbox(db, world, imap)
    imap.deliver(user, mail("Li Lei <li.lei@example.test>", "Scanner broken", Message_ID="<s1@example.test>"))
    result = fetch_inbox(db, world.admin.tenant_id)
    assert result is not None and (result.filed, result.refused, result.last_uid) == (1, 0, 1)
    [case] = cases_of(db, customer_id)
    assert (case.channel, case.subject, case.description.strip()) == ("email", "Scanner broken",
                                                                      "The scanner does not pair.")
    assert imap.unseen(user) == 0
    again = fetch_inbox(db, world.admin.tenant_id)
    assert again is not None and (again.filed, again.duplicates, again.last_uid) == (0, 0, 1)
    with db.system_session("test") as session:
        row = session.scalar(select(MailInbox).where(MailInbox.tenant_id == world.admin.tenant_id))
        assert row is not None and row.checked_at is not None and row.last_error is None
        assert row.version == 1  # the job's marks do not make the admin's open form stale


def test_an_answer_threads_machine_mail_is_dropped_and_a_refused_message_stays_unread(
        db: Database, world: World, imap: ImapServer) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    user = mailbox(db, world, imap)
    imap.deliver(user, mail("li.lei@example.test", "Scanner broken"))
    fetch_inbox(db, world.admin.tenant_id)
    [case] = cases_of(db, customer_id)
    imap.deliver(user, mail("li.lei@example.test", f"Re: [#CASE-{case.id}] Scanner broken", "Still broken."))
    imap.deliver(user, mail("li.lei@example.test", "Out of office", Auto_Submitted="auto-replied"))
    imap.deliver(user, mail("stranger@example.test", "Buy now"))
    imap.deliver(user, b"From: li.lei@example.test\r\nSubject: oversize\r\n\r\n" + b"x" * (MAX_MESSAGE_BYTES + 10))
    result = fetch_inbox(db, world.admin.tenant_id)
    assert result is not None and (result.filed, result.dropped, result.refused, result.last_uid) == (1, 1, 2, 5)
    assert len(cases_of(db, customer_id)) == 1
    with db.system_session("test") as session:
        answers = list(session.scalars(select(CaseEvent.body).where(CaseEvent.case_id == case.id,
                                                                    CaseEvent.kind == "inbound")))
    assert [answer.strip() for answer in answers if answer] == ["Still broken."]
    assert imap.unseen(user) == 2  # the stranger's and the oversize message wait for a person


def test_a_renumbered_folder_is_read_again_without_filing_anything_twice(db: Database, world: World,
                                                                         imap: ImapServer) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    user = mailbox(db, world, imap)
    for number in (1, 2):
        imap.deliver(user, mail("li.lei@example.test", f"Problem {number}", Message_ID=f"<p{number}@example.test>"))
    fetch_inbox(db, world.admin.tenant_id)
    with db.system_transaction("test: another UIDVALIDITY") as session:
        session.execute(update(MailInbox).where(MailInbox.tenant_id == world.admin.tenant_id)
                        .values(uid_validity=1, last_uid=99))
    result = fetch_inbox(db, world.admin.tenant_id)
    assert result is not None and (result.filed, result.duplicates, result.last_uid) == (0, 2, 2)
    assert len(cases_of(db, customer_id)) == 2


def test_the_mailbox_files_for_its_own_tenant_whatever_the_message_is_addressed_to(
        db: Database, world: World, imap: ImapServer) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    other_customer, _ = customer_with_contact(db, world, "li.lei@example.test", other=True)
    user = mailbox(db, world, imap)
    other_slug = tenant_slug(db, world, other=True)
    imap.deliver(user, mail("li.lei@example.test", "For whom?", to=f"support+{other_slug}@example.test"))
    fetch_inbox(db, world.admin.tenant_id)
    assert len(cases_of(db, customer_id)) == 1 and cases_of(db, other_customer) == []


def test_a_wrong_password_fails_the_job_and_the_reason_is_kept_for_the_mail_page(db: Database, world: World,
                                                                                imap: ImapServer) -> None:
    mailbox(db, world, imap, password="not the password")
    with pytest.raises(MailFetchFailed) as failed:
        fetch_inbox(db, world.admin.tenant_id)
    with db.system_session("test") as session:
        error = session.scalar(select(MailInbox.last_error).where(MailInbox.tenant_id == world.admin.tenant_id))
    assert error is not None and "AUTHENTICATIONFAILED" in error
    assert failed.value.params["error"] == error


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_tls_and_starttls_connections_are_verified(db: Database, world: World, imap: ImapServer, security: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    customer_id, _ = customer_with_contact(db, world, "li.lei@example.test")
    user = mailbox(db, world, imap, security=security, port=imap.tls_port if security == "tls" else imap.port)
    imap.deliver(user, mail("li.lei@example.test", "Over TLS"))
    with pytest.raises(MailFetchFailed) as untrusted:  # a certificate nobody vouches for
        fetch_inbox(db, world.admin.tenant_id)
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.value.params["error"]
    monkeypatch.setenv("SSL_CERT_FILE", str(imap.cert_file))  # this machine trusts the test server's certificate
    result = fetch_inbox(db, world.admin.tenant_id)
    assert result is not None and result.filed == 1 and len(cases_of(db, customer_id)) == 1


def test_the_mailbox_form_refuses_clear_text_to_another_machine_and_keeps_an_every_minute_schedule(
        db: Database, world: World, imap: ImapServer) -> None:
    with pytest.raises(ValidationFailed) as refused:
        save_mail_inbox(db, world.admin, MailInboxInput(enabled=True, host="imap.example.test", port=143,
                                                        security="none", username="support", password="x"))
    assert refused.value.errors["security"][0] == "mail.inbox.tls_required"
    with pytest.raises(ValidationFailed) as incomplete:
        save_mail_inbox(db, world.admin, MailInboxInput(enabled=True, host="imap.example.test"))
    assert set(incomplete.value.errors) == {"username", "password"}
    mailbox(db, world, imap)
    with db.system_session("test") as session:
        schedule = session.scalar(select(JobSchedule).where(JobSchedule.tenant_id == world.admin.tenant_id,
                                                            JobSchedule.kind == "mail_fetch"))
        assert schedule is not None and (schedule.minute, schedule.hour, schedule.enabled) == ("*", "*", True)
    save_mail_inbox(db, world.admin, MailInboxInput(enabled=False, host="127.0.0.1", security="none"),
                    expected_version=inbox_version(db, world))
    with db.system_session("test") as session:
        assert session.scalar(select(JobSchedule.enabled).where(JobSchedule.tenant_id == world.admin.tenant_id,
                                                                JobSchedule.kind == "mail_fetch")) is False
    assert fetch_inbox(db, world.admin.tenant_id) is None  # switched off: the job reads nothing
