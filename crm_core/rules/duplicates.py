"""Duplicate rules (查重): which keys of a record count as "the same one", and what happens then.

Per entity (customer, contact) each key is ``off`` (not checked), ``warn`` (refused until the user
confirms it is a different record: the form's "add it anyway") or ``block`` (refused; only a
manager or an admin may still create it — decision 0026). A tenant's admins choose per entity
and key; a key they never set takes its default (:data:`DEFAULT_ACTIONS`): a customer's name,
email and phone warn (as the check always did), a credit code blocks (it names one legal
entity); a contact's email and phone warn.
"""

from __future__ import annotations

from crm_core.models import Role

OFF, WARN, BLOCK = "off", "warn", "block"
ACTIONS = (OFF, WARN, BLOCK)
CUSTOMER, CONTACT = "customer", "contact"
ENTITIES = (CUSTOMER, CONTACT)
KEYS: dict[str, tuple[str, ...]] = {
    CUSTOMER: ("credit_code", "email", "phone", "name"),
    CONTACT: ("email", "phone"),
}
"""Each entity's keys, in the order a match is reported (the most telling first)."""
CUSTOMER_KEYS = KEYS[CUSTOMER]
CONTACT_KEYS = KEYS[CONTACT]
DEFAULT_ACTIONS: dict[str, dict[str, str]] = {
    CUSTOMER: {"credit_code": BLOCK, "email": WARN, "phone": WARN, "name": WARN},
    CONTACT: {"email": WARN, "phone": WARN},
}
OVERRIDING_ROLES = frozenset({Role.ADMIN, Role.MANAGER})


def actions_with_defaults(stored: dict[str, str], entity: str = CUSTOMER) -> dict[str, str]:
    """Every key's action of ``entity``: the stored one, else its default."""
    defaults = DEFAULT_ACTIONS[entity]
    return {key: stored.get(key, defaults[key]) for key in KEYS[entity]}


def may_override(role: Role | str, action: str) -> bool:
    """May a user of ``role`` create a record that matches under ``action`` after confirming?"""
    if action == WARN:
        return True
    return action == BLOCK and Role(role) in OVERRIDING_ROLES
