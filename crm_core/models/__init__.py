"""Domain model: SQLAlchemy 2.x declarative mapping of every Kestrel CRM table.

Conventions: every business table carries ``tenant_id`` (the :class:`TenantScoped`
mixin, which :mod:`crm_core.access` uses to scope every query); every row has
``created_at``/``updated_at`` (naive UTC); editable entities carry ``version``,
SQLAlchemy's optimistic-locking counter. Money is ``Numeric(14, 2)``, never float.
Indexes put ``tenant_id`` first because every query is filtered by it.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    FetchedValue,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.orm import DeclarativeBase, Mapped, declared_attr, mapped_column, relationship

Money = Numeric(14, 2)

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Naive UTC now: every timestamp is stored this way on every database."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    """Declarative base with the constraint naming convention Alembic relies on."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Timestamped:
    """``id``, ``created_at`` and ``updated_at`` for every row."""

    # autoincrement stated: on a tenant's row the key is (id, tenant_id), where SQLAlchemy would not guess it
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    created_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow, onupdate=utcnow)


class TenantScoped(Timestamped):
    """A business row that belongs to exactly one tenant.

    Its key is ``(id, tenant_id)`` (decision 0057): the unit of work's UPDATE and DELETE then say
    ``WHERE id = … AND tenant_id = …``, which a database distributed by tenant (Citus) sends to the one node
    holding the row instead of every node. ``id`` alone still names the row in the session
    (``session.get(Customer, 5)``): it is unique on its own, drawn from one sequence.
    """

    @declared_attr
    def tenant_id(cls) -> Mapped[int]:  # noqa: N805 - declared_attr takes the class
        return mapped_column(ForeignKey("tenants.id"), primary_key=True, autoincrement=False, index=False)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return _mapper_args(cls)


class Versioned:
    """Optimistic locking: an UPDATE matching a stale ``version`` raises StaleDataError."""

    version: Mapped[int] = mapped_column(Integer, default=1)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:  # noqa: N805
        return _mapper_args(cls)


def _mapper_args(cls: Any) -> dict[str, Any]:
    """A tenant's row is known to the session by ``id``; a versioned row's UPDATE checks its ``version``."""
    table = cls.__table__
    args: dict[str, Any] = {}
    if "tenant_id" in table.c and table.c.tenant_id.primary_key:
        args["primary_key"] = [table.c.id]
    if "version" in table.c and issubclass(cls, Versioned):
        args["version_id_col"] = table.c.version
    return args


class Role(enum.StrEnum):
    """What a user may do inside their tenant."""

    ADMIN = "admin"
    MANAGER = "manager"
    REP = "rep"
    ANALYST = "analyst"


class LifecycleStage(enum.StrEnum):
    """Customer lifecycle: 潜客 → 意向客户 → 成交客户 → 流失客户."""

    PROSPECT = "prospect"
    INTENT = "intent"
    CUSTOMER = "customer"
    CHURNED = "churned"


class CustomerKind(enum.StrEnum):
    COMPANY = "company"
    PERSON = "person"


class StageKind(enum.StrEnum):
    OPEN = "open"
    WON = "won"
    LOST = "lost"


class ActivityType(enum.StrEnum):
    CALL = "call"
    MEETING = "meeting"
    EMAIL = "email"
    VISIT = "visit"
    NOTE = "note"


class TaskStatus(enum.StrEnum):
    OPEN = "open"
    DONE = "done"
    CANCELLED = "cancelled"


class Priority(enum.StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class OrderStatus(enum.StrEnum):
    DRAFT = "draft"
    CONFIRMED = "confirmed"
    FULFILLED = "fulfilled"
    CANCELLED = "cancelled"


class CaseStatus(enum.StrEnum):
    """A case's place in its flow (:mod:`crm_core.rules.case_flow`)."""

    NEW = "new"
    OPEN = "open"
    PENDING = "pending"  # waiting on the customer
    ON_HOLD = "on_hold"  # waiting on someone inside
    RESOLVED = "resolved"
    CLOSED = "closed"


class CasePriority(enum.StrEnum):
    """A case's priority (tasks keep :class:`Priority`); each has its SLA policy."""

    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class CaseChannel(enum.StrEnum):
    """How the customer reached us."""

    PHONE = "phone"
    EMAIL = "email"
    WEB = "web"
    CHAT = "chat"
    VISIT = "visit"


def _enum_values(enum_class: type[enum.Enum]) -> list[str]:
    return [member.value for member in enum_class]


class Tenant(Timestamped, Versioned, Base):
    """A company using Kestrel CRM; every business row belongs to one."""

    __tablename__ = "tenants"

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    churn_window_days: Mapped[int] = mapped_column(Integer, default=180)
    default_currency: Mapped[str] = mapped_column(String(3), default="CNY")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)


