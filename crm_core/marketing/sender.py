"""The marketing outbox (decision 0046). :func:`queue_email` renders one step's email for one member
into a ``marketing_messages`` row in the caller's transaction — once per member, step and cycle —
or records why it cannot go (no address, a missing variable, no public address for the unsubscribe
link). Sending, with the ledger checked again at that moment, is the ``marketing_send`` job's.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import smtplib
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import ColumnElement, CursorResult, Engine, and_, func, insert, or_, select, update
from sqlalchemy.orm import Session

from crm_core.config import public_url
from crm_core.db import WRITE_OPTION, Database
from crm_core.i18n import t
from crm_core.jobs.after_commit import JobAfterCommit
from crm_core.jobs.context import JobContext, job_kind
from crm_core.mail.outbound import MailSettings
from crm_core.models import Contact, Customer, Role, Tenant, User, utcnow
from crm_core.models.mail import TenantMailSettings
from crm_core.models.marketing import (
    CampaignStep,
    EmailTemplate,
    MarketingEvent,
    MarketingMessage,
    MarketingSettings,
    MessageStatus,
    TouchKind,
)
from crm_core.models.segments import CampaignMember
from crm_core.rules.consent import SendDecision, normalise_address
from crm_core.rules.email_templates import MissingVariable, TemplateProblem, render
from crm_core.rules.mail import INBOUND_LOCAL_PART, OUR_MESSAGE_ID_DOMAIN
from crm_core.rules.marketing_mail import (
    CLICK_PATH,
    OPEN_PATH,
    PREFERENCES_PATH,
    UNSUBSCRIBE_PATH,
    Links,
    Outgoing,
    build_message,
    footer,
)
from crm_core.services.consent import send_decision

# + token: one click (GET shows the page, POST is RFC 8058's one-click); the person's channels and their
# choices; + token + ".gif"; + token + "?u=…&s=…" (rules.marketing_mail)
__all__ = ["CLICK_PATH", "OPEN_PATH", "PREFERENCES_PATH", "UNSUBSCRIBE_PATH", "queue_email", "send_after_commit",
           "send_marketing_mail"]


def marketing_settings(session: Session, tenant_id: int) -> MarketingSettings:
    """The tenant's marketing settings (unsaved defaults when an admin never saved any)."""
    found = session.scalars(select(MarketingSettings).where(MarketingSettings.tenant_id == tenant_id)).first()
    return found or MarketingSettings(tenant_id=tenant_id, tracking_enabled=True, daily_cap_per_sender=2000,
                                      sender_name="", sender_address="", postal_address="")


def sender_address(session: Session, tenant_id: int, settings: MarketingSettings) -> str:
    """Who marketing mail is from: the marketing settings' address, else the tenant's mail settings', else
    the deployment's ``CRM_MAIL_FROM``; empty when none is set (the send is then held with that reason)."""
    if settings.sender_address:
        return settings.sender_address
    mail = session.scalars(
        select(TenantMailSettings.from_address).where(TenantMailSettings.tenant_id == tenant_id)).first()
    return mail or os.environ.get("CRM_MAIL_FROM", "").strip()


def recipient(session: Session, member: CampaignMember) -> tuple[Customer, Contact | None, str | None]:
    """The member's customer, the person written to and their normalised email (None: nobody to write to)."""
    customer = session.get(Customer, member.customer_id)
    assert customer is not None
    contact = session.get(Contact, member.contact_id) if member.contact_id is not None else None
    raw = contact.email if contact is not None else customer.email
    return customer, contact, normalise_address("email", raw)


def template_context(
    session: Session, customer: Customer, contact: Contact | None, settings: MarketingSettings, sender: str,
    token: str | None,
) -> dict[str, dict[str, Any]]:
    """The variables a template sees (rules.email_templates.VARIABLES): the person, the company, its owner,
    the sender's identity and the person's links (absent without a public address or a token)."""
    owner = session.get(User, customer.owner_id) if customer.owner_id is not None else None
    base = public_url()
    links = {} if base is None or token is None else {
        "unsubscribe": f"{base}{UNSUBSCRIBE_PATH}{token}", "preferences": f"{base}{PREFERENCES_PATH}{token}"}
    return {
        "contact": {"name": contact.name if contact is not None else customer.name,
                    "title": contact.title if contact is not None else None,
                    "email": contact.email if contact is not None else customer.email},
        "customer": {"name": customer.name, "industry": customer.industry, "region": customer.region},
        "owner": {"name": owner.full_name if owner is not None else None,
                  "email": owner.email if owner is not None else None},
        "sender": {"name": settings.sender_name, "address": sender, "postal_address": settings.postal_address},
        "links": links,
    }


