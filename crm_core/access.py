"""Tenant scoping, role/ownership rules and the audit trail, applied once for every query.

Pattern: SQLAlchemy session events. ``do_orm_execute`` adds ``with_loader_criteria``
to every ORM SELECT/UPDATE/DELETE so a user only ever reads rows of their tenant that
their role lets them see; ``before_flush`` refuses writes the role does not allow and
records each change; ``after_flush_postexec`` writes those changes to ``audit_events``.
Pages and services never filter by tenant or owner themselves.

The pure functions :func:`can_view` and :func:`can_edit` state the rules in Python
(tested with tables); :func:`visibility_clause` states the same rules in SQL.
"""

from __future__ import annotations

import datetime as dt
import enum
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Select, Table, and_, event, exists, false, inspect, or_, select, true
from sqlalchemy.orm import ORMExecuteState, Session, aliased, with_loader_criteria
from sqlalchemy.orm.util import LoaderCriteriaOption
from sqlalchemy.sql import visitors

from crm_core.errors import AccessDenied, PoolRefused
from crm_core.models import (
    Activity,
    AuditEvent,
    Campaign,
    Case,
    CaseStatus,
    Contact,
    Customer,
    DuplicateRule,
    FieldDefinition,
    ImportRun,
    Opportunity,
    Order,
    OrderLine,
    Pipeline,
    PipelineStage,
    Product,
    Role,
    Task,
    Team,
    Tenant,
    TenantScoped,
    User,
    utcnow,
)
from crm_core.models.api import ApiToken
from crm_core.models.jobs import Job, JobSchedule
from crm_core.models.mail import MailInbox, MailRoute, TenantMailSettings
from crm_core.models.marketing import (
    CampaignDaily,
    CampaignInfluence,
    CampaignResultsRun,
    CampaignStep,
    ConsentRecord,
    DoNotContact,
    EmailTemplate,
    MarketingEvent,
    MarketingMessage,
    MarketingSettings,
)
from crm_core.models.notifications import AccessRequest, Notification, NotificationPreference, TeamRobot
from crm_core.models.pipeline import OpportunityLine, OpportunityStageChange
from crm_core.models.pool import PoolEvent, PoolRule
from crm_core.models.sales import SavedView
from crm_core.models.sales_rollup import CustomerRollup, DealRollup, OrderRollup, SalesRollupRun, TaskRollup
from crm_core.models.segments import CampaignMember, Score, ScoringModel, Segment, SegmentSharing, SegmentSnapshot
from crm_core.models.service import (
    CaseAttachment,
    CaseEvent,
    CaseMacro,
    CaseMessage,
    CaseRating,
    CaseSla,
    ServiceDaily,
    ServiceQueue,
    SlaCalendar,
    SlaCalendarDay,
    SlaEscalation,
    SlaPolicy,
)
from crm_core.models.service_tiers import CaseEntitlement, CustomerTier, CustomerTierPin, CustomerTierStanding
from crm_core.models.webhooks import (
    WebhookAttempt,
    WebhookDelivery,
    WebhookEvent,
    WebhookSettings,
    WebhookSubscription,
)
from crm_core.rules.contact_details import company_key
from crm_core.webhooks.outbox import AuditedChange, record_outbox

ACTOR_KEY = "crm_actor"
SYSTEM_KEY = "crm_system_reason"
# a system session's tenant, when its work is one tenant's (a job, a sweep): its ORM statements name that tenant
# (decision 0057: a database distributed by tenant sends them to one node), without any role's rules
SYSTEM_TENANT_KEY = "crm_system_tenant"
POOL_CLAIM_KEY = "crm_pool_claim"  # set by crm_core.services.pool while it claims or assigns from the pool
# {customer id: requester id}: set by crm_core.services.access_requests while an approved request transfers a
# customer to its requester (the one way an owner gives a customer to a colleague outside their scope)
ACCESS_GRANT_KEY = "crm_access_grant"
PENDING_AUDIT_KEY = "crm_pending_audit"
SKIP_AUDIT_KEY = "crm_skip_audit"
AUDIT_TAG_KEY = "crm_audit_tag"  # extra entries merged into every audit event of the session


@dataclass(frozen=True)
class Actor:
    """Who is acting: their tenant, role, and the people whose records they see.

    ``visible_owner_ids`` holds the acting user and, for a manager, the members of the
    teams they manage; ``team_ids`` holds the teams whose unowned records they see.
    Built fresh from the database on every page run (see ``services.auth.load_actor``).
    """

    user_id: int
    tenant_id: int
    role: Role
    username: str = ""
    full_name: str = ""
    team_ids: frozenset[int] = field(default_factory=frozenset)
    visible_owner_ids: frozenset[int] = field(default_factory=frozenset)
    language: str = "en"
    # a manager's teams with their members, as loaded: (team id, member ids) in team order
    managed_teams: tuple[tuple[int, frozenset[int]], ...] = ()

    @property
    def sees_whole_tenant(self) -> bool:
        """Admins and analysts read every record of their tenant."""
        return self.role in (Role.ADMIN, Role.ANALYST)

    @property
    def can_write(self) -> bool:
        """Analysts read everything and write nothing."""
        return self.role != Role.ANALYST

    @property
    def is_admin(self) -> bool:
        return self.role == Role.ADMIN


# --- the rules, in Python --------------------------------------------------------


