"""SLA use cases: compute a case's clocks from its history, explain them, and sweep for warnings and breaches.

:func:`recompute_case_sla` runs inside the transaction of every case change (status, priority,
reply, queue), in the caller's session; it stores due and warning instants in ``case_sla`` so that
:func:`sweep_sla` (the ``sla_sweep`` job) is a few set-based statements per metric, whatever the
number of open cases: record the level-1 warning (to the assignee) where the warning instant has
passed, the level-2 breach (to the team lead) where the due instant has passed, and level 3 (the
tenant's managers: no single recipient) once a breach is ``manager_after_minutes`` old. Each
level is recorded once per case and metric (one INSERT … SELECT deduplicated by the unique key:
:func:`crm_core.bulk.insert_new`), so the sweep is idempotent. Escalations are kept in
``sla_escalations``. One UPDATE then sets every clock's marks and the level reached
(docs/decisions/0034-queue-order-index-and-sweep-writes.md). Then each level's escalations of this sweep
are told through the notification centre: whoever would be told of more than ``DIGEST_AFTER`` gets one
notice with their number, everyone else one per case and metric
(:func:`crm_core.services.notifications.notify_selected`: one INSERT … SELECT per level, deduplicated per
user and case, metric and level; docs/decisions/0037-criteria-per-statement-and-sla-digest.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import String, Table, and_, func, literal, or_, select, update
from sqlalchemy import case as sql_case
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session

from crm_core.bulk import insert_new
from crm_core.db import Database
from crm_core.errors import NotFound
from crm_core.metrics import SLA_ESCALATIONS
from crm_core.models import Case, CaseStatus, Role, Team, User, utcnow
from crm_core.models.service import (
    SLA_METRICS,
    CaseEvent,
    CaseEventKind,
    CaseSla,
    ServiceQueue,
    SlaCalendar,
    SlaCalendarDay,
    SlaEscalation,
    SlaPolicy,
)
from crm_core.models.service_tiers import CaseEntitlement, CustomerTier
from crm_core.rules.case_flow import CLOSED_STATUSES
from crm_core.rules.customer_tiers import TierChoice
from crm_core.rules.sla import BusinessCalendar, CalendarHasNoHours, Clock, StatusSpan, run_clock
from crm_core.services.customer_tiers import customer_tier
from crm_core.services.notifications import Notice, json_object, notify_many, notify_selected
from crm_core.services.sla_reassign import reassign_breached_cases

LEVEL_ASSIGNEE, LEVEL_TEAM_LEAD, LEVEL_MANAGER = 1, 2, 3
# more escalations of one level than this for one recipient in one sweep: one notice with the number instead
# (decision 0037: nobody works through 6,000 warnings one by one; the service queue lists them by due time)
DIGEST_AFTER = 20


def load_calendar(session: Session, calendar_id: int) -> BusinessCalendar:
    """The business calendar ``calendar_id`` with its holidays and make-up working days."""
    calendar = session.get(SlaCalendar, calendar_id)
    if calendar is None:
        raise NotFound("calendar")
    days = session.execute(select(SlaCalendarDay.day, SlaCalendarDay.kind)
                           .where(SlaCalendarDay.calendar_id == calendar_id)).all()
    return BusinessCalendar.from_settings(
        calendar.name, calendar.time_zone, calendar.hours,
        holidays=frozenset(day for day, kind in days if kind == "holiday"),
        workdays=frozenset(day for day, kind in days if kind == "workday"),
    )


@dataclass(frozen=True)
class SlaExplanation:
    """What the SLA panel shows: the policy, the calendar and each clock with its pauses."""

    policy_id: int | None
    priority: str
    calendar_name: str | None
    time_zone: str | None
    warn_percent: int
    paused_statuses: tuple[str, ...]
    clocks: tuple[Clock, ...] = field(default_factory=tuple)
    warned: dict[str, dt.datetime | None] = field(default_factory=dict)
    breached: dict[str, dt.datetime | None] = field(default_factory=dict)
    escalation_level: int = 0
    tier: TierChoice | None = None  # the customer's tier the case was opened under, and why
    policy_tier_id: int | None = None  # the policy's own tier (None: the default policy applies)
    tier_names: tuple[str, str] | None = None  # the tier's names (en, zh), for the panel


def case_tier(session: Session, case: Case, *, now: dt.datetime) -> TierChoice:
    """The tier the case was opened under (``case_entitlements``); not yet kept: its customer's tier now."""
    kept = session.scalar(select(CaseEntitlement).where(CaseEntitlement.case_id == case.id))
    if kept is None:
        return customer_tier(session, case.tenant_id, case.customer_id, today=now.date())
    return TierChoice(kept.tier_id, kept.basis, kept.order_total, kept.threshold, kept.months, kept.pinned_until,
                      kept.as_of)


