"""Reading the sales rollup (decision 0064): the funnel's and the dashboard's deal and revenue sums.

The ``sales_rollup`` job counts what was there before its instant (``refreshed_at``); what
happened from then on is read live by the caller with the same statement as before, restricted to that
stretch, and the two are added. Each function here returns the rollup's part only, in the shape the live
statement returns, so :mod:`crm_core.queries.reports` adds rows of one kind.

Who sees the whole tenant reads the ``whole`` rows (summed over owners: far fewer); everyone else the rows
of their own slices, which the access layer admits as it admits the deals and orders they count. A manager reads
a team they manage as one slice (decision 0065) while its members are those it had when counted.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import and_, case, func, or_, select, true
from sqlalchemy.orm import Session

from crm_core.access import actor_of
from crm_core.models import User
from crm_core.models.sales_rollup import CustomerRollup, DealRollup, OrderRollup, SalesRollupRun, TaskRollup
from crm_core.queries.rollup_spans import day_conditions, week_conditions, week_cover

CREATED, CLOSED, CLOSING = "created", "closed", "closing"


@dataclass(frozen=True)
class RollupRun:
    """When the tenant's rollup was counted (its rows count what was there before that instant), the first day its
    day rows hold (older days are kept as weeks only) and each team's members as counted."""

    refreshed_at: dt.datetime
    days_from: dt.date
    teams: dict[int, frozenset[int]] = field(default_factory=dict)

    @property
    def counted_before(self) -> dt.datetime:
        """The instant the rows count up to: the count's own."""
        return self.refreshed_at


def rollup_run(session: Session) -> RollupRun | None:
    """The session's tenant's last count, or None when it was never counted (every figure is then live)."""
    row = session.execute(
        select(SalesRollupRun.refreshed_at, SalesRollupRun.days_from, SalesRollupRun.teams)).first()
    if row is None:
        return None
    return RollupRun(row[0], row[1], {int(team): frozenset(members) for team, members in (row[2] or {}).items()})


Range = tuple[dt.datetime | None, dt.datetime | None]


@dataclass(frozen=True)
class Plan:
    """How a range of instants is read: ``spans``, conditions on the rollup's rows (each one index range), and
    ``live``, ranges of instants ``[start, end)`` (None: open) read from the records themselves."""

    spans: list[list[Any]]
    live: list[Range]


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time())


def plan(start: dt.datetime | None, end: dt.datetime | None, run: RollupRun, *, all_days: bool = False,
         rollup: Any = DealRollup) -> Plan:
    """Read ``[start, end)`` (None: open) from ``run``'s ``rollup`` rows where they answer it, and the rest live.

    The rows count what was there before the count's instant ``B`` (``counted_before``): whole days before B's
    day, and B's own day up to B. A range reaching past B reads the rollup's days up to B's (as week rows where a
    week is whole, as day rows at the edges from the first kept day on; ``all_days``: the day-less rows when it
    covers every day) and the instants from B on live: a few minutes of records. A range ending before B reads
    its whole days from the rollup and the part of its last day live. Edges older than the kept days and a start
    that is not a midnight are read live."""
    counted = run.counted_before
    if start is not None and (start.time() != dt.time() or start >= counted):
        return Plan([], [(start, end)])
    live: list[Range] = []
    if end is None or end > counted:
        end_day = counted.date() + dt.timedelta(days=1)  # B's day row: its records up to B
        live.append((counted, end))
        covers_all = True
    else:
        end_day = end.date()
        if end > _midnight(end_day):
            live.append((_midnight(end_day), end))
        covers_all = False
    first_day = start.date() if start is not None else None
    if first_day is not None and end_day <= first_day:
        return Plan([], [(start, end)])
    if all_days and first_day is None and covers_all:
        return Plan([[rollup.week.is_(False), rollup.day.is_(None)]], live)
    weeks, edges = week_cover(first_day, end_day)
    spans = [week_conditions(rollup.week, rollup.day, *weeks)] if weeks is not None else []
    for edge_start, edge_end in edges:
        kept_from = run.days_from if edge_start is None else max(edge_start, run.days_from)
        if edge_end is not None and edge_end <= kept_from:
            live.append((_midnight(edge_start) if edge_start else None, _midnight(edge_end)))
            continue
        if edge_start is None or edge_start < kept_from:
            live.append((_midnight(edge_start) if edge_start else None, _midnight(kept_from)))
        spans.append(day_conditions(rollup.week, rollup.day, kept_from, edge_end))
    return Plan(spans, live)


