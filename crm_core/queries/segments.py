"""Read side for segments: lifecycle distribution and flow, RFM from orders, and the
segment builder compiled to SQL.

Pattern: a validated :class:`~crm_core.rules.segments.SegmentSpec` is compiled by
:func:`segment_clause` into one SQLAlchemy boolean expression over ``customers`` (bound
parameters only, never concatenated SQL); counting, paging and exporting members all use
that expression, so the live count, the grid and the file always agree.

Every function adds ``tenant_id`` filters explicitly, so the same code serves an actor's
session (where :mod:`crm_core.access` adds role visibility too) and a system session
(the ``segments snapshot`` command). In an actor's session RFM quintiles rank the
customers that actor can see.

RFM: orders that are not cancelled or archived, of customers not archived, up to
``as_of``. Per customer: last order time (R), number of orders (F), total amount (M).
Each is cut into quintiles with ``NTILE(5)`` (SQLite ≥ 3.25, PostgreSQL, MariaDB ≥ 10.2);
5 is best. Ties are ordered deterministically: R by last order then customer id, F by
order count then amount then id, M by amount then order count then id. The named segment
comes from :data:`crm_core.rules.segments.RFM_GRID`, rendered as a SQL ``CASE``.

Custom fields are read from the ``custom_fields`` JSON column with SQLAlchemy's JSON
index operators (``JSON_EXTRACT`` on SQLite and MariaDB, ``->>`` on PostgreSQL). Limits:
number fields are compared after a ``CAST`` to DECIMAL (values are stored as validated
decimal strings), date fields as ISO ``YYYY-MM-DD`` strings; these are not indexed, so a
custom-field condition scans the tenant's customers.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Numeric,
    Select,
    and_,
    case,
    cast,
    func,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session, aliased

from crm_core.access import actor_of
from crm_core.models import (
    Customer,
    LifecycleStage,
    Opportunity,
    Order,
    OrderStatus,
    Team,
    User,
)
from crm_core.models.automation import LifecycleTransition
from crm_core.models.segments import Score, Segment, SegmentSnapshot
from crm_core.queries.paging import Page
from crm_core.rules.segments import (
    BOOL,
    CHOICE,
    CUSTOM_PREFIX,
    DATE,
    NUMBER,
    RFM_GRID,
    SCORE_PREFIX,
    TEXT,
    Condition,
    FieldCatalog,
    SegmentSpec,
)

TEXT_COLUMNS = {
    "name": Customer.name,
    "industry": Customer.industry,
    "region": Customer.region,
    "source": Customer.source,
    "email": Customer.email,
}
DATE_COLUMNS = {
    "created_at": Customer.created_at,
    "last_contacted_at": Customer.last_contacted_at,
    "next_follow_up_at": Customer.next_follow_up_at,
}
CHOICE_COLUMNS = {"kind": Customer.kind, "lifecycle_stage": Customer.lifecycle_stage}
RFM_COLUMNS = {"rfm_recency": "r", "rfm_frequency": "f", "rfm_monetary": "m"}


def tenant_of(session: Session, tenant_id: int | None = None) -> int:
    """The tenant to filter by: the session's actor's, else the explicit ``tenant_id``."""
    actor = actor_of(session)
    if actor is not None:
        return actor.tenant_id
    if tenant_id is None:
        raise ValueError("a system session needs an explicit tenant_id")
    return tenant_id


def _today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


# --- lifecycle ------------------------------------------------------------------------


@dataclass(frozen=True)
class StageCount:
    """How many customers are in one lifecycle stage."""

    stage: str
    count: int


def lifecycle_distribution(session: Session, *, tenant_id: int | None = None) -> list[StageCount]:
    """Customers (not archived) per lifecycle stage, in funnel order, zeros included."""
    tenant = tenant_of(session, tenant_id)
    rows = dict(
        session.execute(
            select(Customer.lifecycle_stage, func.count(Customer.id))
            .where(Customer.tenant_id == tenant, Customer.archived_at.is_(None))
            .group_by(Customer.lifecycle_stage)
        ).all()
    )
    order = [stage.value for stage in LifecycleStage]
    extra = sorted(stage for stage in rows if stage not in order)
    return [StageCount(stage, int(rows.get(stage, 0))) for stage in [*order, *extra]]


@dataclass(frozen=True)
class FlowLink:
    """Transitions from one stage to another within a period (``from_stage`` None: first stage)."""

    from_stage: str | None
    to_stage: str
    count: int


def lifecycle_flow(
    session: Session, *, start: dt.date, end: dt.date, tenant_id: int | None = None
) -> list[FlowLink]:
    """Stage changes from ``start`` to ``end`` (both inclusive), counted per (from, to), largest first."""
    tenant = tenant_of(session, tenant_id)
    lower = dt.datetime.combine(start, dt.time())
    upper = dt.datetime.combine(end + dt.timedelta(days=1), dt.time())
    count = func.count(LifecycleTransition.id)
    rows = session.execute(
        select(LifecycleTransition.from_stage, LifecycleTransition.to_stage, count)
        .join(Customer, Customer.id == LifecycleTransition.customer_id)
        .where(
            LifecycleTransition.tenant_id == tenant,
            LifecycleTransition.occurred_at >= lower,
            LifecycleTransition.occurred_at < upper,
        )
        .group_by(LifecycleTransition.from_stage, LifecycleTransition.to_stage)
        .order_by(count.desc(), LifecycleTransition.from_stage, LifecycleTransition.to_stage)
    ).all()
    return [FlowLink(row[0], row[1], int(row[2])) for row in rows]


# --- RFM ------------------------------------------------------------------------------


def rfm_subquery(tenant_id: int, *, as_of: dt.datetime | None = None) -> Any:
    """Per buying customer: last_order_at, order_count, monetary, r, f, m (1–5) and segment."""
    conditions = [
        Order.tenant_id == tenant_id,
        Order.status != OrderStatus.CANCELLED.value,
        Order.archived_at.is_(None),
        Customer.tenant_id == tenant_id,
        Customer.archived_at.is_(None),
    ]
    if as_of is not None:
        conditions.append(Order.ordered_at <= as_of)
    totals = (
        select(
            Order.customer_id.label("customer_id"),
            func.max(Order.ordered_at).label("last_order_at"),
            func.count(Order.id).label("order_count"),
            func.sum(Order.total_amount).label("monetary"),
        )
        .join(Customer, Customer.id == Order.customer_id)
        .where(*conditions)
        .group_by(Order.customer_id)
        .subquery("rfm_totals")
    )
    ranked = select(
        totals.c.customer_id,
        totals.c.last_order_at,
        totals.c.order_count,
        totals.c.monetary,
        func.ntile(5).over(order_by=(totals.c.last_order_at, totals.c.customer_id)).label("r"),
        func.ntile(5)
        .over(order_by=(totals.c.order_count, totals.c.monetary, totals.c.customer_id))
        .label("f"),
        func.ntile(5)
        .over(order_by=(totals.c.monetary, totals.c.order_count, totals.c.customer_id))
        .label("m"),
    ).subquery("rfm_ranked")
    combined = ranked.c.f + ranked.c.m
    segment = case(
        *[
            (and_(ranked.c.r.in_(sorted(recencies)), combined >= low, combined <= high), name)
            for name, recencies, low, high in RFM_GRID
        ],
        else_="lost",
    )
    return select(ranked, segment.label("segment")).subquery("rfm")


@dataclass(frozen=True)
class RfmSegmentSummary:
    """One named RFM segment: size, money, order frequency and the span of last orders."""

    segment: str
    customers: int
    monetary: Decimal
    average_orders: float
    newest_order_at: dt.datetime | None
    oldest_order_at: dt.datetime | None


def rfm_summary(
    session: Session, *, as_of: dt.datetime | None = None, tenant_id: int | None = None
) -> list[RfmSegmentSummary]:
    """Every named RFM segment with its customers and revenue, in grid order (empty ones included)."""
    rfm = rfm_subquery(tenant_of(session, tenant_id), as_of=as_of)
    rows = {
        row.segment: row
        for row in session.execute(
            select(
                rfm.c.segment,
                func.count().label("customers"),
                func.sum(rfm.c.monetary).label("monetary"),
                func.avg(rfm.c.order_count).label("average_orders"),
                func.max(rfm.c.last_order_at).label("newest"),
                func.min(rfm.c.last_order_at).label("oldest"),
            ).group_by(rfm.c.segment)
        )
    }
    summaries = []
    for name, *_ in RFM_GRID:
        row = rows.get(name)
        summaries.append(
            RfmSegmentSummary(
                segment=name,
                customers=int(row.customers) if row else 0,
                monetary=Decimal(str(row.monetary or 0)).quantize(Decimal("0.01")) if row else Decimal("0.00"),
                average_orders=float(row.average_orders or 0) if row else 0.0,
                newest_order_at=row.newest if row else None,
                oldest_order_at=row.oldest if row else None,
            )
        )
    return summaries


@dataclass(frozen=True)
class RfmScore:
    """One customer's RFM measures, quintiles and named segment."""

    customer_id: int
    last_order_at: dt.datetime
    order_count: int
    monetary: Decimal
    r: int
    f: int
    m: int
    segment: str


