"""Case (customer-service ticket, 工单) use cases: open, edit, move through the flow, reply, close.

Each use case opens its own transaction for the acting user; who may see or change a case is
the rule in :mod:`crm_core.access` (its customer's, or the actor's queue or assignment), which
also writes the audit trail. A valid case is :data:`CASE`: a subject, a status, priority and
channel from their lists, a category and free text without markup or a leading formula.
A status change must be one :mod:`crm_core.rules.case_flow` allows. ``resolved_at`` follows the
status. Every change of status, priority or assignee, and every reply and internal note, is a
row of the case's history (``case_events``), and the case's SLA clocks are recomputed from that
history in the same transaction (:func:`crm_core.services.sla.recompute_case_sla`). A new case
in a team's queue without an assignee is assigned by the queue's method (round-robin or
least-open, :mod:`crm_core.rules.assignment`: :func:`assign_from_queue`, which mail-in uses too), and the
assignee is notified (``case_assigned``) whenever someone else gives them a case. Edits use optimistic
locking (``version``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.config import mail_attachments_max_bytes
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.mail.outbound import queue_reply_email
from crm_core.models import (
    Case,
    CaseChannel,
    CasePriority,
    CaseStatus,
    Contact,
    Customer,
    Order,
    Product,
    Role,
    Team,
    User,
    utcnow,
)
from crm_core.models.automation import AssignmentMethod
from crm_core.models.service import CaseEvent, CaseEventKind, ServiceQueue
from crm_core.rules import fields
from crm_core.rules.assignment import pick_least_busy, pick_round_robin
from crm_core.rules.attachments import readable_size
from crm_core.rules.case_flow import CLOSED_STATUSES, transition_problem
from crm_core.rules.fields import ENUM, Field, clean_text, free_text_problem
from crm_core.services.case_attachments import NewFile, check_files, keep_files
from crm_core.services.editing import check_version, translate_stale
from crm_core.services.notifications import notify
from crm_core.services.sla import recompute_case_sla

Errors = dict[str, tuple[str, dict[str, Any]]]

CASE: dict[str, Field] = {
    "subject": Field("subject", required=True, column=Case.__table__.c["subject"]),
    "description": Field("description", length=20_000),  # Text: no size of its own
    "status": Field("status", ENUM, choices=tuple(status.value for status in CaseStatus)),
    "priority": Field("priority", ENUM, choices=tuple(priority.value for priority in CasePriority)),
    "channel": Field("channel", ENUM, choices=tuple(channel.value for channel in CaseChannel)),
    "category": Field("category", column=Case.__table__.c["category"]),
}
"""What a valid case is (the form, the API and any import of cases check this)."""

REPLY_LENGTH = 4000


@dataclass(kw_only=True)
class CaseInput:
    """The fields of the case form, as typed. ``assignee_id`` None leaves the case unassigned."""

    customer_id: int
    subject: str
    description: str = ""
    status: str = CaseStatus.OPEN.value
    priority: str = CasePriority.NORMAL.value
    contact_id: int | None = None
    assignee_id: int | None = None
    channel: str = CaseChannel.WEB.value
    category: str = ""
    team_id: int | None = None  # the queue
    order_id: int | None = None  # one of the customer's orders the case is about
    product_id: int | None = None  # the product it is about


def _validate(session: Session, actor: Actor, form: CaseInput, errors: Errors,
              current: Case | None = None) -> dict[str, Any]:
    values = {"subject": clean_text(form.subject), "description": (form.description or "").strip(),
              "status": form.status, "priority": form.priority, "channel": form.channel,
              "category": clean_text(form.category)}
    errors.update(fields.check_values(CASE, values))
    if current is None and form.status not in (CaseStatus.NEW.value, CaseStatus.OPEN.value):
        errors.setdefault("status", ("cases.flow.not_allowed", {}))
    elif current is not None and form.status != current.status and "status" not in errors:
        problem = transition_problem(current.status, form.status, resolved_at=current.resolved_at, now=utcnow())
        if problem is not None:
            errors["status"] = (problem, {})
    if form.team_id is not None and session.get(Team, form.team_id) is None:
        errors["team_id"] = ("validation.choice", {})
    if form.contact_id is not None:
        contact = session.get(Contact, form.contact_id)
        if contact is None or contact.customer_id != form.customer_id:
            errors["contact_id"] = ("validation.choice", {})
    # a reference is checked when it is set or changed: an agent who works a queue's case but may not see
    # the customer's orders can still edit the rest of it
    if form.order_id is not None and (current is None or form.order_id != current.order_id):
        order = session.get(Order, form.order_id)
        if order is None or order.customer_id != form.customer_id or order.archived_at is not None:
            errors["order_id"] = ("cases.order_not_of_customer", {})
    if form.product_id is not None and (current is None or form.product_id != current.product_id):
        product = session.get(Product, form.product_id)
        if product is None or product.archived_at is not None:
            errors["product_id"] = ("validation.choice", {})
    if form.assignee_id is not None and (current is None or form.assignee_id != current.assignee_id):
        user = session.get(User, form.assignee_id)
        if user is None or not user.is_active or user.role == Role.ANALYST.value:
            errors["assignee_id"] = ("validation.choice", {})
        elif not access.can_assign_owner(actor, form.assignee_id):
            raise AccessDenied("cannot assign a case to that user")
    return values


def _record(session: Session, case: Case, actor: Actor, kind: str, old: Any, new: Any, *,
            at: dt.datetime, body: str | None = None) -> CaseEvent:
    event = CaseEvent(tenant_id=case.tenant_id, case_id=case.id, at=at, kind=kind, actor_id=actor.user_id,
                      from_value=None if old is None else str(old), to_value=None if new is None else str(new),
                      body=body)
    session.add(event)
    return event


def _set_status(case: Case, status: str, now: dt.datetime) -> None:
    was_closed = case.status in CLOSED_STATUSES
    case.status = status
    if status in CLOSED_STATUSES and not was_closed:
        case.resolved_at = now
    elif status not in CLOSED_STATUSES:
        case.resolved_at = None


def _apply(session: Session, actor: Actor, case: Case, form: CaseInput, values: dict[str, Any]) -> None:
    """Copy the form onto ``case`` and write a history row for each change of status, priority or assignee."""
    now = utcnow()
    changes = [(CaseEventKind.STATUS, case.status, form.status),
               (CaseEventKind.PRIORITY, case.priority, form.priority),
               (CaseEventKind.ASSIGNEE, case.assignee_id, form.assignee_id)]
    case.subject = values["subject"] or ""
    case.description = values["description"]
    case.priority = form.priority
    case.channel = form.channel
    case.category = values["category"]
    case.contact_id = form.contact_id
    case.order_id = form.order_id
    case.product_id = form.product_id
    case.assignee_id = form.assignee_id
    case.team_id = form.team_id
    _set_status(case, form.status, now)
    for kind, old, new in changes:
        if old != new:
            _record(session, case, actor, kind, old, new, at=now)
    if changes[2][1] != changes[2][2]:
        notify_case_assigned(session, case, actor_id=actor.user_id)
    recompute_case_sla(session, case, now=now)


def assign_from_queue(session: Session, case: Case, *, actor_id: int | None = None) -> int | None:
    """Give a new case of a team's queue to one of the team's active reps, by the queue's method, and tell them
    (not when ``actor_id``, who opened it, is the one picked); the assignee, or None (no queue, nobody to pick).
    The form's new case and a new case by mail (:mod:`crm_core.mail.inbound`) are assigned by this one rule."""
    queue = session.scalar(select(ServiceQueue).where(ServiceQueue.team_id == case.team_id))
    if queue is None:
        return None
    candidates = list(session.scalars(select(User.id).where(
        User.team_id == case.team_id, User.is_active.is_(True), User.role.in_((Role.REP.value, Role.MANAGER.value)))))
    if not candidates:
        return None
    if queue.method == AssignmentMethod.LEAST_BUSY:
        open_cases = dict(session.execute(
            select(Case.assignee_id, func.count(Case.id))
            .where(Case.assignee_id.in_(candidates), Case.status.not_in(sorted(CLOSED_STATUSES)), Case.id != case.id)
            .group_by(Case.assignee_id)).all())
        picked = pick_least_busy({user_id: open_cases.get(user_id, 0) for user_id in candidates},
                                 queue.last_assigned_user_id, 1)
    else:
        picked = pick_round_robin(candidates, queue.last_assigned_user_id, 1)
    case.assignee_id = picked[0]
    # the pointer moves without bumping the queue's version: an admin's edit never goes stale for it
    session.execute(update(ServiceQueue).where(ServiceQueue.id == queue.id)
                    .values(last_assigned_user_id=picked[0]).execution_options(synchronize_session=False))
    notify_case_assigned(session, case, actor_id=actor_id)
    return case.assignee_id


