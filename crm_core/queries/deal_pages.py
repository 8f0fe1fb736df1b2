"""Deal lists paged by keyset, across pipelines: the API's ``/v1/deals`` list.

The board and the deal list page (:mod:`crm_core.queries.deals`) page by offset within one
pipeline; a client walking every deal needs a position that inserts do not shift. This reads
the same cards with the same filters and search (``deals._filtered``, ``deals._card``, so one
definition of what a filter means and what a card holds) ordered by ``(sort column, id)`` and
starting past the previous page's last row. Scoping comes from the session, as everywhere.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from crm_core.models import Opportunity
from crm_core.queries import deals as deal_queries
from crm_core.queries.deals import DealCard, DealFilters, StageRow

SORTABLE_COLUMNS: dict[str, Any] = {"created_at": Opportunity.created_at, "updated_at": Opportunity.updated_at}
"""Sorts offered for keyset paging: columns that are never null."""

Position = tuple[dt.datetime, int]


@dataclass(frozen=True)
class DealListPage:
    """One keyset page of deals."""

    items: list[DealCard]
    has_next: bool
    next_position: Position | None
    total: int | None = None
    total_capped: bool = False
    archived_at: dict[int, dt.datetime | None] = field(default_factory=dict)  # by deal id (a card lacks it)


@dataclass(frozen=True)
class DealListFilters:
    """The list's own narrowing on top of the board's :class:`DealFilters`."""

    pipeline_id: int | None = None
    stage_id: int | None = None
    customer_id: int | None = None


def _all_stages(session: Session) -> list[StageRow]:
    return [stage for pipeline in deal_queries.list_pipelines(session) for stage in pipeline.stages]


def _statement(base: Any, filters: DealFilters, narrowing: DealListFilters, stages: list[StageRow]) -> Any:
    statement = deal_queries._filtered(base, filters, stages)  # noqa: SLF001 - the board's one filter definition
    if narrowing.pipeline_id is not None:
        statement = statement.where(Opportunity.pipeline_id == narrowing.pipeline_id)
    if narrowing.stage_id is not None:
        statement = statement.where(Opportunity.stage_id == narrowing.stage_id)
    if narrowing.customer_id is not None:
        statement = statement.where(Opportunity.customer_id == narrowing.customer_id)
    return statement


def list_deal_page(
    session: Session,
    *,
    filters: DealFilters | None = None,
    narrowing: DealListFilters | None = None,
    sort: str = "created_at",
    descending: bool = True,
    per_page: int = 50,
    after: Position | None = None,
    count_cap: int | None = None,
) -> DealListPage:
    """A page of the visible deals matching ``filters`` past ``after`` (the previous page's last row).

    ``count_cap`` adds a count of the matches, stopping after ``count_cap + 1`` rows.
    """
    filters = replace(filters or DealFilters(), dialect=session.get_bind().dialect.name)
    narrowing = narrowing or DealListFilters()
    per_page = max(1, min(per_page, 500))
    sort_column = SORTABLE_COLUMNS.get(sort, Opportunity.created_at)
    stages = _all_stages(session)
    statement = _statement(deal_queries._card_statement(stages), filters, narrowing, stages)  # noqa: SLF001
    if after is not None:
        position, bound = tuple_(sort_column, Opportunity.id), tuple_(*after)
        statement = statement.where(position < bound if descending else position > bound)
    order = [sort_column.desc(), Opportunity.id.desc()] if descending else [sort_column.asc(), Opportunity.id.asc()]
    rows = session.execute(statement.order_by(*order).limit(per_page + 1)).all()
    by_id = {stage.id: stage for stage in stages}
    items = [deal_queries._card(deal, customer, owner, by_id) for deal, customer, owner in rows[:per_page]]  # noqa: SLF001
    has_next = len(rows) > per_page
    next_position: Position | None = None
    if has_next:
        last = rows[per_page - 1][0]
        next_position = (getattr(last, sort if sort in SORTABLE_COLUMNS else "created_at"), last.id)
    total, capped = None, False
    if count_cap is not None:
        inner = _statement(select(Opportunity.id), filters, narrowing, stages).limit(count_cap + 1).subquery()
        total = int(session.scalar(select(func.count()).select_from(inner)) or 0)
        capped = total > count_cap
        total = min(total, count_cap)
    return DealListPage(items=items, has_next=has_next, next_position=next_position, total=total,
                        total_capped=capped, archived_at={deal.id: deal.archived_at for deal, _, _ in rows[:per_page]})
