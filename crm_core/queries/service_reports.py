"""Read side of the service dashboard: every figure is computed in SQL, scoped by the session.

A manager sees their teams' cases (and their customers'), an admin or analyst the tenant's, a
rep their own and their queue's (the case rule of :mod:`crm_core.access` applies to cases,
their SLA state and their ratings alike).

Definitions (documented once, here):

* **Period**: ``[since, until)`` in naive UTC instants (the page passes whole days).
* **Backlog**: cases not resolved or closed, now, by priority and by age since ``opened_at``
  in buckets (< 1 day, 1–3 days, 3–7 days, ≥ 7 days; :data:`AGE_BUCKETS`).
* **SLA attainment** per metric (first response, resolution): the cases whose clock ended in
  the period (``*_met_at`` in it) plus those whose clock is still running past a due time
  that fell in the period (missed, not yet met). Attained = met with no due time passed before
  (``case_sla`` keeps ``*_due_at`` of a met clock only when it was breached), i.e. measured in
  business time by the case's calendar and pauses. Cases without an SLA policy do not count.
* **First response / resolution time**: *wall-clock* hours from ``opened_at`` to
  ``first_responded_at`` / ``resolved_at`` (what the customer waited), of cases responded to
  / resolved in the period. Business time is not stored per case; the SLA attainment above
  is the business-time figure. Percentiles are nearest-rank (the smallest value whose share of
  the ordered set reaches p): ``percentile_disc`` on PostgreSQL, ``row_number()`` over the
  ordered set on SQLite and MariaDB — the same definition, so the same figures on all three.
* **CSAT % good**: ratings given in the period (``rated_at``), good ÷ all.
* **Per agent / team**: the case's assignee / team (queue) now; cases without one are grouped
  under None.
* **Weekly trend**: ISO weeks (Monday 00:00 UTC) of the last ``weeks`` weeks up to ``now``:
  cases opened, cases resolved, CSAT % good of the ratings given that week.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Integer, and_, case, cast, func, literal, or_, select
from sqlalchemy.orm import Session

from crm_core.models import Case, CasePriority, Team, User
from crm_core.models.service import CaseRating, CaseSla, CsatScore
from crm_core.queries.reports import days_between
from crm_core.rules.case_flow import CLOSED_STATUSES

AGE_BUCKETS = ("lt_1d", "1_3d", "3_7d", "ge_7d")
BUCKET_DAYS = (1, 3, 7)
PRIORITIES = tuple(priority.value for priority in CasePriority)
METRICS = ("first_response", "resolution")
PERCENTILES = (50, 90)


@dataclass(frozen=True)
class BacklogCell:
    """Open cases of one priority in one age bucket."""

    priority: str
    bucket: str
    count: int


@dataclass(frozen=True)
class Attainment:
    """One SLA metric over the period: attained of measured (percent None when nothing was measured)."""

    metric: str
    measured: int
    attained: int

    @property
    def percent(self) -> float | None:
        return None if not self.measured else self.attained * 100 / self.measured


@dataclass(frozen=True)
class GroupFigures:
    """One agent's or team's figures (or the whole scope's, with ``key`` None and ``name`` "")."""

    key: int | None
    name: str
    resolved: int
    first_response_hours: dict[int, float | None]  # percentile → hours
    resolution_hours: dict[int, float | None]
    ratings: int
    good: int

    @property
    def csat_percent(self) -> float | None:
        return None if not self.ratings else self.good * 100 / self.ratings


@dataclass(frozen=True)
class WeekFigures:
    """One week of the trend."""

    week_start: dt.date
    opened: int
    resolved: int
    ratings: int
    good: int

    @property
    def csat_percent(self) -> float | None:
        return None if not self.ratings else self.good * 100 / self.ratings


@dataclass(frozen=True)
class ServiceDashboard:
    """Everything the service dashboard shows."""

    since: dt.datetime
    until: dt.datetime
    now: dt.datetime
    backlog: list[BacklogCell]
    attainment: list[Attainment]
    overall: GroupFigures
    agents: list[GroupFigures]
    teams: list[GroupFigures]
    weeks: list[WeekFigures]


def _open() -> Any:
    return Case.status.not_in(sorted(CLOSED_STATUSES))


def backlog(session: Session, *, now: dt.datetime) -> list[BacklogCell]:
    """Open cases by priority and age bucket (only non-empty cells)."""
    edges = [now - dt.timedelta(days=days) for days in BUCKET_DAYS]
    bucket = case(
        (Case.opened_at > edges[0], literal(AGE_BUCKETS[0])),
        (Case.opened_at > edges[1], literal(AGE_BUCKETS[1])),
        (Case.opened_at > edges[2], literal(AGE_BUCKETS[2])),
        else_=literal(AGE_BUCKETS[3]),
    ).label("bucket")
    rows = session.execute(select(Case.priority, bucket, func.count(Case.id)).where(_open())
                           .group_by(Case.priority, bucket)).all()
    order = {name: index for index, name in enumerate(AGE_BUCKETS)}
    priority_order = {name: index for index, name in enumerate(PRIORITIES)}
    cells = [BacklogCell(str(priority), str(name), int(count)) for priority, name, count in rows]
    return sorted(cells, key=lambda cell: (priority_order.get(cell.priority, 9), order[cell.bucket]))


def attainment(session: Session, *, since: dt.datetime, until: dt.datetime, now: dt.datetime) -> list[Attainment]:
    """SLA attainment per metric over the period (see the module's definition)."""
    results = []
    stop = min(until, now)
    for metric in METRICS:
        met_at = getattr(CaseSla, f"{metric}_met_at")
        due_at = getattr(CaseSla, f"{metric}_due_at")
        met_in_period = and_(met_at >= since, met_at < until)
        missed_running = and_(met_at.is_(None), due_at >= since, due_at < stop)
        attained = and_(met_in_period, or_(due_at.is_(None), due_at >= met_at))
        measured_count, attained_count = session.execute(
            select(func.count(CaseSla.id), func.coalesce(func.sum(case((attained, 1), else_=0)), 0))
            .join(Case, Case.id == CaseSla.case_id)
            .where(CaseSla.policy_id.is_not(None), or_(met_in_period, missed_running))
        ).one()
        results.append(Attainment(metric, int(measured_count or 0), int(attained_count or 0)))
    return results


def _hours(session: Session, start: Any, end: Any) -> Any:
    return days_between(session, start, end) * 24.0


def _percentiles(session: Session, value: Any, group: Any, where: Any) -> dict[Any, dict[int, float | None]]:
    """Nearest-rank p50/p90 of ``value`` per ``group`` (None: the whole set), in SQL."""
    key = group if group is not None else literal(0)
    found: dict[Any, dict[int, float | None]] = {}
    if session.get_bind().dialect.name == "postgresql":
        columns = [func.percentile_disc(p / 100).within_group(value) for p in PERCENTILES]
        statement = select(key.label("key"), *columns).select_from(Case).where(where)
        if group is not None:
            statement = statement.group_by(group)
        for row in session.execute(statement):
            found[row[0] if group is not None else None] = {
                p: None if row[index + 1] is None else float(row[index + 1]) for index, p in enumerate(PERCENTILES)}
        return found
    partition = [group] if group is not None else []
    ranked = (select(key.label("key"), value.label("value"),
                     func.row_number().over(partition_by=partition, order_by=value).label("rn"),
                     func.count().over(partition_by=partition).label("n"))
              .select_from(Case).where(where).subquery())
    picks = [func.max(case((and_(ranked.c.rn * 100 >= p * ranked.c.n, (ranked.c.rn - 1) * 100 < p * ranked.c.n),
                           ranked.c.value))) for p in PERCENTILES]
    for row in session.execute(select(ranked.c.key, *picks).group_by(ranked.c.key)):
        found[row[0] if group is not None else None] = {
            p: None if row[index + 1] is None else float(row[index + 1]) for index, p in enumerate(PERCENTILES)}
    return found


def _groups(session: Session, group: Any, *, since: dt.datetime, until: dt.datetime) -> dict[Any, GroupFigures]:
    responded = and_(Case.first_responded_at >= since, Case.first_responded_at < until)
    resolved = and_(Case.resolved_at >= since, Case.resolved_at < until)
    first = _percentiles(session, _hours(session, Case.opened_at, Case.first_responded_at), group, responded)
    resolution = _percentiles(session, _hours(session, Case.opened_at, Case.resolved_at), group, resolved)
    key = group if group is not None else literal(0)
    counts = select(key, func.count(Case.id)).where(resolved)
    if group is not None:
        counts = counts.group_by(group)
    resolved_counts = {row[0] if group is not None else None: int(row[1]) for row in session.execute(counts)}
    good = func.coalesce(func.sum(case((CaseRating.score == CsatScore.GOOD, 1), else_=0)), 0)
    ratings = (select(key, func.count(CaseRating.id), good).join(Case, Case.id == CaseRating.case_id)
               .where(CaseRating.rated_at >= since, CaseRating.rated_at < until))
    if group is not None:
        ratings = ratings.group_by(group)
    rated = {row[0] if group is not None else None: (int(row[1]), int(row[2] or 0))
             for row in session.execute(ratings)}
    empty: dict[int, float | None] = dict.fromkeys(PERCENTILES)
    keys = set(first) | set(resolution) | set(resolved_counts) | set(rated)
    if group is None:
        keys = {None}
    return {k: GroupFigures(key=k, name="", resolved=resolved_counts.get(k, 0),
                            first_response_hours=first.get(k, dict(empty)),
                            resolution_hours=resolution.get(k, dict(empty)),
                            ratings=rated.get(k, (0, 0))[0], good=rated.get(k, (0, 0))[1]) for k in keys}


def _named(session: Session, figures: dict[Any, GroupFigures], model: Any, column: Any) -> list[GroupFigures]:
    ids = sorted(k for k in figures if k is not None)
    names: dict[Any, Any] = {}
    if ids:
        names = dict(session.execute(select(model.id, column).where(model.id.in_(ids))).all())
    named = [GroupFigures(**{**figure.__dict__, "name": str(names.get(key, "")) if key is not None else ""})
             for key, figure in figures.items()]
    return sorted(named, key=lambda figure: (figure.key is None, figure.name.lower(), figure.key or 0))


def _week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def _week_index(session: Session, column: Any, anchor: dt.datetime) -> Any:
    days = days_between(session, literal(anchor), column) / 7
    if session.get_bind().dialect.name == "sqlite":
        return cast(days, Integer)  # truncation: the instants are all after the anchor
    return cast(func.floor(days), Integer)


def weekly_trend(session: Session, *, now: dt.datetime, weeks: int = 12) -> list[WeekFigures]:
    """Opened, resolved and CSAT per ISO week, the last ``weeks`` weeks up to ``now``."""
    first_day = _week_start(now.date()) - dt.timedelta(weeks=weeks - 1)
    anchor = dt.datetime.combine(first_day, dt.time())
    in_range: dict[str, Any] = {}

    def per_week(column: Any, *extra: Any, join: Any = None, entity: Any = Case) -> dict[int, tuple[int, ...]]:
        week = _week_index(session, column, anchor).label("week")
        statement = select(week, func.count(entity.id), *extra).where(column >= anchor, column < now)
        if join is not None:
            statement = statement.join(*join)
        rows = session.execute(statement.group_by(week)).all()
        return {int(row[0]): tuple(int(value or 0) for value in row[1:]) for row in rows}

    in_range["opened"] = per_week(Case.opened_at)
    in_range["resolved"] = per_week(Case.resolved_at)
    good = func.coalesce(func.sum(case((CaseRating.score == CsatScore.GOOD, 1), else_=0)), 0)
    in_range["rated"] = per_week(CaseRating.rated_at, good, join=(Case, Case.id == CaseRating.case_id),
                                 entity=CaseRating)
    result = []
    for index in range(weeks):
        rated = in_range["rated"].get(index, (0, 0))
        result.append(WeekFigures(week_start=first_day + dt.timedelta(weeks=index),
                                  opened=in_range["opened"].get(index, (0,))[0],
                                  resolved=in_range["resolved"].get(index, (0,))[0],
                                  ratings=rated[0], good=rated[1]))
    return result


def service_dashboard(session: Session, *, since: dt.datetime, until: dt.datetime, now: dt.datetime,
                      weeks: int = 12) -> ServiceDashboard:
    """Every figure of the service dashboard for the period ``[since, until)``, as of ``now``."""
    overall = _groups(session, None, since=since, until=until)[None]
    agents = _named(session, _groups(session, Case.assignee_id, since=since, until=until), User, User.full_name)
    teams = _named(session, _groups(session, Case.team_id, since=since, until=until), Team, Team.name)
    return ServiceDashboard(since=since, until=until, now=now, backlog=backlog(session, now=now),
                            attainment=attainment(session, since=since, until=until, now=now), overall=overall,
                            agents=agents, teams=teams, weeks=weekly_trend(session, now=now, weeks=weeks))
