"""Reassignment on breach: a policy may hand a breached case to its team queue's next agent.

Run by the SLA sweep after it recorded the breaches (:func:`crm_core.services.sla.sweep_sla`). The
cases to hand on are found by one statement: open, in a team queue, under a policy with
``reassign_on_breach``, a clock breached and not met, and never handed on for a breach before (no
assignee event with the ``sla_breach:`` reason — so a case never bounces from agent to agent as its
other clocks breach). At most :data:`BATCH` per sweep, oldest case first: the rest follow a minute
later. The next agent is the queue's method's (:func:`crm_core.rules.assignment.pick_next_agents`);
the writes are one UPDATE per new agent, one multi-row INSERT of history rows that carry the
reason, and one notification to each new assignee.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Table, and_, exists, func, insert, or_, select, update
from sqlalchemy.orm import Session

from crm_core.models import Case, Role, User
from crm_core.models.service import SLA_METRICS, CaseEvent, CaseEventKind, CaseSla, ServiceQueue, SlaPolicy
from crm_core.rules.assignment import pick_next_agents
from crm_core.rules.case_flow import CLOSED_STATUSES
from crm_core.services.notifications import Notice

BATCH = 500
REASON_PREFIX = "sla_breach:"
"""The body of an assignee event the sweep wrote: ``sla_breach:<metric>`` (the case's timeline says why)."""


@dataclass(frozen=True)
class Handover:
    """One breached case handed on: from whom to whom, and which clock's breach did it."""

    case_id: int
    team_id: int
    from_user_id: int | None
    to_user_id: int
    metric: str
    subject: str


def _breached_metric(row: Any) -> str:
    return next(metric for metric in SLA_METRICS
                if getattr(row, f"{metric}_breached_at") is not None and getattr(row, f"{metric}_met_at") is None)


def _due(session: Session, tenant_id: int) -> list[Any]:
    sla = cast(Table, CaseSla.__table__)
    breached = or_(*(and_(sla.c[f"{metric}_breached_at"].is_not(None), sla.c[f"{metric}_met_at"].is_(None))
                     for metric in SLA_METRICS))
    handed_on = exists().where(CaseEvent.case_id == Case.id, CaseEvent.tenant_id == tenant_id,
                               CaseEvent.kind == CaseEventKind.ASSIGNEE,
                               CaseEvent.body.like(REASON_PREFIX + "%"))
    return list(session.execute(
        select(Case.id, Case.team_id, Case.assignee_id, Case.subject,
               *(sla.c[f"{metric}_{part}"] for metric in SLA_METRICS for part in ("breached_at", "met_at")))
        .select_from(sla).join(Case, and_(Case.id == sla.c.case_id, Case.tenant_id == tenant_id))
        .join(SlaPolicy, and_(SlaPolicy.id == sla.c.policy_id, SlaPolicy.tenant_id == tenant_id))
        .join(ServiceQueue, and_(ServiceQueue.team_id == Case.team_id, ServiceQueue.tenant_id == tenant_id))
        .where(sla.c.tenant_id == tenant_id, SlaPolicy.reassign_on_breach.is_(True),
               Case.status.not_in(sorted(CLOSED_STATUSES)), breached, ~handed_on)
        .order_by(Case.id).limit(BATCH)).all())


def _plan(session: Session, tenant_id: int, due: list[Any]) -> tuple[list[Handover], dict[int, int]]:
    """Who takes each case, team by team; and each queue's new round-robin pointer."""
    by_team: dict[int, list[Any]] = defaultdict(list)
    for row in due:
        by_team[row.team_id].append(row)
    handovers: list[Handover] = []
    pointers: dict[int, int] = {}
    for team_id, rows in by_team.items():
        method, last = session.execute(select(ServiceQueue.method, ServiceQueue.last_assigned_user_id).where(
            ServiceQueue.tenant_id == tenant_id, ServiceQueue.team_id == team_id)).one()
        agents = list(session.scalars(select(User.id).where(
            User.tenant_id == tenant_id, User.team_id == team_id, User.is_active.is_(True),
            User.role.in_((Role.REP.value, Role.MANAGER.value)))))
        if not agents:
            continue
        open_cases = dict(session.execute(
            select(Case.assignee_id, func.count(Case.id))
            .where(Case.tenant_id == tenant_id, Case.assignee_id.in_(agents),
                   Case.status.not_in(sorted(CLOSED_STATUSES)))
            .group_by(Case.assignee_id)).all())
        picked = pick_next_agents(method, {agent: int(open_cases.get(agent, 0)) for agent in agents}, last,
                                  [row.assignee_id for row in rows])
        for row, agent in zip(rows, picked, strict=True):
            if agent is not None:
                handovers.append(Handover(row.id, team_id, row.assignee_id, agent, _breached_metric(row), row.subject))
                pointers[team_id] = agent
    return handovers, pointers


def reassign_breached_cases(session: Session, tenant_id: int, *,
                            now: dt.datetime) -> tuple[list[Handover], list[Notice]]:
    """Hand the tenant's breached cases to their queue's next agent (a bounded batch); returns them and the notices."""
    handovers, pointers = _plan(session, tenant_id, _due(session, tenant_id))
    if not handovers:
        return [], []
    cases = cast(Table, Case.__table__)
    by_agent: dict[int, list[int]] = defaultdict(list)
    for handover in handovers:
        by_agent[handover.to_user_id].append(handover.case_id)
    for agent, case_ids in by_agent.items():
        # the version moves: a form opened before the hand-over is stale
        session.execute(update(cases).where(cases.c.tenant_id == tenant_id, cases.c.id.in_(case_ids))
                        .values(assignee_id=agent, version=cases.c.version + 1, updated_at=now))
    session.execute(insert(cast(Table, CaseEvent.__table__)), [
        {"tenant_id": tenant_id, "created_at": now, "updated_at": now, "case_id": handover.case_id, "at": now,
         "kind": CaseEventKind.ASSIGNEE, "from_value": None if handover.from_user_id is None
         else str(handover.from_user_id), "to_value": str(handover.to_user_id), "body": REASON_PREFIX + handover.metric,
         "actor_id": None} for handover in handovers])
    for team_id, agent in pointers.items():
        session.execute(update(cast(Table, ServiceQueue.__table__))
                        .where(ServiceQueue.tenant_id == tenant_id, ServiceQueue.team_id == team_id)
                        .values(last_assigned_user_id=agent))
    notices = [Notice(user_id=handover.to_user_id, kind="sla_reassigned", entity="case", entity_id=handover.case_id,
                      params={"case": handover.case_id, "subject": handover.subject, "metric": handover.metric},
                      dedupe_key=f"sla-reassigned:{handover.case_id}") for handover in handovers]
    return handovers, notices
