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

from sqlalchemy import and_, case, func, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from crm_core.models import (
    Activity,
    AuditEvent,
    Campaign,
    Case,
    Contact,
    Customer,
    Opportunity,
    Order,
    OrderStatus,
    PipelineStage,
    StageKind,
    Task,
    TaskStatus,
    Team,
    User,
    utcnow,
)
from crm_core.models.automation import LifecycleTransition
from crm_core.models.marketing import MarketingEvent
from crm_core.models.pipeline import OpportunityStageChange
from crm_core.models.service import CaseRating, CaseSla, CsatScore
from crm_core.queries.cases import sla_outcome
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
    lost_reason: str | None = None


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
    first_response: str | None = None  # the SLA clock's outcome: met, missed, running; None without a policy
    resolution: str | None = None
    csat: str | None = None  # the customer's rating: good, bad


@dataclass(frozen=True)
class SlaRecord:
    """A customer's service record over all their visible cases: clocks met of those ended or missed."""

    cases: int
    first_response_met: int
    first_response_measured: int
    resolution_met: int
    resolution_measured: int
    csat_good: int
    csat_rated: int


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
    sla_record: SlaRecord | None = None
    history: list[ChangeRow] = field(default_factory=list)


def get_customer_profile(
    session: Session, customer_id: int, *, now: dt.datetime | None = None, history_limit: int = 100,
    with_activities: bool = True,
) -> CustomerProfile | None:
    """The 360 of ``customer_id``, or None when it does not exist or the actor may not see it.

    ``with_activities=False`` leaves the activity list empty: the page reads the timeline a
    page at a time with :func:`customer_timeline` instead.
    """
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
        activities=customer_activities(session, customer_id) if with_activities else [],
        open_tasks=customer_open_tasks(session, customer_id, now=now),
        cases=customer_cases(session, customer_id),
        sla_record=customer_sla_record(session, customer_id),
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
                    deal.expected_close_date, owner_name, deal.closed_at, deal.lost_reason)
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


def customer_cases(session: Session, customer_id: int, *, now: dt.datetime | None = None) -> list[CaseRow]:
    """Service cases, newest first, with each SLA clock's outcome and the customer's rating."""
    now = now or utcnow()
    statement = (
        select(Case, sla_outcome("first_response", now), sla_outcome("resolution", now), CaseRating.score)
        .outerjoin(CaseSla, CaseSla.case_id == Case.id).outerjoin(CaseRating, CaseRating.case_id == Case.id)
        .where(Case.customer_id == customer_id).order_by(Case.opened_at.desc(), Case.id.desc()).limit(100)
    )
    return [
        CaseRow(c.id, c.subject, c.status, c.priority, c.opened_at, c.resolved_at, first, resolution, score)
        for c, first, resolution, score in session.execute(statement)
    ]


