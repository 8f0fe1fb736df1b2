"""Read side for deals: pipelines and stages, the pipeline board, deal lists and exports.

The board is one ``GROUP BY stage_id`` for the column headers (count, sum, weighted sum,
computed in SQL) plus one small paged query per column for its cards. Tenant and
ownership scoping come from the session, so a rep's board holds only their deals.

Weighted amount = amount × the deal's own probability when set by hand (open deals),
else the stage's; won counts 100 %, lost 0 % (see :mod:`crm_core.rules.pipeline`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, case, func, literal, or_, select
from sqlalchemy.orm import Session, aliased

from crm_core.models import (
    Customer,
    Opportunity,
    Pipeline,
    PipelineStage,
    StageKind,
    User,
)
from crm_core.models.pipeline import OpportunityStageChange

# also installs the SQLite table-hint rendering that by_ids relies on
from crm_core.queries.customers import search_condition as customer_search
from crm_core.queries.paging import Page
from crm_core.rules.fields import search_text
from crm_core.rules.pipeline import StageInfo, effective_probability

CENT = Decimal("0.01")


@dataclass(frozen=True)
class StageRow:
    """A stage of a pipeline, as the board and the admin page show it."""

    id: int
    pipeline_id: int
    name: str
    position: int
    probability: int
    kind: str
    version: int = 1

    @property
    def info(self) -> StageInfo:
        """The stage as the pure rules see it."""
        return StageInfo(self.id, self.pipeline_id, self.position, self.kind, self.probability)


@dataclass(frozen=True)
class PipelineRow:
    """A pipeline with its stages in order."""

    id: int
    name: str
    is_default: bool
    version: int
    stages: list[StageRow] = field(default_factory=list)


@dataclass
class DealFilters:
    """What the board and deal lists are filtered by; empty values mean no filter."""

    owner_id: int | None = None
    team_id: int | None = None
    search: str = ""
    closed_since: dt.date | None = None  # won/lost deals closed before this day are left out
    include_archived: bool = False
    # the deals a search matched, resolved once per board by :func:`resolve_search`
    matched_ids: tuple[int, ...] | None = None
    truncated: bool = False
    dialect: str = "sqlite"


@dataclass(frozen=True)
class StageColumn:
    """A board column header: the stage and its totals."""

    stage: StageRow
    count: int
    amount: Decimal
    weighted_amount: Decimal


@dataclass(frozen=True)
class DealCard:
    """One deal as a board card or a list row."""

    id: int
    name: str
    customer_id: int
    customer_name: str
    owner_id: int | None
    owner_name: str | None
    pipeline_id: int
    stage_id: int
    stage_name: str
    stage_kind: str
    amount: Decimal
    currency: str
    probability: int
    hand_set_probability: int | None
    weighted_amount: Decimal
    expected_close_date: dt.date | None
    closed_at: dt.datetime | None
    lost_reason: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    version: int
    won_reason: str | None = None
    external_id: str | None = None  # the old system's ID (decision 0042)

    def is_overdue(self, today: dt.date) -> bool:
        """Open and past its expected close date."""
        return (
            self.stage_kind == StageKind.OPEN.value
            and self.expected_close_date is not None
            and self.expected_close_date < today
        )


@dataclass(frozen=True)
class Board:
    """The pipeline board: one column per stage, each with one page of cards."""

    pipeline: PipelineRow
    columns: list[StageColumn]
    cards: dict[int, Page[DealCard]]
    search_truncated: bool = False  # the search matched more than MAX_SEARCH_MATCHES deals

    @property
    def open_amount(self) -> Decimal:
        """Sum of the open columns."""
        return sum((c.amount for c in self.columns if c.stage.kind == StageKind.OPEN.value), Decimal(0))

    @property
    def weighted_amount(self) -> Decimal:
        """Weighted forecast of the open columns."""
        return sum(
            (c.weighted_amount for c in self.columns if c.stage.kind == StageKind.OPEN.value), Decimal(0)
        )


def _money(value: Any) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


def _stage_row(stage: PipelineStage) -> StageRow:
    return StageRow(
        stage.id, stage.pipeline_id, stage.name, stage.position, stage.probability, stage.kind, stage.version
    )


def list_pipelines(session: Session) -> list[PipelineRow]:
    """The tenant's pipelines (default first) with their stages in order."""
    # columns, not entities, in one statement: every report and board asks for this first
    rows = session.execute(
        select(
            Pipeline.id, Pipeline.name, Pipeline.is_default, Pipeline.version,
            PipelineStage.id, PipelineStage.name, PipelineStage.position, PipelineStage.probability,
            PipelineStage.kind, PipelineStage.version,
        )
        .outerjoin(PipelineStage, PipelineStage.pipeline_id == Pipeline.id)
        .order_by(Pipeline.is_default.desc(), Pipeline.name, Pipeline.id, PipelineStage.position)
    ).all()
    pipelines: dict[int, PipelineRow] = {}
    for pipeline_id, name, is_default, version, stage_id, *stage in rows:
        row = pipelines.setdefault(pipeline_id, PipelineRow(pipeline_id, name, is_default, version, []))
        if stage_id is not None:
            row.stages.append(StageRow(stage_id, pipeline_id, *stage))
    return list(pipelines.values())


