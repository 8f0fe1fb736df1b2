"""New-customer follow-up: assignment by the tenant's rules and the first follow-up task.

:func:`on_customers_created` runs inside the caller's transaction (the customer form, the
importer per batch, the API) right after the new customers are flushed. For each customer
without an owner it applies the first matching active assignment rule (conditions on the
customer's fields → team → round-robin or least-open-tasks among the team's active reps);
every new customer then gets a follow-up task for its owner. With no matching rule (a
tenant starts with none) an unowned customer stays in its team's pool and the task goes to
whoever created it, or to the team's manager when an admin or an import created it.

Why the writes run as attributed system work: a rep creating an unowned customer may not
give it to a colleague (``access.can_assign_owner``), yet the tenant's rule must. So the
assignment is not the rep's write but the rule's: for its duration the session is bound to
a system reason naming the rule and the user who triggered it, inside the same transaction
(all-or-nothing with the customer), and the audit trail records that reason with each
change. Reads in that window filter ``tenant_id`` explicitly; the actor is restored after.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from crm_core import access
from crm_core.access import Actor
from crm_core.bulk import driver_form, insert_returning_ids, insert_rows
from crm_core.i18n import t
from crm_core.models import (
    Base,
    Customer,
    Role,
    Task,
    TaskStatus,
    Team,
    User,
    utcnow,
)
from crm_core.models.automation import AssignmentMethod, AssignmentRule
from crm_core.rules.assignment import pick_least_busy, pick_round_robin, rule_matches
from crm_core.services.lifecycle import record_initial_stages

CHUNK = 1000
DEFAULT_FOLLOW_UP_DAYS = 1


@contextmanager
def attributed_system_work(session: Session, reason: str) -> Iterator[Actor | None]:
    """Run a block of writes as the system, audited with ``reason``, then restore the session's scope.

    Flushes before (the caller's own writes stay checked against the caller) and after (so
    the audit rows carry ``reason``). Yields the actor who was bound, if any.
    """
    actor = access.actor_of(session)
    previous_reason = session.info.get(access.SYSTEM_KEY)
    session.flush()
    access.bind_system(session, reason)
    try:
        yield actor
        session.flush()
    finally:
        if actor is not None:
            access.bind_actor(session, actor)
        elif previous_reason:
            access.bind_system(session, previous_reason)


FOLLOW_UP_REASON = "new customer follow-up"


def rule_fields(customer: Customer) -> dict[str, Any]:
    """The fields assignment-rule conditions read (:data:`crm_core.rules.assignment.FIELDS` and custom fields)."""
    return {
        "kind": customer.kind, "industry": customer.industry, "region": customer.region,
        "source": customer.source, "tags": customer.tags, "lifecycle_stage": customer.lifecycle_stage,
        "custom_fields": customer.custom_fields or {},
    }


@dataclass(frozen=True)
class Assignment:
    """Who a rule gave a new customer to, and what it had before (for the audit row)."""

    rule_id: int
    reason: str
    owner_before: int | None
    team_before: int | None


@dataclass
class NewCustomer:
    """A new customer as the follow-up rules read and decide it: a flushed ORM row, or a row about to be inserted.

    :func:`plan_follow_ups` fills ``owner_id``/``team_id`` (by rule), ``due_at``,
    ``next_follow_up_at`` and the first task's assignee and title; :func:`record_follow_ups`
    needs ``id``.
    """

    name: str
    owner_id: int | None
    team_id: int | None
    lifecycle_stage: str
    fields: Mapping[str, Any]  # what rule conditions read: rule_fields(customer), or the row's values
    next_follow_up_at: dt.datetime | None = None
    id: int | None = None
    due_at: dt.datetime | None = None
    assignment: Assignment | None = None
    follow_up_assignee: int | None = None  # who the first follow-up task goes to, and its title
    follow_up_title: str = ""

    @classmethod
    def of(cls, customer: Customer) -> NewCustomer:
        """The follow-up view of a customer already flushed."""
        return cls(
            name=customer.name, owner_id=customer.owner_id, team_id=customer.team_id,
            lifecycle_stage=customer.lifecycle_stage, fields=rule_fields(customer),
            next_follow_up_at=customer.next_follow_up_at, id=customer.id,
        )


def _active_reps(session: Session, tenant_id: int, team_id: int | None) -> list[int]:
    statement = select(User.id).where(
        User.tenant_id == tenant_id, User.role == Role.REP.value, User.is_active.is_(True)
    )
    if team_id is not None:
        statement = statement.where(User.team_id == team_id)
    return list(session.scalars(statement.order_by(User.id)))


def open_task_counts(session: Session, tenant_id: int, user_ids: Sequence[int]) -> dict[int, int]:
    """Open tasks per user (every user in ``user_ids`` present, zero when none)."""
    counts = {user_id: 0 for user_id in user_ids}
    if not user_ids:
        return counts
    rows = session.execute(
        select(Task.assignee_id, func.count())
        .where(Task.tenant_id == tenant_id, Task.status == TaskStatus.OPEN.value, Task.assignee_id.in_(list(user_ids)))
        .group_by(Task.assignee_id)
    ).all()
    for user_id, count in rows:
        if user_id is not None:
            counts[int(user_id)] = int(count)
    return counts


def _rule_reason(rule: AssignmentRule, actor: Actor | None) -> str:
    who = f" for {actor.username}" if actor is not None and actor.username else ""
    return f"assignment rule #{rule.id} {rule.name}{who}"


def on_customers_created(session: Session, actor: Actor | None, customer_ids: list[int]) -> None:
    """Assign owners by the tenant's rules where missing, create each first follow-up task, record stages.

    For customers already flushed (the form, the API): runs inside the caller's transaction,
    a few statements per rule and batch, and keeps the session's loaded customers in step.
    The importer, which knows its rows before inserting them, calls :func:`plan_follow_ups`
    and :func:`record_follow_ups` around its insert instead (no UPDATE of the new rows).
    """
    if not customer_ids:
        return
    session.flush()
    ids = sorted(set(customer_ids))
    with attributed_system_work(session, FOLLOW_UP_REASON):
        loaded: list[Customer] = []
        for start in range(0, len(ids), CHUNK):
            statement = select(Customer).where(Customer.id.in_(ids[start:start + CHUNK]))
            if actor is not None:
                statement = statement.where(Customer.tenant_id == actor.tenant_id)
            loaded.extend(session.scalars(statement))
    by_tenant: dict[int, list[Customer]] = defaultdict(list)
    for customer in loaded:
        by_tenant[customer.tenant_id].append(customer)
    for tenant_id, tenant_customers in by_tenant.items():
        new_customers = [NewCustomer.of(customer) for customer in tenant_customers]
        plan_follow_ups(session, actor, tenant_id, new_customers)
        _apply_plan(session, tenant_customers, new_customers)
        record_follow_ups(session, actor, tenant_id, new_customers)


def _apply_plan(session: Session, customers: list[Customer], planned: list[NewCustomer]) -> None:
    """Write what :func:`plan_follow_ups` decided onto customers already in the database (and the session)."""
    owners: list[dict[str, Any]] = []
    follow_ups: list[dict[str, Any]] = []
    for customer, plan in zip(customers, planned, strict=True):
        if plan.assignment is not None:
            owners.append({"b_id": customer.id, "b_tenant": customer.tenant_id, "b_owner": plan.owner_id,
                           "b_team": plan.team_id})
            set_committed_value(customer, "owner_id", plan.owner_id)
            set_committed_value(customer, "team_id", plan.team_id)
        if customer.next_follow_up_at is None:
            follow_ups.append({"b_id": customer.id, "b_tenant": customer.tenant_id, "b_due": plan.next_follow_up_at})
            set_committed_value(customer, "next_follow_up_at", plan.next_follow_up_at)
    _write_new_customer_columns(session, owners, owner_id=bindparam("b_owner"), team_id=bindparam("b_team"))
    _write_new_customer_columns(session, follow_ups, next_follow_up_at=bindparam("b_due"))


def plan_follow_ups(session: Session, actor: Actor | None, tenant_id: int, customers: list[NewCustomer]) -> None:
    """Decide, in place, the owner of each unowned customer (first matching active rule) and its follow-up date.

    Moves each used rule's round-robin pointer (its row locked, so concurrent creations
    continue the same rotation) inside the caller's transaction. Writes nothing about the
    customers themselves: the caller stores the decisions (an UPDATE of flushed rows, or the
    values of rows it is about to insert), then calls :func:`record_follow_ups`.
    """
    with attributed_system_work(session, FOLLOW_UP_REASON):
        rules = list(
            session.scalars(
                select(AssignmentRule)
                .where(AssignmentRule.tenant_id == tenant_id, AssignmentRule.is_active.is_(True))
                .order_by(AssignmentRule.position, AssignmentRule.id)
            )
        )
    now = utcnow()
    remaining = [customer for customer in customers if customer.owner_id is None]
    for rule in rules:
        if not remaining:
            break
        conditions = rule.conditions or []
        matched = [customer for customer in remaining if rule_matches(customer.fields, conditions)]
        if not matched:
            continue
        with attributed_system_work(session, _rule_reason(rule, actor)):
            if _assign_by_rule(session, tenant_id, rule, matched):
                due_at = _morning(now + dt.timedelta(days=rule.follow_up_due_days))
                for customer in matched:
                    customer.due_at = due_at
                remaining = [customer for customer in remaining if customer.assignment is None]
    default_due = _morning(now + dt.timedelta(days=DEFAULT_FOLLOW_UP_DAYS))
    for customer in customers:
        if customer.due_at is None:
            customer.due_at = default_due
        if customer.next_follow_up_at is None:
            customer.next_follow_up_at = customer.due_at
    _plan_first_tasks(session, actor, tenant_id, customers)


def record_follow_ups(session: Session, actor: Actor | None, tenant_id: int, customers: list[NewCustomer]) -> None:
    """What follows a planned creation, for customers now in the database (``id`` set).

    Their first lifecycle transitions, an ``assign`` audit row per rule assignment (naming
    the rule), and each first follow-up task with its audit row.
    """
    if not customers:
        return
    with attributed_system_work(session, FOLLOW_UP_REASON):
        record_initial_stages(session, tenant_id, {c.id: c.lifecycle_stage for c in customers if c.id is not None})
    now = utcnow()
    audit_events = Base.metadata.tables["audit_events"]
    encode = driver_form(session, audit_events, "changes")  # no dict per row left for the garbage collector
    audits = [
        (tenant_id, None, "assign", "customer", customer.id, now, now, now,
         encode({"owner_id": (assignment.owner_before, customer.owner_id),
                 "team_id": (assignment.team_before, customer.team_id),
                 "assignment_rule_id": (None, assignment.rule_id), "_source": ("", assignment.reason)}))
        for customer in customers
        if (assignment := customer.assignment) is not None
    ]
    insert_rows(session, audit_events, audits, columns=_AUDIT_COLUMNS, converted=("changes",))
    with attributed_system_work(session, FOLLOW_UP_REASON):
        _create_first_tasks(session, actor, tenant_id, customers)


def _assign_by_rule(session: Session, tenant_id: int, rule: AssignmentRule, matched: list[NewCustomer]) -> bool:
    """Give ``matched`` customers owners by ``rule``; False when the rule's team has no active rep."""
    # lock the rule row so that concurrent creations continue the same rotation
    session.execute(
        select(AssignmentRule.id).where(AssignmentRule.id == rule.id).with_for_update()
    ).all()
    pointer = session.scalar(select(AssignmentRule.last_assigned_user_id).where(AssignmentRule.id == rule.id))
    candidates = _active_reps(session, tenant_id, rule.team_id)
    if not candidates:
        return False
    if rule.method == AssignmentMethod.LEAST_BUSY:
        owners = pick_least_busy(open_task_counts(session, tenant_id, candidates), pointer, len(matched))
    else:
        owners = pick_round_robin(candidates, pointer, len(matched))
    team_of = dict(
        session.execute(
            select(User.id, User.team_id).where(User.tenant_id == tenant_id, User.id.in_(set(owners)))
        ).all()
    )
    reason = session.info.get(access.SYSTEM_KEY, "")
    for customer, owner_id in zip(matched, owners, strict=True):
        customer.assignment = Assignment(rule.id, reason, customer.owner_id, customer.team_id)
        customer.owner_id = owner_id
        customer.team_id = rule.team_id or team_of.get(owner_id) or customer.team_id
    # the pointer moves without a version bump: an admin editing the rule is not made stale
    rules_table = Base.metadata.tables["assignment_rules"]
    session.execute(
        update(rules_table).where(rules_table.c.id == rule.id).values(last_assigned_user_id=owners[-1])
    )
    return True