def customer_sla_record(session: Session, customer_id: int, *, now: dt.datetime | None = None) -> SlaRecord:
    """The customer's SLA record and CSAT over all their visible cases, counted in SQL."""
    now = now or utcnow()
    first, resolution = sla_outcome("first_response", now), sla_outcome("resolution", now)

    def count(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    row = session.execute(
        select(func.count(Case.id), count(first == "met"), count(first.in_(("met", "missed"))),
               count(resolution == "met"), count(resolution.in_(("met", "missed"))),
               count(CaseRating.score == CsatScore.GOOD), func.count(CaseRating.id))
        .outerjoin(CaseSla, CaseSla.case_id == Case.id).outerjoin(CaseRating, CaseRating.case_id == Case.id)
        .where(Case.customer_id == customer_id)
    ).one()
    return SlaRecord(*(int(value or 0) for value in row))


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


# --- key facts for the header ---------------------------------------------------------------


@dataclass(frozen=True)
class NextStep:
    """What to do next: the earliest open task, else the open deal closing soonest."""

    kind: str  # "task" | "deal"
    title: str
    due: dt.datetime | dt.date | None
    stage_name: str | None = None
    overdue: bool = False


@dataclass(frozen=True)
class KeyFacts:
    """The 360 header: open deals (count, value, the stage of the soonest), last contact and the next step."""

    open_deals: int
    open_value: Decimal
    currency: str | None
    deal_stage: str | None
    last_contacted_at: dt.datetime | None
    next_step: NextStep | None


def key_facts(session: Session, profile: CustomerProfile, *, now: dt.datetime | None = None) -> KeyFacts:
    """The header's facts for a loaded profile: the open deals' sum in SQL, the rest from its lists."""
    from crm_core.models import utcnow

    now = now or utcnow()
    customer_id = profile.customer.id
    count, value, currencies = session.execute(
        select(func.count(Opportunity.id), func.coalesce(func.sum(Opportunity.amount), 0),
               func.count(func.distinct(Opportunity.currency)))
        .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
        .where(Opportunity.customer_id == customer_id, Opportunity.archived_at.is_(None),
               PipelineStage.kind == StageKind.OPEN.value)
    ).one()
    open_deals = [deal for deal in profile.deals if deal.stage_kind == StageKind.OPEN.value]
    # a sum over several currencies has none of its own: the page then shows the figure without one
    currency = open_deals[0].currency if open_deals and int(currencies or 0) == 1 else None
    soonest = min(open_deals, key=lambda d: (d.expected_close_date is None, d.expected_close_date or dt.date.max),
                  default=None)
    next_step: NextStep | None = None
    if profile.open_tasks:
        task = profile.open_tasks[0]
        next_step = NextStep("task", task.title, task.due_at, overdue=task.overdue)
    elif soonest is not None:
        overdue = soonest.expected_close_date is not None and soonest.expected_close_date < now.date()
        next_step = NextStep("deal", soonest.name, soonest.expected_close_date, soonest.stage_name, overdue)
    return KeyFacts(
        open_deals=int(count or 0), open_value=Decimal(str(value or 0)), currency=currency,
        deal_stage=soonest.stage_name if soonest else None,
        last_contacted_at=profile.customer.last_contacted_at, next_step=next_step,
    )


# --- the timeline ---------------------------------------------------------------------------

TIMELINE_KINDS = ("activity", "deal_stage", "lifecycle", "task", "order", "marketing")
"""What the timeline holds, in the order entries of the same moment are listed."""

TimelineCursor = tuple[dt.datetime, int, int]
"""Keyset position: the last entry's moment, its kind's position in :data:`TIMELINE_KINDS`, its id."""


@dataclass(frozen=True)
class TimelineEntry:
    """One thing that happened to the customer. ``details`` holds the kind's own values (stage names, amounts …)."""

    kind: str
    id: int
    occurred_at: dt.datetime
    actor_name: str | None
    text: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def cursor(self) -> TimelineCursor:
        return (self.occurred_at, TIMELINE_KINDS.index(self.kind), self.id)


@dataclass(frozen=True)
class TimelinePage:
    entries: list[TimelineEntry]
    next_cursor: TimelineCursor | None


def customer_timeline(
    session: Session,
    customer_id: int,
    *,
    kinds: tuple[str, ...] | list[str] | None = None,
    after: TimelineCursor | None = None,
    limit: int = 20,
) -> TimelinePage:
    """One page of the customer's timeline, newest first, after ``after`` (a previous page's ``next_cursor``).

    Each kind is one indexed statement of the shape ``WHERE customer_id = ? AND (moment, id) < cursor
    ORDER BY moment DESC, id DESC LIMIT limit + 1`` (activities: the ``customer_id, occurred_at``
    index); the pages are merged here, so no statement reads more than one page of its table
    whatever the depth. Entries of the same moment are ordered by kind, then id.
    An invisible customer yields an empty page (lifecycle rows carry no owner of their own).
    """
    limit = max(1, min(limit, 100))
    wanted = [kind for kind in TIMELINE_KINDS if kinds is None or kind in kinds]
    if not wanted or session.scalar(select(Customer.id).where(Customer.id == customer_id)) is None:
        return TimelinePage([], None)
    readers = {
        "activity": _activity_entries, "deal_stage": _stage_entries, "lifecycle": _lifecycle_entries,
        "task": _task_entries, "order": _order_entries, "marketing": _marketing_entries,
    }
    merged: list[TimelineEntry] = []
    for kind in wanted:
        merged.extend(readers[kind](session, customer_id, after, limit + 1))
    merged.sort(key=lambda entry: (entry.occurred_at, -entry.cursor[1], entry.id), reverse=True)
    page = merged[:limit]
    return TimelinePage(page, page[-1].cursor if len(merged) > limit else None)


def _after(kind: str, moment: Any, id_column: Any, cursor: TimelineCursor | None) -> list[Any]:
    """The keyset condition for ``kind``: entries listed after ``cursor`` (see :func:`customer_timeline`)."""
    if cursor is None:
        return []
    at, rank, entry_id = cursor
    mine = TIMELINE_KINDS.index(kind)
    if mine < rank:
        return [moment < at]
    if mine > rank:
        return [moment <= at]
    return [tuple_(moment, id_column) < tuple_(at, entry_id)]


def _activity_entries(session: Session, customer_id: int, cursor: TimelineCursor | None,
                      limit: int) -> list[TimelineEntry]:
    author = aliased(User)
    statement = (
        select(Activity.id, Activity.type, Activity.summary, Activity.occurred_at, author.full_name, Contact.name)
        .outerjoin(author, author.id == Activity.author_id)
        .outerjoin(Contact, Contact.id == Activity.contact_id)
        .where(Activity.customer_id == customer_id, *_after("activity", Activity.occurred_at, Activity.id, cursor))
        .order_by(Activity.occurred_at.desc(), Activity.id.desc())
        .limit(limit)
    )
    return [
        TimelineEntry("activity", row[0], row[3], row[4], row[2], {"type": row[1], "contact": row[5]})
        for row in session.execute(statement)
    ]


def _stage_entries(session: Session, customer_id: int, cursor: TimelineCursor | None,
                   limit: int) -> list[TimelineEntry]:
    author = aliased(User)
    from_stage = aliased(PipelineStage)
    to_stage = aliased(PipelineStage)
    change = OpportunityStageChange
    statement = (
        select(change.id, change.changed_at, author.full_name, Opportunity.name, Opportunity.amount,
               Opportunity.currency, Opportunity.lost_reason, Opportunity.stage_id, change.to_stage_id,
               from_stage.name, to_stage.name, to_stage.kind)
        .join(Opportunity, Opportunity.id == change.opportunity_id)
        .join(to_stage, to_stage.id == change.to_stage_id)
        .outerjoin(from_stage, from_stage.id == change.from_stage_id)
        .outerjoin(author, author.id == change.changed_by_id)
        .where(Opportunity.customer_id == customer_id, Opportunity.archived_at.is_(None),
               *_after("deal_stage", change.changed_at, change.id, cursor))
        .order_by(change.changed_at.desc(), change.id.desc())
        .limit(limit)
    )
    entries = []
    for (change_id, at, actor_name, deal, amount, currency, lost_reason, current_stage, to_stage_id,
         from_name, to_name, to_kind) in session.execute(statement):
        # the reason belongs to the deal's present loss: an older move into a lost stage has none to show
        reason = lost_reason if to_kind == StageKind.LOST.value and current_stage == to_stage_id else None
        entries.append(TimelineEntry("deal_stage", change_id, at, actor_name, deal, {
            "from_stage": from_name, "to_stage": to_name, "to_kind": to_kind, "amount": amount,
            "currency": currency, "lost_reason": (reason or "").strip() or None,
        }))
    return entries


def _lifecycle_entries(session: Session, customer_id: int, cursor: TimelineCursor | None,
                       limit: int) -> list[TimelineEntry]:
    author = aliased(User)
    transition = LifecycleTransition
    statement = (
        select(transition.id, transition.occurred_at, author.full_name, transition.from_stage, transition.to_stage,
               transition.source, transition.reason)
        .outerjoin(author, author.id == transition.actor_id)
        .where(transition.customer_id == customer_id,
               *_after("lifecycle", transition.occurred_at, transition.id, cursor))
        .order_by(transition.occurred_at.desc(), transition.id.desc())
        .limit(limit)
    )
    return [
        TimelineEntry("lifecycle", row[0], row[1], row[2], row[6] or "", {
            "from_stage": row[3], "to_stage": row[4], "source": row[5],
        })
        for row in session.execute(statement)
    ]


def _task_entries(session: Session, customer_id: int, cursor: TimelineCursor | None,
                  limit: int) -> list[TimelineEntry]:
    assignee = aliased(User)
    statement = (
        select(Task.id, Task.created_at, assignee.full_name, Task.title, Task.status, Task.due_at, Task.completed_at)
        .outerjoin(assignee, assignee.id == Task.assignee_id)
        .where(Task.customer_id == customer_id, *_after("task", Task.created_at, Task.id, cursor))
        .order_by(Task.created_at.desc(), Task.id.desc())
        .limit(limit)
    )
    return [
        TimelineEntry("task", row[0], row[1], row[2], row[3], {
            "status": row[4], "due_at": row[5], "completed_at": row[6],
        })
        for row in session.execute(statement)
    ]


def _order_entries(session: Session, customer_id: int, cursor: TimelineCursor | None,
                   limit: int) -> list[TimelineEntry]:
    statement = (
        select(Order.id, Order.ordered_at, Order.order_number, Order.status, Order.total_amount, Order.currency)
        .where(Order.customer_id == customer_id, Order.archived_at.is_(None),
               *_after("order", Order.ordered_at, Order.id, cursor))
        .order_by(Order.ordered_at.desc(), Order.id.desc())
        .limit(limit)
    )
    return [
        TimelineEntry("order", row[0], row[1], None, row[2], {
            "status": row[3], "amount": row[4], "currency": row[5],
            "cancelled": row[3] == OrderStatus.CANCELLED.value,
        })
        for row in session.execute(statement)
    ]


MARKETING_TIMELINE_TOUCHES = ("entered", "sent", "opened", "clicked", "replied", "unsubscribed", "bounced", "goal",
                              "exited")
"""The campaign touches the timeline shows (a skipped send, a delivery or a completed sequence are the results
page's, not the customer's story)."""


def _marketing_entries(session: Session, customer_id: int, cursor: TimelineCursor | None,
                       limit: int) -> list[TimelineEntry]:
    """Campaign touches: the campaign's name as the text, what happened (and its detail: the link, the reason)."""
    event = MarketingEvent
    statement = (
        select(event.id, event.occurred_at, event.kind, event.detail, Campaign.name, event.campaign_id)
        .join(Campaign, Campaign.id == event.campaign_id)
        .where(event.customer_id == customer_id, event.kind.in_(MARKETING_TIMELINE_TOUCHES),
               *_after("marketing", event.occurred_at, event.id, cursor))
        .order_by(event.occurred_at.desc(), event.id.desc())
        .limit(limit)
    )
    return [
        TimelineEntry("marketing", row[0], row[1], None, row[4], {
            "touch": row[2], "detail": row[3] or None, "campaign_id": row[5],
        })
        for row in session.execute(statement)
    ]
