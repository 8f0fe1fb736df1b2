"""The customer pool's rules, pure: what a pool rule may say, when a customer returns, and what a
claim is allowed to take. The services (``crm_core.services.pool``) read the database and ask here.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

Problem = tuple[str, dict[str, Any]]

# field: (lowest, highest, optional)
LIMITS: dict[str, tuple[int, int, bool]] = {
    "idle_days": (1, 3650, False),
    "no_deal_days": (1, 3650, True),
    "reminder_days": (0, 365, False),
    "daily_claim_cap": (0, 1000, False),
    "held_cap": (1, 1_000_000, True),
    "cooldown_days": (0, 3650, False),
}


@dataclass(frozen=True)
class PoolTerms:
    """The numbers of a pool rule: when customers return and what claiming costs."""

    idle_days: int = 30
    no_deal_days: int | None = None
    reminder_days: int = 3
    daily_claim_cap: int = 10
    held_cap: int | None = None
    cooldown_days: int = 30


def check_terms(values: dict[str, Any]) -> dict[str, Problem]:
    """Field errors of a rule's numbers (``values`` maps each field of :data:`LIMITS` to an int or None)."""
    errors: dict[str, Problem] = {}
    for name, (lowest, highest, optional) in LIMITS.items():
        value = values.get(name)
        if value is None:
            if not optional:
                errors[name] = ("validation.required", {})
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            errors[name] = ("validation.number", {})
        elif not lowest <= value <= highest:
            errors[name] = ("pool.rule.range", {"min": lowest, "max": highest})
    idle, reminder = values.get("idle_days"), values.get("reminder_days")
    if "idle_days" not in errors and "reminder_days" not in errors and isinstance(idle, int) \
            and isinstance(reminder, int) and reminder >= idle:
        errors["reminder_days"] = ("pool.rule.reminder_before_return", {"idle_days": idle})
    return errors


def claim_problem(
    terms: PoolTerms | None, *, claiming: int, claimed_today: int, held: int, cooling: bool,
) -> Problem | None:
    """Why a rep may not claim ``claiming`` customers now (None: allowed).

    ``claimed_today``: the rep's claims since midnight (UTC); ``held``: customers the rep owns;
    ``cooling``: one of them left this rep (returned or released) within the cooldown.
    No rule for the team: the pool is open, without caps.
    """
    if terms is None:
        return None
    if cooling:
        return ("pool.error.cooldown", {"days": terms.cooldown_days})
    left_today = terms.daily_claim_cap - claimed_today
    if claiming > left_today:
        return ("pool.error.daily_cap", {"cap": terms.daily_claim_cap, "left": max(0, left_today)})
    if terms.held_cap is not None and held + claiming > terms.held_cap:
        return ("pool.error.held_cap", {"cap": terms.held_cap, "left": max(0, terms.held_cap - held)})
    return None


def day_start(moment: dt.datetime) -> dt.datetime:
    """Midnight (UTC) of ``moment``'s day: the daily claim cap counts from here."""
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)
