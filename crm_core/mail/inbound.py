"""Email-to-case: one received message becomes a new case or the customer's answer on a case.

The use case :func:`receive_message` takes the raw bytes and the envelope (as the SMTP listener
got them), applies the rules of :mod:`crm_core.rules.mail` and writes in one system transaction
(audited with the reason ``mail-in``): the case or its history row (``inbound``) and the message's
``case_messages`` row with its Message-ID, In-Reply-To and References. A new case goes to a team's
queue (:func:`inbound_queue`) and is assigned by its method, as a new case of the form is. A message
that threads to a case merged into another goes to the survivor; the message's files are kept on the case under the
limits of an upload (:mod:`crm_core.services.case_attachments`), a refused one dropped with a note.
What it refuses raises :class:`MailRefused` carrying the SMTP reply; machine mail is accepted and
dropped (a refusal would bounce to a robot and start the loop it avoids). Decision 0031.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from email import policy
from email.errors import HeaderParseError, MessageError
from email.message import EmailMessage
from email.parser import BytesParser

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.access import bind_system
from crm_core.db import Database
from crm_core.jobs.service import ensure_schedule
from crm_core.mail.outbound import KIND as SEND_KIND
from crm_core.models import Case, CaseChannel, CaseStatus, Contact, Customer, Tenant, User, utcnow
from crm_core.models.mail import MailRoute, TenantMailSettings
from crm_core.models.service import (
    CaseEvent,
    CaseEventKind,
    CaseMessage,
    CaseMessageDirection,
    CaseMessageStatus,
    ServiceQueue,
)
from crm_core.rules import mail as rules
from crm_core.rules.attachments import MAX_FILES, safe_file_name
from crm_core.rules.case_flow import transition_problem
from crm_core.rules.fields import clean_text, strip_hidden
from crm_core.services.case_attachments import CheckedFile, NewFile, check_file, keep_files
from crm_core.services.cases import assign_from_queue
from crm_core.services.sla import recompute_case_sla

LOG = logging.getLogger("kestrel.mail")
SUBJECT_LENGTH = 200
DESCRIPTION_LENGTH = 20_000
EVENT_BODY_LENGTH = 4000
MAX_MERGE_HOPS = 20


class MailRefused(Exception):
    """A message the listener answers with an SMTP error: ``reply`` is the full SMTP reply line."""

    def __init__(self, reply: str, reason: str) -> None:
        super().__init__(reason)
        self.reply = reply
        self.reason = reason


@dataclass(frozen=True)
class MailOutcome:
    """What became of an accepted message: ``action`` is created, threaded, duplicate, dropped, or — for our
    marketing mail — bounced or replied."""

    action: str
    case_id: int | None = None
    reason: str = ""


def parse_message(raw: bytes) -> EmailMessage:
    """The message parsed with the standard library (policy=default); MailRefused when it is malformed."""
    try:
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        # reading the headers that matter forces their parsing: a broken one raises here
        for name in ("From", "Subject", "Message-ID", "In-Reply-To", "References"):
            str(message.get(name, ""))
    except (HeaderParseError, MessageError, ValueError, TypeError, IndexError) as error:
        raise MailRefused("550 5.6.0 Malformed message", f"malformed: {type(error).__name__}") from None
    if not message.keys() or message.get("From") is None:
        raise MailRefused("550 5.6.0 Malformed message: no From header", "malformed: no From")
    return message


def _text(message: EmailMessage) -> str:
    try:
        return rules.body_text(message)
    except (LookupError, UnicodeError, MessageError, ValueError, KeyError) as error:
        raise MailRefused("550 5.6.0 Malformed message body", f"malformed body: {type(error).__name__}") from None


def _tenant(session: Session, recipients: list[str], tenant_id: int | None = None) -> Tenant:
    if tenant_id is not None:  # read from the tenant's own mailbox (crm_core.mail.imap)
        found = session.get(Tenant, tenant_id)
        if found is not None and found.is_active:
            return found
        raise MailRefused("550 5.1.1 No such mailbox", "the mailbox's tenant is not active")
    for recipient in recipients:
        slug = rules.tenant_slug(recipient)
        if slug is None:
            continue
        tenant = session.scalar(select(Tenant).where(Tenant.slug == slug, Tenant.is_active.is_(True)))
        if tenant is not None:
            return tenant
    raise MailRefused("550 5.1.1 No such mailbox", "no tenant for the recipients")


def _contact(session: Session, tenant_id: int, sender: str) -> Contact:
    """The sender's contact: the oldest live contact of a live customer with that normalised address."""
    contact = session.scalar(
        select(Contact).join(Customer, Customer.id == Contact.customer_id)
        .where(Contact.tenant_id == tenant_id, Contact.email_normalized == sender, Customer.archived_at.is_(None))
        .order_by(Contact.id).limit(1))
    if contact is None:
        raise MailRefused("550 5.7.1 Sender is not a known contact", "unknown sender")
    return contact