def _policy_and_calendar(session: Session, case: Case, tier_id: int | None) -> tuple[SlaPolicy | None, int | None]:
    # the tier's own policy for the priority, else the default one (tier_key 0)
    policy = session.scalars(select(SlaPolicy).where(SlaPolicy.priority == case.priority,
                                                     SlaPolicy.tier_key.in_(sorted({tier_id or 0, 0})))
                             .order_by(SlaPolicy.tier_key.desc()).limit(1)).first()
    if policy is None:
        return None, None
    queue_calendar = None
    if case.team_id is not None:
        queue_calendar = session.scalar(select(ServiceQueue.calendar_id).where(ServiceQueue.team_id == case.team_id))
    return policy, queue_calendar or policy.calendar_id


def _history(session: Session, case_id: int) -> list[CaseEvent]:
    return list(session.scalars(select(CaseEvent).where(CaseEvent.case_id == case_id)
                                .order_by(CaseEvent.at, CaseEvent.id)))


def _spans(case: Case, events: list[CaseEvent]) -> list[StatusSpan]:
    spans = [StatusSpan(event.at, event.to_value or "") for event in events if event.kind == CaseEventKind.STATUS]
    if not spans or spans[0].start > case.opened_at:
        first = next((event.from_value for event in events if event.kind == CaseEventKind.STATUS), case.status)
        spans.insert(0, StatusSpan(case.opened_at, first or case.status))
    return spans


def _next_response_window(events: list[CaseEvent]) -> tuple[dt.datetime | None, dt.datetime | None]:
    """The customer came back (pending → a working status) after our last reply: that starts the clock."""
    started = met = None
    for event in events:
        if event.kind == CaseEventKind.STATUS and event.from_value == CaseStatus.PENDING.value \
                and event.to_value not in CLOSED_STATUSES:
            if started is None or met is not None:
                started, met = event.at, None
        elif event.kind == CaseEventKind.REPLY and started is not None and met is None:
            met = event.at
    return started, met


def compute_clocks(session: Session, case: Case, *, now: dt.datetime) -> SlaExplanation:
    """The case's three clocks from its own history under its tier's and priority's policy (nothing written)."""
    tier = case_tier(session, case, now=now)
    policy, calendar_id = _policy_and_calendar(session, case, tier.tier_id)
    if policy is None or calendar_id is None:
        return SlaExplanation(None, case.priority, None, None, 0, (), tier=tier)
    calendar = load_calendar(session, calendar_id)
    paused = frozenset(
        ([CaseStatus.PENDING.value] if policy.pause_on_pending else [])
        + ([CaseStatus.ON_HOLD.value] if policy.pause_on_hold else [])
    )
    events = _history(session, case.id)
    spans = _spans(case, events)
    resolved_at = case.resolved_at if case.status in CLOSED_STATUSES else None
    next_started, next_met = _next_response_window(events)
    windows: dict[str, tuple[dt.datetime | None, dt.datetime | None, int]] = {
        "first_response": (case.opened_at, case.first_responded_at, policy.first_response_minutes),
        "next_response": (next_started, next_met, policy.next_response_minutes),
        "resolution": (case.opened_at, resolved_at, policy.resolution_minutes),
    }
    clocks = []
    for metric in SLA_METRICS:
        started, met, target = windows[metric]
        if resolved_at is not None and met is None and started is not None:
            clock = Clock(metric, target, started, None, None, None, 0.0)  # resolved unanswered: the clock stops
        else:
            try:
                clock = run_clock(metric, spans=spans, started_at=started, met_at=met, target_minutes=target,
                                  warn_percent=policy.warn_percent, paused_statuses=paused, calendar=calendar,
                                  now=now)
            except CalendarHasNoHours:
                clock = Clock(metric, target, started, met, None, None, 0.0)
        clocks.append(clock)
    return SlaExplanation(policy.id, case.priority, calendar.name, calendar.time_zone, policy.warn_percent,
                          tuple(sorted(paused)), tuple(clocks), tier=tier, policy_tier_id=policy.tier_id)