def can_view(
    actor: Actor, *, tenant_id: int, owner_id: int | None, team_id: int | None = None
) -> bool:
    """May ``actor`` see a customer/deal of ``tenant_id`` owned by ``owner_id`` in ``team_id``?"""
    if tenant_id != actor.tenant_id:
        return False
    if actor.sees_whole_tenant:
        return True
    if owner_id is None:
        return team_id is not None and team_id in actor.team_ids
    return owner_id == actor.user_id or owner_id in actor.visible_owner_ids


def can_edit(
    actor: Actor, *, tenant_id: int, owner_id: int | None, team_id: int | None = None
) -> bool:
    """May ``actor`` change such a record? Visible, and the role writes."""
    return actor.can_write and can_view(actor, tenant_id=tenant_id, owner_id=owner_id, team_id=team_id)


def can_remove_case_file(actor: Actor, *, uploaded_by_id: int | None, case_closed: bool) -> bool:
    """May ``actor`` remove a file from a case they see? A manager or an admin may remove any, also from a closed
    case (a customer's passport scan sent by mistake); the user who uploaded it may while the case is not closed;
    nobody else (a customer's own email's files included), and never an analyst."""
    if not actor.can_write:
        return False
    if actor.role in (Role.ADMIN, Role.MANAGER):
        return True
    return not case_closed and uploaded_by_id is not None and uploaded_by_id == actor.user_id


def can_assign_owner(actor: Actor, owner_id: int | None) -> bool:
    """May ``actor`` give a record to ``owner_id``? Reps only to themselves (or nobody)."""
    if not actor.can_write:
        return False
    if actor.is_admin or owner_id is None:
        return True
    return owner_id == actor.user_id or owner_id in actor.visible_owner_ids


ADMIN_ONLY_WRITES: tuple[type, ...] = (
    User, Team, Tenant, Pipeline, PipelineStage, FieldDefinition, JobSchedule, PoolRule, DuplicateRule,
    WebhookSubscription, WebhookSettings, WebhookEvent, WebhookDelivery, WebhookAttempt, TeamRobot,
    ServiceQueue, SlaCalendar, SlaCalendarDay, SlaPolicy, TenantMailSettings, MailRoute, MailInbox,
    CustomerTier, CustomerTierPin, CustomerTierStanding, MarketingSettings,
)
# a campaign's sequence, its templates and what it sends (issue 14); a rep's part in a campaign is the
# tasks it gives them and the touches on their customers, which they read
MANAGER_WRITES: tuple[type, ...] = (Product, Campaign, CaseMacro, CampaignStep, EmailTemplate, MarketingMessage,
                                    MarketingEvent)
# the results rollup (decision 0051): written by the campaign_results_refresh job as the system, read by the page
CAMPAIGN_ROLLUP: tuple[type, ...] = (CampaignDaily, CampaignInfluence, CampaignResultsRun)
# the sales rollup (decision 0064): written by the sales_rollup job as the system, read by the funnel and dashboard
SALES_ROLLUP: tuple[type, ...] = (DealRollup, OrderRollup, CustomerRollup, TaskRollup, SalesRollupRun)
MANAGER_WRITES = (*MANAGER_WRITES, *CAMPAIGN_ROLLUP, *SALES_ROLLUP)
# ledgers: rows are added, never changed or removed (the person's history of consent, a campaign's touches)
APPEND_ONLY: tuple[type, ...] = (PoolEvent, ConsentRecord, MarketingEvent)


def may_write(actor: Actor, model: type) -> bool:
    """The role rule of a tenant's settings: :data:`ADMIN_ONLY_WRITES` by admins, :data:`MANAGER_WRITES` by
    managers and admins (each row is checked by it at flush; a use case may ask first, before it validates)."""
    if issubclass(model, ADMIN_ONLY_WRITES):
        return actor.is_admin
    if issubclass(model, MANAGER_WRITES):
        return actor.role in (Role.ADMIN, Role.MANAGER)
    return True


CASE_RECORDS: tuple[type, ...] = (CaseEvent, CaseSla, SlaEscalation, CaseMessage, CaseRating, CaseAttachment,
                                 CaseEntitlement)
WEBHOOK_RECORDS: tuple[type, ...] = (WebhookSubscription, WebhookEvent, WebhookDelivery, WebhookAttempt)


# --- the rules, in SQL ------------------------------------------------------------


def _owned_clause(actor: Actor, owner_column: Any, team_column: Any | None) -> ColumnElement[bool]:
    owners = set(actor.visible_owner_ids) | {actor.user_id}
    clauses: list[ColumnElement[bool]] = [owner_column.in_(sorted(owners))]
    if team_column is not None and actor.team_ids:
        clauses.append(and_(owner_column.is_(None), team_column.in_(sorted(actor.team_ids))))
    return or_(*clauses)


def customer_visibility(actor: Actor) -> ColumnElement[bool]:
    """SQL form of :func:`can_view` for customers."""
    if actor.sees_whole_tenant:
        return true()
    return _owned_clause(actor, Customer.owner_id, Customer.team_id)


