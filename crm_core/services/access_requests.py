"""Access requests (撞单): a rep blocked by the duplicate check asks for the existing customer; its owner,
their manager or an admin decides; approval transfers the customer to the requester.

- ``request_access``: the requester gives what they typed (name, email, phone) and a reason; the duplicate
  check runs again and the request names the record it found (``DuplicateCustomer.record_id``, never shown),
  so no customer id is ever taken from the caller or revealed to them. The owner and the manager of the
  owner's team (for a pooled customer: of its team; else the tenant's admins) are notified.
- ``decide_access_request``: the owner, a manager who sees the owner's records, or an admin approves or
  declines. Approval moves ownership through the ordinary customer write (the session derives
  ``owner_since``; database triggers carry the owner to the customer's tasks and orders; the audit trail
  records the change, with the decider as actor) — ``access.ACCESS_GRANT_KEY`` lets the owner give it to a
  colleague outside their own scope for this one write. Other pending requests for it are cancelled.
- ``cancel_access_request``: the requester withdraws a pending request.
Until approval the requester reads nothing of the customer: the request's rows hold the owner, team and
the requester's own typed name, and the customer itself stays behind the access rules.
See docs/decisions/0028-notifications-and-access-requests.md.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.models import Base, Customer, Role, User, utcnow
from crm_core.models.notifications import AccessRequest, AccessRequestStatus
from crm_core.models.pool import PoolEvent, PoolEventKind
from crm_core.rules.fields import clean_text, free_text_problem
from crm_core.services.customers import find_duplicate
from crm_core.services.notifications import notify

REASON_MAX = 500
customers = Base.metadata.tables["customers"]
teams = Base.metadata.tables["teams"]
users = Base.metadata.tables["users"]


def _reason(text: str | None) -> str:
    reason = clean_text(text or "") or ""
    if (problem := free_text_problem("reason", reason, REASON_MAX)) is not None:
        raise ValidationFailed({"reason": problem})
    return reason


def request_access(db: Database, actor: Actor, *, name: str, email: str = "", phone: str = "",
                   reason: str = "") -> int:
    """Ask for the customer the duplicate check finds for these values; the request's id.

    Raises NotFound (no such customer: nothing blocks creating it), ValidationFailed (already yours,
    already asked, reason too long) or AccessDenied (analysts)."""
    if not actor.can_write:
        raise AccessDenied("this role cannot ask for customers")
    why = _reason(reason)
    typed_name = (clean_text(name) or "")[:200]
    duplicate = find_duplicate(db, actor, name=typed_name, email=clean_text(email) or "",
                               phone=clean_text(phone) or "")
    if duplicate is None:
        raise NotFound("customer")
    with db.transaction(actor) as session:
        connection = session.connection()  # the customer may be hidden from the requester: read by Core
        customer = connection.execute(
            select(customers.c.id, customers.c.name, customers.c.owner_id, customers.c.team_id)
            .where(customers.c.id == duplicate.record_id, customers.c.tenant_id == actor.tenant_id)).one()
        if customer.owner_id == actor.user_id:
            raise ValidationFailed({"customer": ("access_request.error.already_yours", {})})
        already = session.scalar(select(AccessRequest.id).where(
            AccessRequest.customer_id == customer.id, AccessRequest.requester_id == actor.user_id,
            AccessRequest.status == AccessRequestStatus.PENDING))
        if already is not None:
            raise ValidationFailed({"customer": ("access_request.error.already_requested", {})})
        request = AccessRequest(tenant_id=actor.tenant_id, customer_id=customer.id, requester_id=actor.user_id,
                                owner_id=customer.owner_id, team_id=customer.team_id,
                                status=AccessRequestStatus.PENDING, reason=why, requested_name=typed_name)
        session.add(request)
        session.flush()
        for user_id in _deciders(session, actor.tenant_id, customer.owner_id, customer.team_id):
            notify(session, tenant_id=actor.tenant_id, user_id=user_id, kind="access_requested",
                   entity="access_request", entity_id=request.id, actor_id=actor.user_id,
                   params={"by": actor.full_name or actor.username, "name": customer.name, "reason": why})
        return request.id


def _deciders(session: Session, tenant_id: int, owner_id: int | None, team_id: int | None) -> list[int]:
    """Who is told of a request: the owner and the manager of the owner's team (a pooled customer: of its
    team); the tenant's admins when that is nobody."""
    connection = session.connection()
    found: list[int] = []
    if owner_id is not None:
        found.append(owner_id)
        team_id = connection.execute(select(users.c.team_id).where(users.c.id == owner_id)).scalar()
    if team_id is not None:
        manager = connection.execute(select(teams.c.manager_id).where(teams.c.id == team_id)).scalar()
        if manager is not None and manager not in found:
            found.append(manager)
    active = set(connection.execute(select(users.c.id).where(
        users.c.tenant_id == tenant_id, users.c.id.in_(found or [0]), users.c.is_active.is_(True))).scalars())
    deciders = [user_id for user_id in found if user_id in active]
    if deciders:
        return deciders
    return list(connection.execute(select(users.c.id).where(
        users.c.tenant_id == tenant_id, users.c.role == Role.ADMIN.value, users.c.is_active.is_(True))
        .order_by(users.c.id)).scalars())


