"""Duplicate rules (查重) per tenant and entity: read them, and let an admin change them.

What each action means is :mod:`crm_core.rules.duplicates`; the duplicate checks themselves are
:func:`crm_core.services.customers.find_duplicate` and
:func:`crm_core.services.contacts.find_duplicate_contact`. A tenant without rows has the defaults.
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
from crm_core.rules.duplicates import ACTIONS, CUSTOMER, ENTITIES, KEYS, actions_with_defaults


def rule_actions(session: Session, tenant_id: int, entity: str = CUSTOMER) -> dict[str, str]:
    """``{key: action}`` for every key of ``entity`` in the tenant (defaults where none is stored)."""
    stored = session.execute(
        select(DuplicateRule.match_key, DuplicateRule.action)
        .where(DuplicateRule.tenant_id == tenant_id, DuplicateRule.entity == entity)
    ).all()
    return actions_with_defaults({key: action for key, action in stored}, entity)


def duplicate_rules(db: Database, actor: Actor, entity: str = CUSTOMER) -> dict[str, str]:
    """The actor's tenant's duplicate rules of ``entity``, as the admin page shows them."""
    with db.session(actor) as session:
        return rule_actions(session, actor.tenant_id, entity)


def save_duplicate_rules(
    db: Database, actor: Actor, actions: dict[str, str], entity: str = CUSTOMER
) -> dict[str, str]:
    """Set the tenant's action per key of ``entity`` (admins only); keys left out keep theirs.

    Audited per changed rule."""
    if not actor.is_admin:
        raise AccessDenied("only an admin may change the duplicate rules")
    if entity not in ENTITIES:
        raise ValueError(f"no duplicate rules for {entity!r}")
    errors: dict[str, tuple[str, dict[str, Any]]] = {
        f"duplicate_rule.{key}": ("validation.choice", {})
        for key, action in actions.items() if key not in KEYS[entity] or action not in ACTIONS
    }
    if errors:
        raise ValidationFailed(errors)
    with db.transaction(actor) as session:
        existing = {rule.match_key: rule for rule in session.scalars(
            select(DuplicateRule).where(DuplicateRule.entity == entity))}
        for key, action in actions.items():
            rule = existing.get(key)
            if rule is None:
                session.add(DuplicateRule(tenant_id=actor.tenant_id, entity=entity, match_key=key, action=action))
            elif rule.action != action:
                rule.action = action
        session.flush()
        return rule_actions(session, actor.tenant_id, entity)