def visibility_clause(actor: Actor, entity: type) -> ColumnElement[bool] | None:
    """The ownership criterion for ``entity`` (None when the tenant filter is enough)."""
    if entity is SavedView:  # private unless shared with the owner's team, whatever the role
        shared = and_(SavedView.shared_with_team.is_(True), SavedView.team_id.in_(sorted(actor.team_ids)))
        return or_(SavedView.user_id == actor.user_id, shared)
    if entity is Segment:
        return _visible_segments_clause(actor)
    if entity is SegmentSnapshot:
        return SegmentSnapshot.segment_id.in_(
            select(Segment.id).where(Segment.tenant_id == actor.tenant_id, _visible_segments_clause(actor))
        )
    if entity is Job:  # my jobs; an admin sees every job of the tenant
        return None if actor.is_admin else Job.requested_by_id == actor.user_id
    if entity is ApiToken:  # my API tokens; an admin sees (and revokes) every token of the tenant
        return None if actor.is_admin else ApiToken.user_id == actor.user_id
    if entity in WEBHOOK_RECORDS:  # admins only: payloads carry records other roles may not see
        return None if actor.is_admin else false()
    if entity is TeamRobot:  # admins only: the robot's URL and secret post to the team's group
        return None if actor.is_admin else false()
    if entity in (Notification, NotificationPreference):  # my own, whatever the role
        return entity.user_id == actor.user_id  # type: ignore[attr-defined, no-any-return]
    if entity is AccessRequest:  # mine, or about a customer whose owner (or team, when pooled) I see for
        if actor.is_admin:
            return None
        return or_(AccessRequest.requester_id == actor.user_id,
                   _owned_clause(actor, AccessRequest.owner_id, AccessRequest.team_id))
    if actor.sees_whole_tenant:
        return None
    if entity is Customer:
        return customer_visibility(actor)
    if entity is Opportunity:
        return _owned_clause(actor, Opportunity.owner_id, None)
    if entity is Order:  # its customer's rule, on the copy of the customer's owner and team
        return _owned_clause(actor, Order.customer_owner_id, Order.customer_team_id)
    if entity is Case:  # its customer's rule, or the actor's own case or queue (a rep works their queue)
        # its customer's rule on the copy of the customer's owner and team (migration 0031)
        return or_(_owned_clause(actor, Case.customer_owner_id, Case.customer_team_id), *_case_queue_clauses(actor))
    if entity in CASE_RECORDS:  # a case's history, clocks and escalations: that one case's rule
        case = aliased(Case)
        return exists().where(case.id == entity.case_id, case.tenant_id == actor.tenant_id,  # type: ignore[attr-defined]
                              or_(_owned_clause(actor, case.customer_owner_id, case.customer_team_id),
                                  case.assignee_id == actor.user_id,
                                  *([case.team_id.in_(sorted(actor.team_ids))] if actor.team_ids else [])))
    if entity is ServiceDaily:  # the dashboard's daily counts: the case rule on the slice's queue, assignee
        # and customer owner/team (decision 0033)
        return or_(_owned_clause(actor, ServiceDaily.customer_owner_id, ServiceDaily.customer_team_id),
                   ServiceDaily.assignee_id == actor.user_id,
                   *([ServiceDaily.team_id.in_(sorted(actor.team_ids))] if actor.team_ids else []))
    if entity is CampaignDaily:  # the results rollup (decision 0051): the slice's customer owner/team, as the touches
        return and_(CampaignDaily.whole.is_(False),
                    _owned_clause(actor, CampaignDaily.customer_owner_id, CampaignDaily.customer_team_id))
    if entity is DealRollup:  # the sales rollup (decision 0064): its owner's slice, as the deals it counts, or the
        # slice of a team the actor manages (decision 0065: its members' deals, as they were when counted)
        slices = _owned_clause(actor, DealRollup.owner_id, None)
        if actor.managed_teams:
            managed = sorted(team_id for team_id, _members in actor.managed_teams)
            slices = or_(slices, and_(DealRollup.owner_id.is_(None), DealRollup.team_id.in_(managed)))
        return and_(DealRollup.whole.is_(False), slices)
    if entity is OrderRollup:  # its customer owner/team slice, as the orders it counts (their copy of the customer's)
        return and_(OrderRollup.whole.is_(False),
                    _owned_clause(actor, OrderRollup.customer_owner_id, OrderRollup.customer_team_id))
    if entity is CustomerRollup:  # the customers' own rule on the slice's owner and team
        return and_(CustomerRollup.whole.is_(False),
                    _owned_clause(actor, CustomerRollup.owner_id, CustomerRollup.team_id))
    if entity is TaskRollup:  # the overdue work of the people whose work the actor sees (as the dashboard counts it)
        return and_(TaskRollup.whole.is_(False), _owned_clause(actor, TaskRollup.assignee_id, None))
    if entity is CampaignInfluence:  # the deal's rule and its customer's, as the live join of touches and deals
        return and_(_owned_clause(actor, CampaignInfluence.owner_id, None),
                    _owned_clause(actor, CampaignInfluence.customer_owner_id, CampaignInfluence.customer_team_id))
    if entity in (Contact, Activity, CampaignMember, PoolEvent, MarketingMessage, MarketingEvent):
        return _row_customer_visible(actor, entity.customer_id)  # type: ignore[attr-defined]
    if entity is ConsentRecord:  # about a customer I see, or about an address alone (no customer known)
        return or_(ConsentRecord.customer_id.is_(None), _row_customer_visible(actor, ConsentRecord.customer_id))
    if entity is OrderLine:
        return OrderLine.order_id.in_(
            select(Order.id).where(
                Order.tenant_id == actor.tenant_id,
                _owned_clause(actor, Order.customer_owner_id, Order.customer_team_id),
            )
        )
    if entity is Task:  # assigned to someone the actor sees for, or on a customer the actor sees (the copy of
        # the customer's owner and team on the task, kept by triggers: migration 0015)
        return or_(_owned_clause(actor, Task.assignee_id, None),
                   and_(Task.customer_id.is_not(None),
                        _owned_clause(actor, Task.customer_owner_id, Task.customer_team_id)))
    if entity is AuditEvent:
        return _audit_visibility(actor)
    if entity is ImportRun:
        return _owned_clause(actor, ImportRun.user_id, None)
    if entity in (OpportunityStageChange, OpportunityLine):  # its deal's rule, on that one deal (correlated EXISTS)
        deal = aliased(Opportunity)
        return exists().where(deal.id == entity.opportunity_id, deal.tenant_id == actor.tenant_id,  # type: ignore[attr-defined]
                              _owned_clause(actor, deal.owner_id, None))
    return None