class Team(TenantScoped, Versioned, Base):
    """A sales team; its manager sees the customers and deals of its members."""

    __tablename__ = "teams"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    region: Mapped[str | None] = mapped_column(String(120))
    manager_id: Mapped[int | None] = mapped_column(
        ForeignKey("users.id", use_alter=True, name="fk_teams_manager_id_users")
    )


class User(TenantScoped, Versioned, Base):
    """A person who logs in. ``username`` is unique across tenants and always lower case."""

    __tablename__ = "users"
    __table_args__ = (Index(None, "tenant_id", "role"),)

    username: Mapped[str] = mapped_column(String(64), unique=True)
    full_name: Mapped[str] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    password_hash: Mapped[str] = mapped_column(String(100))
    role: Mapped[str] = mapped_column(String(16), default=Role.REP.value)
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    language: Mapped[str] = mapped_column(String(8), default="en")
    failed_login_count: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # Sessions that started (and cookies issued) before this instant are over: set by logout, a password or
    # role change, a deactivation. Microseconds on MariaDB too: a login a moment later must stay valid.
    sessions_valid_after: Mapped[dt.datetime | None] = mapped_column(
        DateTime().with_variant(mysql.DATETIME(fsp=6), "mysql", "mariadb")
    )
    last_login_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    team: Mapped[Team | None] = relationship(foreign_keys=[team_id])


GRID_INDEX_TAIL = ("id", "owner_id", "team_id", "archived_at")


class Customer(TenantScoped, Versioned, Base):
    """A company or person we sell to (客户)."""

    __tablename__ = "customers"
    __table_args__ = (
        Index(None, "tenant_id", "owner_id", "updated_at"),
        Index(None, "tenant_id", "team_id", "owner_id"),
        Index(None, "tenant_id", "team_id", "updated_at"),
        Index(None, "tenant_id", "email_normalized"),
        Index(None, "tenant_id", "phone_normalized"),
        Index(None, "tenant_id", "external_id"),
        Index(None, "tenant_id", "name_key"),  # 查重: the company-name key (rules.contact_details.company_key)
        Index(None, "tenant_id", "credit_code"),  # 查重: the unified social credit code (rules.identifiers)
        # the grid's sort and filter indexes end with the visibility columns (migration 0009):
        # a rep's page tests owner/team/archived on the index entry, not the table row
        *(
            Index(f"ix_customers_tenant_id_{'_'.join(lead)}", "tenant_id", *lead, *GRID_INDEX_TAIL)
            for lead in (
                ("updated_at",), ("created_at",), ("name",), ("last_contacted_at",),
                ("lifecycle_stage", "updated_at"), ("industry", "updated_at"), ("region", "updated_at"),
                ("province_code", "updated_at"),
            )
        ),
    )

    name: Mapped[str] = mapped_column(String(200))
    name_key: Mapped[str | None] = mapped_column(String(200))  # company_key(name), kept by every write path
    kind: Mapped[str] = mapped_column(String(16), default=CustomerKind.COMPANY.value)
    industry: Mapped[str | None] = mapped_column(String(80))
    region: Mapped[str | None] = mapped_column(String(80))
    # GB/T 2260 codes of the province → city → district cascade (rules.regions, decision 0026)
    province_code: Mapped[str | None] = mapped_column(String(6))
    city_code: Mapped[str | None] = mapped_column(String(6))
    district_code: Mapped[str | None] = mapped_column(String(6))
    # 统一社会信用代码, compact and upper-case (rules.identifiers.compact_credit_code)
    credit_code: Mapped[str | None] = mapped_column(String(18))
    source: Mapped[str | None] = mapped_column(String(80))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    lifecycle_stage: Mapped[str] = mapped_column(String(16), default=LifecycleStage.PROSPECT.value)
    # Stored as ",tag1,tag2," so a tag filter is a plain LIKE on every database.
    tags: Mapped[str] = mapped_column(String(500), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    email_normalized: Mapped[str | None] = mapped_column(String(254))
    phone: Mapped[str | None] = mapped_column(String(40))
    phone_normalized: Mapped[str | None] = mapped_column(String(40))
    external_id: Mapped[str | None] = mapped_column(String(80))
    last_contacted_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    next_follow_up_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    custom_fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    # when the current owner got it (set by the session on every change of owner): the pool's
    # idle clock starts there, so a customer just claimed is not returned for an old silence
    owner_since: Mapped[dt.datetime | None] = mapped_column(DateTime)

    owner: Mapped[User | None] = relationship(foreign_keys=[owner_id])
    team: Mapped[Team | None] = relationship(foreign_keys=[team_id])

    @property
    def tag_list(self) -> list[str]:
        """Tags as a list, in stored order."""
        return [tag for tag in (self.tags or "").split(",") if tag]


class DuplicateRule(TenantScoped, Versioned, Base):
    """What the duplicate check (查重) does when a key matches: ``off``, ``warn`` or ``block``.

    One row per tenant, entity and key; a key without a row takes its default
    (``crm_core.rules.duplicates.DEFAULT_ACTIONS``). Admins edit them.
    """

    __tablename__ = "duplicate_rules"
    __table_args__ = (UniqueConstraint("tenant_id", "entity", "match_key"),)

    entity: Mapped[str] = mapped_column(String(32), default="customer")
    match_key: Mapped[str] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(8))


