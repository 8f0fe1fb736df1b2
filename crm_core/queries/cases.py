"""Read side for cases: a keyset-paged list with the case list's filters (the service queue), and one case.

Scoping comes from the session (a case is seen by whoever sees its customer, and by its assignee
and its queue's team; the customer's name shows only to those who see the customer). Ordered by
``(opened_at, id)``, ``(updated_at, id)`` or ``(sla due, id)`` (the earliest running SLA due time,
cases without one last), never null, so inserts never shift a page.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import and_, case, func, literal_column, or_, select, tuple_
from sqlalchemy.orm import Session, aliased

from crm_core.models import Case, CaseStatus, Customer, User
from crm_core.models.service import CaseEvent, CaseMessage, CaseSla
from crm_core.rules.fields import search_text

NO_DUE = dt.datetime(9999, 12, 31)  # cases without a running clock sort after every due time
SLA_DUE = func.coalesce(CaseSla.next_due_at, NO_DUE)
SORTABLE_COLUMNS: dict[str, Any] = {"opened_at": Case.opened_at, "updated_at": Case.updated_at, "sla_due": SLA_DUE}

Position = tuple[dt.datetime, int]


@dataclass(frozen=True)
class CaseRow:
    """A case as the list and the record show it."""

    id: int
    customer_id: int
    customer_name: str  # empty when the reader works the case (queue, assignment) but may not see the customer
    contact_id: int | None
    assignee_id: int | None
    assignee_name: str | None
    subject: str
    description: str
    status: str
    priority: str
    opened_at: dt.datetime
    resolved_at: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    channel: str = "web"
    category: str | None = None
    team_id: int | None = None
    first_responded_at: dt.datetime | None = None
    sla_due_at: dt.datetime | None = None  # the earliest running SLA due time
    escalation_level: int = 0
    order_id: int | None = None
    product_id: int | None = None
    merged_into_id: int | None = None  # the case this one was merged into (closed; crm_core.services.case_merging)

    @property
    def sla_due(self) -> dt.datetime:
        """The keyset value of the ``sla_due`` sort."""
        return self.sla_due_at or NO_DUE


@dataclass(frozen=True)
class CaseFilters:
    """What the case list is filtered by; empty values mean no filter. Closed cases only when asked."""

    customer_id: int | None = None
    assignee_id: int | None = None
    unassigned: bool = False
    status: str | None = None
    priority: str | None = None
    search: str = ""  # in the subject
    include_closed: bool = False
    team_id: int | None = None  # the queue
    channel: str | None = None
    breached_only: bool = False  # at least one clock past its due time (escalation level 2 or more)
    unresolved: bool = False  # only cases still to work on (not resolved or closed)


@dataclass(frozen=True)
class CasePage:
    """One keyset page of cases."""

    items: list[CaseRow]
    has_next: bool
    next_position: Position | None
    total: int | None = None
    total_capped: bool = False


_ASSIGNEE = aliased(User)


def _statement() -> Any:
    return (
        select(Case, Customer.name, _ASSIGNEE.full_name, CaseSla.next_due_at, CaseSla.escalation_level)
        .outerjoin(Customer, Customer.id == Case.customer_id)
        .outerjoin(_ASSIGNEE, _ASSIGNEE.id == Case.assignee_id)
        .outerjoin(CaseSla, CaseSla.case_id == Case.id)
    )


def _filtered(statement: Any, filters: CaseFilters) -> Any:
    if filters.status is not None:
        statement = statement.where(Case.status == filters.status)
    elif not filters.include_closed:
        statement = statement.where(Case.status != CaseStatus.CLOSED.value)
    if filters.unresolved:
        statement = statement.where(Case.status.not_in((CaseStatus.RESOLVED.value, CaseStatus.CLOSED.value)))
    if filters.customer_id is not None:
        statement = statement.where(Case.customer_id == filters.customer_id)
    if filters.unassigned:
        statement = statement.where(Case.assignee_id.is_(None))
    elif filters.assignee_id is not None:
        statement = statement.where(Case.assignee_id == filters.assignee_id)
    if filters.priority is not None:
        statement = statement.where(Case.priority == filters.priority)
    if filters.team_id is not None:
        statement = statement.where(Case.team_id == filters.team_id)
    if filters.channel is not None:
        statement = statement.where(Case.channel == filters.channel)
    if filters.breached_only:
        statement = statement.where(Case.id.in_(select(CaseSla.case_id).where(CaseSla.escalation_level >= 2)))
    if search_text(filters.search):
        statement = statement.where(Case.subject.contains(search_text(filters.search), autoescape=True))
    return statement


def _row(case: Case, customer_name: str | None, assignee_name: str | None, due: dt.datetime | None = None,
         level: int | None = None) -> CaseRow:
    return CaseRow(
        id=case.id, customer_id=case.customer_id, customer_name=customer_name or "", contact_id=case.contact_id,
        assignee_id=case.assignee_id, assignee_name=assignee_name, subject=case.subject,
        description=case.description or "", status=case.status, priority=case.priority, opened_at=case.opened_at,
        resolved_at=case.resolved_at, created_at=case.created_at, updated_at=case.updated_at, version=case.version,
        channel=case.channel, category=case.category, team_id=case.team_id,
        first_responded_at=case.first_responded_at, sla_due_at=due, escalation_level=level or 0,
        order_id=case.order_id, product_id=case.product_id,
        merged_into_id=case.merged_into_id,
    )


def _running_clock(session: Session) -> Any:
    """``next_due_at IS NOT NULL``; on SQLite marked as rare (open cases are a few percent of all), so that
    its planner walks the due index and stops at the page's last row instead of sorting every case of the
    queue, as it did once the case rule became a test on the case's own columns (migration 0031: 0.3 s)."""
    running = CaseSla.next_due_at.is_not(None)
    if session.get_bind().dialect.name == "sqlite":
        return func.likelihood(running, literal_column("0.05"))
    return running