def _case_queue_clauses(actor: Actor) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = [Case.assignee_id == actor.user_id]
    if actor.team_ids:
        clauses.append(Case.team_id.in_(sorted(actor.team_ids)))
    return clauses


def can_work_case(actor: Actor, *, tenant_id: int, assignee_id: int | None, team_id: int | None) -> bool:
    """May ``actor`` see a case because it is assigned to them or sits in their team's queue?"""
    return tenant_id == actor.tenant_id and (assignee_id == actor.user_id or (
        team_id is not None and team_id in actor.team_ids))


def _audit_visibility(actor: Actor) -> ColumnElement[bool]:
    """An audit event is visible with the record it is about (or when the actor made it).

    One correlated EXISTS per kind of record, each on that one row's own rule: a rep reading a case's,
    order's or task's history (the API's 412 names who changed it) sees what the record's readers see.
    """

    def about(name: str, model: Any) -> ColumnElement[bool]:
        rule = visibility_clause(actor, model)
        return and_(AuditEvent.entity == name, exists().where(
            model.id == AuditEvent.entity_id, model.tenant_id == actor.tenant_id,
            *([] if rule is None else [rule]),
        ))

    return or_(
        _owned_clause(actor, AuditEvent.actor_id, None),
        *(about(name, model) for name, model in (
            ("customer", Customer), ("opportunity", Opportunity), ("contact", Contact), ("activity", Activity),
            ("order", Order), ("case", Case), ("task", Task),
        )),
    )


def _row_customer_visible(actor: Actor, customer_id_column: Any) -> ColumnElement[bool]:
    """The row's own customer is visible: a correlated EXISTS on that one customer (primary-key lookup).

    Same rule as ``customer_id IN (every visible customer)`` but a query for one customer's
    activities no longer builds the list of every visible customer (333k ids for a manager at 1M).
    """
    owner = aliased(Customer)
    return exists().where(
        owner.id == customer_id_column,
        owner.tenant_id == actor.tenant_id,
        _owned_clause(actor, owner.owner_id, owner.team_id),
    )


def _visible_segments_clause(actor: Actor) -> ColumnElement[bool]:
    """Saved segments: the owner's, tenant-wide shared ones, team-shared ones of the actor's teams; admins see all."""
    if actor.is_admin:
        return true()
    return or_(
        Segment.owner_id == actor.user_id,
        Segment.sharing == SegmentSharing.TENANT,
        and_(Segment.sharing == SegmentSharing.TEAM, Segment.team_id.in_(sorted(actor.team_ids))),
    )


SCOPED_ENTITIES = (
    Customer, Opportunity, Contact, Activity, Order, OrderLine, Case, Task, AuditEvent, ImportRun,
    OpportunityStageChange, OpportunityLine, SavedView, Segment, SegmentSnapshot, CampaignMember, Job, ApiToken,
    PoolEvent,
    WebhookSubscription, WebhookEvent, WebhookDelivery, WebhookAttempt, Notification, NotificationPreference,
    TeamRobot, AccessRequest, CaseEvent, CaseSla, SlaEscalation, CaseMessage, CaseRating, CaseAttachment,
    CaseEntitlement, ServiceDaily, MarketingMessage, MarketingEvent, ConsentRecord, CampaignDaily, CampaignInfluence,
    DealRollup, OrderRollup, CustomerRollup, TaskRollup,
)


def bind_actor(session: Session, actor: Actor) -> None:
    """Scope ``session`` to ``actor``."""
    session.info[ACTOR_KEY] = actor
    session.info.pop(SYSTEM_KEY, None)


def bind_system(session: Session, reason: str, *, tenant_id: int | None = None) -> None:
    """Mark ``session`` as deliberate system work: unscoped, or (``tenant_id``) held to that one tenant's rows."""
    if not reason:
        raise ValueError("a system session needs a reason")
    session.info[SYSTEM_KEY] = reason
    session.info.pop(ACTOR_KEY, None)
    if tenant_id is None:
        session.info.pop(SYSTEM_TENANT_KEY, None)
    else:
        session.info[SYSTEM_TENANT_KEY] = tenant_id


def actor_of(session: Session) -> Actor | None:
    """The actor bound to ``session`` (None for system sessions)."""
    return session.info.get(ACTOR_KEY)


class UnscopedSession(RuntimeError):
    """ORM work on a session with neither an actor nor a system reason: a programming error."""