def _plan_first_tasks(session: Session, actor: Actor | None, tenant_id: int, new_customers: list[NewCustomer]) -> None:
    """Who follows each new customer up, and the task's title in that person's language.

    Decided with the plan, before anything is written, so that the importer inserts the
    customers with their follow-up fields set.
    """
    owner_ids = {customer.owner_id for customer in new_customers if customer.owner_id is not None}
    languages = dict(
        session.execute(select(User.id, User.language).where(User.tenant_id == tenant_id, User.id.in_(owner_ids))).all()
    ) if owner_ids else {}
    team_managers = dict(
        session.execute(select(Team.id, Team.manager_id).where(Team.tenant_id == tenant_id)).all()
    )
    actor_follows_up = actor is not None and actor.role in (Role.REP, Role.MANAGER)
    default_language = actor.language if actor else "en"
    titles: dict[str, str] = {}  # language -> the title's template (t() without its parameters)
    for customer in new_customers:
        assignee = customer.owner_id
        if assignee is None:
            # no rule assigned it: it stays in its team's pool; whoever created it follows up
            # (a rep or manager), else the team's manager
            if actor_follows_up:
                assignee = actor.user_id  # type: ignore[union-attr]
            elif customer.team_id is not None:
                assignee = team_managers.get(customer.team_id)
        language = languages.get(assignee, default_language) if assignee else "en"
        template = titles.get(language)
        if template is None:
            template = titles[language] = t("followups.task.first_follow_up", language)
        try:  # as t() formats its parameters
            title = template.format(name=customer.name)
        except (KeyError, IndexError, ValueError):
            title = template
        customer.follow_up_assignee, customer.follow_up_title = assignee, title[:200]