def rfm_scores(
    session: Session,
    customer_ids: Sequence[int] | None = None,
    *,
    as_of: dt.datetime | None = None,
    tenant_id: int | None = None,
) -> dict[int, RfmScore]:
    """RFM of the given customers (or all buying customers): ``{customer_id: RfmScore}``."""
    rfm = rfm_subquery(tenant_of(session, tenant_id), as_of=as_of)
    statement = select(rfm)
    if customer_ids is not None:
        statement = statement.where(rfm.c.customer_id.in_(list(customer_ids)))
    return {
        row.customer_id: RfmScore(
            customer_id=row.customer_id,
            last_order_at=row.last_order_at,
            order_count=int(row.order_count),
            monetary=Decimal(str(row.monetary)).quantize(Decimal("0.01")),
            r=int(row.r),
            f=int(row.f),
            m=int(row.m),
            segment=row.segment,
        )
        for row in session.execute(statement)
    }


# --- the builder: spec -> SQL ------------------------------------------------------------


@dataclass(frozen=True)
class CompileContext:
    """What compiling needs beyond the spec: the tenant, today, and which record each scorer scores."""

    tenant_id: int
    today: dt.date
    score_entities: Mapping[str, str]


def _day_start(value: dt.date) -> dt.datetime:
    return dt.datetime.combine(value, dt.time())


