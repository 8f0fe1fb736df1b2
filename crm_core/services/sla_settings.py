"""Admin use cases for the service desk's settings: business calendars, their special days, SLA
policies per priority and team queues. Admin-only writes (:data:`crm_core.access.ADMIN_ONLY_WRITES`).

Saving a policy or a calendar does not touch the cases itself: the settings page then starts the
``sla_recompute`` job (:func:`recompute_open_cases`), which computes each open case's clocks from its
history under the new settings; a case's own next change does the same for it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import delete, select

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import Case, CasePriority, Team
from crm_core.models.automation import AssignmentMethod
from crm_core.models.service import ServiceQueue, SlaCalendar, SlaCalendarDay, SlaPolicy
from crm_core.models.service_tiers import CustomerTier
from crm_core.rules import china_holidays
from crm_core.rules.case_flow import CLOSED_STATUSES
from crm_core.rules.fields import clean_text
from crm_core.services.sla import recompute_case_sla

Errors = dict[str, tuple[str, dict[str, Any]]]
STANDARD_HOURS = {str(day): [["09:00", "12:00"], ["13:00", "18:00"]] for day in range(1, 6)}


def _hours_problem(hours: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    for day, spans in hours.items():
        if day not in {str(number) for number in range(1, 8)}:
            return "sla.settings.bad_weekday", {"day": day}
        last = dt.time(0, 0)
        for start, end in spans:
            try:
                begin, finish = dt.time.fromisoformat(start), dt.time.fromisoformat(end)
            except (TypeError, ValueError):
                return "sla.settings.bad_time", {"value": f"{start}-{end}"}
            if not last <= begin < finish:
                return "sla.settings.bad_span", {"value": f"{start}-{end}"}
            last = finish
    return None


def hours_from_text(spans: str, weekdays: list[int]) -> dict[str, list[list[str]]]:
    """``"09:00-12:00, 13:00-18:00"`` on each of ``weekdays`` in the stored form (checked by :func:`save_calendar`)."""
    pairs = []
    for part in spans.split(","):
        start, _, end = part.strip().partition("-")
        if part.strip():
            pairs.append([start.strip(), end.strip()])
    return {str(day): [list(pair) for pair in pairs] for day in weekdays}


def save_calendar(db: Database, actor: Actor, *, name: str, time_zone: str, hours: dict[str, Any],
                  calendar_id: int | None = None) -> int:
    """Create or change a business calendar (hours per ISO weekday, spans in order); returns its id."""
    errors: Errors = {}
    cleaned = clean_text(name)
    if not cleaned:
        errors["name"] = ("validation.required", {})
    try:
        ZoneInfo(time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        errors["time_zone"] = ("sla.settings.bad_time_zone", {"value": time_zone})
    problem = _hours_problem(hours)
    if problem is not None:
        errors["hours"] = problem
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        calendar = SlaCalendar(tenant_id=actor.tenant_id) if calendar_id is None else session.get(SlaCalendar,
                                                                                                   calendar_id)
        if calendar is None:
            raise NotFound("calendar")
        calendar.name, calendar.time_zone, calendar.hours = cleaned or "", time_zone, hours
        session.add(calendar)
        session.flush()
        return calendar.id


def set_calendar_day(db: Database, actor: Actor, calendar_id: int, day: dt.date, kind: str | None,
                     name: str = "") -> None:
    """Mark ``day`` a holiday or a make-up working day (``kind`` None: an ordinary day again)."""
    if kind not in (None, "holiday", "workday"):
        raise ValidationFailed({"kind": ("validation.choice", {})})
    with db.transaction(actor) as session:
        if session.get(SlaCalendar, calendar_id) is None:
            raise NotFound("calendar")
        existing = session.scalar(select(SlaCalendarDay).where(SlaCalendarDay.calendar_id == calendar_id,
                                                               SlaCalendarDay.day == day))
        if existing is not None:
            session.delete(existing)
            session.flush()
        if kind is not None:
            session.add(SlaCalendarDay(tenant_id=actor.tenant_id, calendar_id=calendar_id, day=day, kind=kind,
                                       name=clean_text(name) or ""))


def add_china_holidays(db: Database, actor: Actor, calendar_id: int) -> int:
    """Put mainland China's published holidays and 调休 days on a calendar (replacing those dates); returns a count."""
    days = [(day, "holiday", name) for day, name in china_holidays.HOLIDAYS.items()]
    days += [(day, "workday", name) for day, name in china_holidays.WORKDAYS.items()]
    with db.transaction(actor) as session:
        if session.get(SlaCalendar, calendar_id) is None:
            raise NotFound("calendar")
        session.execute(delete(SlaCalendarDay).where(SlaCalendarDay.calendar_id == calendar_id,
                                                     SlaCalendarDay.day.in_([day for day, _, _ in days])))
        session.add_all(SlaCalendarDay(tenant_id=actor.tenant_id, calendar_id=calendar_id, day=day, kind=kind,
                                       name=name) for day, kind, name in days)
    return len(days)