@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if not (state.is_select or state.is_update or state.is_delete):
        return
    session = state.session
    actor: Actor | None = session.info.get(ACTOR_KEY)
    tenant_id = actor.tenant_id if actor is not None else session.info.get(SYSTEM_TENANT_KEY)
    if state.is_column_load:
        # a refresh of rows already loaded: the query that loaded them carried the role's rules. It still names
        # the tenant (one node under Citus, decision 0057); SQLAlchemy leaves loader criteria out of refreshes
        mapper = state.bind_mapper
        if (tenant_id is not None and mapper is not None and issubclass(mapper.class_, TenantScoped)
                and isinstance(state.statement, Select)):
            state.statement = state.statement.where(mapper.class_.tenant_id == tenant_id)
        return
    if actor is None:
        if SYSTEM_KEY not in session.info:
            raise UnscopedSession("session has no actor and no system reason")
        if tenant_id is not None and not state.is_relationship_load:
            state.statement = state.statement.options(*_tenant_options(tenant_id))
        return
    if (state.is_update or state.is_delete) and not actor.can_write:
        raise AccessDenied("this role cannot change records")
    options = _scope_options(actor).for_statement(state.statement)
    if state.is_relationship_load:  # a lazy load carries the criteria of the query that loaded its parent
        carried = set(map(id, state.statement._with_options))
        options = tuple(option for option in options if id(option) not in carried)
    if options:
        state.statement = state.statement.options(*options)


@dataclass(frozen=True)
class ScopeOptions:
    """An actor's loader criteria: the tenant's (for every statement) and each scoped table's rule.

    A statement gets the tenant criteria and the rules of the tables it reads (in its FROM list, joins and
    subqueries), not all of them: SQLAlchemy builds the cache key of every option on every execution, and
    one per scoped entity cost about 4 ms per statement (decision 0037). Criteria only ever apply to the
    entities a statement names, so the SQL is the same as with all of them. A rule that reads another
    table (a case's clocks test their case) brings that table's rule too, as before.
    """

    tenant: tuple[Any, ...]
    by_table: dict[str, tuple[Any, ...]]  # table name → the rules that apply once it is read, in order
    every: tuple[Any, ...]  # all of them: for a statement whose tables cannot be listed

    def for_statement(self, statement: Any) -> tuple[Any, ...]:
        if getattr(statement, "_with_options", None) and any(
                not isinstance(option, LoaderCriteriaOption) for option in statement._with_options):
            return self.every  # eager-loading options join tables the statement does not name
        names = {element.name for element in visitors.iterate(statement) if isinstance(element, Table)}
        if not names:
            return self.every
        chosen: dict[int, Any] = {}
        for name in names:
            for option in self.by_table.get(name, ()):
                chosen[id(option)] = option
        return self.tenant + tuple(option for option in self.every[len(self.tenant):] if id(option) in chosen)


@functools.lru_cache(maxsize=512)
def _tenant_options(tenant_id: int) -> tuple[Any, ...]:
    """The tenant's criteria: every tenant-scoped row, and the tenant's own row."""
    return (
        with_loader_criteria(
            TenantScoped,
            lambda cls: cls.tenant_id == tenant_id,
            include_aliases=True,
        ),
        with_loader_criteria(Tenant, Tenant.id == tenant_id, include_aliases=True),
    )


@functools.lru_cache(maxsize=512)
def _scope_options(actor: Actor) -> ScopeOptions:
    """The loader criteria for ``actor``, built once per actor (Actor is frozen and hashable).

    Building the visibility clauses costs several milliseconds; a page runs a dozen statements.
    """
    tenant = _tenant_options(actor.tenant_id)
    rules: list[tuple[str, ColumnElement[bool], Any]] = []
    for entity in SCOPED_ENTITIES:
        clause = visibility_clause(actor, entity)
        if clause is not None:
            table = entity.__table__.name  # type: ignore[attr-defined]
            rules.append((table, clause, with_loader_criteria(entity, clause, include_aliases=True)))
    reads: dict[str, set[str]] = {}  # table → the tables whose rules apply with its own (itself included)
    for table, clause, _option in rules:
        reads.setdefault(table, {table}).update(
            element.name for element in visitors.iterate(clause) if isinstance(element, Table))
    changed = True
    while changed:  # a rule reading a table whose rule reads a third one (audit → contacts → customers)
        changed = False
        for names in reads.values():
            more = set().union(*(reads.get(name, set()) for name in names)) - names
            if more:
                names.update(more)
                changed = True
    by_table = {table: tuple(option for other, _clause, option in rules if other in names)
                for table, names in reads.items()}
    return ScopeOptions(tenant=tenant, by_table=by_table,
                        every=tenant + tuple(option for _table, _clause, option in rules))


# --- writes: permission checks and audit --------------------------------------------


def _serialise(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (list, tuple)):
        return [_serialise(item) for item in value]
    if isinstance(value, dict):
        return {key: _serialise(item) for key, item in value.items()}
    return value


_NOT_AUDITED_COLUMNS = {
    "version", "updated_at", "created_at", "password_hash", "secret_hash", "signing_secret", "previous_signing_secret",
    "smtp_password_encrypted", "password_encrypted",
}


def entity_name(obj: Any) -> str:
    """The audit name of a mapped object: its table name in the singular."""
    return table_entity_name(type(obj).__tablename__)


def table_entity_name(table: str) -> str:
    """The audit name of the records of ``table`` (customers → customer, activities → activity)."""
    if table.endswith("ies"):
        return table[:-3] + "y"
    if table.endswith("ses") and table != "cases":
        return table[:-2]
    return table[:-1] if table.endswith("s") else table


