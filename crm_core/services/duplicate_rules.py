"""Duplicate rules (查重) per tenant: read them, and let an admin change them.

What each action means is :mod:`crm_core.rules.duplicates`; the duplicate check itself is
:func:`crm_core.services.customers.find_duplicate`. A tenant without rows has the defaults.
The rules are read afresh for every check (one indexed read of at most four rows), so an
admin's change holds at once in every process.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, ValidationFailed
from crm_core.models import DuplicateRule
from crm_core.rules.duplicates import ACTIONS, CUSTOMER_KEYS, actions_with_defaults

ENTITY = "customer"


def customer_rule_actions(session: Session, tenant_id: int) -> dict[str, str]:
    """``{key: action}`` for every customer key of the tenant (defaults where none is stored)."""
    stored = session.execute(
        select(DuplicateRule.match_key, DuplicateRule.action)
        .where(DuplicateRule.tenant_id == tenant_id, DuplicateRule.entity == ENTITY)
    ).all()
    return actions_with_defaults({key: action for key, action in stored})


def duplicate_rules(db: Database, actor: Actor) -> dict[str, str]:
    """The actor's tenant's customer duplicate rules, as the admin page shows them."""
    with db.session(actor) as session:
        return customer_rule_actions(session, actor.tenant_id)


def save_duplicate_rules(db: Database, actor: Actor, actions: dict[str, str]) -> dict[str, str]:
    """Set the tenant's action per key (admins only); keys left out keep theirs. Audited per changed rule."""
    if not actor.is_admin:
        raise AccessDenied("only an admin may change the duplicate rules")
    errors: dict[str, tuple[str, dict[str, Any]]] = {
        f"duplicate_rule.{key}": ("validation.choice", {})
        for key, action in actions.items() if key not in CUSTOMER_KEYS or action not in ACTIONS
    }
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        existing = {rule.match_key: rule for rule in session.scalars(
            select(DuplicateRule).where(DuplicateRule.entity == ENTITY))}
        for key, action in actions.items():
            rule = existing.get(key)
            if rule is None:
                session.add(DuplicateRule(tenant_id=actor.tenant_id, entity=ENTITY, match_key=key, action=action))
            elif rule.action != action:
                rule.action = action
        session.flush()
        return customer_rule_actions(session, actor.tenant_id)
