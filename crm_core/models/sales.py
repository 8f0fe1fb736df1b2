"""Tables of the sales area (see docs/ARCHITECTURE.md); every business table is TenantScoped.

``SavedView``: a named customers-grid setup (filters, columns, sort) that belongs to one user
and may be shared with the user's team.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, Boolean, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned


class SavedView(TenantScoped, Versioned, Base):
    """A user's named grid setup; ``shared_with_team`` shows it to the members of ``team_id``."""

    __tablename__ = "saved_views"
    __table_args__ = (
        UniqueConstraint("tenant_id", "user_id", "name"),
        Index(None, "tenant_id", "team_id", "shared_with_team"),
    )

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))
    name: Mapped[str] = mapped_column(String(120))
    entity: Mapped[str] = mapped_column(String(32), default="customer")
    filters: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    columns: Mapped[list[str]] = mapped_column(JSON, default=list)
    sort: Mapped[str] = mapped_column(String(40), default="updated_at")
    descending: Mapped[bool] = mapped_column(Boolean, default=True)
    shared_with_team: Mapped[bool] = mapped_column(Boolean, default=False)
