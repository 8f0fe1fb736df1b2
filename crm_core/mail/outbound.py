"""Outbound case replies: a public reply on a case with a contact's address becomes a queued
``case_messages`` row in the reply's transaction (:func:`queue_reply_email`); after the commit a
``case_mail_send`` job sends the tenant's queued mail through SMTP (:func:`send_queued_mail`).

The subject carries the case tag, In-Reply-To/References point at the customer's last message,
and our Message-ID is recorded so the customer's answer threads back. The files kept on the reply go
with it as MIME attachments (:func:`reply_files`, read when the mail is sent: a file removed before
then does not go; one whose bytes are gone fails the send with that reason). A failed attempt keeps the
row ``failed`` with the error (shown on the case) and is tried again by the tenant's every-minute
schedule, up to :data:`MAX_ATTEMPTS`. SMTP settings are the tenant's own when an admin saved a server
(:func:`tenant_mail_settings`, the password decrypted only here), else the environment's
(:meth:`MailSettings.from_env`); there is no default server and no default secret (decision 0031).
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import re
import smtplib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import attachment_store
from crm_core.config import public_url
from crm_core.db import Database
from crm_core.i18n import t
from crm_core.jobs.after_commit import JobAfterCommit
from crm_core.jobs.context import JobContext, job_kind
from crm_core.models import Case, CaseStatus, Contact, Role, Tenant, utcnow
from crm_core.models.service import (
    CaseAttachment,
    CaseEvent,
    CaseEventKind,
    CaseMessage,
    CaseMessageDirection,
    CaseMessageStatus,
)
from crm_core.rules import mail as rules
from crm_core.rules.contact_details import normalise_email

LOG = logging.getLogger("kestrel.mail")
KIND = "case_mail_send"
SCHEDULE = ("*", "*", "*")  # every minute, UTC: the retries
MAX_ATTEMPTS = 5


@dataclass(frozen=True)
class MailSettings:
    """Where replies go out: ``CRM_SMTP_HOST``, ``CRM_SMTP_PORT`` (25), ``CRM_MAIL_FROM`` (our address),
    ``CRM_MAIL_DOMAIN`` (the inbound domain: replies are asked to go to support+<tenant>@ it),
    optional ``CRM_SMTP_USER``/``CRM_SMTP_PASSWORD`` (then STARTTLS is required). A tenant's own
    server (:func:`tenant_mail_settings`) says itself whether to use STARTTLS."""

    host: str
    port: int
    from_address: str
    inbound_domain: str
    user: str = ""
    password: str = ""
    starttls: bool = False

    @classmethod
    def from_env(cls) -> MailSettings | None:
        """The settings, or None when no SMTP host or from address is configured."""
        host = os.environ.get("CRM_SMTP_HOST", "").strip()
        from_address = os.environ.get("CRM_MAIL_FROM", "").strip()
        if not host or not from_address:
            return None
        user = os.environ.get("CRM_SMTP_USER", "")
        return cls(host=host, port=int(os.environ.get("CRM_SMTP_PORT", "25") or 25), from_address=from_address,
                   inbound_domain=inbound_domain(from_address), user=user,
                   password=os.environ.get("CRM_SMTP_PASSWORD", ""), starttls=bool(user))


def inbound_domain(from_address: str) -> str:
    """The domain our listener is reached at (replies go to support+<tenant>@ it): ``CRM_MAIL_DOMAIN``, else the
    deployment's ``CRM_MAIL_FROM`` domain, else ``from_address``'s."""
    configured = os.environ.get("CRM_MAIL_DOMAIN", "").strip()
    deployment_from = os.environ.get("CRM_MAIL_FROM", "").strip()
    return configured or (deployment_from or from_address).rpartition("@")[2]


class MailSettingsUnusable(Exception):
    """The tenant saved an SMTP server whose password cannot be decrypted (no key, or another key)."""


def tenant_mail_settings(session: Session, tenant_id: int) -> MailSettings | None:
    """The tenant's SMTP server when an admin saved one (host and from address), else the environment's; raises
    MailSettingsUnusable when its stored password does not decrypt (sending with the wrong one would not help)."""
    from crm_core.mail.credentials import SecretKeyProblem, decrypt_secret
    from crm_core.models.mail import TenantMailSettings

    row = session.scalar(select(TenantMailSettings).where(TenantMailSettings.tenant_id == tenant_id))
    if row is None or not row.smtp_host or not row.from_address:
        return MailSettings.from_env()
    password = ""
    if row.smtp_password_encrypted:
        try:
            password = decrypt_secret(row.smtp_password_encrypted)
        except (SecretKeyProblem, ValueError) as error:
            raise MailSettingsUnusable(f"the tenant's SMTP password cannot be decrypted: {error}") from None
    return MailSettings(host=row.smtp_host, port=row.smtp_port, from_address=row.from_address,
                        inbound_domain=inbound_domain(row.from_address), user=row.smtp_user, password=password,
                        starttls=row.starttls)


def new_message_id(case_id: int) -> str:
    """A Message-ID of ours for a reply on ``case_id`` (recognised as ours: :func:`rules.is_our_message_id`)."""
    return f"<case-{case_id}.{uuid.uuid4().hex}@{rules.OUR_MESSAGE_ID_DOMAIN}>"


def queue_reply_email(session: Session, case: Case, event: CaseEvent) -> CaseMessage | None:
    """Queue the reply ``event`` to the case's contact (None when the contact has no address)."""
    contact = session.get(Contact, case.contact_id) if case.contact_id is not None else None
    address = normalise_email(contact.email) if contact is not None and contact.email else None
    if address is None:
        return None
    last_in = session.scalar(
        select(CaseMessage).where(CaseMessage.case_id == case.id,
                                  CaseMessage.direction == CaseMessageDirection.INBOUND)
        .order_by(CaseMessage.id.desc()).limit(1))
    references = None
    in_reply_to = None
    subject = case.subject
    if last_in is not None:
        in_reply_to = last_in.message_id
        references = " ".join(filter(None, [last_in.references, last_in.message_id]))[-2000:]
        subject = last_in.subject or subject
    if not subject.lower().startswith("re:"):
        subject = f"Re: {subject}"
    message = CaseMessage(
        tenant_id=case.tenant_id, case_id=case.id, event_id=event.id, direction=CaseMessageDirection.OUTBOUND,
        status=CaseMessageStatus.QUEUED, message_id=new_message_id(case.id), in_reply_to=in_reply_to,
        references=references, from_address="", to_address=address,
        subject=rules.tagged_subject(case.id, subject)[:250], attempts=0)
    session.add(message)
    _SEND.mark(session, case.tenant_id)
    return message


