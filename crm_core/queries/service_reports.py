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
  the ordered set reaches p), read from a histogram: the times are counted in the buckets of
  :data:`MINUTE_EDGES` with their sum, and p50/p90 is the mean of the bucket that holds the
  nearest-rank value. Exact when that bucket holds one value (or equal ones); otherwise off by
  less than the bucket's width (at most half the value above 10 minutes; decision 0033).
* **CSAT % good**: ratings given in the period (``rated_at``), good ÷ all.
* **Per agent / team**: the case's assignee / team (queue) now; cases without one are grouped
  under None.
* **Weekly trend**: ISO weeks (Monday 00:00 UTC) of the last ``weeks`` weeks up to ``now``:
  cases opened, cases resolved, CSAT % good of the ratings given that week.

Where the figures come from (decision 0033): every figure but the backlog is a sum of daily
*facts* (:func:`fact_statements`: per UTC day, queue, assignee and figure). The ``service_daily``
job counts the facts of the last :data:`KEEP_DAYS` days before today into ``service_daily``,
sliced also by the customer's owner and team so that the case rule of :mod:`crm_core.access`
applies to its rows as to the cases; the dashboard sums those rows and counts the rest (today,
and any day the job has not counted) live, with the same statements. Earlier days are as fresh
as the job's last run (``counted_at``; the page says so); the backlog is always live.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Date, Select, and_, case, func, literal, literal_column, select, union_all
from sqlalchemy.orm import Session

from crm_core.models import Case, CasePriority, CaseStatus, Team, User
from crm_core.models.service import CaseRating, CaseSla, CsatScore, ServiceDaily, ServiceDailyRun
from crm_core.queries.cases import ended_in_time
from crm_core.queries.reports import days_between
from crm_core.rules.case_flow import CLOSED_STATUSES

AGE_BUCKETS = ("lt_1d", "1_3d", "3_7d", "ge_7d")
BUCKET_DAYS = (1, 3, 7)
PRIORITIES = tuple(priority.value for priority in CasePriority)
METRICS = ("first_response", "resolution")
PERCENTILES = (50, 90)
OPEN_STATUSES = tuple(status.value for status in CaseStatus if status.value not in CLOSED_STATUSES)
# what a fact counts, by the day of: opened_at, first_responded_at (bucketed response time),
# resolved_at (bucketed resolution time), rated_at (bucket 1: good), an SLA clock met (bucket 1:
# attained) and a clock's due time passed unmet
FIGURES = ("opened", "responded", "resolved", "rated", "fr_met", "fr_missed", "res_met", "res_missed")
# the lower edges, in minutes, of the buckets of response and resolution times (the last is open)
MINUTE_EDGES = (0, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 360, 480, 600, 720, 960, 1200, 1440, 1800,
                2160, 2880, 3600, 4320, 5760, 7200, 8640, 10080, 14400, 20160, 30240, 43200)
KEEP_DAYS = 100  # the days service_daily holds: the longest period (90 days) and the trend (12 weeks from a Monday)


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
    counted_at: dt.datetime | None = None  # when the days before ``live_since`` were counted (None: all live)
    live_since: dt.datetime | None = None


def _open() -> Any:
    return Case.status.in_(OPEN_STATUSES)


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


def _attained(met_at: Any, due_at: Any) -> Any:
    return case((ended_in_time(met_at, due_at), literal_column("1")), else_=literal_column("0"))


def _bucket(minutes: Any) -> Any:
    """SQL: the index in :data:`MINUTE_EDGES` of the bucket holding ``minutes``."""
    whens: list[tuple[Any, Any]] = [(minutes < literal_column(str(edge)), literal_column(str(index)))
             for index, edge in enumerate(MINUTE_EDGES[1:])]
    return case(*whens, else_=literal_column(str(len(MINUTE_EDGES) - 1)))


