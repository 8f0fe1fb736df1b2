"""The ledger of merges: which record was merged into which, by whom, with the field choices.

A merged customer or contact is archived, never deleted; its row here lets every way in that
still names the old id (an API call, an import row, a bookmarked 360 page) find the survivor
(:func:`crm_core.queries.merges.survivor_of`). See docs/decisions/0027-merge.md.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, utcnow


class MergeEntity:
    """What kinds of record can be merged."""

    CUSTOMER = "customer"
    CONTACT = "contact"
    CASE = "case"  # a duplicate case closed into another (crm_core.services.case_merging)
    ALL = (CUSTOMER, CONTACT, CASE)


class Merge(TenantScoped, Base):
    """One merge: ``merged_id`` was folded into ``survivor_id`` (ids of ``entity``'s table)."""

    __tablename__ = "merges"
    __table_args__ = (
        UniqueConstraint("tenant_id", "entity", "merged_id"),  # a record is merged away once
        Index(None, "tenant_id", "entity", "survivor_id"),
    )

    entity: Mapped[str] = mapped_column(String(16))
    merged_id: Mapped[int] = mapped_column(Integer)
    survivor_id: Mapped[int] = mapped_column(Integer)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    merged_at: Mapped[dt.datetime] = mapped_column(DateTime, default=utcnow)
    # {field: "survivor" | "merged" | "both"} as chosen, and {table.column: rows moved}
    field_choices: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    moved: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
