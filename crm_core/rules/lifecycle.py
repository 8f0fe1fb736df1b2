"""Customer lifecycle, pure: which stage the facts about a customer put it in, and why.

The rules, first match wins (HubSpot-style lifecycle over the seed's four stages):

1. ``recent_sale`` → customer: a won deal or a non-cancelled order within the churn window;
2. ``active_buyer`` → customer: bought before, and an activity within the window;
3. ``lapsed_buyer`` → churned: bought before, but no won deal, order or activity within it;
4. ``open_deal`` → intent: never a buyer (or see 1–3), with an open deal;
5. ``no_signal`` → prospect: everything else.

"Within the window" means at or after ``as_of - churn_window_days``: an event exactly
``churn_window_days`` old still counts; one a second older does not. The same rules run
set-based in SQL in :mod:`crm_core.services.lifecycle`; a test keeps the two in step.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from crm_core.models import LifecycleStage

DEFAULT_CHURN_WINDOW_DAYS = 180

# reason code → stage, in rule order
RULES: tuple[tuple[str, LifecycleStage], ...] = (
    ("recent_sale", LifecycleStage.CUSTOMER),
    ("active_buyer", LifecycleStage.CUSTOMER),
    ("lapsed_buyer", LifecycleStage.CHURNED),
    ("open_deal", LifecycleStage.INTENT),
    ("no_signal", LifecycleStage.PROSPECT),
)
STAGE_OF_REASON: dict[str, str] = {reason: stage.value for reason, stage in RULES}


@dataclass(frozen=True)
class LifecycleFacts:
    """What the rules look at: the latest sale (won deal or counted order), the latest
    activity, and whether an open deal exists."""

    last_sale_at: dt.datetime | None = None
    last_activity_at: dt.datetime | None = None
    has_open_deal: bool = False


def churn_cutoff(as_of: dt.datetime, churn_window_days: int) -> dt.datetime:
    """The oldest instant that is still inside the churn window."""
    return as_of - dt.timedelta(days=churn_window_days)


def classify(facts: LifecycleFacts, *, as_of: dt.datetime, churn_window_days: int = DEFAULT_CHURN_WINDOW_DAYS) -> str:
    """The reason code (a key of :data:`STAGE_OF_REASON`) for ``facts`` at ``as_of``."""
    cutoff = churn_cutoff(as_of, churn_window_days)
    if facts.last_sale_at is not None:
        if facts.last_sale_at >= cutoff:
            return "recent_sale"
        if facts.last_activity_at is not None and facts.last_activity_at >= cutoff:
            return "active_buyer"
        return "lapsed_buyer"
    if facts.has_open_deal:
        return "open_deal"
    return "no_signal"


def stage_for(facts: LifecycleFacts, *, as_of: dt.datetime, churn_window_days: int = DEFAULT_CHURN_WINDOW_DAYS) -> str:
    """The lifecycle stage for ``facts`` at ``as_of``."""
    return STAGE_OF_REASON[classify(facts, as_of=as_of, churn_window_days=churn_window_days)]


def override_holds(*, override_rule_stage: str, computed_stage: str) -> bool:
    """A manual stage holds while the rules still compute what they computed when it was set."""
    return override_rule_stage == computed_stage