def _keep_tier(session: Session, case: Case, tier: TierChoice | None) -> None:
    """At the case's first computation (its opening), keep the tier it opened under with the reason."""
    if tier is None or session.scalar(select(CaseEntitlement.id).where(CaseEntitlement.case_id == case.id)):
        return
    session.add(CaseEntitlement(tenant_id=case.tenant_id, case_id=case.id, tier_id=tier.tier_id, basis=tier.basis,
                                order_total=tier.order_total, threshold=tier.threshold, months=tier.months,
                                pinned_until=tier.pinned_until, as_of=tier.as_of))


def recompute_case_sla(session: Session, case: Case, *, now: dt.datetime | None = None) -> CaseSla | None:
    """Store the case's clocks in ``case_sla`` (in the caller's transaction); None without a policy.

    Warnings and breaches stay recorded unless the new instants moved past ``now`` (a lower
    priority, a longer target): then they are cleared, and the sweep judges the clock afresh.
    """
    now = now or utcnow()
    explanation = compute_clocks(session, case, now=now)
    _keep_tier(session, case, explanation.tier)
    state = session.scalar(select(CaseSla).where(CaseSla.case_id == case.id))
    if explanation.policy_id is None:
        if state is not None:
            session.delete(state)
        return None
    if state is None:
        state = CaseSla(tenant_id=case.tenant_id, case_id=case.id, paused_seconds=0, escalation_level=0)
        session.add(state)
    state.policy_id = explanation.policy_id
    state.calendar_id = session.scalar(select(SlaPolicy.calendar_id).where(SlaPolicy.id == explanation.policy_id))
    dues = []
    for clock in explanation.clocks:
        setattr(state, f"{clock.metric}_due_at", clock.due_at)
        setattr(state, f"{clock.metric}_warn_at", clock.warn_at)
        setattr(state, f"{clock.metric}_met_at", clock.met_at)
        if clock.warn_at is None or clock.warn_at > now:
            setattr(state, f"{clock.metric}_warned_at", None)
        if clock.due_at is None or clock.due_at > now:
            setattr(state, f"{clock.metric}_breached_at", None)
        if clock.met_at is None and clock.due_at is not None:
            dues.append(clock.due_at)
    resolution = explanation.clocks[-1]
    ongoing = resolution.pauses[-1] if resolution.pauses and resolution.pauses[-1].end is None else None
    state.paused_since = (ongoing.start if ongoing is not None else now) if resolution.paused else None
    state.paused_seconds = int(sum(pause.business_minutes for pause in resolution.pauses) * 60)
    state.next_due_at = min(dues) if dues else None
    state.computed_at = now
    return state


def explain_case_sla(session: Session, case_id: int, *, now: dt.datetime | None = None) -> SlaExplanation:
    """How each due time of a visible case was computed, with what the sweep recorded (the SLA panel)."""
    case = session.get(Case, case_id)
    if case is None:
        raise NotFound("case")
    explanation = compute_clocks(session, case, now=now or utcnow())
    if explanation.tier is not None and explanation.tier.tier_id is not None:
        names = session.execute(select(CustomerTier.name_en, CustomerTier.name_zh)
                                .where(CustomerTier.id == explanation.tier.tier_id)).first()
        explanation = dataclasses.replace(explanation, tier_names=(names[0], names[1]) if names else None)
    state = session.scalar(select(CaseSla).where(CaseSla.case_id == case_id))
    if state is None:
        return explanation
    return dataclasses.replace(
        explanation,
        warned={metric: getattr(state, f"{metric}_warned_at") for metric in SLA_METRICS},
        breached={metric: getattr(state, f"{metric}_breached_at") for metric in SLA_METRICS},
        escalation_level=state.escalation_level,
    )


# --- the sweep -----------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    """What one sweep recorded."""

    warnings: int
    breaches: int
    manager_escalations: int
    seconds: float
    notified: int = 0
    reassigned: int = 0


