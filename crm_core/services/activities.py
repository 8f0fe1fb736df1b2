"""Logging a touch on a customer (跟进记录): call, meeting, email, visit or note.

:func:`log_activity` is the use case the customer 360 page calls. In one transaction it
stores the activity, moves the customer's ``last_contacted_at``, sets ``next_follow_up_at``
and creates that next follow-up task when the rep asks for one, and re-evaluates the
customer's lifecycle stage (an activity can keep a past buyer a customer).
:func:`record_activity` is the same work on an open session, for use cases that log an
activity as part of a larger unit (completing a task).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import NotFound, ValidationFailed
from crm_core.i18n import t
from crm_core.models import (
    Activity,
    ActivityType,
    Contact,
    Customer,
    Opportunity,
    Role,
    Task,
    TaskStatus,
    User,
    utcnow,
)
from crm_core.rules import fields
from crm_core.services.lifecycle import refresh_lifecycle
from crm_core.services.notifications import notify_mentions

SUMMARY_MAX = 4000
# clocks differ a little between a browser and the server
FUTURE_TOLERANCE = dt.timedelta(minutes=10)
FOLLOW_UP_TIME = dt.time(9, 0)
ACTIVITY_TYPES = tuple(kind.value for kind in ActivityType)

Errors = dict[str, tuple[str, dict[str, Any]]]


@dataclass
class ActivityInput:
    """The fields of the log-activity form, as the user gave them."""

    customer_id: int
    type: str
    summary: str
    occurred_at: dt.datetime | None = None
    contact_id: int | None = None
    opportunity_id: int | None = None
    next_follow_up_at: dt.datetime | dt.date | None = None


def _as_datetime(value: dt.datetime | dt.date | None, now: dt.datetime | None = None) -> dt.datetime | None:
    """A follow-up day means 09:00 that day; today after 09:00 means the next full hour."""
    if value is None or isinstance(value, dt.datetime):
        return value
    moment = dt.datetime.combine(value, FOLLOW_UP_TIME)
    now = now or utcnow()
    if value == now.date() and moment <= now:
        moment = now.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    return moment


def _validate(session: Session, form: ActivityInput, now: dt.datetime) -> Errors:
    errors: Errors = {}
    if form.type not in ACTIVITY_TYPES:
        errors["type"] = ("validation.choice", {})
    summary = (form.summary or "").strip()
    # the activity table's field rules, as the import applies them: no markup, hidden characters (NUL,
    # bidi overrides) or spreadsheet formula in a note (line breaks and tabs are text)
    problem = fields.check(fields.ACTIVITY["summary"], summary or None)
    if not summary:
        errors["summary"] = ("validation.required", {})
    elif problem is not None:
        errors["summary"] = problem
    elif len(summary) > SUMMARY_MAX:
        errors["summary"] = ("validation.too_long", {"max": SUMMARY_MAX})
    occurred_at = form.occurred_at or now
    if occurred_at > now + FUTURE_TOLERANCE:
        errors["occurred_at"] = ("followups.activity.in_future", {})
    follow_up = _as_datetime(form.next_follow_up_at, now)
    if follow_up is not None and follow_up <= now:
        errors["next_follow_up_at"] = ("followups.activity.follow_up_in_past", {})
    if form.contact_id is not None:
        contact = session.get(Contact, form.contact_id)
        if contact is None or contact.customer_id != form.customer_id:
            errors["contact_id"] = ("validation.choice", {})
    if form.opportunity_id is not None:
        opportunity = session.get(Opportunity, form.opportunity_id)
        if opportunity is None or opportunity.customer_id != form.customer_id:
            errors["opportunity_id"] = ("validation.choice", {})
    return errors


def later_contact(last_contacted_at: dt.datetime | None, occurred_at: dt.datetime) -> bool:
    """Does an activity at ``occurred_at`` move a customer's ``last_contacted_at``? Only as the latest touch.

    The one rule for the form (:func:`note_contact`) and for an import of activities, which keeps
    each activity's own date: an activity of 2017 leaves a contact of 2025 as it is.
    """
    return last_contacted_at is None or occurred_at > last_contacted_at


def note_contact(customer: Customer, occurred_at: dt.datetime) -> None:
    """Move the customer's ``last_contacted_at`` to ``occurred_at`` when that is later (:func:`later_contact`)."""
    if later_contact(customer.last_contacted_at, occurred_at):
        customer.last_contacted_at = occurred_at


def record_activity(session: Session, actor: Actor, form: ActivityInput) -> int:
    """Log ``form`` on an open session (the caller owns the transaction); returns the activity id."""
    now = utcnow()
    customer = session.get(Customer, form.customer_id)
    if customer is None or customer.archived_at is not None:
        raise NotFound("customer")
    errors = _validate(session, form, now)
    if errors:
        raise ValidationFailed(errors)
    occurred_at = form.occurred_at or now
    activity = Activity(
        tenant_id=actor.tenant_id,
        type=form.type,
        customer_id=customer.id,
        contact_id=form.contact_id,
        opportunity_id=form.opportunity_id,
        author_id=actor.user_id,
        occurred_at=occurred_at,
        summary=form.summary.strip(),
    )
    session.add(activity)
    note_contact(customer, occurred_at)
    follow_up = _as_datetime(form.next_follow_up_at, now)
    if follow_up is not None:
        customer.next_follow_up_at = follow_up
        assignee = customer.owner_id if customer.owner_id is not None else actor.user_id
        if actor.role == Role.REP and assignee != actor.user_id and customer.owner_id is None:
            assignee = actor.user_id
        assignee_user = session.get(User, assignee)
        language = assignee_user.language if assignee_user is not None else actor.language
        session.add(
            Task(
                tenant_id=actor.tenant_id,
                title=t("followups.task.next_follow_up", language, name=customer.name)[:200],
                assignee_id=assignee,
                created_by_id=actor.user_id,
                due_at=follow_up,
                status=TaskStatus.OPEN.value,
                customer_id=customer.id,
                opportunity_id=form.opportunity_id,
            )
        )
    session.flush()
    refresh_lifecycle(session, actor.tenant_id, [customer.id])
    notify_mentions(session, actor, customer, activity.id, activity.summary)
    return activity.id


def log_activity(db: Database, actor: Actor, form: ActivityInput) -> int:
    """Log a call, meeting, email, visit or note on a customer; returns the activity id.

    Raises ValidationFailed (field by field), NotFound (customer outside the actor's scope)
    or AccessDenied (analysts).
    """
    with db.transaction(actor) as session:
        return record_activity(session, actor, form)