def fact_statements(session: Session, *, start: dt.datetime, end: dt.datetime, now: dt.datetime,
                    tenant_id: int | None = None, slices: bool = False) -> list[Select[Any]]:
    """Per figure of :data:`FIGURES`, the SELECT counting the cases whose instant falls in ``[start, end)``.

    Columns: day, team_id, assignee_id (with ``slices``: the case's copy of its customer's owner
    and team too, for the ``service_daily`` job), figure, bucket, cases, minutes.
    The dashboard runs them as the user (the case rule applies) for what the job has not counted;
    the job inserts them into ``service_daily``. One definition for both, so both count alike.
    """
    def minutes(begin: Any, finish: Any) -> Any:  # whole seconds, so that 4 h is 240 minutes, not 239.99…
        return func.round(days_between(session, begin, finish) * literal_column("86400")) / literal_column("60.0")

    def count(figure: str, instant: Any, *where: Any, entity: Any = Case, bucket: Any = None,
              total: Any = None) -> Select[Any]:
        day = func.date(instant, type_=Date)  # a date on every driver (SQLite's text is parsed)
        dims: list[Any] = [Case.team_id, Case.assignee_id]
        if slices:
            dims += [Case.customer_owner_id, Case.customer_team_id]
        statement = select(
            day.label("day"), *dims, literal_column(f"'{figure}'").label("figure"),
            (bucket if bucket is not None else literal_column("0")).label("bucket"),
            func.count().label("cases"),
            (func.sum(total) if total is not None else literal_column("0.0")).label("minutes"),
        ).select_from(entity)
        if entity is not Case:
            # on the tenant too: co-located rows, one shard under Citus (decision 0057)
            statement = statement.join(Case, and_(Case.id == entity.case_id, Case.tenant_id == entity.tenant_id))
        if tenant_id is not None:
            statement = statement.where(Case.tenant_id == tenant_id)
        return (statement.where(instant >= start, instant < end, *where)
                .group_by(day, *dims, *([bucket] if bucket is not None else [])))

    responded = minutes(Case.opened_at, Case.first_responded_at)
    resolved = minutes(Case.opened_at, Case.resolved_at)
    statements = [
        count("opened", Case.opened_at),
        count("responded", Case.first_responded_at, bucket=_bucket(responded), total=responded),
        count("resolved", Case.resolved_at, bucket=_bucket(resolved), total=resolved),
        count("rated", CaseRating.rated_at, entity=CaseRating,
              bucket=case((CaseRating.score == CsatScore.GOOD, literal_column("1")), else_=literal_column("0"))),
    ]
    for metric, prefix in (("first_response", "fr"), ("resolution", "res")):
        met_at, due_at = getattr(CaseSla, f"{metric}_met_at"), getattr(CaseSla, f"{metric}_due_at")
        statements.append(count(f"{prefix}_met", met_at, CaseSla.policy_id.is_not(None), entity=CaseSla,
                                bucket=_attained(met_at, due_at)))
        unmet = met_at.is_(None)
        if session.get_bind().dialect.name == "sqlite":  # its statistics take NULL for as rare as any value:
            unmet = func.likelihood(unmet, literal_column("0.5"))  # read the due index's day, not every open clock
        statements.append(count(f"{prefix}_missed", due_at, CaseSla.policy_id.is_not(None), unmet,
                                due_at < now, entity=CaseSla))
    return statements


