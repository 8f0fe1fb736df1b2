"""Tables of a tenant's mail: its own SMTP server for outbound case mail (the environment's is the
fallback), where inbound mail goes — a team queue per receiving address, and a default queue — and a
mailbox the ``mail_fetch`` job reads by IMAP beside the SMTP listener.

The SMTP and IMAP passwords are stored encrypted (:mod:`crm_core.mail.credentials`), never in clear.
Decisions 0031 and 0052.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, UniqueConstraint
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


class MailInbox(TenantScoped, Versioned, Base):
    """A tenant's support mailbox read by IMAP (``enabled``): messages above ``last_uid`` of the folder's
    ``uid_validity`` are filed as mail to the listener is. The job keeps the last four columns without
    moving the version (an admin's open form does not go stale); decision 0052."""

    __tablename__ = "mail_inboxes"
    __table_args__ = (Index(None, "tenant_id", unique=True),)

    enabled: Mapped[bool] = mapped_column(Boolean, default=False)
    host: Mapped[str] = mapped_column(String(253), default="")
    port: Mapped[int] = mapped_column(Integer, default=993)
    security: Mapped[str] = mapped_column(String(8), default="tls")  # tls | starttls | none (this machine only)
    username: Mapped[str] = mapped_column(String(254), default="")
    password_encrypted: Mapped[str | None] = mapped_column(String(1000))  # Fernet token
    folder: Mapped[str] = mapped_column(String(200), default="INBOX")
    uid_validity: Mapped[int | None] = mapped_column(BigInteger)
    last_uid: Mapped[int] = mapped_column(BigInteger, default=0)
    checked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_error: Mapped[str | None] = mapped_column(String(500))
