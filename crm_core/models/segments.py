"""Tables of the segments and scoring area: saved segments, their size over time,
campaign enrolments, trained scoring models and the scores they produce.

Every table is :class:`~crm_core.models.TenantScoped`. Trained models are stored as
JSON (coefficients, scaling, category vocabularies) that only :mod:`crm_core.scoring`
writes and reads: nothing is ever unpickled.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned, utcnow


class SegmentSharing:
    """Who sees a saved segment besides its owner."""

    PRIVATE = "private"
    TEAM = "team"
    TENANT = "tenant"
    ALL = (PRIVATE, TEAM, TENANT)


class Segment(TenantScoped, Versioned, Base):
    """A saved set of conditions on customers (客户分群), counted live when opened."""

    __tablename__ = "segments"
    __table_args__ = (UniqueConstraint("tenant_id", "name"), Index(None, "tenant_id", "owner_id"))

    name: Mapped[str] = mapped_column(String(120))
    description: Mapped[str] = mapped_column(String(500), default="")
    # {"match": "all"|"any", "conditions": [{"field": …, "op": …, "value": …}]},
    # validated by crm_core.rules.segments before it is stored.
    conditions: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    sharing: Mapped[str] = mapped_column(String(8), default=SegmentSharing.PRIVATE)
    # the team a "team" segment is shared with
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))


class SegmentSnapshot(TenantScoped, Base):
    """The size of a segment at one instant: recorded on save and by ``segments snapshot``."""

    __tablename__ = "segment_snapshots"
    __table_args__ = (Index(None, "tenant_id", "segment_id", "taken_at"),)

    segment_id: Mapped[int] = mapped_column(ForeignKey("segments.id", ondelete="CASCADE"))
    taken_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    member_count: Mapped[int] = mapped_column(Integer)
    # what recorded it: save, manual or cli
    source: Mapped[str] = mapped_column(String(16), default="save")


class CampaignMember(TenantScoped, Base):
    """A customer enrolled in a campaign, and what enrolled them (a segment or a rule)."""

    __tablename__ = "campaign_members"
    __table_args__ = (
        UniqueConstraint("tenant_id", "campaign_id", "customer_id"),
        Index(None, "tenant_id", "customer_id"),
        Index(None, "tenant_id", "state", "next_run_at"),
        Index(None, "tenant_id", "campaign_id", "state"),
    )

    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    # "segment:12", "rule:3", "manual"
    source: Mapped[str] = mapped_column(String(40), default="manual")
    enrolled_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    enrolled_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # where the member is in the campaign's sequence (issue 14, models.marketing)
    contact_id: Mapped[int | None] = mapped_column(ForeignKey("contacts.id"))  # None: the customer's own address
    state: Mapped[str] = mapped_column(String(16), default="pending")  # marketing.MemberState
    step_id: Mapped[int | None] = mapped_column(ForeignKey("campaign_steps.id"))
    step_entered_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    next_run_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    cycle: Mapped[int] = mapped_column(Integer, default=1)
    finished_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    exit_reason: Mapped[str | None] = mapped_column(String(40))


class ScoringModel(TenantScoped, Base):
    """One trained version of a scorer for a tenant, with its held-out metrics.

    ``model`` is plain JSON written by :mod:`crm_core.scoring` (kind "logistic" with
    coefficients and scaling, or kind "fallback" when the history was too thin).
    """

    __tablename__ = "scoring_models"
    __table_args__ = (UniqueConstraint("tenant_id", "scorer", "version"),)

    scorer: Mapped[str] = mapped_column(String(40))
    version: Mapped[int] = mapped_column(Integer)
    trained_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    method: Mapped[str] = mapped_column(String(16))
    metrics: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    model: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Score(TenantScoped, Base):
    """The latest score of one record by one scorer (0…1), and the model version that gave it."""

    __tablename__ = "scores"
    __table_args__ = (
        UniqueConstraint("tenant_id", "scorer", "entity_id"),
        Index(None, "tenant_id", "scorer", "score"),
    )

    scorer: Mapped[str] = mapped_column(String(40))
    entity: Mapped[str] = mapped_column(String(16))
    entity_id: Mapped[int] = mapped_column(Integer)
    model_id: Mapped[int] = mapped_column(ForeignKey("scoring_models.id"))
    score: Mapped[float] = mapped_column(Float)
    scored_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