def message_token(tenant_id: int) -> str:
    """The secret of a message's links: ``<tenant id>.<43 random characters>``. The links answer without a
    session; the tenant in front lets their look-up name its tenant (one node under Citus, decision 0057)."""
    return f"{tenant_id}.{secrets.token_urlsafe(32)}"


def token_tenant(token: str) -> int | None:
    """The tenant a link's token names; None for a token from before they named one (random characters only)."""
    head, dot, _rest = token.partition(".")
    return int(head) if dot and head.isascii() and head.isdecimal() and len(head) <= 18 else None


def queue_email(session: Session, member: CampaignMember, step: CampaignStep, *,
                now: dt.datetime | None = None) -> MarketingMessage:
    """The member's email of ``step`` in its current cycle: queued, or skipped with the reason (then a
    ``skipped`` touch says why). Called again for the same member, step and cycle it returns the row
    already written (the outbox's unique key makes a second one impossible anyway)."""
    existing = session.scalars(select(MarketingMessage).where(
        MarketingMessage.tenant_id == member.tenant_id, MarketingMessage.member_id == member.id,
        MarketingMessage.step_id == step.id, MarketingMessage.cycle == member.cycle)).first()
    if existing is not None:
        return existing
    moment = now or utcnow()
    settings = marketing_settings(session, member.tenant_id)
    sender = sender_address(session, member.tenant_id, settings)
    customer, contact, address = recipient(session, member)
    token = message_token(member.tenant_id)
    template_id = (step.config or {}).get("template_id")
    template = session.get(EmailTemplate, template_id) if isinstance(template_id, int) else None
    message = MarketingMessage(
        tenant_id=member.tenant_id, campaign_id=member.campaign_id, step_id=step.id, member_id=member.id,
        cycle=member.cycle, customer_id=member.customer_id, contact_id=member.contact_id,
        template_id=template.id if template is not None else None,
        language=template.language if template is not None else "en", to_address=address or "",
        from_address=sender, token=token, message_id=f"<mkt-{uuid.uuid4().hex}@{OUR_MESSAGE_ID_DOMAIN}>",
        status=MessageStatus.QUEUED.value, queued_at=moment,
    )
    reason = None
    if template is None or template.archived_at is not None:
        reason = "blocked:no_template"
    elif address is None:
        reason = "blocked:no_address"
    elif not sender:
        reason = "blocked:no_sender"
    elif public_url() is None:
        reason = "blocked:no_public_url"  # no way out for the person: Advertising Law art. 43, RFC 8058
    else:
        context = template_context(session, customer, contact, settings, sender, token)
        try:
            rendered = render(template.subject, template.body, context)
        except MissingVariable as missing:
            reason = f"blocked:missing_variable:{missing.name}"
        except TemplateProblem:
            reason = "blocked:template_broken"
        else:
            message.subject, message.body = rendered.subject, rendered.body
    if reason is not None:
        message.status, message.reason = MessageStatus.SKIPPED.value, reason
    session.add(message)
    session.flush()
    if reason is not None:
        session.add(MarketingEvent(
            tenant_id=member.tenant_id, campaign_id=member.campaign_id, step_id=step.id, member_id=member.id,
            message_id=message.id, customer_id=member.customer_id, contact_id=member.contact_id, cycle=member.cycle,
            kind=TouchKind.SKIPPED.value, occurred_at=moment, detail=reason))
        session.flush()
    return message


# --- sending: the marketing_send job (decision 0048) -------------------------------------------------

LOG = logging.getLogger("kestrel.marketing")
KIND = "marketing_send"
SCHEDULE = ("*", "*", "*")  # every minute, UTC: retries, rows a killed worker left, tomorrow's capped ones
BATCH_SIZE = 200
CONNECTIONS = 4  # senders side by side, each its own SMTP connection and batches
MAX_ATTEMPTS = 5
LEASE = dt.timedelta(minutes=5)  # a row ``sending`` for longer was left by a dead worker: sent again
BACKOFF = (dt.timedelta(minutes=1), dt.timedelta(minutes=5), dt.timedelta(minutes=15), dt.timedelta(minutes=60))
_ANSWERED = (MessageStatus.SENT.value, MessageStatus.BOUNCED.value)


