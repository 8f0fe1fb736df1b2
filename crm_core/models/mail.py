"""Tables of a tenant's mail: its own SMTP server for outbound case mail (the environment's is the
fallback) and where inbound mail goes — a team queue per receiving address, and a default queue.

The SMTP password is stored encrypted (:mod:`crm_core.mail.secrets`), never in clear. Decision 0031.
"""

from __future__ import annotations

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned


class TenantMailSettings(TenantScoped, Versioned, Base):
    """One tenant's SMTP settings (all empty: the environment's server is used) and its default inbound queue."""

    __tablename__ = "mail_settings"
    __table_args__ = (Index(None, "tenant_id", unique=True),)

    smtp_host: Mapped[str] = mapped_column(String(253), default="")
    smtp_port: Mapped[int] = mapped_column(Integer, default=25)
    from_address: Mapped[str] = mapped_column(String(254), default="")
    smtp_user: Mapped[str] = mapped_column(String(254), default="")
    smtp_password_encrypted: Mapped[str | None] = mapped_column(String(1000))  # Fernet token; None: no password
    starttls: Mapped[bool] = mapped_column(Boolean, default=False)
    default_team_id: Mapped[int | None] = mapped_column(ForeignKey("teams.id"))  # the inbound default queue


class MailRoute(TenantScoped, Base):
    """Mail received at ``address`` opens its cases in ``team_id``'s queue. ``address`` is normalised:
    ``billing@acme.example`` (that address) or ``billing@`` (that mailbox at any domain)."""

    __tablename__ = "mail_routes"
    __table_args__ = (UniqueConstraint("tenant_id", "address"),)

    address: Mapped[str] = mapped_column(String(254))
    team_id: Mapped[int] = mapped_column(ForeignKey("teams.id"))
