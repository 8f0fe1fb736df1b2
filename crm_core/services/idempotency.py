"""Idempotency keys of API requests: the first response to a POST is kept 24 h and replayed.

A request carrying a key *claims* it (one row per token and key, unique in the database, so
two processes cannot both claim it). While the first request runs, the key is *in flight*;
when it ends, its response is stored. A later request with the same key and the same body
gets the stored response; one with another body is refused; one arriving while the first is
still in flight is told so. A claim whose request died without an answer (a killed process)
is taken over after ``ABANDONED_AFTER``.

These rows are bookkeeping of the API, not business records: written in system sessions,
never audited, removed when expired (the token's own expired keys, on its next claim).
"""

from __future__ import annotations

import datetime as dt
import enum
from dataclasses import dataclass, field

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from crm_core.access import SKIP_AUDIT_KEY
from crm_core.db import Database
from crm_core.models import utcnow
from crm_core.models.api import ApiIdempotencyKey

KEPT_FOR = dt.timedelta(hours=24)
ABANDONED_AFTER = dt.timedelta(minutes=5)
MAX_KEY_LENGTH = 255


class ClaimOutcome(enum.StrEnum):
    """What a claim found."""

    CLAIMED = "claimed"  # this request runs, and its response is stored under the key
    REPLAY = "replay"  # the same request was answered before: send ``stored`` again
    IN_FLIGHT = "in_flight"  # the first request with this key has not finished
    KEY_REUSED = "key_reused"  # the key was used for another request (method, path or body)


@dataclass(frozen=True)
class StoredResponse:
    """The first answer given under a key."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass(frozen=True)
class Claim:
    """The outcome of :func:`claim_key`; ``claim_id`` is set when CLAIMED, ``stored`` when REPLAY."""

    outcome: ClaimOutcome
    claim_id: int | None = None
    stored: StoredResponse | None = None


def claim_key(
    db: Database, *, tenant_id: int, token_id: int, key: str, method: str, path: str, request_hash: str,
    now: dt.datetime | None = None,
) -> Claim:
    """Claim ``key`` for this request, or say why it cannot run (see :class:`ClaimOutcome`)."""
    now = now or utcnow()
    with db.system_transaction("api idempotency", tenant_id=tenant_id) as session:
        session.info[SKIP_AUDIT_KEY] = True
        session.execute(
            delete(ApiIdempotencyKey)
            .where(ApiIdempotencyKey.tenant_id == tenant_id, ApiIdempotencyKey.token_id == token_id,
                   ApiIdempotencyKey.expires_at <= now)
            .execution_options(synchronize_session=False)
        )
        existing = session.scalars(
            select(ApiIdempotencyKey).where(
                ApiIdempotencyKey.token_id == token_id, ApiIdempotencyKey.idempotency_key == key
            )
        ).one_or_none()
        if existing is not None:
            if (existing.method, existing.path, existing.request_hash) != (method, path[:255], request_hash):
                return Claim(ClaimOutcome.KEY_REUSED)
            if existing.response_status is not None:
                stored = StoredResponse(existing.response_status, dict(existing.response_headers or {}),
                                        existing.response_body or "")
                return Claim(ClaimOutcome.REPLAY, stored=stored)
            if now - existing.updated_at < ABANDONED_AFTER:
                return Claim(ClaimOutcome.IN_FLIGHT)
            existing.updated_at = now  # the first request died unanswered: this one takes over
            return Claim(ClaimOutcome.CLAIMED, claim_id=existing.id)
        row = ApiIdempotencyKey(
            tenant_id=tenant_id, token_id=token_id, idempotency_key=key, method=method, path=path[:255],
            request_hash=request_hash, response_headers={}, expires_at=now + KEPT_FOR, created_at=now,
            updated_at=now,
        )
        try:
            with session.begin_nested():
                session.add(row)
        except IntegrityError:  # another process claimed it between our look-up and insert
            return Claim(ClaimOutcome.IN_FLIGHT)
        return Claim(ClaimOutcome.CLAIMED, claim_id=row.id)


def store_response(db: Database, tenant_id: int, claim_id: int, response: StoredResponse) -> None:
    """Keep the response of a claimed request, to be replayed for 24 h from the claim."""
    with db.system_transaction("api idempotency", tenant_id=tenant_id) as session:
        session.info[SKIP_AUDIT_KEY] = True
        row = session.get(ApiIdempotencyKey, claim_id)
        if row is not None:
            row.response_status = response.status
            row.response_headers = dict(response.headers)
            row.response_body = response.body


def release_key(db: Database, tenant_id: int, claim_id: int) -> None:
    """Forget a claim whose request gave no answer worth replaying (a 5xx, a 409, a 429): it may be retried."""
    with db.system_transaction("api idempotency", tenant_id=tenant_id) as session:
        session.execute(delete(ApiIdempotencyKey)
                        .where(ApiIdempotencyKey.tenant_id == tenant_id, ApiIdempotencyKey.id == claim_id)
                        .execution_options(synchronize_session=False))