_SEND = JobAfterCommit(KIND, schedule=SCHEDULE)  # the schedule sends the retries


@dataclass(frozen=True)
class MailFile:
    """A file an outbound reply carries: its served name, the type read from its bytes, and the bytes."""

    file_name: str
    content_type: str
    data: bytes


class MailFileMissing(RuntimeError):
    """A file kept on the reply has no bytes in the attachment store (the send fails and is retried)."""


def reply_files(session: Session, message: CaseMessage) -> list[MailFile]:
    """The files kept on the reply ``message`` sends, in the order they were kept (none for other mail)."""
    if message.event_id is None:
        return []
    rows = session.execute(select(CaseAttachment.tenant_id, CaseAttachment.sha256, CaseAttachment.file_name,
                                  CaseAttachment.content_type)
                           .where(CaseAttachment.event_id == message.event_id).order_by(CaseAttachment.id)).all()
    files = []
    for tenant_id, sha256, file_name, content_type in rows:
        data = attachment_store.load(tenant_id, sha256)
        if data is None:
            raise MailFileMissing(f"the file {file_name!r} kept on the reply is missing from the attachment store")
        files.append(MailFile(file_name, content_type, data))
    return files


def build_email(message: CaseMessage, body: str, settings: MailSettings, tenant_slug: str,
                files: Sequence[MailFile] = ()) -> EmailMessage:
    """The email of an outbound reply: plain text, tagged subject, threading headers, our Message-ID, and
    ``files`` as attachments (then multipart/mixed; names in RFC 2231 encoding where they need it)."""
    email = EmailMessage()
    email["From"] = settings.from_address
    email["To"] = message.to_address
    email["Reply-To"] = formataddr(("", f"{rules.INBOUND_LOCAL_PART}+{tenant_slug}@{settings.inbound_domain}"))
    email["Subject"] = message.subject
    email["Message-ID"] = message.message_id
    email["Date"] = format_datetime(utcnow().replace(tzinfo=dt.UTC))
    if message.in_reply_to:
        email["In-Reply-To"] = message.in_reply_to
    if message.references:
        email["References"] = message.references
    email["Auto-Submitted"] = "no"
    email.set_content(body)
    for file in files:
        maintype, _, subtype = file.content_type.partition("/")
        # a text file is UTF-8 or GB18030 (rules.attachments): said, so the reader's program does not guess
        params = {"charset": _text_charset(file.data)} if maintype == "text" else None
        email.add_attachment(file.data, maintype=maintype, subtype=subtype, filename=file.file_name, params=params)
    return email


