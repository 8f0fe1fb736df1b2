"""CSAT (customer satisfaction): the signed one-click rating link of a resolved case, and the rating it records.

The resolution or reply mail carries :func:`csat_link` twice, ``…?score=good`` and ``…?score=bad``;
the ASGI host (``server.py``, ``/csat/{token}``) records the click with :func:`rate_case` and
then offers an optional comment (posted to the same address).

The token is an itsdangerous ``URLSafeTimedSerializer`` payload signed with the deployment's
CSAT key (:func:`crm_core.config.csat_key`: ``CRM_CSAT_KEY`` or a key generated once, never a
default) under its own salt. It names the tenant, the case, the instant the case was resolved
and the language of the page; it expires after :data:`crm_core.config.CSAT_LINK_DAYS` days.
A link stops working when the case is reopened (its ``resolved_at`` changes, so a new
resolution sends a new link). One rating per case: a second click on the same link updates
it (the customer changed their mind, or adds a comment); every write is audited as system work
("csat link").
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer
from sqlalchemy import select

from crm_core.config import CSAT_LINK_DAYS, csat_key
from crm_core.db import Database
from crm_core.errors import ValidationFailed
from crm_core.i18n import normalise_language
from crm_core.models import Case, utcnow
from crm_core.models.service import CaseRating, CsatScore
from crm_core.rules import fields as field_rules
from crm_core.rules.case_flow import CLOSED_STATUSES

SALT = "kestrel.csat.v1"
PATH = "/csat/"
COMMENT_LENGTH = 1000
LINK_MAX_AGE = dt.timedelta(days=CSAT_LINK_DAYS)


class CsatLinkRefused(Exception):
    """The link cannot be used: ``reason`` is invalid (bad signature, unknown case), expired or reopened."""

    def __init__(self, reason: str, language: str = "en") -> None:
        super().__init__(reason)
        self.reason = reason
        self.language = language


@dataclass(frozen=True)
class CsatClaim:
    """What a valid token says."""

    tenant_id: int
    case_id: int
    resolved_at: str  # ISO instant, as stored when the link was made
    language: str


def _serializer(key: str, now: dt.datetime | None) -> URLSafeTimedSerializer:
    signer: type[TimestampSigner] = TimestampSigner
    if now is not None:  # frozen time (tests, or a link made for an instant in the past)
        stamp = int(now.replace(tzinfo=dt.UTC).timestamp())
        signer = type("FrozenSigner", (TimestampSigner,), {"get_timestamp": lambda self: stamp})
    return URLSafeTimedSerializer(key, salt=SALT, signer=signer)


def csat_token(case: Case, *, language: str = "en", key: str | None = None, now: dt.datetime | None = None) -> str:
    """The signed token of ``case``'s rating link (the case must be resolved or closed)."""
    if case.status not in CLOSED_STATUSES or case.resolved_at is None:
        raise ValueError("a CSAT link is made for a resolved case only")
    payload = {"t": case.tenant_id, "c": case.id, "r": case.resolved_at.isoformat(),
               "l": normalise_language(language)}
    return str(_serializer(key or csat_key(), now).dumps(payload))


def csat_link(case: Case, base_url: str, *, language: str = "en", key: str | None = None,
              now: dt.datetime | None = None) -> str:
    """The rating page's address for ``case`` under ``base_url`` (the host's public URL, e.g. https://crm.example).

    For the outbound resolution mail: append ``?score=good`` or ``?score=bad`` for the two
    one-click links. ``language`` is the customer's (en or zh-CN): the page is shown in it.
    Valid for 14 days, until the case is reopened. Raises ValueError for a case not resolved.
    """
    return base_url.rstrip("/") + PATH + csat_token(case, language=language, key=key, now=now)


def read_csat_token(token: str, *, key: str | None = None, now: dt.datetime | None = None) -> CsatClaim:
    """The claim of a valid token; CsatLinkRefused("invalid" or "expired") otherwise."""
    serializer = _serializer(key or csat_key(), now)
    try:
        payload: Any = serializer.loads(token, max_age=int(LINK_MAX_AGE.total_seconds()))
    except SignatureExpired as expired:
        try:  # the page of an expired link is still shown in the customer's language
            claims = serializer.load_payload(expired.payload) if expired.payload is not None else {}
        except BadSignature:
            claims = {}
        language = str(claims.get("l", "en")) if isinstance(claims, dict) else "en"
        raise CsatLinkRefused("expired", normalise_language(language)) from None
    except BadSignature:
        raise CsatLinkRefused("invalid") from None
    try:
        return CsatClaim(tenant_id=int(payload["t"]), case_id=int(payload["c"]), resolved_at=str(payload["r"]),
                         language=normalise_language(str(payload["l"])))
    except (KeyError, TypeError, ValueError):
        raise CsatLinkRefused("invalid") from None


@dataclass(frozen=True)
class CsatResult:
    """A recorded rating: whether it replaced an earlier one, and the page's language."""

    case_id: int
    score: str
    updated: bool
    language: str


def rate_case(db: Database, token: str, score: str, comment: str | None = None, *, key: str | None = None,
              now: dt.datetime | None = None) -> CsatResult:
    """Record (or update) the rating of the token's case.

    Raises CsatLinkRefused (invalid, expired, reopened) or ValidationFailed (``score``, ``comment``).
    A ``comment`` of None keeps the comment already given (the one-click step); "" clears it.
    """
    claim = read_csat_token(token, key=key, now=now)
    if score not in CsatScore.ALL:
        raise ValidationFailed({"score": ("validation.choice", {})})
    text = None if comment is None else comment.strip()
    # the shared limits of free text: its length, and no control or direction characters (NUL …). A customer's
    # words are kept as typed otherwise — "<script>" included: it is only ever shown as text
    if text and (problem := field_rules.free_text_problem("comment", text, COMMENT_LENGTH)) is not None:
        raise ValidationFailed({"comment": problem})
    at = now or utcnow()
    with db.system_transaction("csat link") as session:
        case = session.scalar(select(Case).where(Case.id == claim.case_id, Case.tenant_id == claim.tenant_id))
        if case is None:
            raise CsatLinkRefused("invalid")
        if case.resolved_at is None or case.resolved_at.isoformat() != claim.resolved_at:
            raise CsatLinkRefused("reopened", claim.language)
        rating = session.scalar(select(CaseRating).where(CaseRating.case_id == case.id,
                                                         CaseRating.tenant_id == claim.tenant_id))
        updated = rating is not None
        if rating is None:
            rating = CaseRating(tenant_id=claim.tenant_id, case_id=case.id, score=score, comment=text or None,
                                rated_at=at)
            session.add(rating)
        else:
            rating.score = score
            if text is not None:
                rating.comment = text or None
            rating.rated_at = at
        session.flush()
        return CsatResult(case_id=case.id, score=score, updated=updated, language=claim.language)