def _create_first_tasks(
    session: Session, actor: Actor | None, tenant_id: int, new_customers: list[NewCustomer]
) -> None:
    now = utcnow()
    created_by = actor.user_id if actor is not None else None
    status = TaskStatus.OPEN.value
    tasks = [
        (tenant_id, customer.follow_up_title, customer.follow_up_assignee, created_by, customer.due_at, status,
         customer.id, now, now)
        for customer in new_customers
    ]
    if not tasks:
        return
    tasks_table = Base.metadata.tables["tasks"]
    task_ids = insert_returning_ids(session, tasks_table, tasks, "customer_id", columns=_TASK_COLUMNS)
    reason = session.info.get(access.SYSTEM_KEY, "")
    source = ("", reason)
    # the tasks share a few due dates: each serialised once (an import audits 100,000 tasks)
    due_texts = {due_at: access._serialise(due_at) for due_at in {task[4] for task in tasks}}
    audit_events = Base.metadata.tables["audit_events"]
    encode = driver_form(session, audit_events, "changes")
    audits = []
    for task_id, (_, title, assignee, _, due_at, _, customer_id, _, _) in zip(task_ids, tasks, strict=True):
        # encoded at once (bulk.driver_form), so that an import's 100,000 task audits are strings,
        # not dicts of pairs the garbage collector walks until the chunk is written
        changes: dict[str, Any] = {"title": (None, title)}
        if assignee is not None:
            changes["assignee_id"] = (None, assignee)
        if due_at is not None:
            changes["due_at"] = (None, due_texts[due_at])
        if customer_id is not None:
            changes["customer_id"] = (None, customer_id)
        changes["_source"] = source
        audits.append((tenant_id, None, "create", "task", task_id, now, now, now, encode(changes)))
    insert_rows(session, audit_events, audits, columns=_AUDIT_COLUMNS, converted=("changes",))
    if actor is not None and len(tasks) <= NOTIFY_LIMIT:
        from crm_core.services.notifications import notify

        for task_id, (_, title, assignee, _, due_at, _, _, _, _) in zip(task_ids, tasks, strict=True):
            if assignee is not None:
                notify(session, tenant_id=tenant_id, user_id=assignee, kind="task_assigned", entity="task",
                       entity_id=task_id, actor_id=actor.user_id,
                       params={"title": title, "by": actor.full_name or actor.username,
                               "due": due_at.strftime("%Y-%m-%d") if due_at else "—"})