def _threaded_case(session: Session, tenant_id: int, contact: Contact, message: EmailMessage) -> Case | None:
    """The open-able case this message continues (by tag, then by the headers), if the sender's customer owns it."""
    candidates: list[int] = []
    tagged = rules.case_tag(str(message.get("Subject", "")))
    if tagged is not None:
        candidates.append(tagged)
    ids = rules.thread_ids(str(message.get("In-Reply-To", "")), str(message.get("References", "")))
    if ids:
        known = session.execute(select(CaseMessage.message_id, CaseMessage.case_id).where(
            CaseMessage.tenant_id == tenant_id, CaseMessage.message_id.in_(ids))).all()
        by_id = dict(known)
        candidates += [by_id[message_id] for message_id in ids if message_id in by_id]
    for case_id in candidates:
        case = _survivor(session, session.get(Case, case_id))
        if (case is not None and case.tenant_id == tenant_id and case.customer_id == contact.customer_id
                and case.status != CaseStatus.CLOSED.value):
            return case
    return None


def _survivor(session: Session, case: Case | None) -> Case | None:
    """``case``, or the case it was merged into: a customer answering the duplicate's thread reaches the survivor
    (merges keep one hop; the bound only guards against a loop)."""
    for _ in range(MAX_MERGE_HOPS):
        if case is None or case.merged_into_id is None:
            return case
        case = session.get(Case, case.merged_into_id)
    return None


def _keep_attachments(session: Session, case: Case, event: CaseEvent | None, message: EmailMessage,
                      now: dt.datetime) -> None:
    """The mail's files kept on the case under the same limits as an upload; a refused one is dropped with the
    reason logged and a ``file_refused`` row on the timeline (the mail itself is never refused for a file)."""
    for number, part in enumerate(message.iter_attachments()):
        name = strip_hidden(str(part.get_filename() or ""))[:255] or "attachment"
        try:
            data = part.get_payload(decode=True)
        except (LookupError, ValueError, MessageError):
            data = None
        if number >= MAX_FILES:
            checked: CheckedFile | tuple[str, dict[str, object]] = ("case_files.error.too_many", {"max": MAX_FILES})
        elif not isinstance(data, bytes):
            checked = ("case_files.error.unreadable", {})
        else:
            checked = check_file(NewFile(name, data))
        if isinstance(checked, CheckedFile):
            keep_files(session, case, [checked], event_id=event.id if event is not None else None, source="mail",
                       uploaded_by_id=None)
            continue
        LOG.info("mail attachment dropped from case %s: %s (%s)", case.id, checked[0], name)
        session.add(CaseEvent(tenant_id=case.tenant_id, case_id=case.id, at=now, kind=CaseEventKind.FILE_REFUSED,
                              to_value=checked[0][:64], body=safe_file_name(name)))


