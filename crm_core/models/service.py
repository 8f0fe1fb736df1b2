"""Tables of the customer-service area: the case history, team queues, business calendars,
SLA policies, each case's SLA state and the escalations the sweep recorded.

The history (``case_events``) is what SLA due times are computed from
(:mod:`crm_core.rules.sla`), so a change of priority or policy recomputes them from the
case's own past, never from "now". ``case_sla`` holds the computed instants so that the
sweep (:mod:`crm_core.services.sla`) is a handful of set-based statements.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned, utcnow

SLA_METRICS = ("first_response", "next_response", "resolution")


class CaseEventKind:
    """What a case history row records."""

    OPENED = "opened"
    STATUS = "status"
    PRIORITY = "priority"
    ASSIGNEE = "assignee"
    REPLY = "reply"  # a public reply to the customer (stops the response clocks)
    NOTE = "note"  # an internal note
    INBOUND = "inbound"  # the customer's email on the case (crm_core.mail.inbound)
    MERGED = "merged"  # on a duplicate: merged into the case ``to_value`` (crm_core.services.case_merging)
    MERGED_FROM = "merged_from"  # on the survivor: the case ``from_value`` was merged into it
    ATTACHMENT = "attachment"  # a file kept on the case (``body`` is its name; crm_core.services.case_attachments)
    FILE_REFUSED = "file_refused"  # a mail's file not kept: ``body`` its name, ``to_value`` the reason's key
    FILE_REMOVED = "file_removed"  # a file taken off the case (``body`` is its name; services.case_attachments)
    ALL = (OPENED, STATUS, PRIORITY, ASSIGNEE, REPLY, NOTE, INBOUND, MERGED, MERGED_FROM, ATTACHMENT, FILE_REFUSED,
           FILE_REMOVED)


class CaseEvent(TenantScoped, Base):
    """One change on a case, with its instant: append-only (the SLA clocks are computed from it)."""

    __tablename__ = "case_events"
    __table_args__ = (Index(None, "tenant_id", "case_id", "at"),)

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    kind: Mapped[str] = mapped_column(String(16))
    from_value: Mapped[str | None] = mapped_column(String(64))
    to_value: Mapped[str | None] = mapped_column(String(64))
    body: Mapped[str | None] = mapped_column(String(4000))  # a reply's or note's text
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ServiceQueue(TenantScoped, Versioned, Base):
    """A team's case queue: how new cases are assigned among its reps and which calendar its clocks use."""

    __tablename__ = "service_queues"
    __table_args__ = (UniqueConstraint("tenant_id", "team_id"),)

    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
    method: Mapped[str] = mapped_column(String(16), default="round_robin")  # or least_busy (fewest open cases)
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("sla_calendars.id"))
    last_assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class SlaCalendar(TenantScoped, Versioned, Base):
    """Business hours in a time zone: ``hours`` maps ISO weekday "1".."7" to [["09:00","12:00"], …]."""

    __tablename__ = "sla_calendars"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    time_zone: Mapped[str] = mapped_column(String(64), default="Asia/Shanghai")
    hours: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class SlaCalendarDay(TenantScoped, Base):
    """A date that breaks the week: a holiday, or a make-up working day (调休, kind ``workday``)."""

    __tablename__ = "sla_calendar_days"
    __table_args__ = (UniqueConstraint("calendar_id", "day"),)

    calendar_id: Mapped[int] = mapped_column(ForeignKey("sla_calendars.id"))
    day: Mapped[dt.date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(8))  # holiday | workday
    name: Mapped[str] = mapped_column(String(120), default="")


