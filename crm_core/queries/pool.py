"""Reads of the customer pool: a rep's standing against the caps, a customer's pool history, the rules."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from crm_core.access import Actor
from crm_core.models import Base, Pipeline, PipelineStage, Team, User, utcnow
from crm_core.models.pool import PoolEvent, PoolRule
from crm_core.rules.pool import PoolTerms
from crm_core.services.pool import claim_counts, rules_by_team, terms_for

events = Base.metadata.tables["pool_events"]
customers = Base.metadata.tables["customers"]


@dataclass(frozen=True)
class PoolStanding:
    """Where a user stands against their team's pool terms today."""

    claimed_today: int
    held: int
    terms: PoolTerms | None  # None: no rule for the user's team, the pool is open without caps


def pool_standing(session: Session, actor: Actor, *, now: dt.datetime | None = None) -> PoolStanding:
    """``actor``'s claims today, customers held and the terms of their own team's pool (counted on the ledger)."""
    claimed_today, held = claim_counts(session, actor, now or utcnow())
    team_id = session.scalar(select(User.team_id).where(User.id == actor.user_id))
    return PoolStanding(claimed_today, held, terms_for(rules_by_team(session, actor.tenant_id), team_id))


@dataclass(frozen=True)
class PoolHistoryRow:
    occurred_at: dt.datetime
    kind: str
    reason: str | None
    owner_name: str | None  # who got it (claimed, assigned) or was reminded
    previous_owner_name: str | None
    actor_name: str | None  # None: the nightly rule
    note: str | None


def pool_history(session: Session, customer_id: int, *, limit: int = 50) -> list[PoolHistoryRow]:
    """The customer's pool ledger, newest first (scoped: visible with the customer)."""
    owner, previous, actor = aliased(User), aliased(User), aliased(User)
    rows = session.execute(
        select(PoolEvent.occurred_at, PoolEvent.kind, PoolEvent.reason, owner.full_name, previous.full_name,
               actor.full_name, PoolEvent.note)
        .outerjoin(owner, owner.id == PoolEvent.user_id)
        .outerjoin(previous, previous.id == PoolEvent.previous_owner_id)
        .outerjoin(actor, actor.id == PoolEvent.actor_id)
        .where(PoolEvent.customer_id == customer_id)
        .order_by(PoolEvent.occurred_at.desc(), PoolEvent.id.desc())
        .limit(limit)
    ).all()
    return [PoolHistoryRow(*row) for row in rows]


@dataclass(frozen=True)
class PoolRuleRow:
    id: int
    version: int
    team_id: int | None
    team_name: str | None
    enabled: bool
    idle_days: int
    no_deal_days: int | None
    protected_stage_ids: list[int]
    reminder_days: int
    daily_claim_cap: int
    held_cap: int | None
    cooldown_days: int


def list_pool_rules(session: Session) -> list[PoolRuleRow]:
    """The tenant's pool rules, the default first, then by team name."""
    rows = session.execute(
        select(PoolRule, Team.name).outerjoin(Team, Team.id == PoolRule.team_id)
        .order_by(PoolRule.team_id.is_not(None), Team.name)
    ).all()
    return [PoolRuleRow(rule.id, rule.version, rule.team_id, team_name, rule.enabled, rule.idle_days,
                        rule.no_deal_days, list(rule.protected_stage_ids or []), rule.reminder_days,
                        rule.daily_claim_cap, rule.held_cap, rule.cooldown_days) for rule, team_name in rows]


def open_stage_names(session: Session) -> dict[int, str]:
    """Every open stage of the tenant as "Pipeline › Stage", for the protected-stages choice."""
    rows = session.execute(
        select(PipelineStage.id, Pipeline.name, PipelineStage.name)
        .join(Pipeline, Pipeline.id == PipelineStage.pipeline_id)
        .where(PipelineStage.kind == "open")
        .order_by(Pipeline.name, PipelineStage.position)
    ).all()
    return {stage_id: f"{pipeline} › {stage}" for stage_id, pipeline, stage in rows}