def notify_case_assigned(session: Session, case: Case, *, actor_id: int | None) -> None:
    """Tell the case's assignee it is theirs (nobody when the actor gave it to themselves)."""
    if case.assignee_id is None:
        return
    notify(session, tenant_id=case.tenant_id, user_id=case.assignee_id, kind="case_assigned", entity="case",
           entity_id=case.id, params={"case": case.id, "subject": case.subject}, actor_id=actor_id)


def _visible_customer(session: Session, customer_id: int) -> Customer:
    customer = session.get(Customer, customer_id)
    if customer is None or customer.archived_at is not None:
        raise NotFound("customer")
    return customer


def create_case(db: Database, actor: Actor, form: CaseInput) -> int:
    """Open a case for a visible customer; raises NotFound, AccessDenied or ValidationFailed."""
    with db.transaction(actor) as session:
        _visible_customer(session, form.customer_id)
        errors: Errors = {}
        values = _validate(session, actor, form, errors)
        if errors:
            raise ValidationFailed(errors)
        now = utcnow()
        case = Case(tenant_id=actor.tenant_id, customer_id=form.customer_id, opened_at=now, status=form.status,
                    priority=form.priority, subject=values["subject"] or "", description=values["description"],
                    channel=form.channel, category=values["category"], contact_id=form.contact_id,
                    assignee_id=form.assignee_id, team_id=form.team_id, order_id=form.order_id,
                    product_id=form.product_id)
        session.add(case)
        session.flush()
        if case.assignee_id is None and case.team_id is not None:
            assign_from_queue(session, case, actor_id=actor.user_id)
        elif case.assignee_id is not None:
            notify_case_assigned(session, case, actor_id=actor.user_id)
        _record(session, case, actor, CaseEventKind.OPENED, None, case.channel, at=now)
        _record(session, case, actor, CaseEventKind.STATUS, None, case.status, at=now)
        if case.assignee_id is not None:
            _record(session, case, actor, CaseEventKind.ASSIGNEE, None, case.assignee_id, at=now)
        session.flush()
        recompute_case_sla(session, case, now=now)
        session.flush()
        return case.id


