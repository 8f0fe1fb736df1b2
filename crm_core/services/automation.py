"""Admin-edited rules (assignment and stage automation) and the idempotent automation run.

Saving a rule validates it first (:mod:`crm_core.rules.assignment`,
:mod:`crm_core.rules.automation`) and refuses it with a message per field; only admins
save rules. :func:`run_automation` finds, per active rule and in SQL, the customers whose
trigger occurred and that the rule has not yet fired for (``automation_firings``), then
acts on them in chunks: tasks, tags or campaign enrolments, written as system work whose
audit rows name the rule. Running it twice creates nothing new.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    bindparam,
    exists,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.orm import Session, aliased

from crm_core.access import SYSTEM_KEY, Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, StaleRecord, ValidationFailed
from crm_core.i18n import t
from crm_core.models import (
    Base,
    Campaign,
    Customer,
    FieldDefinition,
    Opportunity,
    PipelineStage,
    Role,
    StageKind,
    TaskStatus,
    Team,
    Tenant,
    User,
    utcnow,
)
from crm_core.models.automation import (
    NO_MARKER,
    NO_SUBJECT,
    AssignmentMethod,
    AssignmentRule,
    AutomationAction,
    AutomationFiring,
    AutomationRule,
    AutomationTrigger,
    LifecycleTransition,
)
from crm_core.models.segments import Score
from crm_core.rules.assignment import condition_problems
from crm_core.rules.automation import automation_rule_problems, render_task_title
from crm_core.rules.contact_details import parse_tags, store_tags
from crm_core.services.campaigns import contacts_for, entered_touches, member_start
from crm_core.services.followups import attributed_system_work

CHUNK = 1000
CHURN_SCORER = "churn_risk"

Errors = dict[str, tuple[str, dict[str, Any]]]


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin:
        raise AccessDenied("only an admin may change rules")


def _check_version(record: Any, expected_version: int | None, entity: str) -> None:
    if expected_version is not None and record.version != expected_version:
        raise StaleRecord(entity, record.id)


# --- assignment rules -------------------------------------------------------------------


@dataclass
class AssignmentRuleInput:
    """The fields of the assignment rule form."""

    name: str
    conditions: list[dict[str, Any]] = field(default_factory=list)
    team_id: int | None = None
    method: str = AssignmentMethod.ROUND_ROBIN
    position: int = 10
    follow_up_due_days: int = 1
    is_active: bool = True


def save_assignment_rule(
    db: Database, actor: Actor, form: AssignmentRuleInput, *, rule_id: int | None = None,
    expected_version: int | None = None,
) -> int:
    """Create or change an assignment rule; invalid conditions are refused field by field."""
    _require_admin(actor)
    with db.transaction(actor) as session:
        custom_fields = session.scalars(select(FieldDefinition.name).where(FieldDefinition.entity == "customer")).all()
        errors: Errors = {}
        if not form.name.strip():
            errors["name"] = ("validation.required", {})
        elif len(form.name.strip()) > 120:
            errors["name"] = ("validation.too_long", {"max": 120})
        for number, (key, params) in enumerate(condition_problems(form.conditions, custom_fields=custom_fields), 1):
            errors[f"condition_{number}"] = (key, params)
        if form.method not in AssignmentMethod.ALL:
            errors["method"] = ("validation.choice", {})
        if form.team_id is not None and session.get(Team, form.team_id) is None:
            errors["team_id"] = ("validation.choice", {})
        if not 0 <= form.follow_up_due_days <= 60:
            errors["follow_up_due_days"] = ("followups.rule.days_range", {"min": 0, "max": 60})
        if not 0 <= form.position <= 10_000:
            errors["position"] = ("followups.rule.days_range", {"min": 0, "max": 10_000})
        if errors:
            raise ValidationFailed(errors)
        if rule_id is None:
            rule = AssignmentRule(tenant_id=actor.tenant_id)
            session.add(rule)
        else:
            found = session.get(AssignmentRule, rule_id)
            if found is None:
                raise NotFound("assignment rule")
            _check_version(found, expected_version, "assignment_rule")
            rule = found
        rule.name = form.name.strip()
        rule.conditions = [
            {"field": c.get("field"), "op": c.get("op"), "value": str(c.get("value") or "").strip()}
            for c in form.conditions
        ]
        rule.team_id = form.team_id
        rule.method = form.method
        rule.position = form.position
        rule.follow_up_due_days = form.follow_up_due_days
        rule.is_active = form.is_active
        session.flush()
        return rule.id


# --- stage automation rules --------------------------------------------------------------


@dataclass
class AutomationRuleInput:
    """The fields of the automation rule form."""

    name: str
    stage: str
    trigger: str
    action: str
    threshold: int | None = None
    task_title: str = ""
    due_in_days: int = 1
    priority: str = "normal"
    assign_to: str = "owner"
    tag: str = ""
    campaign_id: int | None = None
    is_active: bool = True


def save_automation_rule(
    db: Database, actor: Actor, form: AutomationRuleInput, *, rule_id: int | None = None,
    expected_version: int | None = None,
) -> int:
    """Create or change a stage automation rule; a rule that could not run is refused."""
    _require_admin(actor)
    errors: Errors = automation_rule_problems(
        name=form.name, stage=form.stage, trigger=form.trigger, threshold=form.threshold, action=form.action,
        task_title=form.task_title, due_in_days=form.due_in_days, priority=form.priority,
        assign_to=form.assign_to, tag=form.tag, campaign_id=form.campaign_id,
    )
    with db.transaction(actor) as session:
        if (form.action == AutomationAction.ENROLL_CAMPAIGN and form.campaign_id is not None
                and session.get(Campaign, form.campaign_id) is None):
            errors["campaign_id"] = ("validation.choice", {})
        if errors:
            raise ValidationFailed(errors)
        if rule_id is None:
            rule = AutomationRule(tenant_id=actor.tenant_id, active_since=utcnow())
            session.add(rule)
        else:
            found = session.get(AutomationRule, rule_id)
            if found is None:
                raise NotFound("automation rule")
            _check_version(found, expected_version, "automation_rule")
            rule = found
            if form.is_active and not rule.is_active:
                rule.active_since = utcnow()  # a re-enabled rule does not fire for what happened while off
        uses_threshold = form.trigger != AutomationTrigger.ENTERED_STAGE
        rule.name = form.name.strip()
        rule.stage = form.stage
        rule.trigger = form.trigger
        rule.threshold = form.threshold if uses_threshold else None
        rule.action = form.action
        rule.task_title = form.task_title.strip() if form.action == AutomationAction.CREATE_TASK else ""
        rule.due_in_days = form.due_in_days
        rule.priority = form.priority
        rule.assign_to = form.assign_to
        rule.tag = form.tag.strip() if form.action == AutomationAction.ADD_TAG else ""
        rule.campaign_id = form.campaign_id if form.action == AutomationAction.ENROLL_CAMPAIGN else None
        rule.is_active = form.is_active
        session.flush()
        return rule.id


DEFAULT_RULES: list[dict[str, Any]] = [
    {"key": "intent_quiet", "stage": "intent", "trigger": AutomationTrigger.NO_ACTIVITY, "threshold": 7,
     "action": AutomationAction.CREATE_TASK, "due_in_days": 1, "priority": "high", "assign_to": "owner"},
    {"key": "churned_win_back", "stage": "churned", "trigger": AutomationTrigger.ENTERED_STAGE, "threshold": None,
     "action": AutomationAction.CREATE_TASK, "due_in_days": 3, "priority": "high", "assign_to": "owner"},
    {"key": "customer_deal_idle", "stage": "customer", "trigger": AutomationTrigger.DEAL_IDLE, "threshold": 30,
     "action": AutomationAction.CREATE_TASK, "due_in_days": 2, "priority": "normal", "assign_to": "owner"},
    {"key": "customer_churn_risk", "stage": "customer", "trigger": AutomationTrigger.CHURN_RISK, "threshold": 70,
     "action": AutomationAction.CREATE_TASK, "due_in_days": 2, "priority": "high", "assign_to": "owner"},
    {"key": "prospect_cold", "stage": "prospect", "trigger": AutomationTrigger.NO_ACTIVITY, "threshold": 90,
     "action": AutomationAction.ADD_TAG, "tag_key": "followups.default.cold_tag"},
]


def seed_default_automation_rules(session: Session, tenant_id: int, *, language: str = "en") -> int:
    """Give a tenant that never had automation rules the defaults; returns how many were added.

    Rules are never deleted (an admin switches them off), so no rows means never seeded.
    """
    if session.scalar(select(func.count()).select_from(AutomationRule).where(AutomationRule.tenant_id == tenant_id)):
        return 0
    for default in DEFAULT_RULES:
        key = default["key"]
        session.add(
            AutomationRule(
                tenant_id=tenant_id,
                name=t(f"followups.default.{key}", language),
                stage=default["stage"],
                trigger=default["trigger"],
                threshold=default["threshold"],
                action=default["action"],
                task_title=t(f"followups.default.{key}.task", language)
                if default["action"] == AutomationAction.CREATE_TASK else "",
                due_in_days=default.get("due_in_days", 1),
                priority=default.get("priority", "normal"),
                assign_to=default.get("assign_to", "owner"),
                tag=t(default["tag_key"], language) if "tag_key" in default else "",
                active_since=utcnow(),
            )
        )
    session.flush()
    return len(DEFAULT_RULES)


def ensure_default_automation_rules(db: Database, actor: Actor) -> int:
    """Seed the defaults for the actor's tenant if it never had rules (the admin page calls this)."""
    _require_admin(actor)
    with db.transaction(actor) as session:
        return seed_default_automation_rules(session, actor.tenant_id, language=actor.language)