class Contact(TenantScoped, Versioned, Base):
    """A person at a customer (联系人)."""

    __tablename__ = "contacts"
    __table_args__ = (
        Index(None, "tenant_id", "customer_id"),
        Index(None, "tenant_id", "email_normalized"),  # 查重 of contacts (services.contacts)
        Index(None, "tenant_id", "phone_normalized"),
        Index(None, "tenant_id", "external_id", unique=True),  # the old system's id (migration 0037, decision 0042)
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    name: Mapped[str] = mapped_column(String(120))
    title: Mapped[str | None] = mapped_column(String(120))
    email: Mapped[str | None] = mapped_column(String(254))
    email_normalized: Mapped[str | None] = mapped_column(String(254))  # rules.contact_details.normalise_email
    phone: Mapped[str | None] = mapped_column(String(40))
    phone_normalized: Mapped[str | None] = mapped_column(String(40))  # E.164 (normalise_phone)
    is_primary: Mapped[bool] = mapped_column(Boolean, default=False)
    external_id: Mapped[str | None] = mapped_column(String(80))  # unique per tenant when given (NULLs never collide)
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Product(TenantScoped, Versioned, Base):
    """Something we sell, with a list price."""

    __tablename__ = "products"
    __table_args__ = (UniqueConstraint("tenant_id", "sku"), Index(None, "tenant_id", "external_id", unique=True))

    # optional (another CRM's product list may have no codes); unique per tenant when given (NULLs never collide)
    sku: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(200))
    unit_price: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    external_id: Mapped[str | None] = mapped_column(String(80))  # unique per tenant when given
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Pipeline(TenantScoped, Versioned, Base):
    """A sales process; every tenant has a default one."""

    __tablename__ = "pipelines"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)

    stages: Mapped[list[PipelineStage]] = relationship(
        back_populates="pipeline", order_by="PipelineStage.position"
    )


class PipelineStage(TenantScoped, Versioned, Base):
    """A step of a pipeline with its win probability (percent) and kind (open/won/lost)."""

    __tablename__ = "pipeline_stages"
    __table_args__ = (UniqueConstraint("pipeline_id", "position"),)

    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    name: Mapped[str] = mapped_column(String(120))
    position: Mapped[int] = mapped_column(Integer)
    probability: Mapped[int] = mapped_column(Integer, default=0)
    kind: Mapped[str] = mapped_column(String(8), default=StageKind.OPEN.value)

    pipeline: Mapped[Pipeline] = relationship(back_populates="stages")