class SlaPolicy(TenantScoped, Versioned, Base):
    """The targets for cases of one priority (and customer tier, or the default ones), in business minutes.

    ``tier_key`` is ``tier_id`` or 0 for the default policies, so that one unique key holds on every
    database (a NULL never collides); a policy's tier is set when it is created and never changes.
    """

    __tablename__ = "sla_policies"
    __table_args__ = (UniqueConstraint("tenant_id", "tier_key", "priority"),)

    priority: Mapped[str] = mapped_column(String(8))
    tier_id: Mapped[int | None] = mapped_column(ForeignKey("customer_tiers.id"))
    tier_key: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    calendar_id: Mapped[int] = mapped_column(ForeignKey("sla_calendars.id"))
    first_response_minutes: Mapped[int] = mapped_column(Integer)
    next_response_minutes: Mapped[int] = mapped_column(Integer)
    resolution_minutes: Mapped[int] = mapped_column(Integer)
    warn_percent: Mapped[int] = mapped_column(Integer, default=75)
    pause_on_pending: Mapped[bool] = mapped_column(Boolean, default=True)
    pause_on_hold: Mapped[bool] = mapped_column(Boolean, default=True)
    # minutes after a breach before it goes up to the manager (level 3)
    manager_after_minutes: Mapped[int] = mapped_column(Integer, default=60)
    # on a breach, the sweep hands the case to the team queue's next agent (round-robin / least-open)
    reassign_on_breach: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class CaseSla(TenantScoped, Base):
    """A case's clocks as last computed from its history (one row per case with a policy).

    Per metric: ``*_due_at``/``*_warn_at`` (NULL while paused or not running), ``*_met_at``,
    ``*_warned_at``/``*_breached_at`` (set once by the sweep). ``escalation_level`` is the
    highest level reached (1 assignee, 2 team lead, 3 manager).
    """

    __tablename__ = "case_sla"
    __table_args__ = (
        UniqueConstraint("case_id"),
        Index(None, "tenant_id", "next_due_at", "case_id"),  # the queue's order, read from the index (migration 0034)
        Index(None, "tenant_id", "first_response_met_at"),  # the service dashboard's attainment (migration 0026)
        Index(None, "tenant_id", "resolution_met_at"),
        Index(None, "tenant_id", "first_response_due_at"),  # the dashboard's clocks missed today (migration 0031)
        Index(None, "tenant_id", "resolution_due_at"),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    policy_id: Mapped[int | None] = mapped_column(ForeignKey("sla_policies.id"))
    calendar_id: Mapped[int | None] = mapped_column(ForeignKey("sla_calendars.id"))
    paused_since: Mapped[dt.datetime | None] = mapped_column(DateTime)
    paused_seconds: Mapped[int] = mapped_column(Integer, default=0)
    first_response_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    first_response_warn_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    first_response_met_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    first_response_warned_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    first_response_breached_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    next_response_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    next_response_warn_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    next_response_met_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    next_response_warned_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    next_response_breached_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolution_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolution_warn_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolution_met_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolution_warned_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    resolution_breached_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    next_due_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # the earliest running due (queue sort)
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    computed_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class SlaEscalation(TenantScoped, Base):
    """A warning or breach the sweep recorded, and who it goes to (one row per case, metric and level)."""

    __tablename__ = "sla_escalations"
    __table_args__ = (
        UniqueConstraint("case_id", "metric", "level"),
        Index(None, "tenant_id", "at"),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    metric: Mapped[str] = mapped_column(String(16))
    level: Mapped[int] = mapped_column(Integer)  # 1 warning → assignee, 2 breach → team lead, 3 → manager
    recipient_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CaseMessageDirection:
    """Which way an email of a case went."""

    INBOUND = "in"
    OUTBOUND = "out"


class CaseMessageStatus:
    """Where an email of a case stands: received, or an outbound one queued, sent or failed."""

    RECEIVED = "received"
    QUEUED = "queued"
    SENT = "sent"
    FAILED = "failed"  # the last attempt failed; retried until MAX_ATTEMPTS (crm_core.mail.outbound)


class CaseMessage(TenantScoped, Base):
    """One email of a case (in or out), with the headers that thread replies back to it (decision 0031)."""

    __tablename__ = "case_messages"
    __table_args__ = (Index(None, "tenant_id", "message_id"), Index(None, "tenant_id", "status"),
                      Index(None, "case_id"))

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("case_events.id"))
    direction: Mapped[str] = mapped_column(String(3))
    status: Mapped[str] = mapped_column(String(16))
    message_id: Mapped[str] = mapped_column(String(250))
    in_reply_to: Mapped[str | None] = mapped_column(String(250))
    references: Mapped[str | None] = mapped_column(String(2000))
    from_address: Mapped[str] = mapped_column(String(254))
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(250))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    error: Mapped[str | None] = mapped_column(String(500))
    sent_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class CaseMacro(TenantScoped, Versioned, Base):
    """A canned reply in one language, with variables (:mod:`crm_core.rules.macros`)."""

    __tablename__ = "case_macros"
    __table_args__ = (UniqueConstraint("tenant_id", "language", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    language: Mapped[str] = mapped_column(String(8))  # en or zh-CN
    body: Mapped[str] = mapped_column(String(4000))


class CsatScore:
    """A customer's rating of how their case was handled (the one-click link in the resolution mail)."""

    GOOD = "good"
    BAD = "bad"
    ALL = (GOOD, BAD)


class CaseRating(TenantScoped, Base):
    """The customer's CSAT rating of one case: one row per case, a later click updates it."""

    __tablename__ = "case_ratings"
    __table_args__ = (
        UniqueConstraint("case_id"),
        Index(None, "tenant_id", "rated_at"),
    )

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    score: Mapped[str] = mapped_column(String(8))  # good | bad
    comment: Mapped[str | None] = mapped_column(String(1000))
    rated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class CaseAttachment(TenantScoped, Base):
    """A file kept on a case (or on one reply, note or email of it): its metadata here, its bytes in the
    attachment store under its SHA-256 (:mod:`crm_core.attachment_store`), never under the user's name.

    ``content_type`` is what the bytes are (:func:`crm_core.rules.attachments.sniff`), not what the browser
    or the mail claimed; ``file_name`` is the user's name, kept as text and sanitised when served.
    """

    __tablename__ = "case_attachments"
    __table_args__ = (Index(None, "case_id", "id"), Index(None, "tenant_id", "sha256"))

    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("case_events.id"))
    file_name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    content_type: Mapped[str] = mapped_column(String(100))
    source: Mapped[str] = mapped_column(String(8))  # upload | mail
    uploaded_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ServiceDaily(TenantScoped, Base):
    """One figure of the service dashboard for one day and one slice of cases (decision 0033).

    A slice is what the case rule of :mod:`crm_core.access` looks at: the case's queue and assignee
    and its customer's owner and team, so the dashboard reads these rows under the same rule as
    the cases. ``figure`` names what is counted (:data:`crm_core.queries.service_reports.FIGURES`);
    response and resolution times are counted per ``bucket`` of
    :data:`~crm_core.queries.service_reports.MINUTE_EDGES` with the sum of their minutes; a rating's
    or an SLA clock's bucket is 1 for good / attained, else 0. Written only by the ``service_daily``
    job, which recomputes the days it covers from the cases.
    """

    __tablename__ = "service_daily"
    __table_args__ = (Index(None, "tenant_id", "day", "figure"),)

    day: Mapped[dt.date] = mapped_column(Date)
    team_id: Mapped[int | None] = mapped_column(Integer)
    assignee_id: Mapped[int | None] = mapped_column(Integer)
    customer_owner_id: Mapped[int | None] = mapped_column(Integer)
    customer_team_id: Mapped[int | None] = mapped_column(Integer)
    figure: Mapped[str] = mapped_column(String(16))
    bucket: Mapped[int] = mapped_column(Integer, default=0)
    cases: Mapped[int] = mapped_column(Integer)
    minutes: Mapped[float] = mapped_column(Float, default=0.0)  # the sum of the times counted (0 for counts)


class ServiceDailyRun(TenantScoped, Base):
    """Which days ``service_daily`` holds for a tenant (``[first_day, end_day)``) and when they were counted."""

    __tablename__ = "service_daily_runs"
    __table_args__ = (UniqueConstraint("tenant_id"),)

    first_day: Mapped[dt.date] = mapped_column(Date)
    end_day: Mapped[dt.date] = mapped_column(Date)
    refreshed_at: Mapped[dt.datetime] = mapped_column(DateTime)