# --- the run ------------------------------------------------------------------------------


@dataclass
class RuleOutcome:
    """What one rule did in one run."""

    rule_id: int
    name: str
    fired: int = 0
    tasks: int = 0
    tags: int = 0
    enrolled: int = 0


@dataclass
class AutomationRunResult:
    """One tenant's run."""

    tenant_id: int
    rules: list[RuleOutcome] = field(default_factory=list)
    seeded: int = 0
    seconds: float = 0.0

    @property
    def fired(self) -> int:
        """Firings over every rule."""
        return sum(rule.fired for rule in self.rules)


@dataclass(frozen=True)
class _Candidate:
    customer_id: int
    subject_id: int
    marker: dt.datetime
    owner_id: int | None
    team_id: int | None
    name: str


def _candidates(session: Session, rule: AutomationRule, now: dt.datetime) -> Select[Any]:
    """Customers in the rule's stage whose trigger occurred, and that this rule has not fired for yet."""
    tenant_id = rule.tenant_id
    base: list[ColumnElement[bool]] = [
        Customer.tenant_id == tenant_id,
        Customer.lifecycle_stage == rule.stage,
        Customer.archived_at.is_(None),
    ]
    # the customer's team, else its owner's: "assign to team" goes to that team's manager
    owner = aliased(User)
    team = func.coalesce(Customer.team_id, select(owner.team_id).where(owner.id == Customer.owner_id).scalar_subquery())
    if rule.trigger == AutomationTrigger.ENTERED_STAGE:
        subject: Any = LifecycleTransition.id
        marker: Any = literal(NO_MARKER)
        statement = select(Customer.id, subject, marker, Customer.owner_id, team, Customer.name).join(
            LifecycleTransition,
            and_(
                LifecycleTransition.customer_id == Customer.id,
                LifecycleTransition.tenant_id == tenant_id,
                LifecycleTransition.to_stage == rule.stage,
                LifecycleTransition.occurred_at >= rule.active_since,
            ),
        )
    elif rule.trigger == AutomationTrigger.NO_ACTIVITY:
        subject = literal(NO_SUBJECT)
        marker = func.coalesce(Customer.last_contacted_at, Customer.created_at)
        base.append(marker < now - dt.timedelta(days=rule.threshold or 0))
        statement = select(Customer.id, subject, marker, Customer.owner_id, team, Customer.name)
    elif rule.trigger == AutomationTrigger.DEAL_IDLE:
        open_stage_ids = select(PipelineStage.id).where(
            PipelineStage.tenant_id == tenant_id, PipelineStage.kind == StageKind.OPEN.value
        )
        idle = (
            select(Opportunity.customer_id.label("customer_id"), func.max(Opportunity.updated_at).label("last"))
            .where(
                Opportunity.tenant_id == tenant_id,
                Opportunity.stage_id.in_(open_stage_ids),
                Opportunity.archived_at.is_(None),
                Opportunity.updated_at < now - dt.timedelta(days=rule.threshold or 0),
            )
            .group_by(Opportunity.customer_id)
            .subquery("idle")
        )
        subject = literal(NO_SUBJECT)
        marker = idle.c.last
        statement = select(Customer.id, subject, marker, Customer.owner_id, team, Customer.name).join(
            idle, idle.c.customer_id == Customer.id
        )
    else:  # churn risk, from the churn scorer's latest scores
        subject = literal(NO_SUBJECT)
        marker = Score.scored_at
        statement = select(Customer.id, subject, marker, Customer.owner_id, team, Customer.name).join(
            Score,
            and_(
                Score.tenant_id == tenant_id,
                Score.scorer == CHURN_SCORER,
                Score.entity_id == Customer.id,
                Score.score * 100 >= (rule.threshold or 0),
            ),
        )
    fired_before = exists().where(
        AutomationFiring.tenant_id == tenant_id,
        AutomationFiring.rule_id == rule.id,
        AutomationFiring.customer_id == Customer.id,
        AutomationFiring.subject_id == subject,
        AutomationFiring.marker == marker,
    )
    return statement.where(*base, ~fired_before).order_by(Customer.id)