def get_pipeline(session: Session, pipeline_id: int | None = None) -> PipelineRow | None:
    """One pipeline with its stages (the default one when ``pipeline_id`` is None)."""
    pipelines = list_pipelines(session)
    if pipeline_id is None:
        return pipelines[0] if pipelines else None
    return next((pipeline for pipeline in pipelines if pipeline.id == pipeline_id), None)


def probability_expression(stages: list[StageRow]) -> Any:
    """SQL for a deal's effective probability, inlining the (few) stages' values.

    Inlining avoids a join to ``pipeline_stages`` on every aggregate over many deals.
    """
    if not stages:
        return literal(0)
    stage_probability = case(
        {stage.id: effective_probability(stage.probability, None, stage.kind) for stage in stages},
        value=Opportunity.stage_id,
        else_=0,
    )
    open_ids = [stage.id for stage in stages if stage.kind == StageKind.OPEN.value]
    if not open_ids:
        return stage_probability
    return case(
        (Opportunity.stage_id.in_(open_ids), func.coalesce(Opportunity.probability, stage_probability)),
        else_=stage_probability,
    )


def _filtered(statement: Select[Any], filters: DealFilters, stages: list[StageRow]) -> Select[Any]:
    if not filters.include_archived:
        statement = statement.where(Opportunity.archived_at.is_(None))
    if filters.owner_id is not None:
        statement = statement.where(Opportunity.owner_id == filters.owner_id)
    if filters.team_id is not None:
        statement = statement.where(
            Opportunity.owner_id.in_(select(User.id).where(User.team_id == filters.team_id))
        )
    if filters.closed_since is not None:
        open_ids = [stage.id for stage in stages if stage.kind == StageKind.OPEN.value]
        statement = statement.where(
            or_(
                Opportunity.stage_id.in_(open_ids),
                Opportunity.closed_at >= dt.datetime.combine(filters.closed_since, dt.time()),
            )
        )
    if filters.matched_ids is not None:
        statement = statement.where(Opportunity.id.in_(filters.matched_ids))
    elif search_text(filters.search):
        statement = statement.where(search_condition(search_text(filters.search), filters.dialect))
    return statement


MAX_SEARCH_MATCHES = 1000


def search_condition(text: str, dialect: str = "sqlite") -> Any:
    """Deals whose name contains ``text`` or whose customer matches it (the customers grid's search)."""
    text = text.strip()
    return or_(
        Opportunity.name.contains(text, autoescape=True),
        Opportunity.customer_id.in_(select(Customer.id).where(customer_search(text, dialect))),
    )


def resolve_search(session: Session, *, pipeline: PipelineRow, filters: DealFilters) -> DealFilters:
    """``filters`` with the search turned into the ids of the deals it matches (at most 1,000).

    The board runs one query per column; matching text once instead of in each of them keeps a
    search over 300k deals and 1M customers to one scan. ``truncated`` tells when more matched.
    """
    if not search_text(filters.search) or filters.matched_ids is not None:
        return filters
    resolved = replace(filters, dialect=session.get_bind().dialect.name)
    statement = _filtered(
        select(Opportunity.id).where(Opportunity.pipeline_id == pipeline.id), resolved, pipeline.stages
    )
    ids = tuple(session.scalars(statement.limit(MAX_SEARCH_MATCHES + 1)))
    return replace(resolved, matched_ids=ids[:MAX_SEARCH_MATCHES], truncated=len(ids) > MAX_SEARCH_MATCHES)