def field_changes(obj: Any, *, new: bool = False) -> dict[str, list[Any]]:
    """``{column: [old, new]}`` for the columns changed on ``obj`` in this flush."""
    changes: dict[str, list[Any]] = {}
    state = inspect(obj)
    for attribute in state.mapper.column_attrs:
        key = attribute.key
        if key in _NOT_AUDITED_COLUMNS or (new and key == "id"):
            continue
        history = state.attrs[key].history
        if new:
            value = getattr(obj, key)
            if value is not None and value != "" and value != {} and value != []:
                changes[key] = [None, _serialise(value)]
        elif history.has_changes():
            old = history.deleted[0] if history.deleted else None
            now = history.added[0] if history.added else None
            if old != now:
                changes[key] = [_serialise(old), _serialise(now)]
    password_changed = "password_hash" in {a.key for a in state.mapper.column_attrs} and (
        state.attrs["password_hash"].history.has_changes()
    )
    if password_changed:
        changes["password"] = ["***", "***"]
    return changes


def _check_segment_write(session: Session, actor: Actor, obj: Any) -> None:
    # analysts build segments too: the one kind of record their role writes
    if obj.tenant_id is None:
        obj.tenant_id = actor.tenant_id
    elif obj.tenant_id != actor.tenant_id:
        raise AccessDenied("record belongs to another tenant")
    if isinstance(obj, Segment):
        history = inspect(obj).attrs.owner_id.history
        owner = history.deleted[0] if history.deleted else obj.owner_id
        if not actor.is_admin and (owner != actor.user_id or obj.owner_id != actor.user_id):
            raise AccessDenied("a segment is changed by its owner or an admin")
        return
    with session.no_autoflush:
        visible = session.execute(select(Segment.id).where(Segment.id == obj.segment_id)).scalar_one_or_none()
    if visible is None and not any(isinstance(o, Segment) and o.id == obj.segment_id for o in session.new):
        raise AccessDenied("segment is outside your scope")


def _check_write(session: Session, actor: Actor, obj: Any, *, deleting: bool = False) -> None:
    if isinstance(obj, (Segment, SegmentSnapshot)):
        _check_segment_write(session, actor, obj)
        return
    if isinstance(obj, (ScoringModel, Score)):
        raise AccessDenied("scores are written by the scoring runs only")
    if isinstance(obj, Job):
        _check_job_write(actor, obj)
        return
    if isinstance(obj, ApiToken):
        _check_api_token_write(actor, obj)
        return
    if isinstance(obj, (Notification, NotificationPreference)):
        _check_own_notification_write(actor, obj)
        return
    if isinstance(obj, AuditEvent) and not actor.can_write:
        # the audit rows of an analyst's own segment writes, added by _write_audit
        if deleting or inspect(obj).persistent or obj.entity not in (
                "segment", "segment_snapshot", "job", "api_token", "notification_preference",
                "case_attachment"):  # an analyst's download of a case's file (services.case_attachments)
            raise AccessDenied("analysts cannot change records")
        if obj.tenant_id != actor.tenant_id:
            raise AccessDenied("record belongs to another tenant")
        return
    if not actor.can_write:
        raise AccessDenied("analysts cannot change records")
    if isinstance(obj, Tenant):
        if not actor.is_admin or obj.id != actor.tenant_id:
            raise AccessDenied("only an admin may change their tenant")
        return
    if isinstance(obj, TenantScoped):
        if obj.tenant_id is None:
            obj.tenant_id = actor.tenant_id
        elif obj.tenant_id != actor.tenant_id:
            raise AccessDenied("record belongs to another tenant")
    if isinstance(obj, AuditEvent):
        if deleting or inspect(obj).persistent:
            raise AccessDenied("the audit trail is append-only")
        return
    if isinstance(obj, APPEND_ONLY) and (deleting or inspect(obj).persistent):
        raise AccessDenied("the pool's ledger is append-only" if isinstance(obj, PoolEvent)
                           else "this ledger is append-only")
    if isinstance(obj, CaseAttachment) and deleting:
        _check_case_file_removal(session, actor, obj)
    if isinstance(obj, DoNotContact) and deleting and actor.role not in (Role.ADMIN, Role.MANAGER):
        # anyone who works with customers adds an address (a person says "never again"); taking one off
        # the list is a manager's or an admin's decision
        raise AccessDenied("only a manager or admin may take an address off the do-not-contact list")
    if not may_write(actor, type(obj)):
        raise AccessDenied("only an admin may change this" if isinstance(obj, ADMIN_ONLY_WRITES)
                           else "only a manager or admin may change this")
    if isinstance(obj, SavedView) and obj.user_id != actor.user_id:
        raise AccessDenied("a saved view is changed by its owner only")
    if isinstance(obj, AccessRequest):
        _check_access_request_write(actor, obj)
    if isinstance(obj, Customer):
        if _granted(session, obj):
            return
        _check_owned(actor, obj, obj.owner_id, obj.team_id)
        _check_pool_take(session, actor, obj)
    elif isinstance(obj, Opportunity):
        _check_owned(actor, obj, obj.owner_id, None)
        _check_customer_visible(session, actor, obj.customer_id)
    elif isinstance(obj, Case):
        if not can_work_case(actor, tenant_id=obj.tenant_id, assignee_id=obj.assignee_id, team_id=obj.team_id):
            _check_customer_visible(session, actor, obj.customer_id)
    elif isinstance(obj, (Contact, Activity, Order, CampaignMember, PoolEvent, MarketingMessage, MarketingEvent,
                          ConsentRecord)):
        if obj.customer_id is not None:  # a consent record may be about an address alone
            _check_customer_visible(session, actor, obj.customer_id)
    elif isinstance(obj, (OpportunityStageChange, OpportunityLine)):
        if not actor.sees_whole_tenant:
            with session.no_autoflush:
                visible = session.execute(
                    select(Opportunity.id).where(Opportunity.id == obj.opportunity_id)
                ).scalar_one_or_none()
            if visible is None:
                raise AccessDenied("deal is outside your scope")
    elif isinstance(obj, Task):
        if obj.customer_id is not None:
            _check_customer_visible(session, actor, obj.customer_id)
        elif not can_assign_owner(actor, obj.assignee_id):
            raise AccessDenied("cannot assign a task to that user")