@dataclass
class SendRun:
    """What one run of the sender did."""

    sent: int = 0
    skipped: int = 0
    retried: int = 0  # refused or not reached: queued again for a later attempt
    failed: int = 0  # refused at the last attempt
    capped: int = 0  # over a sender's daily cap: still queued, for tomorrow
    batches: int = 0
    problem: str | None = None  # why nothing could be sent (no SMTP server, no public address)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "skipped": self.skipped, "retried": self.retried, "failed": self.failed,
                "capped": self.capped, "batches": self.batches, "problem": self.problem,
                "seconds": round(self.seconds, 3)}


def _due(tenant_id: int, now: dt.datetime) -> ColumnElement[bool]:
    """Rows this run may claim: queued ones whose backoff has passed, and ``sending`` ones past their lease."""
    message = MarketingMessage
    waited = [and_(message.attempts == attempt, message.claimed_at <= now - BACKOFF[min(attempt, len(BACKOFF)) - 1])
              for attempt in range(1, MAX_ATTEMPTS)]
    queued = and_(message.status == MessageStatus.QUEUED.value,
                  or_(message.attempts == 0, message.claimed_at.is_(None), *waited))
    left = and_(message.status == MessageStatus.SENDING.value, message.claimed_at <= now - LEASE)
    return and_(message.tenant_id == tenant_id, message.attempts < MAX_ATTEMPTS, or_(queued, left))


def _day_start(now: dt.datetime) -> dt.datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def _used_today(session: Session, tenant_id: int, senders: set[str], now: dt.datetime) -> dict[str, int]:
    """Per sender: messages sent since midnight UTC, plus those another worker holds right now."""
    message = MarketingMessage
    sent = select(message.from_address, func.count()).where(
        message.tenant_id == tenant_id, message.from_address.in_(senders), message.status.in_(_ANSWERED),
        message.sent_at >= _day_start(now)).group_by(message.from_address)
    held = select(message.from_address, func.count()).where(
        message.tenant_id == tenant_id, message.from_address.in_(senders),
        message.status == MessageStatus.SENDING.value, message.claimed_at > now - LEASE).group_by(message.from_address)
    used = dict.fromkeys(senders, 0)
    for statement in (sent, held):
        for sender, count in session.execute(statement):
            used[sender] += int(count)
    return used


@dataclass(frozen=True)
class _Claimed:
    id: int
    claimed_at: dt.datetime


def claim_batch(db: Database, tenant_id: int, *, now: dt.datetime, cap: int, capped_senders: set[str],
                batch_size: int = BATCH_SIZE) -> tuple[list[_Claimed], int, bool]:
    """Claim up to ``batch_size`` due rows (``queued``/left ``sending`` → ``sending``, committed), each sender
    within ``cap`` a day; returns the rows claimed, how many waited for the cap, and whether any row was due.
    Each row is claimed by a conditional UPDATE on the status and claim time it was read with: of two workers
    only one gets a row. Senders found at their cap are added to ``capped_senders`` and not read again."""
    message = MarketingMessage
    claimed: list[_Claimed] = []
    now = now.replace(microsecond=0)  # MariaDB's DATETIME keeps whole seconds: the claim is matched on it later
    with db.system_transaction("marketing: claim", tenant_id=tenant_id) as session:
        statement = select(message.id, message.status, message.claimed_at, message.from_address).where(
            _due(tenant_id, now)).order_by(message.id).limit(batch_size)
        if capped_senders:
            statement = statement.where(message.from_address.not_in(capped_senders))
        rows = session.execute(statement).all()
        if not rows:
            return [], 0, False
        room = {sender: cap - used for sender, used in
                _used_today(session, tenant_id, {row.from_address for row in rows}, now).items()}
        waiting = 0
        for row in rows:
            if room[row.from_address] <= 0:
                capped_senders.add(row.from_address)
                waiting += 1
                continue
            same_claim = (message.claimed_at.is_(None) if row.claimed_at is None
                          else message.claimed_at == row.claimed_at)
            done = session.execute(
                update(message).where(message.id == row.id, message.status == row.status, same_claim)
                .values(status=MessageStatus.SENDING.value, claimed_at=now, attempts=message.attempts + 1)
                .execution_options(synchronize_session=False))
            if cast(CursorResult[Any], done).rowcount == 1:
                room[row.from_address] -= 1
                claimed.append(_Claimed(row.id, now))
    return claimed, waiting, True


