"""Read side of a tenant's mail settings: what the form shows (never the password, only whether one is
stored), which server is used, the inbound routes, and the IMAP mailbox with how its last read went."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.mail.outbound import MailSettings
from crm_core.models import Team
from crm_core.models.mail import MailInbox, MailRoute, TenantMailSettings


@dataclass(frozen=True)
class MailSettingsView:
    """The form's values; ``version`` 0 before the first save. ``environment_host`` is the fallback server
    (``host:port``), empty when the environment names none."""

    smtp_host: str
    smtp_port: int
    from_address: str
    smtp_user: str
    has_password: bool
    starttls: bool
    default_team_id: int | None
    version: int
    environment_host: str


@dataclass(frozen=True)
class MailRouteView:
    """Mail received at ``address`` opens its cases in ``team_name``'s queue."""

    id: int
    address: str
    team_id: int
    team_name: str


def mail_settings_view(session: Session) -> MailSettingsView:
    """The tenant's mail settings as the form shows them."""
    row = session.scalar(select(TenantMailSettings))
    fallback = MailSettings.from_env()
    environment_host = f"{fallback.host}:{fallback.port}" if fallback is not None else ""
    if row is None:
        return MailSettingsView("", 25, "", "", False, False, None, 0, environment_host)
    return MailSettingsView(row.smtp_host, row.smtp_port, row.from_address, row.smtp_user,
                            bool(row.smtp_password_encrypted), row.starttls, row.default_team_id, row.version,
                            environment_host)


def list_mail_routes(session: Session) -> list[MailRouteView]:
    """The tenant's inbound routes, by address."""
    rows = session.execute(select(MailRoute.id, MailRoute.address, MailRoute.team_id, Team.name)
                           .join(Team, Team.id == MailRoute.team_id).order_by(MailRoute.address)).all()
    return [MailRouteView(*row) for row in rows]


@dataclass(frozen=True)
class MailInboxView:
    """The mailbox form's values (``version`` 0 before the first save) and the job's last read."""

    enabled: bool
    host: str
    port: int
    security: str
    username: str
    has_password: bool
    folder: str
    version: int
    checked_at: dt.datetime | None
    last_error: str | None


def mail_inbox_view(session: Session) -> MailInboxView:
    """The tenant's IMAP mailbox as the form shows it."""
    row = session.scalar(select(MailInbox))
    if row is None:
        return MailInboxView(False, "", 993, "tls", "", False, "INBOX", 0, None, None)
    return MailInboxView(row.enabled, row.host, row.port, row.security, row.username, bool(row.password_encrypted),
                         row.folder, row.version, row.checked_at, row.last_error)
