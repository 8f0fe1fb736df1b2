"""Admin use cases of a tenant's mail: its own SMTP server for outbound case mail, the routes that send
inbound mail to a team's queue, a test message sent by a job (decision 0031, amendment), and the support
mailbox the ``mail_fetch`` job reads by IMAP (decision 0052).

Admin-only writes (:data:`crm_core.access.ADMIN_ONLY_WRITES`), audited like every write except the
encrypted password itself. The password is encrypted with ``CRM_SECRET_KEY``
(:mod:`crm_core.mail.credentials`); without a usable key a password is refused, never stored in clear.
It is never returned: the read side says only whether one is stored. The same holds for the mailbox's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from huey import Huey
from sqlalchemy import select

from crm_core import access
from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.jobs.service import submit_job
from crm_core.mail.credentials import SecretKeyProblem, encrypt_secret
from crm_core.models import Team
from crm_core.models.mail import MailInbox, MailRoute, TenantMailSettings
from crm_core.rules.contact_details import is_valid_email, normalise_email
from crm_core.rules.fields import free_text_problem
from crm_core.rules.mail import imap_security_problem, route_key
from crm_core.services.editing import check_version, translate_stale

Errors = dict[str, tuple[str, dict[str, Any]]]
TEST_KIND = "mail_test"
PASSWORD_LENGTH = 500
_HOST = re.compile(r"[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?")


@dataclass(kw_only=True)
class MailSettingsInput:
    """The mail settings form. Host and from address empty: the environment's server is used.
    ``password`` None keeps the stored one, "" removes it."""

    smtp_host: str = ""
    smtp_port: int = 25
    from_address: str = ""
    smtp_user: str = ""
    password: str | None = None
    starttls: bool = False
    default_team_id: int | None = None


def _encrypted_password(password: str | None, errors: Errors) -> str | None:
    """A newly typed password, encrypted for storage (None when none was typed or the form already refused it);
    a missing or unusable secret key becomes the field's error instead."""
    if not password or "password" in errors:
        return None
    try:
        return encrypt_secret(password)
    except SecretKeyProblem as problem:
        errors["password"] = (problem.message_key, {})
        return None


def _require_admin(actor: Actor) -> None:
    if not access.may_write(actor, TenantMailSettings):
        raise AccessDenied("only an admin may change the mail settings")


def _checked(form: MailSettingsInput, session: Any, *, has_password: bool) -> tuple[dict[str, Any], Errors]:
    errors: Errors = {}
    host = form.smtp_host.strip()
    from_address = (normalise_email(form.from_address) or "")
    user = form.smtp_user.strip()
    if host and not _HOST.fullmatch(host):
        errors["smtp_host"] = ("mail.settings.bad_host", {})
    if not 1 <= form.smtp_port <= 65535:
        errors["smtp_port"] = ("validation.choice", {})
    if from_address and not is_valid_email(from_address):
        errors["from_address"] = ("validation.email", {})
    if bool(host) != bool(from_address):  # one without the other sends nothing: say so now
        errors.setdefault("smtp_host" if not host else "from_address", ("validation.required", {}))
    if user and (problem := free_text_problem("smtp_user", user, 254)) is not None:
        errors["smtp_user"] = problem
    if form.password and (problem := free_text_problem("password", form.password, PASSWORD_LENGTH)) is not None:
        errors["password"] = problem
    will_have_password = bool(form.password) or (form.password is None and has_password)
    if (user or will_have_password) and not form.starttls:  # never a login in clear over the network
        errors["starttls"] = ("mail.settings.starttls_required", {})
    if form.default_team_id is not None and session.get(Team, form.default_team_id) is None:
        errors["default_team_id"] = ("validation.choice", {})
    values = {"smtp_host": host, "smtp_port": form.smtp_port, "from_address": from_address, "smtp_user": user,
              "starttls": form.starttls, "default_team_id": form.default_team_id}
    return values, errors


def save_mail_settings(db: Database, actor: Actor, form: MailSettingsInput, *,
                       expected_version: int | None = None) -> int:
    """Save the tenant's mail settings (edited on ``expected_version``; None for the first save); returns the
    new version. Raises ValidationFailed — a password without a usable ``CRM_SECRET_KEY`` among its reasons."""
    _require_admin(actor)

    def work() -> int:
        with db.transaction(actor) as session:
            row = session.scalar(select(TenantMailSettings))
            if row is not None:
                check_version(session, row, "mail_setting", expected_version or 0)
            values, errors = _checked(form, session, has_password=bool(row and row.smtp_password_encrypted))
            token = _encrypted_password(form.password, errors)
            if errors:
                raise ValidationFailed(errors)
            if row is None:
                row = TenantMailSettings(tenant_id=actor.tenant_id, smtp_password_encrypted=None)
                session.add(row)
            for name, value in values.items():
                setattr(row, name, value)
            if token is not None:
                row.smtp_password_encrypted = token
            elif form.password == "":
                row.smtp_password_encrypted = None
            session.flush()
            return row.version

    return translate_stale(db, actor, "mail_setting", 0, work)


