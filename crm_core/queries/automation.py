"""Read side for the automation admin page: the rules, how often each fired, and the latest firings."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from crm_core.models import Campaign, Customer, Team
from crm_core.models.automation import AssignmentRule, AutomationFiring, AutomationRule


@dataclass(frozen=True)
class AssignmentRuleRow:
    """One assignment rule as the admin sees it."""

    id: int
    name: str
    position: int
    conditions: list[dict[str, Any]]
    team_id: int | None
    team_name: str | None
    method: str
    follow_up_due_days: int
    is_active: bool
    version: int


@dataclass(frozen=True)
class AutomationRuleRow:
    """One stage automation rule, with how often it fired and when last."""

    id: int
    name: str
    stage: str
    trigger: str
    threshold: int | None
    action: str
    task_title: str
    due_in_days: int
    priority: str
    assign_to: str
    tag: str
    campaign_id: int | None
    campaign_name: str | None
    is_active: bool
    version: int
    fired: int = 0
    last_fired_at: dt.datetime | None = None


@dataclass(frozen=True)
class FiringRow:
    """One firing: which rule, for which customer, when, what it did."""

    fired_at: dt.datetime
    rule_name: str
    customer_id: int
    customer_name: str
    outcome: str
    task_id: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def list_assignment_rules(session: Session) -> list[AssignmentRuleRow]:
    """The tenant's assignment rules in the order they are tried."""
    rows = session.execute(
        select(AssignmentRule, Team.name)
        .outerjoin(Team, Team.id == AssignmentRule.team_id)
        .order_by(AssignmentRule.position, AssignmentRule.id)
    )
    return [
        AssignmentRuleRow(
            id=rule.id, name=rule.name, position=rule.position, conditions=list(rule.conditions or []),
            team_id=rule.team_id, team_name=team_name, method=rule.method,
            follow_up_due_days=rule.follow_up_due_days, is_active=rule.is_active, version=rule.version,
        )
        for rule, team_name in rows
    ]


def list_automation_rules(session: Session) -> list[AutomationRuleRow]:
    """The tenant's stage automation rules by stage, with their firing counts (one aggregate)."""
    fired = (
        select(AutomationFiring.rule_id, func.count().label("fired"), func.max(AutomationFiring.fired_at).label("last"))
        .group_by(AutomationFiring.rule_id)
        .subquery()
    )
    rows = session.execute(
        select(AutomationRule, Campaign.name, fired.c.fired, fired.c.last)
        .outerjoin(Campaign, Campaign.id == AutomationRule.campaign_id)
        .outerjoin(fired, fired.c.rule_id == AutomationRule.id)
        .order_by(AutomationRule.stage, AutomationRule.id)
    )
    return [
        AutomationRuleRow(
            id=rule.id, name=rule.name, stage=rule.stage, trigger=rule.trigger, threshold=rule.threshold,
            action=rule.action, task_title=rule.task_title, due_in_days=rule.due_in_days, priority=rule.priority,
            assign_to=rule.assign_to, tag=rule.tag, campaign_id=rule.campaign_id, campaign_name=campaign_name,
            is_active=rule.is_active, version=rule.version, fired=int(count or 0), last_fired_at=last,
        )
        for rule, campaign_name, count, last in rows
    ]


def recent_firings(session: Session, *, limit: int = 50) -> list[FiringRow]:
    """The latest firings of the tenant's rules, newest first."""
    rows = session.execute(
        select(AutomationFiring.fired_at, AutomationRule.name, Customer.id, Customer.name, AutomationFiring.outcome,
               AutomationFiring.task_id)
        .join(AutomationRule, AutomationRule.id == AutomationFiring.rule_id)
        .join(Customer, Customer.id == AutomationFiring.customer_id)
        .order_by(AutomationFiring.fired_at.desc(), AutomationFiring.id.desc())
        .limit(limit)
    )
    return [FiringRow(row[0], row[1], row[2], row[3], row[4], row[5]) for row in rows]
