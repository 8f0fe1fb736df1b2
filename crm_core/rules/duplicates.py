"""Duplicate rules (查重): which keys of a customer count as "the same customer", and what happens then.

Each key is ``off`` (not checked), ``warn`` (refused until the user confirms it is a different
customer: the form's "create it anyway") or ``block`` (refused; only a manager or an admin may
still create it — decision 0026). A tenant's admins choose per key; a key they never set takes
:data:`DEFAULT_ACTIONS`: name, email and phone warn (as the check always did), a credit code
blocks (it names one legal entity).
"""

from __future__ import annotations

from crm_core.models import Role

OFF, WARN, BLOCK = "off", "warn", "block"
ACTIONS = (OFF, WARN, BLOCK)
CUSTOMER_KEYS = ("credit_code", "email", "phone", "name")
"""The keys, in the order a match is reported (the most telling first)."""
DEFAULT_ACTIONS: dict[str, str] = {"credit_code": BLOCK, "email": WARN, "phone": WARN, "name": WARN}
OVERRIDING_ROLES = frozenset({Role.ADMIN, Role.MANAGER})


def actions_with_defaults(stored: dict[str, str]) -> dict[str, str]:
    """Every customer key's action: the stored one, else its default."""
    return {key: stored.get(key, DEFAULT_ACTIONS[key]) for key in CUSTOMER_KEYS}


def may_override(role: Role | str, action: str) -> bool:
    """May a user of ``role`` create a record that matches under ``action`` after confirming?"""
    if action == WARN:
        return True
    return action == BLOCK and Role(role) in OVERRIDING_ROLES
