"""Personal API token use cases: issue (the secret shown once), revoke, and authenticate a request.

A token is ``kst_`` followed by 43 URL-safe characters (256 random bits). Only its SHA-256
is stored: for a random secret of that size a slow hash (bcrypt, as for passwords) buys
nothing, and a fast one keeps authentication to one indexed look-up per request (decision
0015). Issuing and revoking are ORM writes, so the access layer checks them (a user's own
tokens; an admin revokes any of the tenant's) and audits them. Authentication runs in a
system session — the caller is not known yet — and answers None for anything unusable: an
unknown, revoked or expired token, a deactivated user or tenant.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, select, update
from sqlalchemy.exc import OperationalError

import crm_core.db
from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.models import Tenant, User, utcnow
from crm_core.models.api import ApiToken, TokenScope
from crm_core.rules.fields import clean_text
from crm_core.services.auth import actor_of_user

SECRET_PREFIX = "kst_"
SECRET_BYTES = 32
SHOWN_PREFIX_LENGTH = 12  # "kst_" and 8 characters: enough to tell one's tokens apart, useless to guess
NAME_MAX_LENGTH = 80
EXPIRY_CHOICES_DAYS = (7, 30, 90, 365)
"""What the forms offer; the service accepts any whole number of days from 1 to MAX_EXPIRY_DAYS, or none."""
MAX_EXPIRY_DAYS = 366
LAST_USED_PRECISION = dt.timedelta(minutes=1)
"""``last_used_at`` is written at most once a minute per token: not a write on every request."""
TOUCH_WAIT_MS = 100


@dataclass(frozen=True)
class IssuedToken:
    """A token just created: ``secret`` is shown to its user now and never again."""

    id: int
    name: str
    secret: str
    prefix: str
    scope: str
    expires_at: dt.datetime | None


@dataclass(frozen=True)
class TokenCaller:
    """Who an API request acts as: the token's user (the same Actor the pages build) and the token's scope."""

    token_id: int
    scope: str
    actor: Actor

    @property
    def can_write(self) -> bool:
        """A read-write token of a role that writes (an analyst's token never writes)."""
        return self.scope == TokenScope.READ_WRITE and self.actor.can_write


def hash_secret(secret: str) -> str:
    """The stored form of a token's secret: its SHA-256, hex."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def new_secret() -> str:
    """A fresh token secret: the prefix and 256 random bits, URL-safe."""
    return SECRET_PREFIX + secrets.token_urlsafe(SECRET_BYTES)


def issue_api_token(
    db: Database, actor: Actor, *, name: str, scope: str, expires_in_days: int | None,
    now: dt.datetime | None = None,
) -> IssuedToken:
    """Create a token for the acting user; raises ValidationFailed for a blank name, unknown scope or expiry."""
    errors: dict[str, tuple[str, dict[str, object]]] = {}
    cleaned = clean_text(name)
    if cleaned is None:
        errors["name"] = ("validation.required", {})
    elif len(cleaned) > NAME_MAX_LENGTH:
        errors["name"] = ("validation.too_long", {"max": NAME_MAX_LENGTH})
    if scope not in {member.value for member in TokenScope}:
        errors["scope"] = ("validation.choice", {})
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_EXPIRY_DAYS:
        errors["expires_in_days"] = ("api.token.expiry_range", {"max": MAX_EXPIRY_DAYS})
    if errors:
        raise ValidationFailed(errors)
    assert cleaned is not None
    now = now or utcnow()
    secret = new_secret()
    expires_at = now + dt.timedelta(days=expires_in_days) if expires_in_days is not None else None
    with db.transaction(actor) as session:
        token = ApiToken(
            tenant_id=actor.tenant_id, user_id=actor.user_id, name=cleaned, prefix=secret[:SHOWN_PREFIX_LENGTH],
            secret_hash=hash_secret(secret), scope=scope, expires_at=expires_at,
        )
        session.add(token)
        session.flush()
        return IssuedToken(token.id, cleaned, secret, token.prefix, scope, expires_at)


def revoke_api_token(db: Database, actor: Actor, token_id: int, *, now: dt.datetime | None = None) -> None:
    """Revoke a token at once (the user's own, or any of the tenant's for an admin); NotFound otherwise."""
    with db.transaction(actor) as session:
        token = session.get(ApiToken, token_id)
        if token is None:
            raise NotFound("api_token")
        if token.revoked_at is not None:
            return
        token.revoked_at = now or utcnow()
        token.revoked_by_id = actor.user_id


def authenticate_token(db: Database, secret: str, *, now: dt.datetime | None = None) -> TokenCaller | None:
    """The caller behind a bearer secret, checked now: None if unknown, revoked, expired or its user inactive."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 100:
        return None
    now = now or utcnow()
    # one session for the token, its user and the user's teams (on PostgreSQL each session is a ping,
    # a BEGIN and a ROLLBACK more: about 1 ms of a 1M-customer page's 13)
    with db.system_session("api authentication") as session:
        found = session.execute(
            select(ApiToken.id, ApiToken.scope, ApiToken.expires_at, ApiToken.revoked_at, ApiToken.last_used_at, User)
            .join(User, User.id == ApiToken.user_id)
            .join(Tenant, Tenant.id == ApiToken.tenant_id)
            .where(ApiToken.secret_hash == hash_secret(secret), User.is_active.is_(True), Tenant.is_active.is_(True))
        ).first()
        if found is None or found.revoked_at is not None or (found.expires_at is not None and found.expires_at <= now):
            return None
        actor = actor_of_user(session, found.User)
    if found.last_used_at is None or now - found.last_used_at >= LAST_USED_PRECISION:
        _touch(db, found.id, now)
    return TokenCaller(token_id=found.id, scope=found.scope, actor=actor)


def _touch(db: Database, token_id: int, now: dt.datetime) -> None:
    """Stamp the token's last use: bookkeeping, not an edit (no version bump, no audit row).

    It never makes a request wait: on an SQLite file another process may hold the write lock
    for a long import, so there the stamp waits at most ``TOUCH_WAIT_MS`` and is skipped if the
    lock is busy (the next request a minute on tries again).
    """
    statement = update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
    if isinstance(db.bind, Engine) and db.dialect_name == "sqlite":
        with db.bind.connect() as connection:
            connection.exec_driver_sql(f"PRAGMA busy_timeout={TOUCH_WAIT_MS}")
            try:
                connection.execute(statement)
                connection.commit()
            except OperationalError:
                connection.rollback()  # locked by a writer: the stamp waits for a later request
            finally:
                # back to what crm_core.db gives every SQLite connection (read now: one setting)
                connection.exec_driver_sql(f"PRAGMA busy_timeout={crm_core.db.sqlite_busy_timeout_ms()}")
                connection.commit()
        return
    with db.system_transaction("api token last used") as session:
        session.execute(statement.execution_options(synchronize_session=False))