def any_span(spans: list[list[Any]]) -> Any:
    """A row of any of ``spans`` (they are disjoint: one statement sums them all, each span an index range)."""
    return or_(*(and_(*span) for span in spans))


def live_clause(column: Any, ranges: list[Range]) -> Any:
    """``column`` falls in one of ``ranges`` (None when there are none: nothing is read live)."""
    clauses = [and_(*([column >= start] if start is not None else []), *([column < end] if end is not None else []),
                    true())
               for start, end in ranges]
    return or_(*clauses) if clauses else None


def _whole(session: Session, *, sliced: bool = False) -> bool:
    """Read the ``whole`` rows: the actor sees the whole tenant and no filter needs the slices."""
    actor = actor_of(session)
    return not sliced and (actor is None or actor.sees_whole_tenant)


def _slices(session: Session, run: RollupRun | None) -> Any:
    """The rows of the actor's own slices, counted once: one per owner they see — or, for a team they manage whose
    members are those it had when counted, the team's one (its members' deals summed) instead of its members'."""
    actor = actor_of(session)
    owner_rows = DealRollup.team_id.is_(None)
    if actor is None or not actor.managed_teams or run is None:
        return owner_rows
    teams = [team_id for team_id, members in actor.managed_teams if run.teams.get(team_id) == members]
    if not teams:
        return owner_rows
    covered = set().union(*(members for team_id, members in actor.managed_teams if team_id in teams))
    owners = sorted((set(actor.visible_owner_ids) | {actor.user_id}) - covered)
    return or_(and_(DealRollup.owner_id.is_(None), DealRollup.team_id.in_(teams)),
               and_(owner_rows, DealRollup.owner_id.in_(owners)))


def _owner_filters(owner_id: int | None, team_id: int | None) -> list[Any]:
    where: list[Any] = []
    if owner_id is not None:
        where.append(DealRollup.owner_id == owner_id)
    if team_id is not None:
        where.append(DealRollup.owner_id.in_(select(User.id).where(User.team_id == team_id)))
    return where


def funnel_rows(
    session: Session, run: RollupRun, pipeline_id: int, lost_ids: list[int], spans: list[list[Any]], *,
    owner_id: int | None = None, team_id: int | None = None,
) -> list[Any]:
    """The rollup's part of the funnel: rows (stage, deals, amount, weighted, cycle days, cycle deals, lost from)
    of the deals created on ``spans`` (see :func:`plan`)."""
    rollup = DealRollup
    lost_from = case((rollup.stage_id.in_(lost_ids), rollup.lost_from_stage_id), else_=None)
    sliced = owner_id is not None or team_id is not None
    whole = _whole(session, sliced=sliced)
    where = [rollup.measure == CREATED, rollup.pipeline_id == pipeline_id, rollup.whole.is_(whole),
             *_owner_filters(owner_id, team_id)]
    if not whole:
        where.append(rollup.team_id.is_(None) if sliced else _slices(session, run))
    if not spans:
        return []
    return list(session.execute(
        select(rollup.stage_id, func.sum(rollup.deals), func.sum(rollup.amount), func.sum(rollup.weighted),
               func.sum(rollup.cycle_days), func.sum(rollup.cycle_deals), lost_from.label("lost_from"))
        .where(*where, any_span(spans))
        .group_by(rollup.stage_id, lost_from)
    ).all())


def open_sums(session: Session, run: RollupRun, open_ids: list[int]) -> tuple[int, Any, Any]:
    """The rollup's part of the open pipeline: (deals, amount, weighted) of the open deals created before the
    boundary, at the stage they were at when counted."""
    rollup = DealRollup
    whole = _whole(session)
    row = session.execute(
        select(func.sum(rollup.deals), func.sum(rollup.amount), func.sum(rollup.weighted))
        .where(rollup.measure == CREATED, rollup.whole.is_(whole), rollup.week.is_(False),
               rollup.day.is_(None), rollup.stage_id.in_(open_ids), *([] if whole else [_slices(session, run)]))
    ).one()
    return int(row[0] or 0), row[1], row[2]


