"""Read side for the SLA settings page: calendars with their special days, policies, team queues."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.models import Team
from crm_core.models.service import ServiceQueue, SlaCalendar, SlaCalendarDay, SlaPolicy


@dataclass(frozen=True)
class CalendarRow:
    """A business calendar and how many holidays and make-up days it has."""

    id: int
    name: str
    time_zone: str
    hours: dict[str, Any]
    holidays: int
    workdays: int


def list_calendars(session: Session) -> list[CalendarRow]:
    """Every calendar of the tenant, by name, with its special-day counts (one grouped query)."""
    grouped = session.execute(select(SlaCalendarDay.calendar_id, SlaCalendarDay.kind, func.count())
                              .group_by(SlaCalendarDay.calendar_id, SlaCalendarDay.kind))
    counts: dict[tuple[int, str], int] = {(calendar_id, kind): int(count) for calendar_id, kind, count in grouped}
    return [CalendarRow(calendar.id, calendar.name, calendar.time_zone, calendar.hours,
                        counts.get((calendar.id, "holiday"), 0), counts.get((calendar.id, "workday"), 0))
            for calendar in session.scalars(select(SlaCalendar).order_by(SlaCalendar.name))]


def calendar_days(session: Session, calendar_id: int, *, year: int) -> list[tuple[dt.date, str, str]]:
    """The holidays and make-up working days of one calendar in ``year``: (day, kind, name)."""
    rows = session.execute(select(SlaCalendarDay.day, SlaCalendarDay.kind, SlaCalendarDay.name).where(
        SlaCalendarDay.calendar_id == calendar_id, SlaCalendarDay.day >= dt.date(year, 1, 1),
        SlaCalendarDay.day <= dt.date(year, 12, 31)).order_by(SlaCalendarDay.day)).all()
    return [(day, kind, name) for day, kind, name in rows]


@dataclass(frozen=True)
class PolicyRow:
    """An SLA policy as the settings table lists it (``tier_id`` None: the default policy)."""

    id: int
    tier_id: int | None
    priority: str
    calendar_id: int
    first_response_minutes: int
    next_response_minutes: int
    resolution_minutes: int
    warn_percent: int
    pause_on_pending: bool
    pause_on_hold: bool
    manager_after_minutes: int
    reassign_on_breach: bool


def list_policies(session: Session) -> list[PolicyRow]:
    """Every SLA policy of the tenant: the default ones first, then by tier and priority."""
    policies = session.scalars(select(SlaPolicy).order_by(SlaPolicy.tier_key, SlaPolicy.priority))
    return [PolicyRow(policy.id, policy.tier_id, policy.priority, policy.calendar_id, policy.first_response_minutes,
                      policy.next_response_minutes, policy.resolution_minutes, policy.warn_percent,
                      policy.pause_on_pending, policy.pause_on_hold, policy.manager_after_minutes,
                      policy.reassign_on_breach) for policy in policies]


def list_queues(session: Session) -> list[tuple[int, str, str | None, int | None]]:
    """Every team with its queue's method and calendar: (team id, team name, method, calendar id)."""
    rows = session.execute(select(Team.id, Team.name, ServiceQueue.method, ServiceQueue.calendar_id)
                           .outerjoin(ServiceQueue, ServiceQueue.team_id == Team.id).order_by(Team.name)).all()
    return [(team_id, name, method, calendar_id) for team_id, name, method, calendar_id in rows]