def _check_case_file_removal(session: Session, actor: Actor, attachment: CaseAttachment) -> None:
    with session.no_autoflush:
        status = session.execute(select(Case.status).where(Case.id == attachment.case_id)).scalar_one_or_none()
    if status is None:
        raise AccessDenied("case is outside your scope")
    closed = status == CaseStatus.CLOSED.value
    if not can_remove_case_file(actor, uploaded_by_id=attachment.uploaded_by_id, case_closed=closed):
        raise AccessDenied("a case's file is removed by whoever uploaded it, or by a manager or admin")


def _check_job_write(actor: Actor, job: Job) -> None:
    # every role starts jobs (an analyst's export or check); each changes only their own, admins any
    if job.tenant_id is None:
        job.tenant_id = actor.tenant_id
    elif job.tenant_id != actor.tenant_id:
        raise AccessDenied("record belongs to another tenant")
    if job.requested_by_id != actor.user_id and not actor.is_admin:
        raise AccessDenied("a job is changed by its requester or an admin")


def _check_own_notification_write(actor: Actor, obj: Notification | NotificationPreference) -> None:
    # anyone's action may notify a colleague of the tenant (a task given, a mention); each user
    # reads and changes only their own notifications and preferences, analysts included
    if obj.tenant_id is None:
        obj.tenant_id = actor.tenant_id
    elif obj.tenant_id != actor.tenant_id:
        raise AccessDenied("record belongs to another tenant")
    new = bool(inspect(obj).pending)  # type: ignore[attr-defined]
    if (isinstance(obj, NotificationPreference) or not new) and obj.user_id != actor.user_id:
        raise AccessDenied("a notification is changed by its own user")


def _check_access_request_write(actor: Actor, request: AccessRequest) -> None:
    # asked by the requester for themselves; changed (decided, cancelled) by the requester or by
    # whoever may edit the customer's owner's records (the owner, their manager, an admin)
    if inspect(request).pending:
        if request.requester_id != actor.user_id:
            raise AccessDenied("an access request is made by its requester")
        return
    if request.requester_id != actor.user_id and not can_edit(
            actor, tenant_id=request.tenant_id, owner_id=request.owner_id, team_id=request.team_id):
        raise AccessDenied("access request is outside your scope")


def _granted(session: Session, customer: Customer) -> bool:
    """The customer goes to the requester of an approved access request (the service checked the decider)."""
    grants: dict[int, int] = session.info.get(ACCESS_GRANT_KEY) or {}
    state = inspect(customer)
    return (state.persistent and customer.id in grants and customer.owner_id == grants[customer.id]
            and set(state.attrs.owner_id.history.added or []) <= {grants[customer.id]})


def _check_api_token_write(actor: Actor, token: ApiToken) -> None:
    # every role holds tokens of its own (an analyst's read-only script); an admin revokes any
    if token.tenant_id is None:
        token.tenant_id = actor.tenant_id
    elif token.tenant_id != actor.tenant_id:
        raise AccessDenied("record belongs to another tenant")
    state = inspect(token)
    if state.pending and token.user_id != actor.user_id:
        raise AccessDenied("a token is created by its own user")
    if token.user_id != actor.user_id and not actor.is_admin:
        raise AccessDenied("a token is changed by its user or an admin")


def _check_owned(actor: Actor, obj: Any, owner_id: int | None, team_id: int | None) -> None:
    state = inspect(obj)
    owner_history = state.attrs.owner_id.history
    if (owner_history.has_changes() or state.pending) and not can_assign_owner(actor, owner_id):
        raise AccessDenied("cannot give this record to that owner")
    if state.persistent:
        old_owner = owner_history.deleted[0] if owner_history.deleted else owner_id
        old_team = team_id
        if "team_id" in state.attrs and state.attrs.team_id.history.deleted:
            old_team = state.attrs.team_id.history.deleted[0]
        if not can_edit(actor, tenant_id=obj.tenant_id, owner_id=old_owner, team_id=old_team):
            raise AccessDenied("record is outside your scope")
    elif (
        owner_id is None and team_id is None and actor.team_ids and not actor.sees_whole_tenant
        and isinstance(obj, Customer)
    ):
        # an unowned record created by a rep or manager stays visible to their team
        obj.team_id = min(actor.team_ids)


def _check_pool_take(session: Session, actor: Actor, customer: Customer) -> None:
    """A rep takes an unowned customer (the pool) only by claiming it, so the pool's caps and cooldown
    apply however the owner is set: form, bulk action, API (``crm_core.services.pool`` claims)."""
    if actor.role != Role.REP or session.info.get(POOL_CLAIM_KEY) or not inspect(customer).persistent:
        return
    history = inspect(customer).attrs.owner_id.history
    if customer.owner_id is not None and history.deleted and history.deleted[0] is None:
        raise PoolRefused("pool.error.claim_required")