def _soonest_due(session: Session, filters: CaseFilters, limit: int, after: Position | None) -> list[Any]:
    """``sla_due`` ascending in two parts: running clocks by due time, then cases without one by id.

    The same order as ``COALESCE(next_due_at, NO_DUE), id``, but the first part is driven by the
    ``case_sla (tenant_id, next_due_at, case_id)`` index and stops after ``limit`` rows; sorting the
    coalesced value made the database sort every case of the queue (benchmarks/service.py:
    78 ms → 0.1 ms for 50 rows of a 33k-case queue on SQLite). The tie is broken by
    ``case_sla.case_id`` (the case's id through the join) so that the index holds the whole order:
    with ``cases.id`` MariaDB read and sorted every running clock of the tenant (migration 0034).
    """
    rows: list[Any] = []
    if after is None or after[0] < NO_DUE:
        running = _filtered(
            select(Case, Customer.name, _ASSIGNEE.full_name, CaseSla.next_due_at, CaseSla.escalation_level)
            .join(CaseSla, CaseSla.case_id == Case.id)
            .outerjoin(Customer, Customer.id == Case.customer_id)
            .outerjoin(_ASSIGNEE, _ASSIGNEE.id == Case.assignee_id), filters,
        ).where(_running_clock(session))
        if after is not None:  # the bound on the due time alone gives MariaDB the index range
            running = running.where(CaseSla.next_due_at >= after[0],
                                    tuple_(CaseSla.next_due_at, CaseSla.case_id) > tuple_(*after))
        ordered = running.order_by(CaseSla.next_due_at.asc(), CaseSla.case_id.asc()).limit(limit)
        rows = list(session.execute(ordered).all())
    if len(rows) < limit:
        rest = _filtered(_statement(), filters).where(CaseSla.next_due_at.is_(None))
        if after is not None and after[0] >= NO_DUE:
            rest = rest.where(Case.id > after[1])
        rows += session.execute(rest.order_by(Case.id.asc()).limit(limit - len(rows))).all()
    return rows


def list_cases(
    session: Session,
    *,
    filters: CaseFilters | None = None,
    sort: str = "opened_at",
    descending: bool = True,
    per_page: int = 50,
    after: Position | None = None,
    count_cap: int | None = None,
) -> CasePage:
    """A page of the visible cases matching ``filters`` past ``after``; ``count_cap`` adds a capped count."""
    filters = filters or CaseFilters()
    per_page = max(1, min(per_page, 500))
    sort = sort if sort in SORTABLE_COLUMNS else "opened_at"
    column = SORTABLE_COLUMNS[sort]
    statement = _filtered(_statement(), filters)
    if after is not None:
        position, bound = tuple_(column, Case.id), tuple_(*after)
        statement = statement.where(position < bound if descending else position > bound)
    order = [column.desc(), Case.id.desc()] if descending else [column.asc(), Case.id.asc()]
    if sort == "sla_due" and not descending:  # the service queue's order: the same rows, found through the index
        rows = _soonest_due(session, filters, per_page + 1, after)
    else:
        rows = list(session.execute(statement.order_by(*order).limit(per_page + 1)).all())
    items = [_row(*row) for row in rows[:per_page]]
    has_next = len(rows) > per_page
    next_position = (getattr(items[-1], sort), items[-1].id) if has_next else None
    total, capped = None, False
    if count_cap is not None:
        inner = _filtered(select(Case.id), filters).limit(count_cap + 1).subquery()
        total = int(session.scalar(select(func.count()).select_from(inner)) or 0)
        capped, total = total > count_cap, min(total, count_cap)
    return CasePage(items=items, has_next=has_next, next_position=next_position, total=total, total_capped=capped)


def get_case(session: Session, case_id: int) -> CaseRow | None:
    """One visible case, or None."""
    row = session.execute(_statement().where(Case.id == case_id)).first()
    return _row(*row) if row is not None else None


@dataclass(frozen=True)
class TimelineEntry:
    """One row of a case's history as its timeline shows it (replies and notes carry their text)."""

    at: dt.datetime
    kind: str
    from_value: str | None
    to_value: str | None
    body: str | None
    actor_name: str | None
    id: int