def give_up_left_rows(db: Database, tenant_id: int, *, now: dt.datetime) -> int:
    """Rows a dead worker left ``sending`` after their last attempt: ``failed`` (they may have gone out)."""
    message = MarketingMessage
    with db.system_transaction("marketing: give up", tenant_id=tenant_id) as session:
        done = session.execute(update(message).where(
            message.tenant_id == tenant_id, message.status == MessageStatus.SENDING.value,
            message.claimed_at <= now - LEASE, message.attempts >= MAX_ATTEMPTS)
            .values(status=MessageStatus.FAILED.value, last_error="the worker sending it stopped; attempts used up")
            .execution_options(synchronize_session=False))
        return int(cast(CursorResult[Any], done).rowcount or 0)


@dataclass(frozen=True)
class SendSetup:
    """What every message of a tenant's run shares."""

    smtp: MailSettings
    settings: MarketingSettings
    base_url: str
    link_key: str
    bounce_address: str  # envelope sender and Reply-To: DSNs and replies come back to our listener
    footer_texts: dict[str, dict[str, str]]


def send_setup(db: Database, tenant_id: int) -> SendSetup | str:
    """The run's shared setup, or why nothing can be sent now (the rows then wait, queued)."""
    from crm_core.mail.outbound import NOT_CONFIGURED, MailSettingsUnusable, tenant_mail_settings

    base = public_url()
    if base is None:
        return "no public address (CRM_PUBLIC_URL): the unsubscribe link cannot be built"
    with db.system_session("marketing: settings", tenant_id=tenant_id) as session:
        try:
            smtp = tenant_mail_settings(session, tenant_id)
        except MailSettingsUnusable as error:
            return str(error)
        settings = marketing_settings(session, tenant_id)
        session.expunge_all()
        slug = session.scalar(select(Tenant.slug).where(Tenant.id == tenant_id))
    if smtp is None:
        return NOT_CONFIGURED
    texts = {language: {name: t(f"marketing_mail.footer.{name}", language)
                        for name in ("sent_by", "unsubscribe", "preferences")} for language in ("en", "zh-CN")}
    return SendSetup(smtp=smtp, settings=settings, base_url=base, link_key=link_key(),
                     bounce_address=f"{INBOUND_LOCAL_PART}+{slug}@{smtp.inbound_domain}", footer_texts=texts)


def link_key() -> str:
    """The key that signs click links (the host's link key, shared with the CSAT links' processes)."""
    from crm_core.config import csat_key

    return f"marketing-links:{csat_key()}"


def outgoing(row: MarketingMessage, setup: SendSetup) -> Outgoing:
    """The email a claimed row becomes."""
    settings = setup.settings
    links = Links(setup.base_url, row.token)
    language = row.language if row.language in setup.footer_texts else "en"
    body = row.body.rstrip("\n") + "\n" + footer(
        language, sender_name=settings.sender_name, sender_address=row.from_address,
        postal_address=settings.postal_address, links=links, texts=setup.footer_texts[language]) + "\n"
    return Outgoing(to_address=row.to_address, from_address=row.from_address, sender_name=settings.sender_name,
                    subject=row.subject, body=body, message_id=row.message_id, language=language, links=links,
                    tracking=bool(settings.tracking_enabled), reply_to=setup.bounce_address)


@contextmanager
def smtp_connection(settings: MailSettings) -> Iterator[smtplib.SMTP]:
    """One SMTP connection for a batch (STARTTLS and login when the settings say so)."""
    with smtplib.SMTP(settings.host, settings.port, timeout=30) as smtp:
        if settings.starttls:
            smtp.starttls()
        if settings.user:
            smtp.login(settings.user, settings.password)
        yield smtp


