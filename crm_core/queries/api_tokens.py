"""Read side for API tokens: the user's own list on My account, the tenant's on the Users page.

Which tokens a session sees is the access layer's rule (a user's own; an admin's whole tenant).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models import User, utcnow
from crm_core.models.api import ApiToken

LIST_LIMIT = 500


@dataclass(frozen=True)
class ApiTokenRow:
    """One token as lists show it: never its secret, only the first characters."""

    id: int
    user_id: int
    username: str
    name: str
    prefix: str
    scope: str
    created_at: dt.datetime
    expires_at: dt.datetime | None
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    def status(self, now: dt.datetime | None = None) -> str:
        """``active``, ``expired`` or ``revoked``."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= (now or utcnow()):
            return "expired"
        return "active"


def list_api_tokens(session: Session, *, user_id: int | None = None, include_revoked: bool = True) -> list[ApiTokenRow]:
    """The tokens the session may see (of ``user_id`` when given), newest first, at most LIST_LIMIT."""
    statement = (
        select(ApiToken.id, ApiToken.user_id, User.username, ApiToken.name, ApiToken.prefix, ApiToken.scope,
               ApiToken.created_at, ApiToken.expires_at, ApiToken.last_used_at, ApiToken.revoked_at)
        .join(User, User.id == ApiToken.user_id)
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
        .limit(LIST_LIMIT)
    )
    if user_id is not None:
        statement = statement.where(ApiToken.user_id == user_id)
    if not include_revoked:
        statement = statement.where(ApiToken.revoked_at.is_(None))
    return [ApiTokenRow(**row._asdict()) for row in session.execute(statement)]