def _escalate(session: Session, tenant_id: int, metric: str, level: int, condition: Any, recipient: Any,
              now: dt.datetime) -> int:
    """Record ``level`` for every case of the tenant meeting ``condition`` that does not have it yet, in one
    INSERT … SELECT (:func:`crm_core.bulk.insert_new` on the unique key); how many were recorded."""
    matching = (
        select(literal(tenant_id), literal(now), literal(now), CaseSla.case_id.label("case_id"),
               literal(metric).label("metric"), literal(level).label("level"), recipient, literal(now))
        .select_from(CaseSla)
        .join(Case, and_(Case.id == CaseSla.case_id, Case.tenant_id == tenant_id))
        .outerjoin(Team, Team.id == Case.team_id)
        .where(CaseSla.tenant_id == tenant_id, condition)
    )
    columns = ["tenant_id", "created_at", "updated_at", "case_id", "metric", "level", "recipient_user_id", "at"]
    return insert_new(session, cast(Table, SlaEscalation.__table__), columns, matching,
                      key=["case_id", "metric", "level"])


def _notify(session: Session, tenant_id: int, level: int, now: dt.datetime, digest_after: int) -> int:
    """Tell the escalations of ``level`` this sweep recorded (at ``now``, every metric): level 1 to the assignee,
    2 to the team lead, 3 to every manager; how many notifications were written.

    Whoever would be told about more than ``digest_after`` of them gets one notice with their number instead,
    opening the service queue (decision 0037); everyone else one per case and metric, in one INSERT … SELECT."""
    kind = {LEVEL_ASSIGNEE: "sla_warning", LEVEL_TEAM_LEAD: "sla_breach", LEVEL_MANAGER: "sla_escalated"}[level]
    user_id: Any = SlaEscalation.recipient_user_id
    recorded = (select(SlaEscalation.case_id.label("entity_id"), Case.subject)
                .join(Case, and_(Case.id == SlaEscalation.case_id, Case.tenant_id == tenant_id))
                .where(SlaEscalation.tenant_id == tenant_id, SlaEscalation.level == level, SlaEscalation.at == now))
    if level == LEVEL_MANAGER:
        user_id = User.id
        recorded = recorded.join(User, and_(User.tenant_id == SlaEscalation.tenant_id, User.role == Role.MANAGER.value))
    else:
        recorded = recorded.where(SlaEscalation.recipient_user_id.is_not(None))
    told = session.execute(recorded.with_only_columns(user_id, func.count()).group_by(user_id)).all() \
        if digest_after >= 0 else []
    many = {int(user): int(count) for user, count in told if count > digest_after}
    notified = 0
    if many:
        notified += len(notify_many(session, tenant_id=tenant_id, now=now, notices=[
            Notice(user, kind, {"count": count}, entity="case_queue",
                   dedupe_key=f"sla:{level}:{now.strftime('%Y%m%dT%H%M%S')}")
            for user, count in sorted(many.items())]))
        recorded = recorded.where(user_id.not_in(sorted(many)))
    if len(many) == len(told) and told:
        return notified
    dedupe_key = (literal("sla:") + sql_cast(SlaEscalation.case_id, String) + literal(":") + SlaEscalation.metric
                  + literal(f":{level}"))
    recipients = recorded.add_columns(
        user_id.label("user_id"),
        json_object(session, case=SlaEscalation.case_id, subject=Case.subject, metric=SlaEscalation.metric)
        .label("params"), dedupe_key.label("dedupe_key"))
    return notified + notify_selected(session, tenant_id=tenant_id, kind=kind, entity="case", recipients=recipients,
                                      now=now)


