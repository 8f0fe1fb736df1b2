"""Duplicate rules (查重) per tenant and entity: read them, and let an admin change them.

What each action means is :mod:`crm_core.rules.duplicates`; the duplicate checks themselves are
:func:`crm_core.services.customers.find_duplicate` and
:func:`crm_core.services.contacts.find_duplicate_contact`. A tenant without rows has the defaults.
The rules are read afresh for every check (one indexed read of at most four rows), so an
admin's change holds at once in every process.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, select, union_all
from sqlalchemy.orm import Session

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import AccessDenied, ValidationFailed
from crm_core.models import DuplicateRule
from crm_core.rules.duplicates import ACTIONS, BLOCK, CUSTOMER, ENTITIES, KEYS, OFF, WARN, actions_with_defaults


def rule_actions(session: Session, tenant_id: int, entity: str = CUSTOMER) -> dict[str, str]:
    """``{key: action}`` for every key of ``entity`` in the tenant (defaults where none is stored)."""
    stored = session.execute(
        select(DuplicateRule.match_key, DuplicateRule.action)
        .where(DuplicateRule.tenant_id == tenant_id, DuplicateRule.entity == entity)
    ).all()
    return actions_with_defaults({key: action for key, action in stored}, entity)


@dataclass(frozen=True)
class RuleMatch:
    """The existing record a duplicate rule matched, on which key, and the rule's action (warn or block)."""

    record: Any
    key: str
    action: str


def match_by_rules(
    session: Session, tenant_id: int, entity: str, model: Any, values: Mapping[str, str | None],
    columns: Mapping[str, Any], *, live: Callable[[Select[Any]], Select[Any]], exclude_id: int | None = None,
    keys: Collection[str] | None = None,
) -> RuleMatch | None:
    """The first live ``model`` row of the tenant that ``entity``'s duplicate rules call the same as ``values``.

    ``values`` are the normalised keys, ``columns`` the indexed columns holding them, ``live`` adds what
    "live" means (not archived; a contact's customer not archived either). One indexed look-up per
    checked key, united: an OR of the keys lets SQLite read the whole tenant. A blocking match wins
    over a warning one; ``keys`` limits the check (an edit checks only what it changes).
    """
    actions = rule_actions(session, tenant_id, entity)
    checked = [key for key in KEYS[entity]
               if values.get(key) and actions[key] != OFF and (keys is None or key in keys)]
    if not checked:
        return None
    arms = []
    for key in checked:
        arm = live(select(model.id).where(model.tenant_id == tenant_id, columns[key] == values[key]))
        if exclude_id is not None:
            arm = arm.where(model.id != exclude_id)
        arms.append(arm)
    ids = list(session.scalars(union_all(*arms).limit(20 * len(arms))))
    found = list(session.scalars(select(model).where(model.id.in_(ids)).order_by(model.id))) if ids else []
    for action in (BLOCK, WARN):
        for key in checked:
            if actions[key] != action:
                continue
            existing = next((row for row in found if getattr(row, columns[key].key) == values[key]), None)
            if existing is not None:
                return RuleMatch(existing, key, action)
    return None


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