class Opportunity(TenantScoped, Versioned, Base):
    """A deal (商机) moving through a pipeline."""

    __tablename__ = "opportunities"
    __table_args__ = (
        Index(None, "tenant_id", "pipeline_id", "stage_id"),
        Index(None, "tenant_id", "customer_id"),
        Index(None, "tenant_id", "expected_close_date"),
        Index(None, "tenant_id", "closed_at"),
        Index(None, "tenant_id", "created_at"),  # the deals created since the sales rollup's count (0064)
        # the biggest deals closing this month, read from the top: they stop after ten matches (0064)
        Index(None, "tenant_id", "amount", "id"),
        Index(None, "tenant_id", "owner_id", "amount", "id"),
        Index(None, "tenant_id", "product_id"),
        Index(None, "tenant_id", "external_id", unique=True),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    pipeline_id: Mapped[int] = mapped_column(ForeignKey("pipelines.id"))
    stage_id: Mapped[int] = mapped_column(ForeignKey("pipeline_stages.id"))
    name: Mapped[str] = mapped_column(String(200))
    amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    # Percent set by hand; when NULL the stage's probability applies.
    probability: Mapped[int | None] = mapped_column(Integer)
    expected_close_date: Mapped[dt.date | None] = mapped_column(Date)
    closed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    lost_reason: Mapped[str | None] = mapped_column(String(500))
    won_reason: Mapped[str | None] = mapped_column(String(500))  # what won it, in words (optional)
    # the stage a lost deal was lost from (copy of its latest move in the history, migration 0011)
    lost_from_stage_id: Mapped[int | None] = mapped_column(Integer)
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"))  # what the deal sells (optional)
    external_id: Mapped[str | None] = mapped_column(String(80))  # unique per tenant when given
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Order(TenantScoped, Versioned, Base):
    """A sale booked against a customer (订单)."""

    __tablename__ = "orders"
    __table_args__ = (
        Index(None, "tenant_id", "customer_id", "ordered_at"),
        Index(None, "tenant_id", "ordered_at"),
        UniqueConstraint("tenant_id", "order_number"),
        Index(None, "tenant_id", "external_id", unique=True),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"))
    owner_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # the seller credited
    # The customer's owner and team, copied by database triggers (migration 0010) so that who
    # may see the order (its customer's rule) is a test on the order's own indexed columns.
    customer_owner_id: Mapped[int | None] = mapped_column(
        Integer, server_default=FetchedValue(), server_onupdate=FetchedValue()
    )
    customer_team_id: Mapped[int | None] = mapped_column(
        Integer, server_default=FetchedValue(), server_onupdate=FetchedValue()
    )
    order_number: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default=OrderStatus.CONFIRMED.value)
    ordered_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    total_amount: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    external_id: Mapped[str | None] = mapped_column(String(80))  # unique per tenant when given
    archived_at: Mapped[dt.datetime | None] = mapped_column(DateTime)

    lines: Mapped[list[OrderLine]] = relationship(back_populates="order")


class OrderLine(TenantScoped, Base):
    """One product on an order."""

    __tablename__ = "order_lines"
    __table_args__ = (Index(None, "tenant_id", "order_id"), Index(None, "tenant_id", "product_id"))

    order_id: Mapped[int] = mapped_column(ForeignKey("orders.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[Decimal] = mapped_column(Numeric(12, 2), default=Decimal("1"))
    unit_price: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))

    order: Mapped[Order] = relationship(back_populates="lines")


class Activity(TenantScoped, Base):
    """A logged touch: call, meeting, email, visit or note (跟进记录)."""

    __tablename__ = "activities"
    __table_args__ = (
        Index(None, "tenant_id", "customer_id", "occurred_at"),
        Index(None, "tenant_id", "author_id", "occurred_at"),
    )

    type: Mapped[str] = mapped_column(String(16), default=ActivityType.NOTE.value)
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"))
    author_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    summary: Mapped[str] = mapped_column(Text, default="")


class Task(TenantScoped, Versioned, Base):
    """A follow-up to do (跟进任务)."""

    __tablename__ = "tasks"
    __table_args__ = (
        Index(None, "tenant_id", "assignee_id", "status", "due_at"),
        Index(None, "tenant_id", "customer_id"),
        # who may see a task (its assignee, or its customer's owner and team) read from the index alone
        Index("ix_tasks_scope_cover", "tenant_id", "status", "due_at", "assignee_id", "customer_owner_id",
              "customer_team_id"),
    )

    title: Mapped[str] = mapped_column(String(200))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    due_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    status: Mapped[str] = mapped_column(String(16), default=TaskStatus.OPEN.value)
    priority: Mapped[str] = mapped_column(String(8), default=Priority.NORMAL.value)
    customer_id: Mapped[int | None] = mapped_column(ForeignKey("customers.id"))
    # The customer's owner and team, copied by database triggers (migration 0015, as orders' in 0010)
    # so that "a task on a customer the actor sees" is a test on the task's own indexed columns.
    customer_owner_id: Mapped[int | None] = mapped_column(
        Integer, server_default=FetchedValue(), server_onupdate=FetchedValue()
    )
    customer_team_id: Mapped[int | None] = mapped_column(
        Integer, server_default=FetchedValue(), server_onupdate=FetchedValue()
    )
    opportunity_id: Mapped[int | None] = mapped_column(ForeignKey("opportunities.id"))
    completed_at: Mapped[dt.datetime | None] = mapped_column(DateTime)


class Case(TenantScoped, Versioned, Base):
    """A customer-service ticket (工单)."""

    __tablename__ = "cases"
    __table_args__ = (
        Index(None, "tenant_id", "customer_id"),
        Index(None, "tenant_id", "status", "opened_at"),
        Index(None, "tenant_id", "assignee_id", "status"),
        # the service dashboard's periods (migration 0026)
        Index(None, "tenant_id", "opened_at"),
        Index(None, "tenant_id", "first_responded_at"),
        Index(None, "tenant_id", "resolved_at"),
        Index(None, "merged_into_id"),  # the cases merged into one (migration 0029)
        # the service dashboard's backlog and the case rule from the index alone (migration 0031)
        Index("ix_cases_open_cover", "tenant_id", "status", "opened_at", "priority", "team_id", "assignee_id",
              "customer_owner_id", "customer_team_id"),
        # also a queue's cases by status (its prefix was an index of its own until migration 0034)
        Index("ix_cases_queue_cover", "tenant_id", "team_id", "status", "assignee_id", "customer_owner_id",
              "customer_team_id"),
    )

    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    subject: Mapped[str] = mapped_column(String(200))
    description: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default=CaseStatus.OPEN.value)
    priority: Mapped[str] = mapped_column(String(8), default=Priority.NORMAL.value)
    opened_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    resolved_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    channel: Mapped[str] = mapped_column(String(8), default=CaseChannel.WEB.value, server_default="web")
    category: Mapped[str | None] = mapped_column(String(120))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))  # the queue
    first_responded_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    order_id: Mapped[int | None] = mapped_column(ForeignKey("orders.id"), index=True)  # one of the customer's orders
    product_id: Mapped[int | None] = mapped_column(ForeignKey("products.id"), index=True)
    # set when this case was merged into another (closed, its conversation moved there; migration 0029)
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"))
    # The customer's owner and team, copied by database triggers (migration 0031, as orders' in 0010)
    # so that "a case of a customer the actor sees" is a test on the case's own columns.
    customer_owner_id: Mapped[int | None] = mapped_column(
        Integer, server_default=FetchedValue(), server_onupdate=FetchedValue()
    )
    customer_team_id: Mapped[int | None] = mapped_column(
        Integer, server_default=FetchedValue(), server_onupdate=FetchedValue()
    )