def stage_totals(session: Session, *, pipeline: PipelineRow, filters: DealFilters | None = None) -> list[StageColumn]:
    """Count, sum and weighted sum of the deals in each stage of ``pipeline`` (one GROUP BY)."""
    filters = resolve_search(session, pipeline=pipeline, filters=filters or DealFilters())
    weighted = func.sum(Opportunity.amount * probability_expression(pipeline.stages))
    statement = _filtered(
        select(Opportunity.stage_id, func.count(), func.sum(Opportunity.amount), weighted)
        .where(Opportunity.pipeline_id == pipeline.id)
        .group_by(Opportunity.stage_id),
        filters,
        pipeline.stages,
    )
    totals = {row[0]: row for row in session.execute(statement)}
    columns = []
    for stage in pipeline.stages:
        row = totals.get(stage.id)
        columns.append(
            StageColumn(
                stage=stage,
                count=int(row[1]) if row else 0,
                amount=_money(row[2]) if row else Decimal("0.00"),
                weighted_amount=_money(Decimal(str(row[3] or 0)) / 100) if row else Decimal("0.00"),
            )
        )
    return columns


def _card_statement(stages: list[StageRow]) -> Any:
    owner = aliased(User)
    return (
        select(Opportunity, Customer.name, owner.full_name)
        .join(Customer, Customer.id == Opportunity.customer_id)
        .outerjoin(owner, owner.id == Opportunity.owner_id)
    )


def _card(deal: Opportunity, customer_name: str, owner_name: str | None, stages: dict[int, StageRow]) -> DealCard:
    stage = stages[deal.stage_id]
    probability = effective_probability(stage.probability, deal.probability, stage.kind)
    amount = _money(deal.amount)
    return DealCard(
        id=deal.id,
        name=deal.name,
        customer_id=deal.customer_id,
        customer_name=customer_name,
        owner_id=deal.owner_id,
        owner_name=owner_name,
        pipeline_id=deal.pipeline_id,
        stage_id=deal.stage_id,
        stage_name=stage.name,
        stage_kind=stage.kind,
        amount=amount,
        currency=deal.currency,
        probability=probability,
        hand_set_probability=deal.probability,
        weighted_amount=(amount * probability / 100).quantize(CENT),
        expected_close_date=deal.expected_close_date,
        closed_at=deal.closed_at,
        lost_reason=deal.lost_reason,
        won_reason=deal.won_reason,
        created_at=deal.created_at,
        updated_at=deal.updated_at,
        version=deal.version,
        external_id=deal.external_id,
    )


def by_ids(statement: Any, ids: list[int]) -> Any:
    """``statement`` limited to deals ``ids``, read by primary key.

    Without ANALYZE statistics SQLite would rather scan a (tenant_id, …) index than look up
    ten rowids; NOT INDEXED still allows rowid lookups.
    """
    return statement.where(Opportunity.id.in_(ids)).with_hint(Opportunity, "NOT INDEXED", dialect_name="sqlite")


def stage_cards(
    session: Session,
    *,
    pipeline: PipelineRow,
    stage_id: int,
    filters: DealFilters | None = None,
    page: int = 1,
    per_page: int = 10,
) -> Page[DealCard]:
    """One page of the cards of a column, biggest deals first."""
    filters = resolve_search(session, pipeline=pipeline, filters=filters or DealFilters())
    page, per_page = max(1, page), max(1, min(per_page, 200))
    # the page's ids first, from the covering index alone; then only those rows with their joins
    ids_statement = _filtered(select(Opportunity.id), filters, pipeline.stages).where(
        Opportunity.pipeline_id == pipeline.id, Opportunity.stage_id == stage_id
    )
    ids = list(
        session.scalars(
            ids_statement.order_by(Opportunity.amount.desc(), Opportunity.id.desc())
            .limit(per_page + 1)
            .offset((page - 1) * per_page)
        )
    )
    rows = session.execute(
        by_ids(_card_statement(pipeline.stages), ids[:per_page])
        .order_by(Opportunity.amount.desc(), Opportunity.id.desc())
    ).all() if ids else []
    stages = {stage.id: stage for stage in pipeline.stages}
    items = [_card(deal, customer_name, owner_name, stages) for deal, customer_name, owner_name in rows]
    return Page(items=items, page=page, per_page=per_page, has_next=len(ids) > per_page)


def load_board(
    session: Session,
    *,
    pipeline_id: int | None = None,
    filters: DealFilters | None = None,
    per_page: int = 10,
    pages: dict[int, int] | None = None,
) -> Board | None:
    """The board of ``pipeline_id`` (default pipeline when None): column totals and a page of cards each."""
    pipeline = get_pipeline(session, pipeline_id)
    if pipeline is None:
        return None
    filters = resolve_search(session, pipeline=pipeline, filters=filters or DealFilters())
    columns = stage_totals(session, pipeline=pipeline, filters=filters)
    cards: dict[int, Page[DealCard]] = {}
    for column in columns:
        page = (pages or {}).get(column.stage.id, 1)
        if column.count == 0:
            cards[column.stage.id] = Page(items=[], page=1, per_page=per_page, has_next=False, total=0)
            continue
        found = stage_cards(
            session, pipeline=pipeline, stage_id=column.stage.id, filters=filters, page=page, per_page=per_page
        )
        cards[column.stage.id] = Page(
            items=found.items, page=found.page, per_page=per_page, has_next=found.has_next, total=column.count
        )
    return Board(pipeline=pipeline, columns=columns, cards=cards, search_truncated=filters.truncated)


