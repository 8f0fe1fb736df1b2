"""The marketing sender on every database, to a local aiosmtpd sink (decision 0048): headers and footer, the
ledger asked at send time, the per-sender cap, tracking on and off, retries with the same Message-ID, rows a
killed worker left, a worker process killed with SIGKILL mid-batch; bounces and replies in inbound mail."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import func, select, update

from crm_core.db import Database
from crm_core.mail.inbound import receive_message
from crm_core.marketing.sender import CONNECTIONS, LEASE, MAX_ATTEMPTS, queue_email, send_marketing_mail
from crm_core.models import Campaign
from crm_core.models.marketing import (
    CampaignStep,
    ConsentAction,
    DoNotContact,
    EmailTemplate,
    MarketingEvent,
    MarketingMessage,
    MarketingSettings,
    ProofKind,
)
from crm_core.models.segments import CampaignMember
from crm_core.services.consent import record_in
from tests.conftest import live_database
from tests.factories import World, build_world, customer_with_contact, tenant_slug, unique
from tests.hosting import free_port
from tests.mail_sink import Sink

ROOT = Path(__file__).resolve().parents[2]
NOW = dt.datetime(2026, 12, 1, 9, 0)
BODY = "{{ contact.name }}, hello.\nOur offer: https://shop.example.com/offer?x=1.\n"


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


@pytest.fixture
def mail_env(monkeypatch: pytest.MonkeyPatch, sink: tuple[Sink, int]) -> Sink:
    keeper, port = sink
    for name, value in {"CRM_PUBLIC_URL": "https://crm.example.cn", "CRM_MAIL_FROM": "news@example.cn",
                        "CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(port), "CRM_MAIL_DOMAIN": "in.example.cn",
                        "CRM_CSAT_KEY": "marketing-test-key-0123456789abcdef"}.items():
        monkeypatch.setenv(name, value)
    for name in ("CRM_SMTP_USER", "CRM_SMTP_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return keeper


def queue_for(db: Database, world: World, addresses: list[str], *, grant: bool = True, language: str = "en",
              settings: dict[str, Any] | None = None) -> list[MarketingMessage]:
    """A campaign with one email step, a member per address (with a consent grant), each email queued."""
    contacts = [customer_with_contact(db, world, address) for address in addresses]
    with db.transaction(world.admin) as session:
        if settings is not None:
            session.add(MarketingSettings(**settings))
        campaign = Campaign(name=unique("Spring "), status="running")
        session.add(campaign)
        session.flush()
        template = EmailTemplate(name=f"Spring {campaign.id}", language=language,
                                 subject="Spring for {{ customer.name }}", body=BODY)
        session.add(template)
        session.flush()
        step = CampaignStep(campaign_id=campaign.id, position=1, kind="email", config={"template_id": template.id})
        session.add(step)
        session.flush()
        messages = []
        for address, (customer_id, contact_id) in zip(addresses, contacts, strict=True):
            if grant:
                record_in(session, channel="email", address=address, action=ConsentAction.GRANT, basis="consent",
                          proof_kind=ProofKind.FORM, customer_id=customer_id, now=NOW - dt.timedelta(days=2))
            member = CampaignMember(campaign_id=campaign.id, customer_id=customer_id, contact_id=contact_id,
                                    state="active")
            session.add(member)
            session.flush()
            messages.append(queue_email(session, member, step, now=NOW))
        session.expunge_all()
    assert all(message.status == "queued" for message in messages)
    return messages


def body_of(email: EmailMessage, kind: str) -> str:
    part = email.get_body((kind,))
    assert part is not None, f"no {kind} part"
    return str(part.get_content())


def statuses(db: Database) -> dict[str, str]:
    with db.system_session("test") as session:
        return dict(session.execute(select(MarketingMessage.to_address, MarketingMessage.status)).all())


def touches(db: Database, kind: str) -> list[str]:
    with db.system_session("test") as session:
        return list(session.scalars(select(MarketingEvent.detail).where(MarketingEvent.kind == kind)
                                    .order_by(MarketingEvent.id)))


def test_a_queued_email_leaves_once_with_its_headers_footer_and_lawful_basis(db: Database, world: World,
                                                                            mail_env: Sink) -> None:
    [queued] = queue_for(db, world, ["li@example.cn"], settings={
        "sender_name": "Acme 营销", "postal_address": "1 Bund Road, Shanghai", "tracking_enabled": True})
    run = send_marketing_mail(db, world.admin.tenant_id)
    assert (run.sent, run.skipped, run.problem) == (1, 0, None)
    assert send_marketing_mail(db, world.admin.tenant_id).sent == 0  # nothing is due any more
    [(envelope_from, recipients, email)] = mail_env.messages
    slug = tenant_slug(db, world)
    assert envelope_from == f"support+{slug}@in.example.cn" and recipients == ["li@example.cn"]
    assert email["Message-ID"] == queued.message_id and email["To"] == "li@example.cn"
    assert str(email["From"]) == "Acme 营销 <news@example.cn>"
    assert email["List-Unsubscribe"] == f"<https://crm.example.cn/m/u/{queued.token}>"
    assert email["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert email["Reply-To"] == f"support+{slug}@in.example.cn"
    text = body_of(email, "plain")
    assert "Li Lei, hello." in text and "1 Bund Road, Shanghai" in text and "Acme 营销 · news@example.cn" in text
    assert f"Unsubscribe: https://crm.example.cn/m/u/{queued.token}" in text  # untracked: the way out stays plain
    assert "https://crm.example.cn/m/c/" in text and "shop.example.com%2Foffer" in text
    html = body_of(email, "html")
    assert f'src="https://crm.example.cn/m/o/{queued.token}.gif"' in html
    with db.system_session("test") as session:
        row = session.get(MarketingMessage, queued.id)
        assert row is not None and row.status == "sent" and row.reason.startswith("basis:consent#")
        assert row.consent_record_id is not None and row.sent_at is not None and row.attempts == 1
    assert touches(db, "sent") == [row.reason]


def test_tracking_off_sends_plain_text_without_rewritten_links(db: Database, world: World, mail_env: Sink) -> None:
    queue_for(db, world, ["off@example.cn"], settings={"tracking_enabled": False})
    assert send_marketing_mail(db, world.admin.tenant_id).sent == 1
    email = mail_env.messages[0][2]
    assert email.get_content_type() == "text/plain"
    text = email.get_content()
    assert "https://shop.example.com/offer?x=1." in text and "/m/c/" not in text and "/m/o/" not in text


def test_consent_withdrawn_after_queueing_skips_the_send_and_says_why(db: Database, world: World,
                                                                     mail_env: Sink) -> None:
    kept, withdrawn, listed, never = queue_for(db, world, ["a@example.cn", "b@example.cn", "c@example.cn",
                                                           "d@example.cn"])
    with db.transaction(world.admin) as session:
        record = record_in(session, channel="email", address="B@example.cn", action=ConsentAction.WITHDRAW,
                           proof_kind=ProofKind.MANUAL, proof="asked on the phone")
        session.add(DoNotContact(channel="all", address="c@example.cn", reason="asked"))
        record_id = record.id
    with db.system_transaction("test: a grant recorded later than the send") as session:
        session.execute(update(MarketingMessage).where(MarketingMessage.id == never.id)
                        .values(to_address="nobody@example.cn"))
    run = send_marketing_mail(db, world.admin.tenant_id)
    assert (run.sent, run.skipped) == (1, 3)
    assert [recipients for _, recipients, _ in mail_env.messages] == [["a@example.cn"]]
    assert statuses(db) == {"a@example.cn": "sent", "b@example.cn": "skipped", "c@example.cn": "skipped",
                            "nobody@example.cn": "skipped"}
    assert touches(db, "skipped") == [f"blocked:withdrawn#{record_id}", "blocked:do_not_contact", "blocked:no_basis"]


def test_the_daily_cap_per_sender_holds_and_the_rest_waits_for_tomorrow(db: Database, world: World,
                                                                       mail_env: Sink) -> None:
    queue_for(db, world, [f"cap{i}@example.cn" for i in range(5)], settings={"daily_cap_per_sender": 3})
    first = send_marketing_mail(db, world.admin.tenant_id, now=NOW)
    assert (first.sent, first.capped, first.skipped) == (3, 2, 0)
    assert send_marketing_mail(db, world.admin.tenant_id, now=NOW + dt.timedelta(hours=1)).sent == 0
    assert Counter(statuses(db).values()) == {"sent": 3, "queued": 2}
    with db.system_transaction("test: the three went out today") as session:  # sent_at is the real clock
        session.execute(update(MarketingMessage).where(MarketingMessage.status == "sent").values(sent_at=NOW))
    tomorrow = send_marketing_mail(db, world.admin.tenant_id, now=NOW + dt.timedelta(days=1))
    assert tomorrow.sent == 2 and len(mail_env.messages) == 5


class Refusing(Sink):
    """Answers 451 to the DATA of the first ``failures`` messages, then accepts."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.refused = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refused < self.failures:
            self.refused += 1
            return "451 4.3.0 Try again later"
        return await super().handle_DATA(server, session, envelope)