def closing_sums(session: Session, month: dt.date) -> tuple[int, Any]:
    """The rollup's part of the deals closing in ``month`` (its first day): (deals, amount) of the open deals
    created before the count whose expected close falls in it, as they were when counted."""
    rollup = DealRollup
    row = session.execute(
        select(func.sum(rollup.deals), func.sum(rollup.amount))
        .where(rollup.measure == CLOSING, rollup.whole.is_(_whole(session)), rollup.week.is_(False),
               rollup.day == month)
    ).one()
    return int(row[0] or 0), row[1]


def closed_sums(session: Session, stage_ids: list[int], spans: list[list[Any]]) -> tuple[int, Any]:
    """The rollup's part of (deals, amount) closed at ``stage_ids`` on ``spans`` (see :func:`plan`)."""
    rollup = DealRollup
    if not spans:
        return 0, None
    row = session.execute(
        select(func.sum(rollup.deals), func.sum(rollup.amount))
        .where(rollup.measure == CLOSED, rollup.whole.is_(_whole(session)), rollup.stage_id.in_(stage_ids),
               any_span(spans))
    ).one()
    return int(row[0] or 0), row[1]


def closed_by_owner(session: Session, won_ids: list[int], lost_ids: list[int], spans: list[list[Any]]) -> list[Any]:
    """The rollup's part of the leaderboard: rows (owner, won deals, won amount, lost deals, lost amount) of the
    deals closed on ``spans`` (see :func:`plan`; always the owners' rows: the board names them)."""
    rollup = DealRollup
    is_won = rollup.stage_id.in_(won_ids)
    if not spans:
        return []
    return list(session.execute(
        select(rollup.owner_id, func.sum(case((is_won, rollup.deals), else_=0)),
               func.sum(case((is_won, rollup.amount), else_=0)), func.sum(case((is_won, 0), else_=rollup.deals)),
               func.sum(case((is_won, 0), else_=rollup.amount)))
        .where(rollup.measure == CLOSED, rollup.whole.is_(False), rollup.stage_id.in_([*won_ids, *lost_ids]),
               any_span(spans))
        .group_by(rollup.owner_id)
    ).all())


def customer_count(session: Session, spans: list[list[Any]]) -> int:
    """The rollup's part of the new customers: those created on ``spans`` (see :func:`plan`)."""
    rollup = CustomerRollup
    if not spans:
        return 0
    return int(session.scalar(select(func.sum(rollup.customers))
                              .where(rollup.whole.is_(_whole(session)), any_span(spans))) or 0)


def overdue_count(session: Session, assignee_ids: list[int] | None) -> int:
    """The rollup's part of the overdue tasks: open when counted and due before the count, of
    ``assignee_ids`` (None: everyone's)."""
    rollup = TaskRollup
    where = [rollup.whole.is_(True)] if assignee_ids is None else [rollup.whole.is_(False),
                                                                   rollup.assignee_id.in_(assignee_ids)]
    return int(session.scalar(select(func.sum(rollup.overdue)).where(*where)) or 0)


def revenue_rows(
    session: Session, first: dt.date, end: dt.date, run: RollupRun
) -> tuple[list[tuple[dt.date, Any, int]], dt.datetime | None]:
    """The rollup's part of the revenue trend over the months ``first`` to ``end`` (firsts of the month, end
    exclusive): (first of the month, amount, orders) — the months before the count's month from month rows, that
    month's days up to the count from day rows — and the instant from which the rest is read live (None: nothing
    is)."""
    counted = run.counted_before
    if counted <= _midnight(first):
        return [], _midnight(first)
    rollup = OrderRollup
    whole = rollup.whole.is_(_whole(session))
    month_of_count = counted.date().replace(day=1)
    months_to = min(end, month_of_count)  # whole months: their month rows
    found: list[tuple[dt.date, Any, int]] = [
        (row[0], row[1], int(row[2] or 0))
        for row in session.execute(
            select(rollup.day, func.sum(rollup.amount), func.sum(rollup.orders))
            .where(whole, rollup.month.is_(True), rollup.day >= first, rollup.day < months_to)
            .group_by(rollup.day))
    ]
    if end <= month_of_count:
        return found, None
    row = session.execute(  # the count's month up to the count: its day rows (kept for that month only)
        select(func.sum(rollup.amount), func.sum(rollup.orders))
        .where(whole, rollup.month.is_(False), rollup.day >= month_of_count)
    ).one()
    if row[1]:
        found.append((month_of_count, row[0], int(row[1])))
    return found, counted