def update_case(db: Database, actor: Actor, case_id: int, form: CaseInput, *, expected_version: int) -> int:
    """Save an edit made on ``expected_version`` (the customer stays); returns the new version."""

    def work() -> int:
        with db.transaction(actor) as session:
            case = session.get(Case, case_id)
            if case is None:
                raise NotFound("case")
            check_version(session, case, "case", expected_version)
            form.customer_id = case.customer_id
            errors: Errors = {}
            values = _validate(session, actor, form, errors, current=case)
            if errors:
                raise ValidationFailed(errors)
            _apply(session, actor, case, form, values)
            session.flush()
            return case.version

    return translate_stale(db, actor, "case", case_id, work)


def close_case(db: Database, actor: Actor, case_id: int, *, expected_version: int) -> int:
    """Close a case (kept, readable, out of the working lists); returns the new version."""

    def work() -> int:
        with db.transaction(actor) as session:
            case = session.get(Case, case_id)
            if case is None:
                raise NotFound("case")
            check_version(session, case, "case", expected_version)
            if case.status != CaseStatus.CLOSED.value:
                now = utcnow()
                _record(session, case, actor, CaseEventKind.STATUS, case.status, CaseStatus.CLOSED.value, at=now)
                _set_status(case, CaseStatus.CLOSED.value, now)
                recompute_case_sla(session, case, now=now)
                session.flush()
            return case.version

    return translate_stale(db, actor, "case", case_id, work)


def _loaded(session: Session, case_id: int, expected_version: int) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound("case")
    check_version(session, case, "case", expected_version)
    return case