def refusing_sink(monkeypatch: pytest.MonkeyPatch, failures: int) -> tuple[Refusing, Controller]:
    keeper = Refusing(failures)
    port = free_port()
    controller = Controller(keeper, hostname="127.0.0.1", port=port)
    controller.start()
    monkeypatch.setenv("CRM_SMTP_PORT", str(port))
    return keeper, controller


def test_a_refusal_is_retried_with_backoff_and_the_same_message_id_then_fails(
        db: Database, world: World, mail_env: Sink, monkeypatch: pytest.MonkeyPatch) -> None:
    keeper, controller = refusing_sink(monkeypatch, failures=1)
    try:
        [queued] = queue_for(db, world, ["retry@example.cn"])
        first = send_marketing_mail(db, world.admin.tenant_id, now=NOW)
        assert (first.sent, first.retried) == (0, 1) and statuses(db) == {"retry@example.cn": "queued"}
        assert send_marketing_mail(db, world.admin.tenant_id, now=NOW + dt.timedelta(seconds=30)).sent == 0  # backoff
        second = send_marketing_mail(db, world.admin.tenant_id, now=NOW + dt.timedelta(minutes=2))
        assert second.sent == 1 and len(keeper.messages) == 1
        assert keeper.messages[0][2]["Message-ID"] == queued.message_id
        keeper.failures, keeper.refused = 100, 0  # from now on every attempt is refused
        [doomed] = queue_for(db, world, ["doomed@example.cn"])
        moment = NOW
        for _ in range(MAX_ATTEMPTS):
            send_marketing_mail(db, world.admin.tenant_id, now=moment)
            moment += dt.timedelta(hours=2)
        with db.system_session("test") as session:
            row = session.get(MarketingMessage, doomed.id)
            assert row is not None and (row.status, row.attempts) == ("failed", MAX_ATTEMPTS)
            assert row.last_error is not None and "451" in row.last_error
    finally:
        controller.stop()


