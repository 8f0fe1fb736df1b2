"""The lifecycle rules as a table of cases, with the boundaries at exactly the churn window."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_core.rules.lifecycle import LifecycleFacts, classify, override_holds, stage_for

NOW = dt.datetime(2026, 11, 24, 12, 0, 0)
WINDOW = 180
EDGE = NOW - dt.timedelta(days=WINDOW)  # exactly the churn window ago: still inside
SECOND = dt.timedelta(seconds=1)


def days_ago(days: float) -> dt.datetime:
    return NOW - dt.timedelta(days=days)


@pytest.mark.parametrize(
    ("last_sale", "last_activity", "open_deal", "reason", "stage"),
    [
        (None, None, False, "no_signal", "prospect"),
        (None, days_ago(1), False, "no_signal", "prospect"),
        (None, None, True, "open_deal", "intent"),
        (None, days_ago(400), True, "open_deal", "intent"),
        (days_ago(10), None, False, "recent_sale", "customer"),
        (days_ago(10), None, True, "recent_sale", "customer"),
        (EDGE, None, False, "recent_sale", "customer"),
        (EDGE - SECOND, None, False, "lapsed_buyer", "churned"),
        (days_ago(400), EDGE, False, "active_buyer", "customer"),
        (days_ago(400), EDGE - SECOND, False, "lapsed_buyer", "churned"),
        (days_ago(400), days_ago(3), False, "active_buyer", "customer"),
        (days_ago(400), None, False, "lapsed_buyer", "churned"),
        (days_ago(400), None, True, "lapsed_buyer", "churned"),
        (days_ago(181), days_ago(181), False, "lapsed_buyer", "churned"),
    ],
)
def test_a_customer_is_classified_by_the_first_rule_that_matches(
    last_sale: dt.datetime | None, last_activity: dt.datetime | None, open_deal: bool, reason: str, stage: str
) -> None:
    facts = LifecycleFacts(last_sale_at=last_sale, last_activity_at=last_activity, has_open_deal=open_deal)
    assert classify(facts, as_of=NOW, churn_window_days=WINDOW) == reason
    assert stage_for(facts, as_of=NOW, churn_window_days=WINDOW) == stage


@pytest.mark.parametrize(
    ("window", "sale_days_ago", "stage"),
    [(30, 30, "customer"), (30, 31, "churned"), (365, 364, "customer"), (365, 366, "churned")],
)
def test_the_tenant_churn_window_moves_the_boundary(window: int, sale_days_ago: int, stage: str) -> None:
    facts = LifecycleFacts(last_sale_at=days_ago(sale_days_ago))
    assert stage_for(facts, as_of=NOW, churn_window_days=window) == stage


@pytest.mark.parametrize(
    ("rule_stage_when_set", "computed_now", "holds"),
    [("prospect", "prospect", True), ("prospect", "intent", False), ("churned", "churned", True),
     ("customer", "churned", False)],
)
def test_a_manual_override_holds_until_the_rules_compute_something_else(
    rule_stage_when_set: str, computed_now: str, holds: bool
) -> None:
    assert override_holds(override_rule_stage=rule_stage_when_set, computed_stage=computed_now) is holds