def _lower(column: Any) -> Any:
    return func.lower(column)


def _text_clause(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "is_empty":
        return or_(column.is_(None), column == "")
    if op == "is_not_empty":
        return and_(column.is_not(None), column != "")
    if op == "equals":
        return _lower(column) == value.lower()
    if op == "not_equals":
        return or_(column.is_(None), _lower(column) != value.lower())
    if op == "contains":
        return _lower(column).contains(value.lower(), autoescape=True)
    if op == "starts_with":
        return _lower(column).startswith(value.lower(), autoescape=True)
    if op == "in":
        return _lower(column).in_([item.lower() for item in value])
    raise ValueError(op)


def _choice_clause(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "equals":
        return column == value
    if op == "not_equals":
        return or_(column.is_(None), column != value)
    if op == "in":
        return column.in_(value)
    if op == "not_in":
        return or_(column.is_(None), column.not_in(value))
    if op == "is_empty":
        return or_(column.is_(None), column == "")
    if op == "is_not_empty":
        return and_(column.is_not(None), column != "")
    raise ValueError(op)


def _date_clause(column: Any, op: str, value: Any, today: dt.date, *, iso_text: bool = False) -> ColumnElement[bool]:
    def bound(day: dt.date) -> Any:
        return day.isoformat() if iso_text else _day_start(day)

    if op == "is_empty":
        return or_(column.is_(None), column == "") if iso_text else column.is_(None)
    if op == "is_not_empty":
        return and_(column.is_not(None), column != "") if iso_text else column.is_not(None)
    if op == "before":
        return column < bound(dt.date.fromisoformat(value))
    if op == "after":
        return column >= bound(dt.date.fromisoformat(value) + dt.timedelta(days=1))
    if op == "within_last_days":
        return column >= bound(today - dt.timedelta(days=value))
    if op == "more_than_days_ago":
        # "not contacted for more than N days" includes customers never contacted
        return or_(column.is_(None), column < bound(today - dt.timedelta(days=value)))
    raise ValueError(op)


def _number_clause(column: Any, op: str, value: Any) -> ColumnElement[bool]:
    if op == "is_empty":
        return column.is_(None)
    if op == "is_not_empty":
        return column.is_not(None)
    if op == "between":
        return and_(column >= Decimal(value[0]), column <= Decimal(value[1]))
    number = Decimal(value)
    return {
        "eq": lambda: column == number,
        "ne": lambda: or_(column.is_(None), column != number),
        "gt": lambda: column > number,
        "gte": lambda: column >= number,
        "lt": lambda: column < number,
        "lte": lambda: column <= number,
    }[op]()


def _score_clause(name: str, op: str, value: Any, context: CompileContext) -> ColumnElement[bool]:
    scorer = name.removeprefix(SCORE_PREFIX)
    entity = context.score_entities.get(scorer, "customer")
    if op in ("is_empty", "is_not_empty"):
        score_test: ColumnElement[bool] = true()
    elif op == "between":
        score_test = and_(Score.score >= float(value[0]) / 100, Score.score <= float(value[1]) / 100)
    elif op == "gte":
        score_test = Score.score >= float(value) / 100
    else:
        score_test = Score.score <= float(value) / 100
    base = [Score.tenant_id == context.tenant_id, Score.scorer == scorer, score_test]
    if entity == "opportunity":
        # a customer matches when one of its deals' scores does
        members = (
            select(Opportunity.customer_id)
            .join(Score, Score.entity_id == Opportunity.id)
            .where(Opportunity.tenant_id == context.tenant_id, Opportunity.archived_at.is_(None), *base)
        )
    else:
        members = select(Score.entity_id).where(*base)
    if op == "is_empty":
        return Customer.id.not_in(members)
    return Customer.id.in_(members)


def _custom_clause(name: str, kind: str, op: str, value: Any, context: CompileContext) -> ColumnElement[bool]:
    element = Customer.custom_fields[name.removeprefix(CUSTOM_PREFIX)]
    if kind == BOOL:
        flag = element.as_boolean()
        return flag.is_(True) if op == "is_true" else or_(flag.is_(None), flag.is_(False))
    text_value = element.as_string()
    if kind == TEXT:
        return _text_clause(text_value, op, value)
    if kind == CHOICE:
        return _choice_clause(text_value, op, value)
    if kind == DATE:
        return _date_clause(text_value, op, value, context.today, iso_text=True)
    if kind == NUMBER:
        return _number_clause(cast(text_value, Numeric(20, 6)), op, value)
    raise ValueError(kind)


def _team_clause(op: str, team_ids: list[int] | None, tenant_id: int) -> ColumnElement[bool]:
    # a customer's team: its owner's team, or its own team_id when unowned
    owners_in = select(User.id).where(User.tenant_id == tenant_id, User.team_id.in_(team_ids or []))
    in_teams = or_(
        Customer.owner_id.in_(owners_in), and_(Customer.owner_id.is_(None), Customer.team_id.in_(team_ids or []))
    )
    owners_with_team = select(User.id).where(User.tenant_id == tenant_id, User.team_id.is_not(None))
    has_team = or_(
        Customer.owner_id.in_(owners_with_team), and_(Customer.owner_id.is_(None), Customer.team_id.is_not(None))
    )
    return {"in": in_teams, "not_in": not_(in_teams), "is_not_empty": has_team, "is_empty": not_(has_team)}[op]


def condition_clause(
    condition: Condition, catalog: FieldCatalog, context: CompileContext, rfm: Any
) -> ColumnElement[bool]:
    """The SQL expression of one validated condition over ``customers``."""
    name, op, value = condition.field, condition.op, condition.value
    if name in TEXT_COLUMNS:
        return _text_clause(TEXT_COLUMNS[name], op, value)
    if name in CHOICE_COLUMNS:
        return _choice_clause(CHOICE_COLUMNS[name], op, value)
    if name in DATE_COLUMNS:
        return _date_clause(DATE_COLUMNS[name], op, value, context.today)
    if name == "tags":
        tags = value if isinstance(value, list) else [value]
        has = [Customer.tags.contains(f",{tag},", autoescape=True) for tag in tags]
        return not_(has[0]) if op == "has_not" else or_(*has)
    if name == "owner":
        if op == "is_empty":
            return Customer.owner_id.is_(None)
        if op == "is_not_empty":
            return Customer.owner_id.is_not(None)
        return _choice_clause(Customer.owner_id, op, value)
    if name == "team":
        return _team_clause(op, value, context.tenant_id)
    if name == "rfm_segment":
        if op in ("is_empty", "is_not_empty"):
            buyers = select(rfm.c.customer_id)
            return Customer.id.not_in(buyers) if op == "is_empty" else Customer.id.in_(buyers)
        names = value if isinstance(value, list) else [value]
        chosen = select(rfm.c.customer_id).where(rfm.c.segment.in_(names))
        return Customer.id.not_in(chosen) if op in ("not_equals", "not_in") else Customer.id.in_(chosen)
    if name in RFM_COLUMNS:
        column = rfm.c[RFM_COLUMNS[name]]
        test = {"eq": column == value, "gte": column >= value, "lte": column <= value}[op]
        return Customer.id.in_(select(rfm.c.customer_id).where(test))
    if name.startswith(SCORE_PREFIX):
        return _score_clause(name, op, value, context)
    if name.startswith(CUSTOM_PREFIX):
        kind = catalog.kind_of(name)
        assert kind is not None
        return _custom_clause(name, kind, op, value, context)
    raise ValueError(f"no compiler for field {name}")


def segment_clause(spec: SegmentSpec, catalog: FieldCatalog, context: CompileContext) -> ColumnElement[bool]:
    """The whole spec as one expression (all: AND, any: OR; no conditions: every customer)."""
    if not spec.conditions:
        return true()
    rfm = rfm_subquery(context.tenant_id) if spec.uses_rfm else None
    clauses = [condition_clause(condition, catalog, context, rfm) for condition in spec.conditions]
    return and_(*clauses) if spec.match == "all" else or_(*clauses)


def field_catalog(session: Session, *, tenant_id: int | None = None) -> FieldCatalog:
    """The fields the tenant's segments may use: custom field definitions and known scorers."""
    from crm_core.models import FieldDefinition
    from crm_core.scoring import SCORERS

    tenant = tenant_of(session, tenant_id)
    definitions = session.scalars(
        select(FieldDefinition).where(FieldDefinition.tenant_id == tenant, FieldDefinition.entity == "customer")
    )
    custom = {d.name: (d.field_type, tuple(d.choices or ())) for d in definitions}
    return FieldCatalog(custom_fields=custom, scorers=tuple(SCORERS))


def compile_context(session: Session, *, tenant_id: int | None = None, today: dt.date | None = None) -> CompileContext:
    """The tenant, today's date and the scorers' entities for compiling a spec."""
    from crm_core.scoring import SCORERS

    return CompileContext(
        tenant_id=tenant_of(session, tenant_id),
        today=today or _today(),
        score_entities={name: scorer.entity for name, scorer in SCORERS.items()},
    )


def _members(spec: SegmentSpec, catalog: FieldCatalog, context: CompileContext, statement: Select[Any]) -> Select[Any]:
    return statement.where(
        Customer.tenant_id == context.tenant_id,
        Customer.archived_at.is_(None),
        segment_clause(spec, catalog, context),
    )


def count_segment(
    session: Session, spec: SegmentSpec, *, tenant_id: int | None = None, today: dt.date | None = None
) -> int:
    """How many customers (visible in this session) the segment holds right now."""
    catalog = field_catalog(session, tenant_id=tenant_id)
    context = compile_context(session, tenant_id=tenant_id, today=today)
    return int(session.scalar(_members(spec, catalog, context, select(func.count(Customer.id)))) or 0)


@dataclass(frozen=True)
class MemberRow:
    """One customer of a segment, as the members grid and the export show it."""

    id: int
    name: str
    lifecycle_stage: str
    owner_name: str | None
    team_name: str | None
    industry: str | None
    region: str | None
    email: str | None
    phone: str | None
    tags: str
    last_contacted_at: dt.datetime | None
    created_at: dt.datetime


def _member_statement(spec: SegmentSpec, catalog: FieldCatalog, context: CompileContext) -> Select[Any]:
    owner = aliased(User)
    team = aliased(Team)
    statement: Any = (
        select(
            Customer.id, Customer.name, Customer.lifecycle_stage, owner.full_name.label("owner_name"),
            team.name.label("team_name"), Customer.industry, Customer.region, Customer.email, Customer.phone,
            Customer.tags, Customer.last_contacted_at, Customer.created_at,
        )
        .outerjoin(owner, owner.id == Customer.owner_id)
        .outerjoin(team, team.id == func.coalesce(owner.team_id, Customer.team_id))
    )
    return _members(spec, catalog, context, statement)


def _member_row(row: Any) -> MemberRow:
    return MemberRow(
        id=row.id, name=row.name, lifecycle_stage=row.lifecycle_stage, owner_name=row.owner_name,
        team_name=row.team_name, industry=row.industry, region=row.region, email=row.email, phone=row.phone,
        tags=", ".join(tag for tag in (row.tags or "").split(",") if tag),
        last_contacted_at=row.last_contacted_at, created_at=row.created_at,
    )


def list_segment_members(
    session: Session,
    spec: SegmentSpec,
    *,
    page: int = 1,
    per_page: int = 50,
    with_total: bool = True,
    tenant_id: int | None = None,
    today: dt.date | None = None,
) -> Page[MemberRow]:
    """One page of the segment's customers, by name."""
    catalog = field_catalog(session, tenant_id=tenant_id)
    context = compile_context(session, tenant_id=tenant_id, today=today)
    page = max(1, page)
    per_page = max(1, min(per_page, 500))
    statement = _member_statement(spec, catalog, context).order_by(Customer.name, Customer.id)
    rows = session.execute(statement.limit(per_page + 1).offset((page - 1) * per_page)).all()
    total = count_segment(session, spec, tenant_id=tenant_id, today=today) if with_total else None
    return Page(
        items=[_member_row(row) for row in rows[:per_page]],
        page=page, per_page=per_page, has_next=len(rows) > per_page, total=total,
    )


def iter_segment_members(
    session: Session,
    spec: SegmentSpec,
    *,
    chunk: int = 2000,
    tenant_id: int | None = None,
    today: dt.date | None = None,
) -> Iterator[MemberRow]:
    """Every customer of the segment by id, in one query streamed ``chunk`` rows at a time (for exports).

    One pass instead of keyset pages: re-running the filtered query per page made the
    database rescan the tenant for every chunk.
    """
    catalog = field_catalog(session, tenant_id=tenant_id)
    context = compile_context(session, tenant_id=tenant_id, today=today)
    statement = _member_statement(spec, catalog, context).order_by(Customer.id)
    result = session.execute(statement.execution_options(yield_per=chunk))
    for partition in result.partitions():
        for row in partition:
            yield _member_row(row)


def segment_member_ids(
    session: Session, spec: SegmentSpec, *, limit: int, tenant_id: int | None = None, today: dt.date | None = None
) -> list[int]:
    """Up to ``limit`` member ids (callers pass limit+1 to detect an oversized segment)."""
    catalog = field_catalog(session, tenant_id=tenant_id)
    context = compile_context(session, tenant_id=tenant_id, today=today)
    statement = _members(spec, catalog, context, select(Customer.id)).order_by(Customer.id).limit(limit)
    return list(session.scalars(statement))


# --- saved segments ------------------------------------------------------------------------


@dataclass(frozen=True)
class SegmentRow:
    """A saved segment as the list shows it, with its latest recorded size."""

    id: int
    name: str
    description: str
    conditions: dict[str, Any]
    owner_id: int
    owner_name: str
    sharing: str
    team_id: int | None
    team_name: str | None
    updated_at: dt.datetime
    version: int
    last_count: int | None
    last_counted_at: dt.datetime | None


def list_saved_segments(session: Session, *, tenant_id: int | None = None) -> list[SegmentRow]:
    """The saved segments this session may open (own, shared with a team of theirs, or tenant-wide)."""
    tenant = tenant_of(session, tenant_id)
    latest = (
        select(SegmentSnapshot.segment_id, func.max(SegmentSnapshot.id).label("snapshot_id"))
        .where(SegmentSnapshot.tenant_id == tenant)
        .group_by(SegmentSnapshot.segment_id)
        .subquery()
    )
    # no alias of SegmentSnapshot: the access criteria must apply to the table by its own name
    rows = session.execute(
        select(Segment, User.full_name, Team.name, SegmentSnapshot.member_count, SegmentSnapshot.taken_at)
        .join(User, User.id == Segment.owner_id)
        .outerjoin(Team, Team.id == Segment.team_id)
        .outerjoin(latest, latest.c.segment_id == Segment.id)
        .outerjoin(SegmentSnapshot, SegmentSnapshot.id == latest.c.snapshot_id)
        .where(Segment.tenant_id == tenant)
        .order_by(Segment.name)
    ).all()
    return [
        SegmentRow(
            id=segment.id, name=segment.name, description=segment.description, conditions=dict(segment.conditions),
            owner_id=segment.owner_id, owner_name=owner_name, sharing=segment.sharing, team_id=segment.team_id,
            team_name=team_name, updated_at=segment.updated_at, version=segment.version,
            last_count=member_count, last_counted_at=taken_at,
        )
        for segment, owner_name, team_name, member_count, taken_at in rows
    ]


@dataclass(frozen=True)
class SizePoint:
    """The size of a segment at one recorded instant."""

    taken_at: dt.datetime
    member_count: int
    source: str


def segment_size_history(session: Session, segment_id: int, *, tenant_id: int | None = None) -> list[SizePoint]:
    """Recorded sizes of a saved segment, oldest first (empty when the segment is not visible)."""
    tenant = tenant_of(session, tenant_id)
    visible = select(Segment.id).where(Segment.id == segment_id, Segment.tenant_id == tenant)
    rows = session.execute(
        select(SegmentSnapshot.taken_at, SegmentSnapshot.member_count, SegmentSnapshot.source)
        .where(SegmentSnapshot.tenant_id == tenant, SegmentSnapshot.segment_id.in_(visible))
        .order_by(SegmentSnapshot.taken_at, SegmentSnapshot.id)
    ).all()
    return [SizePoint(row.taken_at, int(row.member_count), row.source) for row in rows]


def team_choices(session: Session, *, tenant_id: int | None = None) -> list[tuple[int, str]]:
    """(id, name) of the tenant's teams, for the team condition and sharing."""
    tenant = tenant_of(session, tenant_id)
    rows = session.execute(select(Team.id, Team.name).where(Team.tenant_id == tenant).order_by(Team.name))
    return [(row.id, row.name) for row in rows]


def campaign_choices(session: Session, *, tenant_id: int | None = None) -> list[tuple[int, str]]:
    """(id, name) of the tenant's campaigns that are not completed, for the enrolment picker."""
    from crm_core.models import Campaign

    tenant = tenant_of(session, tenant_id)
    rows = session.execute(
        select(Campaign.id, Campaign.name)
        .where(Campaign.tenant_id == tenant, Campaign.status != "stopped")
        .order_by(Campaign.name)
    )
    return [(row.id, row.name) for row in rows]


__all__ = [
    "CompileContext",
    "FlowLink",
    "MemberRow",
    "RfmScore",
    "RfmSegmentSummary",
    "SegmentRow",
    "SizePoint",
    "StageCount",
    "campaign_choices",
    "count_segment",
    "field_catalog",
    "iter_segment_members",
    "lifecycle_distribution",
    "lifecycle_flow",
    "list_saved_segments",
    "list_segment_members",
    "rfm_scores",
    "rfm_subquery",
    "rfm_summary",
    "segment_clause",
    "segment_member_ids",
    "segment_size_history",
    "team_choices",
]