class Campaign(TenantScoped, Versioned, Base):
    """A marketing campaign (营销活动)."""

    __tablename__ = "campaigns"
    __table_args__ = (UniqueConstraint("tenant_id", "name"),)

    name: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str | None] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(16), default="planned")
    starts_on: Mapped[dt.date | None] = mapped_column(Date)
    ends_on: Mapped[dt.date | None] = mapped_column(Date)
    budget: Mapped[Decimal] = mapped_column(Money, default=Decimal("0"))
    # issue 14: who the campaign's sequence (campaign_steps) runs for, and how (models.marketing)
    target_kind: Mapped[str | None] = mapped_column(String(16))  # "segment" | "lifecycle" | None: added by hand
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("segments.id"))
    lifecycle_stage: Mapped[str | None] = mapped_column(String(16))
    entry_mode: Mapped[str] = mapped_column(String(16), default="snapshot")  # "snapshot" at launch | "dynamic"
    allow_reentry: Mapped[bool] = mapped_column(Boolean, default=False)
    goal: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # {"kind": "deal_won"} | {"kind": "lifecycle", …}
    exit_on: Mapped[list[str] | None] = mapped_column(JSON, default=list)  # "replied", "meeting", "unsubscribed"
    attribution_days: Mapped[int] = mapped_column(Integer, default=90)
    launched_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    paused_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    stopped_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class FieldDefinition(TenantScoped, Versioned, Base):
    """A tenant-defined custom field (low-code), stored in the entity's ``custom_fields``."""

    __tablename__ = "field_definitions"
    __table_args__ = (UniqueConstraint("tenant_id", "entity", "name"),)

    entity: Mapped[str] = mapped_column(String(32), default="customer")
    name: Mapped[str] = mapped_column(String(64))
    label_en: Mapped[str] = mapped_column(String(120))
    label_zh: Mapped[str] = mapped_column(String(120))
    field_type: Mapped[str] = mapped_column(String(16), default="text")
    required: Mapped[bool] = mapped_column(Boolean, default=False)
    choices: Mapped[list[str]] = mapped_column(JSON, default=list)
    position: Mapped[int] = mapped_column(Integer, default=0)