def save_mail_route(db: Database, actor: Actor, *, address: str, team_id: int) -> int:
    """Send inbound mail received at ``address`` (``name@domain``, or ``name@`` for any domain) to ``team_id``'s
    queue; an address routed already moves to the new team. Returns the route's id."""
    _require_admin(actor)
    with db.transaction(actor) as session:
        errors: Errors = {}
        key = route_key(address)
        if key is None:
            errors["address"] = ("mail.routes.bad_address", {})
        if session.get(Team, team_id) is None:
            errors["team_id"] = ("validation.choice", {})
        if errors:
            raise ValidationFailed(errors)
        route = session.scalar(select(MailRoute).where(MailRoute.address == key))
        if route is None:
            route = MailRoute(tenant_id=actor.tenant_id, address=key, team_id=team_id)
            session.add(route)
        else:
            route.team_id = team_id
        session.flush()
        return route.id


def delete_mail_route(db: Database, actor: Actor, route_id: int) -> None:
    """Stop routing the route's address (its mail goes to the default queue again)."""
    _require_admin(actor)
    with db.transaction(actor) as session:
        route = session.get(MailRoute, route_id)
        if route is None:
            raise NotFound("mail_route")
        session.delete(route)


def request_test_mail(db: Database, actor: Actor, to_address: str, *, queue: Huey | None = None) -> int:
    """Queue a job that sends a test message to ``to_address`` with the tenant's settings; returns the job's id
    (its result, or the SMTP server's refusal, is on the job)."""
    _require_admin(actor)
    address = normalise_email(to_address) or ""
    if not is_valid_email(address):
        raise ValidationFailed({"to": ("validation.email", {})})
    return submit_job(db, actor, TEST_KIND, {"to": address}, queue=queue)


FOLDER_LENGTH = 200


@dataclass(kw_only=True)
class MailInboxInput:
    """The mailbox form. ``password`` None keeps the stored one, "" removes it."""

    enabled: bool = False
    host: str = ""
    port: int = 993
    security: str = "tls"
    username: str = ""
    password: str | None = None
    folder: str = "INBOX"


def _checked_inbox(form: MailInboxInput, *, has_password: bool) -> tuple[dict[str, Any], Errors]:
    errors: Errors = {}
    host, username, folder = form.host.strip(), form.username.strip(), form.folder.strip() or "INBOX"
    if host and not _HOST.fullmatch(host):
        errors["host"] = ("mail.settings.bad_host", {})
    if not 1 <= form.port <= 65535:
        errors["port"] = ("validation.choice", {})
    if (problem_key := imap_security_problem(host, form.security)) is not None:
        errors["security"] = (problem_key, {})
    if username and (problem := free_text_problem("username", username, 254)) is not None:
        errors["username"] = problem
    if (problem := free_text_problem("folder", folder, FOLDER_LENGTH)) is not None:
        errors["folder"] = problem
    if form.password and (problem := free_text_problem("password", form.password, PASSWORD_LENGTH)) is not None:
        errors["password"] = problem
    if form.enabled:  # a mailbox the job reads needs all of it
        for name, value in (("host", host), ("username", username)):
            if not value:
                errors.setdefault(name, ("validation.required", {}))
        if not (form.password or (form.password is None and has_password)):
            errors.setdefault("password", ("validation.required", {}))
    values = {"enabled": form.enabled, "host": host, "port": form.port, "security": form.security,
              "username": username, "folder": folder}
    return values, errors


def save_mail_inbox(db: Database, actor: Actor, form: MailInboxInput, *, expected_version: int | None = None) -> int:
    """Save the tenant's IMAP mailbox (edited on ``expected_version``; None for the first save) and give it, while
    enabled, an every-minute ``mail_fetch`` schedule; returns the new version. Another server, account or folder
    is read from its start (a message filed before is not filed twice)."""
    from crm_core.mail.imap import ensure_fetch_schedule

    _require_admin(actor)

    def work() -> int:
        with db.transaction(actor) as session:
            row = session.scalar(select(MailInbox))
            if row is not None:
                check_version(session, row, "mail_inbox", expected_version or 0)
            values, errors = _checked_inbox(form, has_password=bool(row and row.password_encrypted))
            token = _encrypted_password(form.password, errors)
            if errors:
                raise ValidationFailed(errors)
            if row is None:
                row = MailInbox(tenant_id=actor.tenant_id, password_encrypted=None, last_uid=0)
                session.add(row)
            elif (row.host, row.username, row.folder) != (values["host"], values["username"], values["folder"]):
                row.uid_validity, row.last_uid = None, 0
            for name, value in values.items():
                setattr(row, name, value)
            if token is not None:
                row.password_encrypted = token
            elif form.password == "":
                row.password_encrypted = None
            ensure_fetch_schedule(session, actor.tenant_id, enabled=form.enabled)
            session.flush()
            return row.version

    return translate_stale(db, actor, "mail_inbox", 0, work)


def request_mail_fetch(db: Database, actor: Actor, *, queue: Huey | None = None) -> int:
    """Queue a read of the tenant's mailbox now (the schedule reads it every minute); returns the job's id."""
    from crm_core.mail.imap import KIND

    _require_admin(actor)
    return submit_job(db, actor, KIND, {}, queue=queue)


__all__ = ["MailInboxInput", "MailSettingsInput", "delete_mail_route", "request_mail_fetch", "request_test_mail",
           "save_mail_inbox", "save_mail_route", "save_mail_settings"]