def _audit_rows(
    session: Session, rule: AutomationRule, entity: str, action: str, changes: list[tuple[int, dict[str, Any]]],
    now: dt.datetime,
) -> list[dict[str, Any]]:
    reason = str(session.info.get(SYSTEM_KEY, f"automation rule #{rule.id}"))
    return [
        {"tenant_id": rule.tenant_id, "actor_id": None, "action": action, "entity": entity, "entity_id": entity_id,
         "occurred_at": now, "created_at": now, "updated_at": now, "changes": {**change, "_source": ["", reason]}}
        for entity_id, change in changes
    ]


def _act(
    session: Session, rule: AutomationRule, chunk: list[_Candidate], now: dt.datetime, managers: dict[int, int | None]
) -> RuleOutcome:
    """Do the rule's action for one chunk, as bulk statements; every write gets an audit row naming the rule."""
    outcome = RuleOutcome(rule.id, rule.name, fired=len(chunk))
    connection = session.connection()
    tables = Base.metadata.tables
    audits: list[dict[str, Any]] = []
    task_ids: dict[int, int] = {}
    if rule.action == AutomationAction.CREATE_TASK:
        due_at = (now + dt.timedelta(days=rule.due_in_days)).replace(hour=9, minute=0, second=0, microsecond=0)
        rows = []
        for candidate in chunk:
            team_manager = managers.get(candidate.team_id) if candidate.team_id is not None else None
            assignee = candidate.owner_id if rule.assign_to == "owner" and candidate.owner_id else team_manager
            rows.append(
                {"tenant_id": rule.tenant_id, "title": render_task_title(rule.task_title, candidate.name),
                 "assignee_id": assignee, "due_at": due_at, "status": TaskStatus.OPEN.value,
                 "priority": rule.priority, "customer_id": candidate.customer_id, "created_at": now,
                 "updated_at": now}
            )
        ids = connection.execute(
            insert(tables["tasks"]).returning(tables["tasks"].c.id, sort_by_parameter_order=True), rows
        ).scalars().all()
        task_ids = dict(enumerate(ids))
        outcome.tasks = len(ids)
        audits = _audit_rows(session, rule, "task", "create", [
            (task_id, {"title": [None, row["title"]], "assignee_id": [None, row["assignee_id"]],
                       "due_at": [None, due_at.isoformat()], "customer_id": [None, row["customer_id"]]})
            for task_id, row in zip(ids, rows, strict=True)
        ], now)
    elif rule.action == AutomationAction.ADD_TAG:
        customers_table = tables["customers"]
        current = connection.execute(
            select(customers_table.c.id, customers_table.c.tags).where(
                customers_table.c.tenant_id == rule.tenant_id,
                customers_table.c.id.in_([candidate.customer_id for candidate in chunk]),
            )
        ).all()
        updates = []
        for customer_id, stored in current:
            tags = parse_tags(stored or "")
            if rule.tag.casefold() not in {tag.casefold() for tag in tags}:
                updates.append({"b_id": customer_id, "b_tags": store_tags([*tags, rule.tag]), "b_old": stored})
        if updates:
            connection.execute(
                update(customers_table)
                .where(customers_table.c.tenant_id == rule.tenant_id, customers_table.c.id == bindparam("b_id"))
                .values(tags=bindparam("b_tags"), version=customers_table.c.version + 1, updated_at=now),
                [{"b_id": row["b_id"], "b_tags": row["b_tags"]} for row in updates],
            )
            _expire(session, Customer, {row["b_id"] for row in updates})
        outcome.tags = len(updates)
        audits = _audit_rows(session, rule, "customer", "update", [
            (row["b_id"], {"tags": [row["b_old"], row["b_tags"]]}) for row in updates
        ], now)
    elif rule.action == AutomationAction.ENROLL_CAMPAIGN and rule.campaign_id is not None:
        ids = [candidate.customer_id for candidate in chunk]
        members = tables["campaign_members"]
        enrolled = set(
            connection.scalars(
                select(members.c.customer_id).where(
                    members.c.tenant_id == rule.tenant_id, members.c.campaign_id == rule.campaign_id,
                    members.c.customer_id.in_(ids),
                )
            )
        )
        new_members = [customer_id for customer_id in dict.fromkeys(ids) if customer_id not in enrolled]
        if new_members:
            # a lifecycle stage's touch rule starts the campaign's sequence when it runs (decision 0049)
            start = member_start(session, rule.campaign_id, now)
            contacts = contacts_for(session, new_members, tenant_id=rule.tenant_id)
            connection.execute(
                insert(members),
                [{"tenant_id": rule.tenant_id, "campaign_id": rule.campaign_id, "customer_id": customer_id,
                  "source": f"rule:{rule.id}", "enrolled_at": now, "created_at": now, "updated_at": now,
                  "contact_id": contacts.get(customer_id), "step_id": None, "step_entered_at": None,
                  "next_run_at": None, "cycle": 1, **start}
                 for customer_id in new_members],
            )
            if start["state"] == "active":
                entered_touches(session, rule.campaign_id, now, tenant_id=rule.tenant_id)
        outcome.enrolled = len(new_members)
        audits = _audit_rows(session, rule, "campaign_member", "create", [
            (customer_id, {"campaign_id": [None, rule.campaign_id], "customer_id": [None, customer_id]})
            for customer_id in new_members
        ], now)
    if audits:
        connection.execute(insert(tables["audit_events"]), audits)
    # the log of firings is the record of what ran, per occurrence; it makes runs idempotent
    connection.execute(
        insert(tables["automation_firings"]),
        [
            {"tenant_id": rule.tenant_id, "rule_id": rule.id, "customer_id": candidate.customer_id,
             "subject_id": candidate.subject_id, "marker": candidate.marker, "fired_at": now,
             "task_id": task_ids.get(index), "outcome": rule.action, "created_at": now, "updated_at": now}
            for index, candidate in enumerate(chunk)
        ],
    )
    return outcome