@dataclass
class _Histogram:
    """Cases and summed minutes per bucket of one figure."""

    cases: dict[int, int] = field(default_factory=dict)
    minutes: dict[int, float] = field(default_factory=dict)

    def add(self, bucket: int, cases: int, minutes: float) -> None:
        self.cases[bucket] = self.cases.get(bucket, 0) + cases
        self.minutes[bucket] = self.minutes.get(bucket, 0.0) + minutes

    def total(self) -> int:
        return sum(self.cases.values())

    def hours(self, percent: int) -> float | None:
        """The nearest-rank percentile, read as the mean of the bucket that holds it (module docstring)."""
        count = self.total()
        if not count:
            return None
        rank, seen = -(-percent * count // 100), 0
        for bucket in sorted(self.cases):
            seen += self.cases[bucket]
            if seen >= rank:
                return self.minutes[bucket] / self.cases[bucket] / 60
        return None  # unreachable: rank <= count


Slice = tuple[Any, Any]  # (team id, assignee id)


def _to_date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _merged(histograms: dict[Slice, dict[str, _Histogram]], figure: str, key: Any = None,
            part: int | None = None) -> _Histogram:
    """One figure's histogram over the slices whose ``part`` (0 team, 1 assignee; None: all) is ``key``."""
    merged = _Histogram()
    for slice_key, figures in histograms.items():
        histogram = figures.get(figure)
        if histogram is not None and (part is None or slice_key[part] == key):
            for bucket, cases in histogram.cases.items():
                merged.add(bucket, cases, histogram.minutes[bucket])
    return merged


def _group(histograms: dict[Slice, dict[str, _Histogram]], key: Any, part: int | None) -> GroupFigures:
    responded, resolved, rated = (_merged(histograms, figure, key, part)
                                  for figure in ("responded", "resolved", "rated"))
    return GroupFigures(key=key if part is not None else None, name="", resolved=resolved.total(),
                        first_response_hours={p: responded.hours(p) for p in PERCENTILES},
                        resolution_hours={p: resolved.hours(p) for p in PERCENTILES},
                        ratings=rated.total(), good=rated.cases.get(1, 0))


def _named(session: Session, figures: list[GroupFigures], model: Any, column: Any) -> list[GroupFigures]:
    ids = sorted(figure.key for figure in figures if figure.key is not None)
    names: dict[Any, Any] = {}
    if ids:
        names = dict(session.execute(select(model.id, column).where(model.id.in_(ids))).all())
    named = [GroupFigures(**{**figure.__dict__, "name": str(names.get(figure.key, "")) if figure.key is not None
                             else ""}) for figure in figures]
    return sorted(named, key=lambda figure: (figure.key is None, figure.name.lower(), figure.key or 0))


def _week_start(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def counted_days(session: Session, *, first_day: dt.date,
                 end_day: dt.date) -> tuple[dt.date, dt.date, dt.datetime | None]:
    """The days in ``[first_day, end_day)`` that ``service_daily`` holds for the session's tenant, and when
    they were counted: ``(first, end, refreshed_at)``, an empty range when none."""
    run = session.execute(select(ServiceDailyRun.first_day, ServiceDailyRun.end_day,
                                 ServiceDailyRun.refreshed_at)).first()
    if run is None:
        return first_day, first_day, None
    first, end = max(_to_date(run.first_day), first_day), min(_to_date(run.end_day), end_day)
    return (first, end, run.refreshed_at) if first < end else (first_day, first_day, None)


def service_dashboard(session: Session, *, since: dt.datetime, until: dt.datetime, now: dt.datetime,
                      weeks: int = 12, rollups: bool = True) -> ServiceDashboard:
    """Every figure of the service dashboard for the period ``[since, until)``, as of ``now``.

    ``since`` is a midnight, ``until`` is ``now`` or a midnight. Days that the ``service_daily`` job
    counted are read from its rows; the rest (today, and every day with ``rollups=False``) live
    from the cases, by the same statements (:func:`fact_statements`).
    """
    trend_day = _week_start(now.date()) - dt.timedelta(weeks=weeks - 1)
    first_day = min(since.date(), trend_day)
    first, end, counted_at = (counted_days(session, first_day=first_day, end_day=min(until.date(), now.date()))
                              if rollups else (first_day, first_day, None))
    windows = [(dt.datetime.combine(first_day, dt.time()), dt.datetime.combine(end, dt.time()) if first < end
                else max(until, now))]
    if first < end:
        windows = ([(windows[0][0], dt.datetime.combine(first, dt.time()))] if first_day < first else []) + [
            (dt.datetime.combine(end, dt.time()), max(until, now))]
    live: list[Any] = []
    for start, stop in windows:  # one statement: the access rule's criteria are attached and keyed once
        live.extend(session.execute(union_all(*fact_statements(session, start=start, end=stop, now=now))).all())

    histograms: dict[Slice, dict[str, _Histogram]] = {}

    def add(team_id: Any, assignee_id: Any, figure: str, bucket: int, cases: int, minutes: float) -> None:
        histograms.setdefault((team_id, assignee_id), {}).setdefault(figure, _Histogram()).add(
            int(bucket), int(cases), float(minutes or 0))

    period_first, period_end = max(first, since.date()), min(end, until.date())
    if period_first < period_end:
        for row in session.execute(
                select(ServiceDaily.team_id, ServiceDaily.assignee_id, ServiceDaily.figure, ServiceDaily.bucket,
                       func.sum(ServiceDaily.cases), func.sum(ServiceDaily.minutes))
                .where(ServiceDaily.day >= period_first, ServiceDaily.day < period_end)
                .group_by(ServiceDaily.team_id, ServiceDaily.assignee_id, ServiceDaily.figure, ServiceDaily.bucket)):
            add(*row)
    weekly: dict[tuple[int, str], list[int]] = {}

    def add_week(day: dt.date, figure: str, cases: int, good: int) -> None:
        if figure in ("opened", "resolved", "rated") and day >= trend_day:
            counts = weekly.setdefault(((day - trend_day).days // 7, figure), [0, 0])
            counts[0] += int(cases)
            counts[1] += int(good or 0)

    for row in live:
        day = _to_date(row.day)
        if since.date() <= day and (day < until.date() or until.time() != dt.time()):
            add(row.team_id, row.assignee_id, row.figure, row.bucket, row.cases, row.minutes)
        add_week(day, row.figure, row.cases, row.cases if row.bucket == 1 else 0)
    trend_first = max(first, trend_day)
    if trend_first < end:
        for day, figure, cases, good in session.execute(
                select(ServiceDaily.day, ServiceDaily.figure, func.sum(ServiceDaily.cases),
                       func.sum(case((ServiceDaily.bucket == 1, ServiceDaily.cases), else_=0)))
                .where(ServiceDaily.day >= trend_first, ServiceDaily.day < end,
                       ServiceDaily.figure.in_(("opened", "resolved", "rated")))
                .group_by(ServiceDaily.day, ServiceDaily.figure)):
            add_week(_to_date(day), figure, cases, good)

    overall = _group(histograms, None, None)
    shown = ("responded", "resolved", "rated")  # an agent or team with a figure in the period
    agents = {key[1] for key, figures in histograms.items() if any(figures.get(name) for name in shown)}
    teams = {key[0] for key, figures in histograms.items() if any(figures.get(name) for name in shown)}
    attainment = []
    for metric, prefix in (("first_response", "fr"), ("resolution", "res")):
        met, missed = _merged(histograms, f"{prefix}_met"), _merged(histograms, f"{prefix}_missed")
        attainment.append(Attainment(metric, met.total() + missed.total(), met.cases.get(1, 0)))
    trend = [WeekFigures(week_start=trend_day + dt.timedelta(weeks=index),
                         opened=weekly.get((index, "opened"), [0, 0])[0],
                         resolved=weekly.get((index, "resolved"), [0, 0])[0],
                         ratings=weekly.get((index, "rated"), [0, 0])[0], good=weekly.get((index, "rated"), [0, 0])[1])
             for index in range(weeks)]
    return ServiceDashboard(
        since=since, until=until, now=now, backlog=backlog(session, now=now), attainment=attainment,
        overall=overall,
        agents=_named(session, [_group(histograms, key, 1) for key in agents], User, User.full_name),
        teams=_named(session, [_group(histograms, key, 0) for key in teams], Team, Team.name),
        weeks=trend, counted_at=counted_at,
        live_since=dt.datetime.combine(end, dt.time()) if counted_at is not None else None)