def _store_message(session: Session, case: Case, event: CaseEvent | None, message: EmailMessage,
                   message_id: str, sender: str, recipient: str) -> None:
    session.add(CaseMessage(
        tenant_id=case.tenant_id, case_id=case.id, event_id=event.id if event is not None else None,
        direction=CaseMessageDirection.INBOUND, status=CaseMessageStatus.RECEIVED, message_id=message_id[:250],
        in_reply_to=str(message.get("In-Reply-To", "")).strip()[:250] or None,
        references=str(message.get("References", "")).strip()[:2000] or None,
        from_address=sender[:254], to_address=recipient[:254],
        subject=str(message.get("Subject", "")).strip()[:250], attempts=0))


def inbound_queue(session: Session, tenant_id: int, customer_id: int, addresses: list[str]) -> int | None:
    """The team whose queue a new mail case goes to: the route of the address it was sent to, else the team of
    the customer's owner when that team has a queue, else the tenant's default inbound queue, else none."""
    routes = {address: team_id for address, team_id in session.execute(
        select(MailRoute.address, MailRoute.team_id).where(MailRoute.tenant_id == tenant_id))}
    routed = rules.routed_team(addresses, routes)
    if routed is not None:
        return routed
    owner_team = session.scalar(
        select(User.team_id).join(Customer, Customer.owner_id == User.id)
        .join(ServiceQueue, ServiceQueue.team_id == User.team_id)
        .where(Customer.id == customer_id, User.is_active.is_(True)))
    if owner_team is not None:
        return int(owner_team)
    return session.scalar(select(TenantMailSettings.default_team_id)
                          .where(TenantMailSettings.tenant_id == tenant_id))


def _open_case(session: Session, tenant_id: int, contact: Contact, subject: str, text: str,
               now: dt.datetime, addresses: list[str]) -> Case:
    """A new email case in the queue :func:`inbound_queue` picks, assigned by that queue's method."""
    case = Case(tenant_id=tenant_id, customer_id=contact.customer_id, contact_id=contact.id, opened_at=now,
                status=CaseStatus.NEW.value, subject=subject, description=text[:DESCRIPTION_LENGTH],
                channel=CaseChannel.EMAIL.value,
                team_id=inbound_queue(session, tenant_id, contact.customer_id, addresses))
    session.add(case)
    session.flush()
    if case.team_id is not None:
        assign_from_queue(session, case)
    session.add(CaseEvent(tenant_id=tenant_id, case_id=case.id, at=now, kind=CaseEventKind.OPENED,
                          to_value=case.channel))
    session.add(CaseEvent(tenant_id=tenant_id, case_id=case.id, at=now, kind=CaseEventKind.STATUS,
                          to_value=case.status))
    if case.assignee_id is not None:
        session.add(CaseEvent(tenant_id=tenant_id, case_id=case.id, at=now, kind=CaseEventKind.ASSIGNEE,
                              to_value=str(case.assignee_id)))
    return case


def _continue_case(session: Session, case: Case, text: str, now: dt.datetime) -> CaseEvent:
    """The customer's answer on ``case``: a history row; a case waiting on the customer (or resolved, within
    the reopen window) goes back to open, which starts the next-response clock."""
    event = CaseEvent(tenant_id=case.tenant_id, case_id=case.id, at=now, kind=CaseEventKind.INBOUND,
                      body=text[:EVENT_BODY_LENGTH] or None)
    session.add(event)
    if case.status in (CaseStatus.PENDING.value, CaseStatus.RESOLVED.value) and transition_problem(
            case.status, CaseStatus.OPEN.value, resolved_at=case.resolved_at, now=now) is None:
        session.add(CaseEvent(tenant_id=case.tenant_id, case_id=case.id, at=now, kind=CaseEventKind.STATUS,
                              from_value=case.status, to_value=CaseStatus.OPEN.value))
        case.status = CaseStatus.OPEN.value
        case.resolved_at = None
    return event