def _expire(session: Session, model: type, ids: set[int]) -> None:
    """Loaded objects must reload what a bulk statement changed behind the ORM's back."""
    for obj in list(session.identity_map.values()):
        if isinstance(obj, model) and getattr(obj, "id", None) in ids:
            session.expire(obj)


def run_rule(session: Session, rule: AutomationRule, *, now: dt.datetime) -> RuleOutcome:
    """Fire one rule for every pending occurrence of its trigger, as system work attributed to it."""
    total = RuleOutcome(rule.id, rule.name)
    managers = dict(session.execute(select(Team.id, Team.manager_id).where(Team.tenant_id == rule.tenant_id)).all())
    with attributed_system_work(session, f"automation rule #{rule.id} {rule.name}"):
        rows = session.execute(_candidates(session, rule, now)).all()
        seen: set[tuple[int, int, dt.datetime]] = set()
        pending: list[_Candidate] = []
        for row in rows:
            key = (row[0], row[1], row[2])
            if key in seen:
                continue
            seen.add(key)
            pending.append(_Candidate(row[0], int(row[1]), row[2], row[3], row[4], row[5]))
        for start in range(0, len(pending), CHUNK):
            outcome = _act(session, rule, pending[start:start + CHUNK], now, managers)
            total.fired += outcome.fired
            total.tasks += outcome.tasks
            total.tags += outcome.tags
            total.enrolled += outcome.enrolled
    return total