def get_deal(session: Session, opportunity_id: int) -> DealCard | None:
    """One visible deal (archived ones included), or None."""
    pipeline_stages = session.scalars(select(PipelineStage)).all()
    stages = {stage.id: _stage_row(stage) for stage in pipeline_stages}
    row = session.execute(
        _card_statement(list(stages.values())).where(Opportunity.id == opportunity_id)
    ).first()
    if row is None:
        return None
    return _card(row[0], row[1], row[2], stages)


def list_deals(
    session: Session,
    *,
    pipeline: PipelineRow,
    filters: DealFilters | None = None,
    page: int = 1,
    per_page: int = 50,
    customer_id: int | None = None,
) -> Page[DealCard]:
    """One page of deals of ``pipeline`` (newest first), e.g. for a list view or a customer's deals."""
    filters = replace(filters or DealFilters(), dialect=session.get_bind().dialect.name)
    page, per_page = max(1, page), max(1, min(per_page, 500))
    statement = _filtered(_card_statement(pipeline.stages), filters, pipeline.stages).where(
        Opportunity.pipeline_id == pipeline.id
    )
    if customer_id is not None:
        statement = statement.where(Opportunity.customer_id == customer_id)
    rows = session.execute(
        statement.order_by(Opportunity.created_at.desc(), Opportunity.id.desc())
        .limit(per_page + 1)
        .offset((page - 1) * per_page)
    ).all()
    stages = {stage.id: stage for stage in pipeline.stages}
    items = [_card(deal, customer_name, owner_name, stages) for deal, customer_name, owner_name in rows[:per_page]]
    return Page(items=items, page=page, per_page=per_page, has_next=len(rows) > per_page)


EXPORT_COLUMNS = (
    "id", "name", "customer_name", "owner_name", "stage_name", "amount", "currency", "probability",
    "weighted_amount", "expected_close_date", "closed_at", "lost_reason", "won_reason", "created_at",
)


def iter_deal_export(
    session: Session, *, pipeline: PipelineRow, filters: DealFilters | None = None, chunk: int = 2000
) -> Iterator[list[Any]]:
    """Every deal matching ``filters`` as export rows (EXPORT_COLUMNS), streamed by id ranges (no search cap)."""
    filters = replace(filters or DealFilters(), dialect=session.get_bind().dialect.name, matched_ids=None)
    stages = {stage.id: stage for stage in pipeline.stages}
    last_id = 0
    while True:
        statement = _filtered(_card_statement(pipeline.stages), filters, pipeline.stages).where(
            Opportunity.pipeline_id == pipeline.id, Opportunity.id > last_id
        )
        rows = session.execute(statement.order_by(Opportunity.id).limit(chunk)).all()
        if not rows:
            return
        for deal, customer_name, owner_name in rows:
            card = _card(deal, customer_name, owner_name, stages)
            yield [getattr(card, column) for column in EXPORT_COLUMNS]
        last_id = rows[-1][0].id


@dataclass(frozen=True)
class StageChangeRow:
    """One move in a deal's stage history."""

    changed_at: dt.datetime
    from_stage: str | None
    to_stage: str
    changed_by: str | None


def stage_history(session: Session, opportunity_id: int) -> list[StageChangeRow]:
    """The deal's moves, newest first."""
    from_stage, to_stage, user = aliased(PipelineStage), aliased(PipelineStage), aliased(User)
    statement = (
        select(OpportunityStageChange.changed_at, from_stage.name, to_stage.name, user.full_name)
        .outerjoin(from_stage, from_stage.id == OpportunityStageChange.from_stage_id)
        .join(to_stage, to_stage.id == OpportunityStageChange.to_stage_id)
        .outerjoin(user, user.id == OpportunityStageChange.changed_by_id)
        .where(OpportunityStageChange.opportunity_id == opportunity_id)
        .order_by(OpportunityStageChange.changed_at.desc(), OpportunityStageChange.id.desc())
    )
    return [StageChangeRow(row[0], row[1], row[2], row[3]) for row in session.execute(statement)]