def _text_charset(data: bytes) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "gb18030"
    return "utf-8"


_CHINESE = re.compile(r"[\u3400-\u9fff]")


def message_body(session: Session, message: CaseMessage, event: CaseEvent | None) -> str:
    """The text of an outbound email: the agent's reply as written, or — for the status event that resolved
    the case — the resolution notice with its two CSAT rating links (built now: valid for 14 days)."""
    if event is None:
        return ""
    if event.kind == CaseEventKind.STATUS and event.to_value == CaseStatus.RESOLVED.value:
        return resolution_body(session, message.case_id)
    return event.body or ""


def resolution_body(session: Session, case_id: int) -> str:
    """"Your case was resolved", in the language the customer wrote in, with the rating links when the host's
    public address is known (``CRM_PUBLIC_URL``) and the case is still resolved."""
    from crm_core.services.csat import csat_link

    case = session.get(Case, case_id)
    if case is None:
        return ""
    language = "zh-CN" if _CHINESE.search(f"{case.subject} {case.description}") else "en"
    text = t("service.email.resolved", language, case=case.id, subject=case.subject)
    base = public_url()
    if base is not None:
        try:
            link = csat_link(case, base, language=language)
        except ValueError:  # reopened since: no rating asked for
            return text
        text += "\n\n" + t("service.email.csat", language, good=f"{link}?score=good", bad=f"{link}?score=bad")
    return text


def deliver(settings: MailSettings, email: EmailMessage) -> None:
    """Hand ``email`` to the SMTP server of ``settings`` (STARTTLS and login when they say so)."""
    with smtplib.SMTP(settings.host, settings.port, timeout=30) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.user:
            smtp.login(settings.user, settings.password)
        smtp.send_message(email)


NOT_CONFIGURED = "SMTP is not configured (CRM_SMTP_HOST, CRM_MAIL_FROM, or the tenant's mail settings)"