def test_a_row_left_sending_by_a_dead_worker_is_sent_again_with_its_message_id(db: Database, world: World,
                                                                              mail_env: Sink) -> None:
    [queued] = queue_for(db, world, ["left@example.cn"])
    with db.system_transaction("test: a worker claimed it and died") as session:
        session.execute(update(MarketingMessage).where(MarketingMessage.id == queued.id)
                        .values(status="sending", claimed_at=NOW, attempts=1))
    assert send_marketing_mail(db, world.admin.tenant_id, now=NOW + LEASE / 2).sent == 0  # still under lease
    again = send_marketing_mail(db, world.admin.tenant_id, now=NOW + LEASE + dt.timedelta(seconds=1))
    assert again.sent == 1 and mail_env.messages[0][2]["Message-ID"] == queued.message_id


def dsn(message_id: str, recipient: str, status: str, to: str) -> bytes:
    return (f"From: Mail Delivery System <MAILER-DAEMON@mx.example.net>\r\nTo: {to}\r\n"
            "Subject: Undelivered Mail Returned to Sender\r\nMessage-ID: <dsn-1@mx.example.net>\r\n"
            "Auto-Submitted: auto-replied\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n\r\n'
            "--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.net\r\n\r\n"
            f"Final-Recipient: rfc822; {recipient}\r\nAction: failed\r\nStatus: {status}\r\n\r\n"
            f"--B\r\nContent-Type: text/rfc822-headers\r\n\r\nMessage-ID: {message_id}\r\nTo: {recipient}\r\n"
            "--B--\r\n").encode()