def _event(row: MarketingMessage, kind: TouchKind, now: dt.datetime, detail: str) -> MarketingEvent:
    return MarketingEvent(tenant_id=row.tenant_id, campaign_id=row.campaign_id, step_id=row.step_id,
                          member_id=row.member_id, message_id=row.id, customer_id=row.customer_id,
                          contact_id=row.contact_id, cycle=row.cycle, kind=kind.value, occurred_at=now,
                          detail=detail[:500])


def send_batch(db: Database, tenant_id: int, claimed: list[_Claimed], setup: SendSetup, run: SendRun) -> None:
    """Ask the ledger about each claimed row, record the refused ones as skipped, send the allowed ones over one
    SMTP connection and record each outcome right after the server's answer (sent, or queued again / failed),
    where the claim still holds: a worker killed mid-batch leaves at most the one message between the server's
    250 and that commit to be sent again (with the same Message-ID)."""
    ids = [row.id for row in claimed]
    claim_times = {row.id: row.claimed_at for row in claimed}
    with db.system_session("marketing: ledger at send time", tenant_id=tenant_id) as session:
        rows = list(session.scalars(select(MarketingMessage).where(MarketingMessage.id.in_(ids))
                                    .order_by(MarketingMessage.id)))
        decisions: dict[int, SendDecision] = {
            row.id: send_decision(session, tenant_id, "email", row.to_address, now=utcnow()) for row in rows}
        session.expunge_all()
    with db.system_session("marketing: outcome", tenant_id=tenant_id) as outcomes:  # one session, a commit per outcome
        def record(done: list[MarketingMessage], errors: dict[int, str]) -> None:
            with outcomes.begin():
                if isinstance(db.bind, Engine) and db.dialect_name == "sqlite":
                    outcomes.connection(execution_options={WRITE_OPTION: True})
                _record(outcomes, done, claim_times, decisions, errors, run)

        refused = [row for row in rows if not decisions[row.id].allowed]
        if refused:
            record(refused, {})
        pending = [row for row in rows if decisions[row.id].allowed]
        if not pending:
            return
        try:
            with smtp_connection(setup.smtp) as smtp:
                while pending:
                    row = pending[0]
                    email = build_message(outgoing(row, setup), link_key=setup.link_key, now=utcnow())
                    try:
                        smtp.sendmail(setup.bounce_address, [row.to_address], email.as_string())
                    except (smtplib.SMTPRecipientsRefused, smtplib.SMTPDataError, smtplib.SMTPSenderRefused) as error:
                        pending.pop(0)
                        record([row], {row.id: _error_text(error)})
                        smtp.rset()
                    else:
                        pending.pop(0)
                        record([row], {})
        except (OSError, smtplib.SMTPException) as error:  # the connection failed: the rest wait for a retry
            if pending:
                record(pending, {row.id: _error_text(error) for row in pending})


def _error_text(error: Exception) -> str:
    return f"{type(error).__name__}: {error}"[:500]


def _record(session: Session, rows: list[MarketingMessage], claim_times: dict[int, dt.datetime],
            decisions: dict[int, SendDecision], errors: dict[int, str], run: SendRun) -> None:
    """Record the outcome of ``rows`` in the caller's transaction: skipped (the ledger said no), failed or queued again
    (an error in ``errors``), else sent — each only while this run's claim on it holds."""
    message = MarketingMessage
    now = utcnow()
    events: list[dict[str, Any]] = []
    for row in rows:
        decision = decisions[row.id]
        ours = and_(message.id == row.id, message.status == MessageStatus.SENDING.value,
                    message.claimed_at == claim_times[row.id])
        event: MarketingEvent | None = None
        if not decision.allowed:
            values: dict[str, Any] = {"status": MessageStatus.SKIPPED.value, "reason": decision.reason,
                                      "consent_record_id": decision.record_id}
            event = _event(row, TouchKind.SKIPPED, now, decision.reason)
            run.skipped += 1
        elif row.id not in errors:
            values = {"status": MessageStatus.SENT.value, "reason": decision.reason, "sent_at": now,
                      "consent_record_id": decision.record_id, "last_error": None}
            event = _event(row, TouchKind.SENT, now, decision.reason)
            run.sent += 1
        else:
            last = row.attempts >= MAX_ATTEMPTS
            values = {"status": (MessageStatus.FAILED if last else MessageStatus.QUEUED).value,
                      "last_error": errors[row.id]}
            LOG.warning("marketing message %s not sent (attempt %s): %s", row.id, row.attempts, errors[row.id])
            if last:
                run.failed += 1
            else:
                run.retried += 1
        done = session.execute(update(message).where(ours).values(**values)
                               .execution_options(synchronize_session=False))
        if cast(CursorResult[Any], done).rowcount == 1 and event is not None:
            events.append({column.key: getattr(event, column.key) for column in MarketingEvent.__table__.columns
                           if column.key not in ("id",) and getattr(event, column.key) is not None})
    if events:  # a Core insert: a touch is a plain row, and the ORM's unit of work costs more than the send
        session.execute(insert(MarketingEvent), events)


