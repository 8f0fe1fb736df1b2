"""Tables of the follow-up automation area: assignment rules, the lifecycle history,
manual lifecycle overrides, stage automation rules and the log of what they fired.

Every table is :class:`~crm_core.models.TenantScoped`. Rules are data an admin edits on
the Automation page, never code: their conditions are validated by
:mod:`crm_core.rules.assignment` and :mod:`crm_core.rules.automation` before they are
stored. ``lifecycle_transitions`` is the history of every customer's stage (read by the
Segments Sankey); ``automation_firings`` makes automation runs idempotent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned, utcnow

# Markers stand in for "none" in automation_firings so that its unique key works on every
# database (NULLs are distinct in unique constraints).
NO_SUBJECT = 0
NO_MARKER = dt.datetime(1970, 1, 1)


class AssignmentMethod:
    """How an assignment rule picks a rep among the candidates."""

    ROUND_ROBIN = "round_robin"
    LEAST_BUSY = "least_busy"
    ALL = (ROUND_ROBIN, LEAST_BUSY)


class AssignmentRule(TenantScoped, Versioned, Base):
    """When a new customer without owner matches ``conditions``, give it to a rep of ``team_id``.

    Rules are tried by ``position``; the first that matches and has an active rep wins.
    ``team_id`` NULL means every active rep of the tenant. ``last_assigned_user_id`` is the
    round-robin pointer (moved without bumping ``version``, so an admin's edit never goes
    stale because customers were assigned meanwhile).
    """

    __tablename__ = "assignment_rules"
    __table_args__ = (Index(None, "tenant_id", "position"),)

    name: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(Integer, default=0)
    # [{"field": "region", "op": "equals", "value": "East"}, …], all must hold; [] matches all
    conditions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    method: Mapped[str] = mapped_column(String(16), default=AssignmentMethod.ROUND_ROBIN)
    follow_up_due_days: Mapped[int] = mapped_column(Integer, default=1)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    last_assigned_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class TransitionSource:
    """Who moved a customer to a lifecycle stage."""

    RULE = "rule"
    MANUAL = "manual"


class LifecycleTransition(TenantScoped, Base):
    """One change of a customer's lifecycle stage: when, from, to, why, and by what.

    ``source`` is ``rule`` (``reason`` is then a rule code such as ``recent_sale``, see
    :mod:`crm_core.rules.lifecycle`) or ``manual`` (``reason`` is the user's text and
    ``actor_id`` the user). ``from_stage`` is NULL for a customer's first stage.
    """

    __tablename__ = "lifecycle_transitions"
    __table_args__ = (
        Index(None, "tenant_id", "occurred_at"),
        Index(None, "tenant_id", "customer_id", "occurred_at"),
        Index(None, "tenant_id", "refresh_key"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    from_stage: Mapped[str | None] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    source: Mapped[str] = mapped_column(String(8), default=TransitionSource.RULE)
    reason: Mapped[str] = mapped_column(String(500), default="")
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    # the set-based refresh that wrote this row (it then updates customers from these rows)
    refresh_key: Mapped[str | None] = mapped_column(String(32))


class LifecycleOverride(TenantScoped, Base):
    """A stage set by hand, with its reason; it holds while the rules keep computing ``rule_stage``.

    When a rule event (a deal, an order, an activity, time passing the churn window) makes the
    rules compute another stage, the override is released and the computed stage applies.
    """

    __tablename__ = "lifecycle_overrides"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id"),)

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    stage: Mapped[str] = mapped_column(String(16))
    rule_stage: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))
    set_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    set_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AutomationTrigger:
    """What starts a stage automation rule."""

    ENTERED_STAGE = "entered_stage"
    NO_ACTIVITY = "no_activity"
    DEAL_IDLE = "deal_idle"
    CHURN_RISK = "churn_risk"
    ALL = (ENTERED_STAGE, NO_ACTIVITY, DEAL_IDLE, CHURN_RISK)


class AutomationAction:
    """What a stage automation rule does."""

    CREATE_TASK = "create_task"
    ADD_TAG = "add_tag"
    ENROLL_CAMPAIGN = "enroll_campaign"
    ALL = (CREATE_TASK, ADD_TAG, ENROLL_CAMPAIGN)


class AutomationRule(TenantScoped, Versioned, Base):
    """Per lifecycle stage: trigger → action, edited by an admin (low-code).

    ``threshold`` is days for ``no_activity``/``deal_idle`` and a percent (0–100) for
    ``churn_risk``; unused for ``entered_stage``. ``task_title`` may contain ``{name}``.
    ``assign_to`` is ``owner`` (falls back to the team manager) or ``team`` (the manager of
    the customer's team). Rules fire only for events after ``active_since``.
    """

    __tablename__ = "automation_rules"
    __table_args__ = (Index(None, "tenant_id", "stage"),)

    name: Mapped[str] = mapped_column(String(120))
    stage: Mapped[str] = mapped_column(String(16))
    trigger: Mapped[str] = mapped_column(String(16))
    threshold: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))
    task_title: Mapped[str] = mapped_column(String(200), default="")
    due_in_days: Mapped[int] = mapped_column(Integer, default=1)
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    assign_to: Mapped[str] = mapped_column(String(8), default="owner")
    tag: Mapped[str] = mapped_column(String(60), default="")
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    active_since: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class AutomationFiring(TenantScoped, Base):
    """One rule fired once for one customer and one occurrence of its trigger.

    The occurrence is ``(subject_id, marker)``: the transition entered (entered_stage), the
    last touch (no_activity), the latest deal update (deal_idle) or the score time
    (churn_risk). A second run finds the row and does nothing: runs are idempotent.
    """

    __tablename__ = "automation_firings"
    __table_args__ = (
        UniqueConstraint(
            "tenant_id", "rule_id", "customer_id", "subject_id", "marker", name="uq_automation_firings_occurrence"
        ),
        Index(None, "tenant_id", "fired_at"),
    )

    rule_id: Mapped[int] = mapped_column(ForeignKey("automation_rules.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    subject_id: Mapped[int] = mapped_column(Integer, default=NO_SUBJECT)
    marker: Mapped[dt.datetime] = mapped_column(DateTime, default=NO_MARKER)
    fired_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    task_id: Mapped[int | None] = mapped_column(ForeignKey("tasks.id"))
    outcome: Mapped[str] = mapped_column(String(16), default="done")