def _timeline(case_id: int) -> Any:
    author = aliased(User)
    return (select(CaseEvent.at, CaseEvent.kind, CaseEvent.from_value, CaseEvent.to_value, CaseEvent.body,
                   author.full_name, CaseEvent.id)
            .outerjoin(author, author.id == CaseEvent.actor_id)
            .where(CaseEvent.case_id == case_id))


def case_timeline(session: Session, case_id: int, *, limit: int = 200,
                  before: tuple[dt.datetime, int] | None = None) -> list[TimelineEntry]:
    """The newest ``limit`` history rows of a visible case, newest first (empty when it is not visible);
    with ``before`` (a row's time and id), the rows older than that one: the next page, however many are
    added meanwhile."""
    statement = _timeline(case_id)
    if before is not None:
        at, event_id = before
        statement = statement.where(or_(CaseEvent.at < at, and_(CaseEvent.at == at, CaseEvent.id < event_id)))
    rows = session.execute(statement.order_by(CaseEvent.at.desc(), CaseEvent.id.desc()).limit(limit)).all()
    return [TimelineEntry(*row) for row in rows]


def case_timeline_entry(session: Session, case_id: int, event_id: int) -> TimelineEntry | None:
    """One history row of a visible case (None when the case is not visible or the row is not its)."""
    row = session.execute(_timeline(case_id).where(CaseEvent.id == event_id)).one_or_none()
    return None if row is None else TimelineEntry(*row)


@dataclass(frozen=True)
class CaseEmail:
    """One email of a case as the case page lists it: the other party's address and the delivery state."""

    direction: str
    address: str
    status: str
    attempts: int
    error: str | None
    at: dt.datetime


def case_emails(session: Session, case_id: int, *, limit: int = 50) -> list[CaseEmail]:
    """The newest ``limit`` emails of a visible case, newest first (empty when it is not visible)."""
    rows = session.execute(
        select(CaseMessage.direction, CaseMessage.from_address, CaseMessage.to_address, CaseMessage.status,
               CaseMessage.attempts, CaseMessage.error, CaseMessage.created_at)
        .where(CaseMessage.case_id == case_id).order_by(CaseMessage.id.desc()).limit(limit)).all()
    return [CaseEmail(direction, sender if direction == "in" else recipient, status, attempts, error, at)
            for direction, sender, recipient, status, attempts, error, at in rows]


BOARD_STATUSES = tuple(status.value for status in CaseStatus if status is not CaseStatus.CLOSED)
"""The case board's columns: every status a case is worked in (closed cases are history, not work)."""


@dataclass(frozen=True)
class BoardColumn:
    """One status of the case board: its capped count and its soonest-due cards."""

    status: str
    count: int
    count_capped: bool
    cards: list[CaseRow]


def case_board(session: Session, filters: CaseFilters | None = None, *, per_column: int = 8,
               count_cap: int = 1_000) -> list[BoardColumn]:
    """The visible cases matching ``filters`` (its status ignored) by status, soonest SLA due first.

    Per column one page of :func:`list_cases` (the queue's index-driven order) and a capped count,
    so a board over 500k cases reads at most ``count_cap`` ids per column, never the whole tenant.
    """
    base = filters or CaseFilters()
    columns = []
    for status in BOARD_STATUSES:
        by_status = replace(base, status=status)
        page = list_cases(session, filters=by_status, sort="sla_due", descending=False, per_page=per_column,
                          count_cap=count_cap)
        columns.append(BoardColumn(status=status, count=page.total or 0, count_capped=page.total_capped,
                                   cards=page.items))
    return columns


def ended_in_time(met_at: Any, due_at: Any) -> Any:
    """SQL: an SLA clock that ended at ``met_at`` met its target (``case_sla`` keeps a met clock's due
    time only when it was breached, so no due time, or one not before the end)."""
    return due_at.is_(None) | (due_at >= met_at)


def sla_outcome(metric: str, now: dt.datetime) -> Any:
    """SQL for how one SLA clock of a case stands: ``met`` (ended before any due time passed),
    ``missed`` (ended late, or still running past its due time), ``running``, or NULL (no policy).

    The service dashboard's attainment uses the same reading (``case_sla`` keeps a met clock's
    due time only when it was breached)."""
    met_at, due_at = getattr(CaseSla, f"{metric}_met_at"), getattr(CaseSla, f"{metric}_due_at")
    return case(
        (CaseSla.policy_id.is_(None), None),
        (met_at.is_not(None) & ended_in_time(met_at, due_at), "met"),
        (met_at.is_not(None) | (due_at < now), "missed"),
        else_="running",
    )


def case_about(session: Session, case: CaseRow) -> tuple[str | None, str | None]:
    """The order number and the product name a visible case is about (None where unset or not visible)."""
    from crm_core.models import Order, Product

    order = session.scalar(select(Order.order_number).where(Order.id == case.order_id)) if case.order_id else None
    product = session.scalar(select(Product.name).where(Product.id == case.product_id)) if case.product_id else None
    return order, product