def may_decide(actor: Actor, customer: Customer) -> bool:
    """The owner, a manager who sees the owner's records (or the pooled customer's team), or an admin."""
    if actor.is_admin:
        return True
    if customer.owner_id == actor.user_id:
        return actor.can_write
    return actor.role == Role.MANAGER and access.can_edit(
        actor, tenant_id=customer.tenant_id, owner_id=customer.owner_id, team_id=customer.team_id)


def decide_access_request(db: Database, actor: Actor, request_id: int, *, approve: bool) -> str:
    """Approve (the customer goes to the requester) or decline a pending request; its new status.

    Raises NotFound (not visible), AccessDenied (the actor may not decide it) or ValidationFailed (decided
    already, or the requester left)."""
    with db.transaction(actor) as session:
        request = _pending(session, request_id)
        if request.requester_id == actor.user_id:
            raise AccessDenied("a requester does not decide their own request")
        customer = session.get(Customer, request.customer_id)
        if customer is None or not may_decide(actor, customer):
            raise AccessDenied("only the owner, their manager or an admin decides")
        now = utcnow()
        by = actor.full_name or actor.username
        if approve:
            requester = session.get(User, request.requester_id)
            if requester is None or not requester.is_active:
                raise ValidationFailed({"requester": ("access_request.error.requester_inactive", {})})
        # closed before the customer changes hands: the database moves only pending requests to a new owner
        # (migration 0032), so a decided one stays with the owner it was decided under
        _close(request, AccessRequestStatus.APPROVED if approve else AccessRequestStatus.DECLINED, actor, now)
        if approve:
            for other in session.scalars(select(AccessRequest).where(
                    AccessRequest.customer_id == customer.id, AccessRequest.id != request.id,
                    AccessRequest.status == AccessRequestStatus.PENDING)):
                _close(other, AccessRequestStatus.CANCELLED, actor, now)
                notify(session, tenant_id=actor.tenant_id, user_id=other.requester_id, kind="access_declined",
                       entity="access_request", entity_id=other.id, actor_id=actor.user_id,
                       params={"name": other.requested_name, "by": by})
            session.flush()
            previous = customer.owner_id
            session.info[access.ACCESS_GRANT_KEY] = {customer.id: request.requester_id}
            customer.owner_id = request.requester_id
            if previous is None:  # from the pool: its ledger says who gave it
                session.add(PoolEvent(tenant_id=actor.tenant_id, customer_id=customer.id,
                                      kind=PoolEventKind.ASSIGNED, user_id=request.requester_id,
                                      actor_id=actor.user_id, note="access request", occurred_at=now))
            session.flush()
            session.info.pop(access.ACCESS_GRANT_KEY, None)
            notify(session, tenant_id=actor.tenant_id, user_id=request.requester_id, kind="access_approved",
                   entity="customer", entity_id=customer.id, actor_id=actor.user_id,
                   params={"name": customer.name, "by": by})
        else:
            notify(session, tenant_id=actor.tenant_id, user_id=request.requester_id, kind="access_declined",
                   entity="access_request", entity_id=request.id, actor_id=actor.user_id,
                   params={"name": request.requested_name, "by": by})
        session.flush()
        return request.status


def cancel_access_request(db: Database, actor: Actor, request_id: int) -> None:
    """The requester withdraws a pending request."""
    with db.transaction(actor) as session:
        request = _pending(session, request_id)
        if request.requester_id != actor.user_id:
            raise AccessDenied("only the requester withdraws a request")
        _close(request, AccessRequestStatus.CANCELLED, actor, utcnow())


def _pending(session: Session, request_id: int) -> AccessRequest:
    request = session.scalars(select(AccessRequest).where(AccessRequest.id == request_id)).one_or_none()
    if request is None:
        raise NotFound("access_request", id=request_id)
    if request.status != AccessRequestStatus.PENDING:
        raise ValidationFailed({"status": ("access_request.error.decided", {"status": request.status})})
    return request


def _close(request: AccessRequest, status: str, actor: Actor, now: Any) -> None:
    request.status = status
    request.decided_by_id = actor.user_id
    request.decided_at = now