class AuditEvent(TenantScoped, Base):
    """One write: who did what to which record, with the field diff."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "tenant_id", "entity", "entity_id", "occurred_at"),
        Index(None, "tenant_id", "occurred_at"),
    )

    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(40))
    entity_id: Mapped[int | None] = mapped_column(Integer)
    changes: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    occurred_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)


class ImportRun(TenantScoped, Base):
    """One import of a file: who, what, the counts and the validation result."""

    __tablename__ = "import_runs"
    __table_args__ = (Index(None, "tenant_id", "created_at"),)

    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    entity: Mapped[str] = mapped_column(String(32))
    file_name: Mapped[str] = mapped_column(String(255))
    file_hash: Mapped[str] = mapped_column(String(64))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    mode: Mapped[str] = mapped_column(String(16), default="create")
    policy: Mapped[str] = mapped_column(String(24), default="all-or-nothing")
    status: Mapped[str] = mapped_column(String(16), default="running")
    rows_read: Mapped[int] = mapped_column(Integer, default=0)
    created_count: Mapped[int] = mapped_column(Integer, default=0)
    updated_count: Mapped[int] = mapped_column(Integer, default=0)
    skipped_count: Mapped[int] = mapped_column(Integer, default=0)
    rejected_count: Mapped[int] = mapped_column(Integer, default=0)
    validation_result: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)




# Area modules add their tables to the same metadata; imported last so that they can
# import Base and the core entities from this package.
from crm_core.models import (  # noqa: E402,F401
    api,
    automation,
    checks,
    jobs,
    mail,
    marketing,
    merges,
    notifications,
    pipeline,
    pool,
    quality,
    sales,
    sales_rollup,
    segments,
    service,
    service_tiers,
    webhooks,
)

BUSINESS_TABLES = [
    mapper.class_ for mapper in Base.registry.mappers if issubclass(mapper.class_, TenantScoped)
]


# Citus (decision 0057): tables replicated to every node rather than split by tenant. They are read before the
# tenant is known (a login's username, an API token's secret, a support address's tenant slug), or joined from
# every tenant's rows (who owns a record, which team), and stay small. Every other table with ``tenant_id`` is
# distributed by it, co-located with ``customers``.
REFERENCE_TABLES = frozenset({"tenants", "users", "teams", "api_tokens"})


def distributed_tables() -> frozenset[str]:
    """The tables a Citus cluster splits by ``tenant_id`` (decision 0057)."""
    return frozenset(name for name, table in Base.metadata.tables.items()
                     if "tenant_id" in table.c and name not in REFERENCE_TABLES)


def postgresql_key(table_name: str, columns: Sequence[str]) -> tuple[str, ...]:
    """A unique key of ``table_name`` as PostgreSQL holds it since migration 0044 (decision 0058): on a distributed
    table, ``tenant_id`` in front of the columns the model names (a cluster refuses a unique key without it). An
    ``ON CONFLICT`` on PostgreSQL names these columns; SQLite and MariaDB keep the model's key."""
    if table_name in distributed_tables() and "tenant_id" not in columns:
        return ("tenant_id", *columns)
    return tuple(columns)


def postgresql_foreign_key(table_name: str, columns: Sequence[str], referred_table: str,
                           referred_columns: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A foreign key as PostgreSQL holds it since migration 0044: between two distributed tables it joins on
    ``tenant_id`` too, ``(tenant_id, x_id) → x (tenant_id, id)``; one to a reference table is the model's."""
    distributed = distributed_tables()
    if table_name in distributed and referred_table in distributed:
        return postgresql_key(table_name, columns), postgresql_key(referred_table, referred_columns)
    return tuple(columns), tuple(referred_columns)