def sweep_sla(session: Session, tenant_id: int, *, now: dt.datetime | None = None,
              digest_after: int = DIGEST_AFTER) -> SweepResult:
    """Mark warnings and breaches of the tenant's running clocks, record escalations and notify (idempotent).

    ``digest_after``: a recipient told about more escalations of one level than this gets one notice with their
    number (a burst: after a holiday, an outage, a calendar change); -1 never."""
    started = time.perf_counter()
    # whole seconds: MariaDB's DATETIME keeps none of a second, and the notices find this sweep's
    # escalations by their instant (a fraction made every MariaDB sweep notify nobody)
    now = (now or utcnow()).replace(microsecond=0)
    table = cast(Table, CaseSla.__table__)
    counts = {LEVEL_ASSIGNEE: 0, LEVEL_TEAM_LEAD: 0, LEVEL_MANAGER: 0}
    notified = 0
    policies = session.execute(select(SlaPolicy.id, SlaPolicy.manager_after_minutes)
                               .where(SlaPolicy.tenant_id == tenant_id)).all()

    def record(metric: str, level: int, condition: Any, recipient: Any) -> None:
        counts[level] += _escalate(session, tenant_id, metric, level, condition, recipient, now)

    marks: dict[Any, Any] = {}  # every column the sweep sets, for one UPDATE at the end
    news = []
    reached: dict[int, list[Any]] = {LEVEL_ASSIGNEE: [], LEVEL_TEAM_LEAD: [], LEVEL_MANAGER: []}
    for metric in SLA_METRICS:
        due, warn, met = table.c[f"{metric}_due_at"], table.c[f"{metric}_warn_at"], table.c[f"{metric}_met_at"]
        warned, breached = table.c[f"{metric}_warned_at"], table.c[f"{metric}_breached_at"]
        warns = and_(met.is_(None), warn.is_not(None), warn <= now)
        record(metric, LEVEL_ASSIGNEE, warns, Case.assignee_id)
        breaks = and_(met.is_(None), due.is_not(None), due <= now)
        record(metric, LEVEL_TEAM_LEAD, breaks, Team.manager_id)
        new_warning, new_breach = and_(warns, warned.is_(None)), and_(breaks, breached.is_(None))
        marks[warned] = sql_case((new_warning, now), else_=warned)
        marks[breached] = sql_case((new_breach, now), else_=breached)
        news += [new_warning, new_breach]
        reached[LEVEL_ASSIGNEE].append(warns)
        reached[LEVEL_TEAM_LEAD].append(breaks)
        # breached before (as marked), or now (a breach marked by this very sweep, with no delay)
        breached_at = func.coalesce(breached, sql_case((breaks, now)))
        for policy_id, after_minutes in policies:
            late = and_(met.is_(None), CaseSla.policy_id == policy_id,
                        breached_at <= now - dt.timedelta(minutes=after_minutes))
            record(metric, LEVEL_MANAGER, late, literal(None))
            reached[LEVEL_MANAGER].append(late)
    # the marks of every clock and the highest level reached in one statement: a case_sla row rewritten
    # once, not once per metric and level (on PostgreSQL each rewrite costs the row's every index). Each
    # level's escalation is recorded (now or before) exactly where its condition holds, so the level
    # reached is read off the row's own clocks: no look-up of sla_escalations per case
    level = sql_case(*((or_(*reached[number]), number) for number in sorted(reached, reverse=True)
                       if reached[number]), else_=0)
    higher = level > table.c.escalation_level
    marks[table.c.escalation_level] = sql_case((higher, level), else_=table.c.escalation_level)
    session.execute(update(table).where(table.c.tenant_id == tenant_id, or_(higher, *news)).values(marks))
    for level_told in sorted(counts):  # each level's notices once its every metric is recorded
        if counts[level_told]:
            notified += _notify(session, tenant_id, level_told, now, digest_after)
    handovers, handover_notices = reassign_breached_cases(session, tenant_id, now=now)  # policies that ask for it
    if handover_notices:  # a bounded batch (sla_reassign), told one by one
        notified += len(notify_many(session, tenant_id=tenant_id, notices=handover_notices, now=now))
    return SweepResult(counts[LEVEL_ASSIGNEE], counts[LEVEL_TEAM_LEAD], counts[LEVEL_MANAGER],
                       time.perf_counter() - started, notified, len(handovers))


def run_sla_sweep(db: Database, tenant_id: int, *, now: dt.datetime | None = None,
                  digest_after: int = DIGEST_AFTER) -> SweepResult:
    """The sweep in its own system transaction (the job and the CLI call this)."""
    with db.system_transaction("sla sweep", tenant_id=tenant_id) as session:
        result = sweep_sla(session, tenant_id, now=now, digest_after=digest_after)
    # counted once committed: Prometheus alerts on breaches (deploy/alerts.yaml)
    for level, count in (("warning", result.warnings), ("breach", result.breaches),
                         ("manager", result.manager_escalations)):
        if count:
            SLA_ESCALATIONS.labels(level=level).inc(count)
    return result


def open_escalations(session: Session, *, limit: int = 50) -> list[tuple[int, str, int, int | None, dt.datetime]]:
    """The latest escalations of visible cases: (case id, metric, level, recipient, at)."""
    rows = session.execute(
        select(SlaEscalation.case_id, SlaEscalation.metric, SlaEscalation.level, SlaEscalation.recipient_user_id,
               SlaEscalation.at).join(Case, Case.id == SlaEscalation.case_id)
        .order_by(SlaEscalation.at.desc(), SlaEscalation.id.desc()).limit(limit)
    ).all()
    return [tuple(row) for row in rows]  # type: ignore[misc]