def send_marketing_mail(db: Database, tenant_id: int, *, now: dt.datetime | None = None,
                        batch_size: int = BATCH_SIZE, connections: int = CONNECTIONS,
                        progress: Callable[[int], None] | None = None) -> SendRun:
    """Send the tenant's due marketing mail, batch by batch, until none is due (or every due row waits for its
    sender's cap); ``now`` fixes the clock of the claims (tests), ``progress`` hears the count sent so far.
    ``connections`` senders run side by side (threads, each claiming its own batches over its own SMTP
    connection: waiting for the server and for commits overlaps); one on a test's shared connection."""
    started = time.perf_counter()
    run = SendRun()
    setup = send_setup(db, tenant_id)
    if isinstance(setup, str):
        run.problem = setup
        return run
    give_up_left_rows(db, tenant_id, now=now or utcnow())
    cap = max(0, int(setup.settings.daily_cap_per_sender or 0))
    lock = threading.Lock()
    capped: set[str] = set()

    def sender() -> SendRun:
        mine = SendRun()
        seen: set[str] = set()
        while True:
            claimed, waiting, any_due = claim_batch(db, tenant_id, now=now or utcnow(), cap=cap,
                                                    capped_senders=seen, batch_size=batch_size)
            if not any_due:
                break
            if not claimed:
                continue  # every row read was over its sender's cap: read past that sender
            mine.batches += 1
            send_batch(db, tenant_id, claimed, setup, mine)
            with lock:
                run.sent += mine.sent - run_sent.get(id(mine), 0)
                run_sent[id(mine)] = mine.sent
                if progress is not None:
                    progress(run.sent)
        with lock:
            capped.update(seen)
        return mine

    run_sent: dict[int, int] = {}
    count = max(1, connections) if isinstance(db.bind, Engine) else 1
    if count == 1:
        results = [sender()]
    else:
        with ThreadPoolExecutor(max_workers=count, thread_name_prefix="marketing-send") as pool:
            results = [future.result() for future in [pool.submit(sender) for _ in range(count)]]
    run.sent = sum(part.sent for part in results)
    for part in results:
        run.skipped += part.skipped
        run.retried += part.retried
        run.failed += part.failed
        run.batches += part.batches
    if capped:
        run.capped = _count_capped(db, tenant_id, capped, now or utcnow())
    run.seconds = time.perf_counter() - started
    return run


def _count_capped(db: Database, tenant_id: int, senders: set[str], now: dt.datetime) -> int:
    with db.system_session("marketing: capped", tenant_id=tenant_id) as session:
        return int(session.scalar(select(func.count()).select_from(MarketingMessage).where(
            _due(tenant_id, now), MarketingMessage.from_address.in_(senders))) or 0)


_SEND = JobAfterCommit(KIND, schedule=SCHEDULE)  # retries, left rows, tomorrow's capped ones


def send_after_commit(session: Session, tenant_id: int) -> None:
    """Have the tenant's queued marketing mail sent once ``session``'s transaction commits (the sequence
    engine calls this after queueing; nothing is asked on a rollback)."""
    _SEND.mark(session, tenant_id)


@job_kind(KIND, roles=frozenset({Role.ADMIN}))
def marketing_send(ctx: JobContext) -> dict[str, Any]:
    """Send the tenant's due marketing mail by SMTP; result: sent, skipped, retried, failed, capped, problem."""
    ctx.progress(0, None, "jobs.progress.marketing_send")

    def progress(sent: int) -> None:
        ctx.progress(sent, None, "jobs.progress.marketing_send")

    return send_marketing_mail(ctx.db, ctx.tenant_id, progress=progress).as_dict()