def _tenant_language(session: Session, tenant_id: int) -> str:
    language = session.scalar(
        select(User.language)
        .where(User.tenant_id == tenant_id, User.role == Role.ADMIN.value)
        .order_by(User.id)
        .limit(1)
    )
    return str(language or "en")


def run_automation(
    db: Database, *, tenant_ids: Sequence[int] | None = None, now: dt.datetime | None = None
) -> list[AutomationRunResult]:
    """Run every active rule of every active tenant (one transaction per tenant); idempotent."""
    now = now or utcnow()
    with db.system_session("automation run: list tenants") as session:
        statement = select(Tenant.id).where(Tenant.is_active.is_(True)).order_by(Tenant.id)
        if tenant_ids is not None:
            statement = statement.where(Tenant.id.in_(list(tenant_ids)))
        tenants = list(session.scalars(statement))
    results = []
    for tenant_id in tenants:
        started = time.perf_counter()
        with db.system_transaction("automation run") as session:
            result = AutomationRunResult(tenant_id)
            language = _tenant_language(session, tenant_id)
            result.seeded = seed_default_automation_rules(session, tenant_id, language=language)
            rules = session.scalars(
                select(AutomationRule)
                .where(AutomationRule.tenant_id == tenant_id, AutomationRule.is_active.is_(True))
                .order_by(AutomationRule.id)
            ).all()
            for rule in rules:
                result.rules.append(run_rule(session, rule, now=now))
        result.seconds = time.perf_counter() - started
        results.append(result)
    return results