def transition_case(db: Database, actor: Actor, case_id: int, status: str, *, expected_version: int) -> int:
    """Move a case to ``status`` if the flow allows it (ValidationFailed names why not); returns the new version."""

    def work() -> int:
        with db.transaction(actor) as session:
            case = _loaded(session, case_id, expected_version)
            now = utcnow()
            problem = transition_problem(case.status, status, resolved_at=case.resolved_at, now=now)
            if problem is not None:
                raise ValidationFailed({"status": (problem, {})})
            event = _record(session, case, actor, CaseEventKind.STATUS, case.status, status, at=now)
            resolving = status == CaseStatus.RESOLVED.value and case.status != status
            _set_status(case, status, now)
            recompute_case_sla(session, case, now=now)
            session.flush()
            if resolving:  # the customer is told, with the CSAT rating links (sent after the commit)
                queue_reply_email(session, case, event)
            return case.version

    return translate_stale(db, actor, "case", case_id, work)


def change_case_priority(db: Database, actor: Actor, case_id: int, priority: str, *, expected_version: int) -> int:
    """Change the priority; the SLA due times are recomputed from the case's start under the new policy."""

    def work() -> int:
        with db.transaction(actor) as session:
            case = _loaded(session, case_id, expected_version)
            errors = fields.check_values({"priority": CASE["priority"]}, {"priority": priority})
            if errors:
                raise ValidationFailed(errors)
            if priority != case.priority:
                now = utcnow()
                _record(session, case, actor, CaseEventKind.PRIORITY, case.priority, priority, at=now)
                case.priority = priority
                recompute_case_sla(session, case, now=now)
                session.flush()
            return case.version

    return translate_stale(db, actor, "case", case_id, work)


def add_case_reply(db: Database, actor: Actor, case_id: int, body: str, *, internal: bool = False,
                   files: Sequence[NewFile] = ()) -> int:
    """A public reply to the customer (meets the response clocks; a new case opens) or an internal note.

    Returns the history row's id. The text is kept as typed (shown as text, never rendered). A public
    reply to a case with a contact's address is also queued as an email (:mod:`crm_core.mail.outbound`), which
    carries the reply's files (together at most ``CRM_MAIL_ATTACHMENTS_MAX_BYTES``, else the reply is refused).
    ``files`` are kept on the reply or note (:mod:`crm_core.services.case_attachments`), all or nothing.
    """
    with db.transaction(actor) as session:
        case = session.get(Case, case_id)
        if case is None:
            raise NotFound("case")
        text = (body or "").strip()
        if not text:
            raise ValidationFailed({"body": ("validation.required", {})})
        if (problem := free_text_problem("body", text, REPLY_LENGTH)) is not None:
            raise ValidationFailed({"body": problem})
        checked = check_files(files)
        if case.status == CaseStatus.CLOSED.value:
            raise ValidationFailed({"body": ("cases.flow.closed_is_final", {})})
        now = utcnow()
        kind = CaseEventKind.NOTE if internal else CaseEventKind.REPLY
        event = CaseEvent(tenant_id=case.tenant_id, case_id=case.id, at=now, kind=kind, actor_id=actor.user_id,
                          body=text)
        session.add(event)
        if not internal:
            session.flush()
            emailed = queue_reply_email(session, case, event)  # sent by the case_mail_send job after the commit
            if emailed is not None and sum(len(one.data) for one in checked) > mail_attachments_max_bytes():
                # the files go with the email: refused now, with the text kept, rather than bounced later
                raise ValidationFailed({"files": ("case_files.error.too_large_for_mail",
                                                  {"max": readable_size(mail_attachments_max_bytes())})})
            if case.first_responded_at is None:
                case.first_responded_at = now
            if case.status == CaseStatus.NEW.value:
                _record(session, case, actor, CaseEventKind.STATUS, case.status, CaseStatus.OPEN.value, at=now)
                case.status = CaseStatus.OPEN.value
        session.flush()
        if checked:
            keep_files(session, case, checked, event_id=event.id, source="upload", uploaded_by_id=actor.user_id)
        recompute_case_sla(session, case, now=now)
        session.flush()
        return event.id