def _check_customer_visible(session: Session, actor: Actor, customer_id: int | None) -> None:
    if customer_id is None or actor.sees_whole_tenant:
        return
    with session.no_autoflush:
        found = session.execute(
            select(Customer.id).where(Customer.id == customer_id)
        ).scalar_one_or_none()
    if found is None:
        raise AccessDenied("customer is outside your scope")


# the audit trail itself, and notifications: derived from audited changes, each a user's own read state
# AuditEvent is the trail itself; the marketing outbox and touches are ledgers of their own, written by
# the thousand per launch and per send run (the launch, the pause, every template and step edit are audited)
NOT_AUDITED: tuple[type, ...] = (AuditEvent, Notification, MarketingMessage, MarketingEvent, *CAMPAIGN_ROLLUP,
                                 *SALES_ROLLUP)
# rows whose deletion keeps what they held in the trail: a removed case file's name, case, uploader and content key
DELETE_KEEPS_VALUES: tuple[type, ...] = (CaseAttachment,)


@event.listens_for(Session, "before_flush")
def _before_flush(session: Session, _flush_context: Any, _instances: Iterable[Any] | None) -> None:
    actor: Actor | None = session.info.get(ACTOR_KEY)
    if actor is None and SYSTEM_KEY not in session.info:
        if session.new or session.dirty or session.deleted:
            raise UnscopedSession("writes need an actor or a system reason")
        return
    pending: list[tuple[Any, str, dict[str, list[Any]]]] = session.info.setdefault(
        PENDING_AUDIT_KEY, []
    )
    skip_audit = session.info.get(SKIP_AUDIT_KEY, False)
    for obj in list(session.new):
        if actor is not None:
            _check_write(session, actor, obj)
        if isinstance(obj, Customer):
            _derive_customer_columns(obj, new=True)
        if not isinstance(obj, NOT_AUDITED) and not skip_audit:
            pending.append((obj, "create", field_changes(obj, new=True)))
    for obj in list(session.dirty):
        if not session.is_modified(obj, include_collections=False):
            continue
        if isinstance(obj, Customer):
            _derive_customer_columns(obj, new=False)
        if actor is not None:
            _check_write(session, actor, obj)
        if isinstance(obj, NOT_AUDITED) or skip_audit:
            continue
        changes = field_changes(obj)
        if not changes:
            continue
        action = "update"
        archived = changes.get("archived_at")
        if archived is not None:
            action = "archive" if archived[1] is not None else "restore"
        pending.append((obj, action, changes))
    for obj in list(session.deleted):
        if actor is not None:
            _check_write(session, actor, obj, deleting=True)
        if not isinstance(obj, NOT_AUDITED) and not skip_audit:
            pending.append((obj, "delete", _removed_values(obj) if isinstance(obj, DELETE_KEEPS_VALUES) else {}))


def _removed_values(obj: Any) -> dict[str, list[Any]]:
    """``{column: [value, None]}`` of a row being deleted (its id is the audit row's entity id)."""
    state = inspect(obj)
    return {attribute.key: [_serialise(getattr(obj, attribute.key)), None] for attribute in state.mapper.column_attrs
            if attribute.key not in _NOT_AUDITED_COLUMNS and attribute.key != "id"}


def _derive_customer_columns(customer: Customer, *, new: bool) -> None:
    """Columns the session keeps in step for every ORM write of a customer (bulk inserts set them too):
    ``owner_since`` (the pool's idle clock) and ``name_key`` (the duplicate check's company key)."""
    state = inspect(customer)
    if new:
        if customer.owner_id is not None and customer.owner_since is None:
            customer.owner_since = utcnow()
    elif state.attrs.owner_id.history.has_changes():
        customer.owner_since = utcnow() if customer.owner_id is not None else None
    if new or state.attrs.name.history.has_changes():
        customer.name_key = company_key(customer.name) or None


@event.listens_for(Session, "after_flush_postexec")
def _write_audit(session: Session, _flush_context: Any) -> None:
    pending = session.info.pop(PENDING_AUDIT_KEY, None)
    if not pending:
        return
    actor: Actor | None = session.info.get(ACTOR_KEY)
    reason = session.info.get(SYSTEM_KEY)
    audited: list[AuditedChange] = []
    for obj, action, changes in pending:
        tenant_id = obj.id if isinstance(obj, Tenant) else getattr(obj, "tenant_id", None)
        if tenant_id is None:
            continue
        if reason and not actor:
            changes = {**changes, "_source": ["", reason]}
        if AUDIT_TAG_KEY in session.info:
            # e.g. {"_import_run": [None, 42]}: lets a run find (and revert) its own changes
            changes = {**changes, **session.info[AUDIT_TAG_KEY]}
        session.add(
            AuditEvent(
                tenant_id=tenant_id,
                actor_id=actor.user_id if actor else None,
                action=action,
                entity=entity_name(obj),
                entity_id=obj.id,
                changes=changes,
            )
        )
        audited.append((obj, entity_name(obj), action, changes, tenant_id))
    record_outbox(session, audited)  # webhook events of these changes, in the same transaction


@event.listens_for(Session, "after_rollback")
def _forget_audit(session: Session) -> None:
    session.info.pop(PENDING_AUDIT_KEY, None)
