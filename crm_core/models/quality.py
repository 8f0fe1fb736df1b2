"""Tables of the quality area: import mapping templates, what each import run wrote, and the rows
it quarantined. The run itself is ``import_runs`` (core model :class:`~crm_core.models.ImportRun`).

``import_run_records`` lists every record a run created or updated, so the run can be reverted
(created rows removed; updated rows restored from the audit trail, whose events of the run carry
``_import_run``). ``import_rejected_rows`` keeps each refused row with its reasons, downloadable
later as CSV from the run history.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned


class ImportMappingTemplate(TenantScoped, Versioned, Base):
    """A saved column/value mapping for one entity, reusable on the next file of the same shape."""

    __tablename__ = "import_mappings"
    __table_args__ = (UniqueConstraint("tenant_id", "entity", "name"),)

    name: Mapped[str] = mapped_column(String(120))
    entity: Mapped[str] = mapped_column(String(32))
    mapping: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class ImportRunRecord(TenantScoped, Base):
    """One record an import run created or updated (the basis of revert)."""

    __tablename__ = "import_run_records"
    __table_args__ = (Index(None, "tenant_id", "import_run_id", "action"),)

    import_run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id"))
    entity: Mapped[str] = mapped_column(String(32))
    record_id: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(16))  # created / updated
    row_number: Mapped[int | None] = mapped_column(Integer)


class ImportRejectedRow(TenantScoped, Base):
    """A row an import refused, with the reasons (catalog keys and parameters) and its cells."""

    __tablename__ = "import_rejected_rows"
    __table_args__ = (Index(None, "tenant_id", "import_run_id", "row_number"),)

    import_run_id: Mapped[int] = mapped_column(ForeignKey("import_runs.id"))
    row_number: Mapped[int] = mapped_column(Integer)
    reasons: Mapped[list[Any]] = mapped_column(JSON, default=list)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