def test_a_bounce_marks_the_message_and_the_address_and_a_reply_is_a_touch_not_a_case(
        db: Database, world: World, mail_env: Sink) -> None:
    bounced, answered = queue_for(db, world, ["gone@example.cn", "fan@example.cn"])
    assert send_marketing_mail(db, world.admin.tenant_id).sent == 2
    inbox = f"support+{tenant_slug(db, world)}@in.example.cn"
    outcome = receive_message(db, dsn(bounced.message_id, "gone@example.cn", "5.1.1", inbox), [inbox],
                              envelope_from="")
    assert outcome.action == "bounced"
    assert receive_message(db, dsn(bounced.message_id, "gone@example.cn", "5.1.1", inbox), [inbox],
                           envelope_from="").action == "bounced"  # the same DSN again changes nothing
    assert statuses(db)["gone@example.cn"] == "bounced" and touches(db, "bounced") == ["bounce: 5.1.1"]
    with db.system_session("test") as session:
        assert session.scalars(select(DoNotContact.reason).where(DoNotContact.address == "gone@example.cn")).all() \
            == ["bounce: 5.1.1"]
    other = f"support+{tenant_slug(db, world, other=True)}@in.example.cn"  # another tenant's inbox: not theirs
    assert receive_message(db, dsn(answered.message_id, "fan@example.cn", "5.1.1", other), [other],
                           envelope_from="").action == "dropped"
    reply = (f"From: Li Lei <fan@example.cn>\r\nTo: {inbox}\r\nSubject: Re: Spring\r\n"
             f"Message-ID: <reply-1@example.cn>\r\nIn-Reply-To: {answered.message_id}\r\n\r\n"
             "Tell me more.\r\n").encode()
    assert receive_message(db, reply, [inbox], envelope_from="fan@example.cn").action == "replied"
    assert receive_message(db, reply, [inbox], envelope_from="fan@example.cn").action == "replied"
    assert touches(db, "replied") == ["<reply-1@example.cn>"]
    from crm_core.models import Case

    with db.system_session("test") as session:
        assert session.scalar(select(func.count()).select_from(Case)) == 0


# --- a worker process killed mid-batch ------------------------------------------------------------------

WORKER = """
import sys, datetime as dt
from crm_core.db import open_database
from crm_core.marketing.sender import send_marketing_mail
now = dt.datetime.fromisoformat(sys.argv[3]) if len(sys.argv) > 3 else None
run = send_marketing_mail(open_database(sys.argv[1]), int(sys.argv[2]), now=now, batch_size=25)
print(run.as_dict())
"""


class Slow(Sink):
    """Takes 20 ms per message: a kill lands in the middle of a batch."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        import asyncio

        await asyncio.sleep(0.02)
        return await super().handle_DATA(server, session, envelope)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"])
def test_a_worker_killed_mid_batch_sends_every_message_once(kind: str, tmp_path_factory: pytest.TempPathFactory,
                                                           tmp_path: Path) -> None:
    from benchmarks.marketing_send import seed_outbox
    from crm_core.models import utcnow
    from crm_core.services import auth, tenants

    count = 120
    keeper = Slow()
    port = free_port()
    controller = Controller(keeper, hostname="127.0.0.1", port=port)
    controller.start()
    env = {**os.environ, "CRM_PUBLIC_URL": "https://crm.example.cn", "CRM_MAIL_FROM": "news@example.cn",
           "CRM_SMTP_HOST": "127.0.0.1", "CRM_SMTP_PORT": str(port), "CRM_CSAT_KEY": "kill-test-key-0123456789abcdef",
           "CRM_JOBS_PATH": str(tmp_path / "jobs.db"), "PYTHONPATH": str(ROOT)}
    env.pop("CRM_SMTP_USER", None)
    try:
        with live_database(kind, tmp_path_factory, "marketing-kill") as db:
            url = db.engine.url.render_as_string(hide_password=False)
            created = tenants.create_tenant(db, name="Kill", slug="kill", admin_username="killadmin",
                                            admin_password="Kill-test-password-1")
            admin = auth.load_actor(db, "killadmin")
            assert admin is not None
            message_ids = seed_outbox(db, created.tenant_id, admin, count, sender="news@example.cn")
            script = tmp_path / "worker.py"
            script.write_text(WORKER, encoding="utf-8")
            worker = subprocess.Popen([sys.executable, str(script), url, str(created.tenant_id)], env=env, cwd=ROOT)
            deadline = time.monotonic() + 120
            while len(keeper.messages) < 40 and worker.poll() is None:
                assert time.monotonic() < deadline, "the worker sent too little"
                time.sleep(0.01)
            worker.send_signal(signal.SIGKILL)
            worker.wait(30)
            killed_at = len(keeper.messages)
            assert killed_at < count, "the worker finished before it was killed"
            later = (utcnow() + LEASE + dt.timedelta(seconds=5)).isoformat()  # the dead worker's lease has run out
            done = subprocess.run([sys.executable, str(script), url, str(created.tenant_id), later], env=env,
                                  cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
            assert "'sent'" in done.stdout
            received = Counter(str(email["Message-ID"]) for _, _, email in keeper.messages)
            assert set(received) == set(message_ids)  # none lost
            # at most one per SMTP connection: the message between the server's 250 and our commit
            assert sum(received.values()) - count <= CONNECTIONS
            assert Counter(statuses(db).values()) == {"sent": count}
    finally:
        controller.stop()
