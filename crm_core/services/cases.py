"""Case (customer-service ticket, 工单) use cases: open, edit, close.

Plain on purpose (SLA clocks come later and build on these): each use case opens its own
transaction for the acting user; who may see or change a case is the case's customer's rule
(:mod:`crm_core.access`), which also writes the audit trail. A valid case is
:data:`CASE`: a subject, a status and a priority from their lists, free text without markup
or a leading formula. ``resolved_at`` follows the status: set when a case becomes resolved
or closed, cleared when it is reopened. Cases have no archive column: closing is how a case
leaves the working lists (it stays readable). Edits use optimistic locking (``version``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.models import Case, CaseStatus, Contact, Customer, Priority, Role, User, utcnow
from crm_core.rules import fields
from crm_core.rules.fields import ENUM, Field, clean_text
from crm_core.services.editing import check_version, translate_stale

Errors = dict[str, tuple[str, dict[str, Any]]]

CASE: dict[str, Field] = {
    "subject": Field("subject", required=True, column=Case.__table__.c["subject"]),
    "description": Field("description", length=20_000),  # Text: no size of its own
    "status": Field("status", ENUM, choices=tuple(status.value for status in CaseStatus)),
    "priority": Field("priority", ENUM, choices=tuple(priority.value for priority in Priority)),
}
"""What a valid case is (the form, the API and any import of cases check this)."""

CLOSED_STATUSES = frozenset({CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value})


@dataclass(kw_only=True)
class CaseInput:
    """The fields of the case form, as typed. ``assignee_id`` None leaves the case unassigned."""

    customer_id: int
    subject: str
    description: str = ""
    status: str = CaseStatus.OPEN.value
    priority: str = Priority.NORMAL.value
    contact_id: int | None = None
    assignee_id: int | None = None


def _validate(session: Session, actor: Actor, form: CaseInput, errors: Errors) -> dict[str, Any]:
    values = {"subject": clean_text(form.subject), "description": (form.description or "").strip(),
              "status": form.status, "priority": form.priority}
    errors.update(fields.check_values(CASE, values))
    if form.contact_id is not None:
        contact = session.get(Contact, form.contact_id)
        if contact is None or contact.customer_id != form.customer_id:
            errors["contact_id"] = ("validation.choice", {})
    if form.assignee_id is not None:
        user = session.get(User, form.assignee_id)
        if user is None or not user.is_active or user.role == Role.ANALYST.value:
            errors["assignee_id"] = ("validation.choice", {})
        elif not access.can_assign_owner(actor, form.assignee_id):
            raise AccessDenied("cannot assign a case to that user")
    return values


def _apply(case: Case, form: CaseInput, values: dict[str, Any]) -> None:
    was_closed = case.status in CLOSED_STATUSES
    case.subject = values["subject"] or ""
    case.description = values["description"]
    case.priority = form.priority
    case.contact_id = form.contact_id
    case.assignee_id = form.assignee_id
    case.status = form.status
    if form.status in CLOSED_STATUSES and not was_closed:
        case.resolved_at = utcnow()
    elif form.status not in CLOSED_STATUSES:
        case.resolved_at = None


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
        case = Case(tenant_id=actor.tenant_id, customer_id=form.customer_id, opened_at=utcnow(),
                    status=CaseStatus.OPEN.value)
        _apply(case, form, values)
        session.add(case)
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
            values = _validate(session, actor, form, errors)
            if errors:
                raise ValidationFailed(errors)
            _apply(case, form, values)
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
                if case.status not in CLOSED_STATUSES:
                    case.resolved_at = utcnow()
                case.status = CaseStatus.CLOSED.value
                session.flush()
            return case.version

    return translate_stale(db, actor, "case", case_id, work)
