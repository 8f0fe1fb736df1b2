"""Read side for the customer 360: everything about one customer on one screen.

Each section is one small indexed query (``tenant_id, customer_id, …`` indexes), bounded
by a limit; nothing loads a whole table. Scoping comes from the session: a customer the
actor may not see yields ``None``, and its related rows are filtered the same way.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, or_, select
from sqlalchemy.orm import Session, aliased

from crm_core.models import (
    Activity,
    AuditEvent,
    Case,
    Contact,
    Customer,
    Opportunity,
    PipelineStage,
    Task,
    TaskStatus,
    Team,
    User,
)
from crm_core.queries.orders import OrderRow, OrderTotals, customer_order_totals, customer_orders


@dataclass(frozen=True)
class ContactRow:
    id: int
    name: str
    title: str | None
    email: str | None
    phone: str | None
    is_primary: bool
    version: int


@dataclass(frozen=True)
class DealRow:
    id: int
    name: str
    stage_name: str
    stage_kind: str
    amount: Decimal
    currency: str
    probability: int
    weighted_amount: Decimal
    expected_close_date: dt.date | None
    owner_name: str | None
    closed_at: dt.datetime | None


@dataclass(frozen=True)
class ActivityRow:
    id: int
    type: str
    summary: str
    occurred_at: dt.datetime
    author_name: str | None
    contact_name: str | None


@dataclass(frozen=True)
class TaskRow:
    id: int
    title: str
    due_at: dt.datetime | None
    priority: str
    assignee_name: str | None
    overdue: bool


@dataclass(frozen=True)
class CaseRow:
    id: int
    subject: str
    status: str
    priority: str
    opened_at: dt.datetime
    resolved_at: dt.datetime | None


@dataclass(frozen=True)
class ChangeRow:
    """One audited write: who, when, what, and the field diff ``{field: [old, new]}``."""

    occurred_at: dt.datetime
    actor_name: str | None
    action: str
    entity: str
    entity_id: int | None
    changes: dict[str, Any]


@dataclass(frozen=True)
class CustomerProfile:
    """The customer 360."""

    customer: Customer
    owner_name: str | None
    team_name: str | None
    contacts: list[ContactRow] = field(default_factory=list)
    deals: list[DealRow] = field(default_factory=list)
    orders: list[OrderRow] = field(default_factory=list)
    order_totals: OrderTotals = field(default_factory=lambda: OrderTotals(0, Decimal("0.00")))
    activities: list[ActivityRow] = field(default_factory=list)
    open_tasks: list[TaskRow] = field(default_factory=list)
    cases: list[CaseRow] = field(default_factory=list)
    history: list[ChangeRow] = field(default_factory=list)


def get_customer_profile(
    session: Session, customer_id: int, *, now: dt.datetime | None = None, history_limit: int = 100
) -> CustomerProfile | None:
    """The 360 of ``customer_id``, or None when it does not exist or the actor may not see it."""
    owner = aliased(User)
    team = aliased(Team)
    found = session.execute(
        select(Customer, owner.full_name, team.name)
        .outerjoin(owner, owner.id == Customer.owner_id)
        .outerjoin(team, team.id == Customer.team_id)
        .where(Customer.id == customer_id)
    ).first()
    if found is None:
        return None
    customer, owner_name, team_name = found
    contacts = customer_contacts(session, customer_id)
    orders = customer_orders(session, customer_id)
    return CustomerProfile(
        customer=customer,
        owner_name=owner_name,
        team_name=team_name,
        contacts=contacts,
        deals=customer_deals(session, customer_id),
        orders=orders,
        order_totals=customer_order_totals(session, customer_id),
        activities=customer_activities(session, customer_id),
        open_tasks=customer_open_tasks(session, customer_id, now=now),
        cases=customer_cases(session, customer_id),
        history=customer_history(
            session, customer_id, contact_ids=[c.id for c in contacts], order_ids=[o.id for o in orders],
            limit=history_limit,
        ),
    )


def customer_contacts(session: Session, customer_id: int) -> list[ContactRow]:
    """Unarchived contacts, the primary one first."""
    statement = (
        select(Contact)
        .where(Contact.customer_id == customer_id, Contact.archived_at.is_(None))
        .order_by(Contact.is_primary.desc(), Contact.name, Contact.id)
        .limit(200)
    )
    return [
        ContactRow(c.id, c.name, c.title, c.email, c.phone, c.is_primary, c.version) for c in session.scalars(statement)
    ]


def customer_deals(session: Session, customer_id: int) -> list[DealRow]:
    """Unarchived deals with stage, probability (own, else the stage's) and weighted amount."""
    owner = aliased(User)
    statement = (
        select(Opportunity, PipelineStage.name, PipelineStage.kind, PipelineStage.probability, owner.full_name)
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .outerjoin(owner, owner.id == Opportunity.owner_id)
        .where(Opportunity.customer_id == customer_id, Opportunity.archived_at.is_(None))
        .order_by(Opportunity.closed_at.is_not(None), Opportunity.expected_close_date, Opportunity.id.desc())
        .limit(200)
    )
    rows = []
    for deal, stage_name, stage_kind, stage_probability, owner_name in session.execute(statement):
        probability = deal.probability if deal.probability is not None else stage_probability
        weighted = (deal.amount * Decimal(probability) / Decimal(100)).quantize(Decimal("0.01"))
        rows.append(
            DealRow(deal.id, deal.name, stage_name, stage_kind, deal.amount, deal.currency, probability, weighted,
                    deal.expected_close_date, owner_name, deal.closed_at)
        )
    return rows


def customer_activities(session: Session, customer_id: int, *, limit: int = 50) -> list[ActivityRow]:
    """The activity timeline, newest first."""
    author = aliased(User)
    statement = (
        select(Activity, author.full_name, Contact.name)
        .outerjoin(author, author.id == Activity.author_id)
        .outerjoin(Contact, Contact.id == Activity.contact_id)
        .where(Activity.customer_id == customer_id)
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(limit)
    )
    return [
        ActivityRow(a.id, a.type, a.summary, a.occurred_at, author_name, contact_name)
        for a, author_name, contact_name in session.execute(statement)
    ]


def customer_open_tasks(session: Session, customer_id: int, *, now: dt.datetime | None = None) -> list[TaskRow]:
    """Open tasks, the earliest due first (undated last)."""
    from crm_core.models import utcnow

    now = now or utcnow()
    assignee = aliased(User)
    statement = (
        select(Task, assignee.full_name)
        .outerjoin(assignee, assignee.id == Task.assignee_id)
        .where(Task.customer_id == customer_id, Task.status == TaskStatus.OPEN.value)
        .order_by(Task.due_at.is_(None), Task.due_at, Task.id)
        .limit(100)
    )
    return [
        TaskRow(task.id, task.title, task.due_at, task.priority, name, task.due_at is not None and task.due_at < now)
        for task, name in session.execute(statement)
    ]


def customer_cases(session: Session, customer_id: int) -> list[CaseRow]:
    """Service cases, newest first."""
    statement = (
        select(Case).where(Case.customer_id == customer_id).order_by(Case.opened_at.desc(), Case.id.desc()).limit(100)
    )
    return [
        CaseRow(c.id, c.subject, c.status, c.priority, c.opened_at, c.resolved_at) for c in session.scalars(statement)
    ]


def customer_history(
    session: Session,
    customer_id: int,
    *,
    contact_ids: list[int] | None = None,
    order_ids: list[int] | None = None,
    limit: int = 100,
) -> list[ChangeRow]:
    """Audited writes to the customer and its contacts and orders, newest first."""
    targets = [and_(AuditEvent.entity == "customer", AuditEvent.entity_id == customer_id)]
    if contact_ids:
        targets.append(and_(AuditEvent.entity == "contact", AuditEvent.entity_id.in_(contact_ids)))
    if order_ids:
        targets.append(and_(AuditEvent.entity == "order", AuditEvent.entity_id.in_(order_ids)))
    author = aliased(User)
    statement = (
        select(AuditEvent, author.full_name)
        .outerjoin(author, author.id == AuditEvent.actor_id)
        .where(or_(*targets))
        .order_by(AuditEvent.occurred_at.desc(), AuditEvent.id.desc())
        .limit(limit)
    )
    return [
        ChangeRow(event.occurred_at, name, event.action, event.entity, event.entity_id, dict(event.changes or {}))
        for event, name in session.execute(statement)
    ]