def _marketing_answer(db: Database, message: EmailMessage, recipients: list[str], envelope_from: str | None,
                      now: dt.datetime | None) -> MailOutcome | None:
    """A bounce of one of our marketing messages, or a person's reply to one: recorded on the campaign
    (crm_core.marketing.replies), never a case; None when the message is neither (decision 0048)."""
    from crm_core.marketing.replies import record_bounce, record_reply
    from crm_core.rules.marketing_mail import is_delivery_report

    if is_delivery_report(message):
        with db.system_transaction("mail-in: marketing bounce") as session:
            bounced = record_bounce(session, message, recipients, now=now)
        return None if bounced is None else MailOutcome("bounced", reason=f"marketing message {bounced.id}")
    if rules.automatic_reason(message, envelope_from) is not None:
        return None  # an out-of-office answer is not the person's reply
    with db.system_transaction("mail-in: marketing reply") as session:
        answered = record_reply(session, message, recipients, now=now)
    return None if answered is None else MailOutcome("replied", reason=f"marketing message {answered.id}")


def receive_message(db: Database, raw: bytes, recipients: list[str], *, envelope_from: str | None = None,
                    now: dt.datetime | None = None, tenant_id: int | None = None) -> MailOutcome:
    """Turn one received message into a case or an answer on one; raises MailRefused (with its SMTP reply).
    ``tenant_id``: the message was read from that tenant's mailbox (IMAP), whatever it was addressed to."""
    if len(raw) > rules.MAX_MESSAGE_BYTES:
        raise MailRefused("552 5.3.4 Message too big", f"oversize: {len(raw)} bytes")
    message = parse_message(raw)
    marketing = _marketing_answer(db, message, recipients, envelope_from, now)
    if marketing is not None:
        return marketing
    automatic = rules.automatic_reason(message, envelope_from)
    if automatic is not None:
        return MailOutcome("dropped", reason=automatic)
    sender = rules.sender_address(message)
    if sender is None:
        raise MailRefused("550 5.6.0 Malformed message: bad From address", "malformed: From address")
    text = _text(message)
    subject = (clean_text(strip_hidden(str(message.get("Subject", "")))) or "")[:SUBJECT_LENGTH]
    if not text and not subject:
        raise MailRefused("550 5.6.0 Empty message", "malformed: no subject and no text")
    message_id = str(message.get("Message-ID", "")).strip()
    now = now or utcnow()
    with db.system_transaction("mail-in") as session:
        tenant = _tenant(session, recipients, tenant_id)
        bind_system(session, "mail-in", tenant_id=tenant.id)  # from here on, that tenant's rows (decision 0057)
        ensure_schedule(session, tenant.id, SEND_KIND)  # replies to mail go out (and are retried) by it
        if not message_id:  # a message without one still threads: ours stands in for it
            message_id = f"<in-{now:%Y%m%d%H%M%S%f}.{len(raw)}@{rules.OUR_MESSAGE_ID_DOMAIN}.in>"
        contact = _contact(session, tenant.id, sender)  # first: a stranger learns nothing from a known id
        seen = session.scalar(select(CaseMessage.case_id).where(
            CaseMessage.tenant_id == tenant.id, CaseMessage.message_id == message_id[:250]).limit(1))
        if seen is not None:
            return MailOutcome("duplicate", seen)
        recipient = next((r for r in recipients if rules.tenant_slug(r) == tenant.slug),
                         recipients[0] if recipients else "")
        case = _threaded_case(session, tenant.id, contact, message)
        event: CaseEvent | None
        if case is None:
            case = _open_case(session, tenant.id, contact, subject or text[:SUBJECT_LENGTH], text, now,
                              rules.receiving_addresses(message, recipients))
            event, action = None, "created"
        else:
            event, action = _continue_case(session, case, text, now), "threaded"
        session.flush()
        _keep_attachments(session, case, event, message, now)
        _store_message(session, case, event, message, message_id, sender, recipient)
        recompute_case_sla(session, case, now=now)
        session.flush()
        return MailOutcome(action, case.id)