NOTIFY_LIMIT = 50
"""Follow-up tasks given to others notify their assignees when a user creates this many customers at most
(a form, the API); an import's thousands of first tasks do not fill the bells (the Tasks page lists them)."""
_AUDIT_COLUMNS = ("tenant_id", "actor_id", "action", "entity", "entity_id", "occurred_at", "created_at", "updated_at",
                  "changes")
_TASK_COLUMNS = ("tenant_id", "title", "assignee_id", "created_by_id", "due_at", "status", "customer_id",
                 "created_at", "updated_at")


def _write_new_customer_columns(session: Session, rows: list[dict[str, Any]], **values: Any) -> None:
    """Set derived columns on customers created in this very transaction, without a version bump.

    Nobody else can hold a version of an uncommitted row, so the customer leaves its creating
    transaction at version 1, as every form expects; the audit rows are written by the caller.
    """
    if not rows:
        return
    table = Base.metadata.tables["customers"]
    session.connection().execute(  # each row names its tenant: one shard under Citus (decision 0057)
        update(table).where(table.c.tenant_id == bindparam("b_tenant"), table.c.id == bindparam("b_id"))
        .values(**values), rows)


def _morning(moment: dt.datetime) -> dt.datetime:
    """Due dates fall at 09:00 of their day, not at the creation minute."""
    return moment.replace(hour=9, minute=0, second=0, microsecond=0)
