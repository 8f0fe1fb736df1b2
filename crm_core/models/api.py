"""Tables of the HTTP API: personal API tokens and the idempotency keys of POST requests.

A token's secret is shown once, when it is created; only its SHA-256 is stored (the secret
is 256 random bits, so a fast hash is enough: there is nothing to brute-force, unlike a
password — see docs/decisions/0015-rest-api.md). ``prefix`` is the secret's first
characters, shown in lists so that a user can tell their tokens apart.

Access rules (``crm_core.access``): a user sees and changes their own tokens; an
administrator sees and revokes every token of the tenant. The idempotency keys are the API's
own bookkeeping, written in system sessions and never shown in a page.
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import JSON, DateTime, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from crm_core.models import Base, TenantScoped, Versioned


class TokenScope(enum.StrEnum):
    """What a token may do: read only, or read and write (never more than its user's role)."""

    READ = "read"
    READ_WRITE = "read_write"


class ApiToken(TenantScoped, Versioned, Base):
    """A personal API token: ``Authorization: Bearer <secret>`` acts as its user."""

    __tablename__ = "api_tokens"
    __table_args__ = (Index(None, "tenant_id", "user_id"),)

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    name: Mapped[str] = mapped_column(String(80))
    prefix: Mapped[str] = mapped_column(String(16))
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    scope: Mapped[str] = mapped_column(String(16), default=TokenScope.READ.value)
    expires_at: Mapped[dt.datetime | None] = mapped_column(DateTime)  # None: never expires
    last_used_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_at: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))

    def usable_at(self, moment: dt.datetime) -> bool:
        """Neither revoked nor expired at ``moment`` (naive UTC)."""
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > moment)


class ApiIdempotencyKey(TenantScoped, Base):
    """The first response to a POST sent with an ``Idempotency-Key`` (kept 24 h).

    ``response_status`` is None while the first request is still being handled.
    """

    __tablename__ = "api_idempotency_keys"
    __table_args__ = (UniqueConstraint("token_id", "idempotency_key"), Index(None, "expires_at"))

    token_id: Mapped[int] = mapped_column(ForeignKey("api_tokens.id"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    method: Mapped[str] = mapped_column(String(8))
    path: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    response_status: Mapped[int | None] = mapped_column(Integer)
    response_headers: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    response_body: Mapped[str | None] = mapped_column(Text)
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime)