@dataclass(kw_only=True)
class PolicyInput:
    """An SLA policy as the settings form holds it (targets in business minutes)."""

    priority: str
    calendar_id: int
    first_response_minutes: int
    next_response_minutes: int
    resolution_minutes: int
    warn_percent: int = 75
    pause_on_pending: bool = True
    pause_on_hold: bool = True
    manager_after_minutes: int = 60
    tier_id: int | None = None  # None: the default policy of the priority (customers without a tier)
    reassign_on_breach: bool = False


def save_policy(db: Database, actor: Actor, form: PolicyInput) -> int:
    """Create or replace the policy of ``form.priority`` for ``form.tier_id`` (or the default one); returns its id."""
    errors: Errors = {}
    if form.priority not in {priority.value for priority in CasePriority}:
        errors["priority"] = ("validation.choice", {})
    for name in ("first_response_minutes", "next_response_minutes", "resolution_minutes", "manager_after_minutes"):
        if not 1 <= getattr(form, name) <= 525_600:
            errors[name] = ("sla.settings.bad_minutes", {"max": 525_600})
    if not 1 <= form.warn_percent <= 99:
        errors["warn_percent"] = ("sla.settings.bad_percent", {})
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        if session.get(SlaCalendar, form.calendar_id) is None:
            raise ValidationFailed({"calendar_id": ("validation.choice", {})})
        if form.tier_id is not None and session.get(CustomerTier, form.tier_id) is None:
            raise ValidationFailed({"tier_id": ("validation.choice", {})})
        policy = session.scalar(select(SlaPolicy).where(SlaPolicy.priority == form.priority,
                                                        SlaPolicy.tier_key == (form.tier_id or 0)))
        if policy is None:
            policy = SlaPolicy(tenant_id=actor.tenant_id, priority=form.priority, tier_id=form.tier_id,
                               tier_key=form.tier_id or 0)
            session.add(policy)
        for name, value in vars(form).items():
            setattr(policy, name, value)
        session.flush()
        return policy.id


def save_queue(db: Database, actor: Actor, *, team_id: int, method: str, calendar_id: int | None) -> int:
    """Set how a team's queue assigns new cases (round-robin or least-open) and its calendar."""
    if method not in AssignmentMethod.ALL:
        raise ValidationFailed({"method": ("validation.choice", {})})
    with db.transaction(actor) as session:
        if session.get(Team, team_id) is None:
            raise ValidationFailed({"team_id": ("validation.choice", {})})
        if calendar_id is not None and session.get(SlaCalendar, calendar_id) is None:
            raise ValidationFailed({"calendar_id": ("validation.choice", {})})
        queue = session.scalar(select(ServiceQueue).where(ServiceQueue.team_id == team_id))
        if queue is None:
            queue = ServiceQueue(tenant_id=actor.tenant_id, team_id=team_id)
            session.add(queue)
        queue.method, queue.calendar_id = method, calendar_id
        session.flush()
        return queue.id


def recompute_open_cases(db: Database, actor: Actor | None, *, tenant_id: int, batch: int = 500) -> int:
    """Recompute the clocks of every open case of the tenant (as ``actor``, or the system), in batches."""
    done, after = 0, 0
    while True:
        transaction = db.transaction(actor) if actor is not None else db.system_transaction("sla recompute")
        with transaction as session:
            cases = list(session.scalars(select(Case).where(
                Case.tenant_id == tenant_id, Case.status.not_in(sorted(CLOSED_STATUSES)), Case.id > after)
                .order_by(Case.id).limit(batch)))
            for case in cases:
                recompute_case_sla(session, case)
        if not cases:
            return done
        done, after = done + len(cases), cases[-1].id