def send_queued_mail(db: Database, tenant_id: int, settings: MailSettings | None, *,
                     unavailable: str = NOT_CONFIGURED) -> dict[str, int]:
    """Send the tenant's queued and failed (under MAX_ATTEMPTS) replies; counts of sent and failed.
    Without ``settings`` each attempt fails with ``unavailable`` as its error."""
    sent = failed = 0
    with db.system_session("mail: due replies", tenant_id=tenant_id) as session:
        due = list(session.scalars(select(CaseMessage.id).where(
            CaseMessage.tenant_id == tenant_id, CaseMessage.direction == CaseMessageDirection.OUTBOUND,
            CaseMessage.status.in_((CaseMessageStatus.QUEUED, CaseMessageStatus.FAILED)),
            CaseMessage.attempts < MAX_ATTEMPTS).order_by(CaseMessage.id)))
    for message_id in due:
        with db.system_transaction("mail: send reply", tenant_id=tenant_id) as session:
            message = session.get(CaseMessage, message_id)
            if message is None or message.status == CaseMessageStatus.SENT:
                continue
            message.attempts += 1
            try:
                if settings is None:
                    raise RuntimeError(unavailable)
                event = session.get(CaseEvent, message.event_id) if message.event_id is not None else None
                tenant = session.get(Tenant, tenant_id)
                assert tenant is not None
                message.from_address = settings.from_address[:254]
                deliver(settings, build_email(message, message_body(session, message, event), settings, tenant.slug,
                                              reply_files(session, message)))
            except (OSError, smtplib.SMTPException, RuntimeError) as error:
                message.status = CaseMessageStatus.FAILED
                message.error = f"{type(error).__name__}: {error}"[:500]
                failed += 1
                LOG.warning("case mail %s failed (attempt %s): %s", message.id, message.attempts, message.error)
            else:
                message.status = CaseMessageStatus.SENT
                message.error = None
                message.sent_at = utcnow()
                sent += 1
    return {"sent": sent, "failed": failed}


# not "schedulable" by admins: a tenant gets its schedule with its first queued reply
@job_kind(KIND, roles=frozenset({Role.ADMIN}))
def case_mail_send(ctx: JobContext) -> dict[str, Any]:
    """Send the tenant's queued case replies by SMTP; result: sent, failed."""
    ctx.progress(0, None, "jobs.progress.case_mail_send")
    try:
        with ctx.db.system_session("mail: settings") as session:
            settings = tenant_mail_settings(session, ctx.tenant_id)
    except MailSettingsUnusable as error:
        return send_queued_mail(ctx.db, ctx.tenant_id, None, unavailable=str(error))
    return send_queued_mail(ctx.db, ctx.tenant_id, settings)


@job_kind("mail_test", roles=frozenset({Role.ADMIN}))
def mail_test(ctx: JobContext) -> dict[str, Any]:
    """Send one test message to ``params["to"]`` with the tenant's SMTP settings (the environment's when it has
    none); result: to, host, port; an SMTP refusal or a connection failure fails the job with its reason."""
    from crm_core.errors import MailTestFailed

    to_address = str(ctx.params.get("to", ""))
    ctx.progress(0, 1, "jobs.progress.mail_test")
    try:
        with ctx.db.system_session("mail: settings") as session:
            settings = tenant_mail_settings(session, ctx.tenant_id)
            tenant = session.get(Tenant, ctx.tenant_id)
            assert tenant is not None
            tenant_name = tenant.name
    except MailSettingsUnusable as error:
        raise MailTestFailed(error=str(error)) from None
    if settings is None:
        raise MailTestFailed(error=NOT_CONFIGURED)
    email = EmailMessage()
    email["From"] = settings.from_address
    email["To"] = to_address
    email["Subject"] = t("mail.test.subject", ctx.language, tenant=tenant_name)
    email["Message-ID"] = f"<test.{uuid.uuid4().hex}@{rules.OUR_MESSAGE_ID_DOMAIN}>"
    email["Date"] = format_datetime(utcnow().replace(tzinfo=dt.UTC))
    email["Auto-Submitted"] = "auto-generated"
    email.set_content(t("mail.test.body", ctx.language, host=settings.host, port=settings.port))
    try:
        deliver(settings, email)
    except (OSError, smtplib.SMTPException) as error:
        raise MailTestFailed(error=f"{type(error).__name__}: {error}"[:500]) from None
    ctx.progress(1, 1, "jobs.progress.mail_test")
    return {"to": to_address, "host": settings.host, "port": settings.port}
