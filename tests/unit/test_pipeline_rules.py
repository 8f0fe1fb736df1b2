"""Pure pipeline rules: the transition table, weighting, closing and close-date rules."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from crm_core.rules.pipeline import (
    StageInfo,
    allowed_targets,
    closed_at_for,
    closing_problems,
    expected_close_problem,
    first_open_stage,
    stage_order_problem,
    transition_allowed,
    weighted_amount,
)

LEAD = StageInfo(1, 1, 0, "open", 10)
PROPOSAL = StageInfo(2, 1, 1, "open", 50)
WON = StageInfo(3, 1, 2, "won", 100)
LOST = StageInfo(4, 1, 3, "lost", 0)
OTHER_PIPELINE = StageInfo(9, 2, 0, "open", 10)
TODAY = dt.date(2026, 11, 24)


@pytest.mark.parametrize(
    "current, target, allowed",
    [
        (LEAD, PROPOSAL, True),
        (PROPOSAL, LEAD, True),
        (LEAD, WON, True),
        (LEAD, LOST, True),
        (WON, PROPOSAL, True),  # reopen
        (LOST, LEAD, True),  # reopen
        (WON, LOST, False),
        (LOST, WON, False),
        (LEAD, LEAD, False),
        (LEAD, OTHER_PIPELINE, False),
    ],
)
def test_transition_table(current: StageInfo, target: StageInfo, allowed: bool) -> None:
    assert transition_allowed(current, target) is allowed


def test_a_lost_deal_may_only_be_reopened() -> None:
    assert allowed_targets(LOST, [LEAD, PROPOSAL, WON, LOST, OTHER_PIPELINE]) == [LEAD, PROPOSAL]


def test_a_new_deal_starts_at_the_lowest_open_stage() -> None:
    assert first_open_stage([WON, PROPOSAL, LEAD, LOST]) == LEAD
    assert first_open_stage([WON, LOST]) is None


@pytest.mark.parametrize(
    "amount, stage_probability, deal_probability, kind, expected",
    [
        ("1000", 10, None, "open", "100.00"),
        ("1000", 10, 50, "open", "500.00"),  # the hand-set probability wins
        ("1000", 10, 0, "open", "0.00"),
        ("333.33", 25, None, "open", "83.33"),
        ("1000", 100, 30, "won", "1000.00"),
        ("1000", 0, 80, "lost", "0.00"),
    ],
)
def test_weighted_amount(amount: str, stage_probability: int, deal_probability: int | None, kind: str,
                         expected: str) -> None:
    assert weighted_amount(Decimal(amount), stage_probability, deal_probability, kind) == Decimal(expected)


@pytest.mark.parametrize(
    "kind, reason, closed_on, problems",
    [
        ("lost", "", None, {"lost_reason": "deal.lost_reason_required"}),
        ("lost", "   ", None, {"lost_reason": "deal.lost_reason_required"}),
        ("lost", "x" * 501, None, {"lost_reason": "deal.lost_reason_too_long"}),
        ("lost", "价格太高", TODAY, {}),
        ("won", "", None, {}),
        ("won", "", TODAY + dt.timedelta(days=1), {"closed_at": "deal.closed_in_future"}),
        ("won", "", dt.date(2026, 1, 1), {"closed_at": "deal.closed_before_created"}),
        ("open", "", TODAY + dt.timedelta(days=9), {}),
    ],
)
def test_closing_rules(kind: str, reason: str, closed_on: dt.date | None, problems: dict[str, str]) -> None:
    assert closing_problems(kind, lost_reason=reason, closed_on=closed_on, created_on=dt.date(2026, 3, 1),
                            today=TODAY) == problems


@pytest.mark.parametrize(
    "expected_close, is_new, created_on, problem",
    [
        (None, True, None, None),
        (TODAY, True, None, None),
        (TODAY - dt.timedelta(days=1), True, None, "deal.close_date_past"),
        (TODAY - dt.timedelta(days=1), False, dt.date(2026, 1, 1), None),  # an existing deal may be overdue
        (dt.date(2025, 12, 31), False, dt.date(2026, 1, 1), "deal.close_date_before_created"),
        (dt.date(2031, 11, 25), True, None, "deal.close_date_too_far"),
    ],
)
def test_expected_close_date_rules(expected_close: dt.date | None, is_new: bool, created_on: dt.date | None,
                                   problem: str | None) -> None:
    assert expected_close_problem(expected_close, today=TODAY, created_on=created_on, is_new=is_new) == problem


def test_closing_on_a_past_day_is_stamped_at_noon_and_today_at_the_current_time() -> None:
    now = dt.datetime(2026, 11, 24, 9, 30)
    assert closed_at_for(None, now) == now
    assert closed_at_for(TODAY, now) == now
    assert closed_at_for(dt.date(2026, 11, 20), now) == dt.datetime(2026, 11, 20, 12, 0)


@pytest.mark.parametrize(
    "kinds, problem",
    [
        (["open", "won", "lost"], None),
        (["won", "lost"], "pipeline.needs_open_stage"),
        (["open", "lost"], "pipeline.needs_won_stage"),
        (["open", "won"], "pipeline.needs_lost_stage"),
    ],
)
def test_a_pipeline_needs_open_won_and_lost_stages(kinds: list[str], problem: str | None) -> None:
    assert stage_order_problem(kinds) == problem
