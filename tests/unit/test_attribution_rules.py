"""Attribution (decision 0050) as tables: which touches count for a deal, and how its won revenue is
credited under first-touch, last-touch and linear attribution."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from crm_core.rules.attribution import Deal, Touch, counting_pairs, credit, linear_shares, touch_counts

DAY = dt.timedelta(days=1)
T0 = dt.datetime(2026, 6, 1, 9, 0)
WON_DEAL = Deal(1, customer_id=10, created_at=T0 + 20 * DAY, won_at=T0 + 200 * DAY, amount=Decimal("1000.00"))
OPEN_DEAL = Deal(2, customer_id=10, created_at=T0 + 20 * DAY, won_at=None, amount=Decimal("500.00"))


@pytest.mark.parametrize(("touch_day", "deal", "window", "counts"), [
    (0, WON_DEAL, 90, True),  # 20 days before creation
    (20, WON_DEAL, 90, True),  # at the moment of creation
    (0, WON_DEAL, 19, False),  # 20 days before creation, window 19 days, and long before the win
    (21, WON_DEAL, 90, False),  # after creation, 179 days before the win: outside the window
    (150, WON_DEAL, 90, True),  # 50 days before the win
    (200, WON_DEAL, 90, True),  # at the win
    (201, WON_DEAL, 90, False),  # after the win
    (150, OPEN_DEAL, 90, False),  # after creation of a deal not won: nothing more to influence
    (-70, OPEN_DEAL, 90, True),  # exactly 90 days before creation
    (-71, OPEN_DEAL, 90, False),  # 91 days before
])
def test_a_touch_counts_before_creation_or_before_the_win_within_the_window(
        touch_day: int, deal: Deal, window: int, counts: bool) -> None:
    assert touch_counts(T0 + touch_day * DAY, deal, window) is counts


def test_pairs_keep_the_first_and_last_counting_moment_per_campaign() -> None:
    touches = [Touch(7, 10, T0), Touch(7, 10, T0 + 5 * DAY), Touch(7, 10, T0 + 100 * DAY),  # the last: outside
               Touch(8, 10, T0 + 190 * DAY), Touch(8, 11, T0), Touch(9, 10, T0 - 400 * DAY)]
    pairs = counting_pairs([WON_DEAL], touches, {7: 90, 8: 30, 9: 90})
    assert [(p.campaign_id, p.first_at, p.last_at) for p in pairs] == [
        (7, T0, T0 + 5 * DAY), (8, T0 + 190 * DAY, T0 + 190 * DAY)]


@pytest.mark.parametrize(("amount", "campaigns", "shares"), [
    ("1000.00", [3, 1, 2], {1: "333.34", 2: "333.33", 3: "333.33"}),
    ("0.02", [5, 4, 6], {4: "0.01", 5: "0.01", 6: "0.00"}),
    ("99.99", [1], {1: "99.99"}),
    ("10.00", [2, 2, 1], {1: "5.00", 2: "5.00"}),  # a campaign's share does not grow with its touches
])
def test_linear_shares_are_whole_cents_that_add_up(amount: str, campaigns: list[int], shares: dict[int, str]) -> None:
    result = linear_shares(Decimal(amount), campaigns)
    assert result == {key: Decimal(value) for key, value in shares.items()}
    assert sum(result.values()) == Decimal(amount)


def test_first_last_and_linear_credit_over_two_deals_and_three_campaigns() -> None:
    second = Deal(3, customer_id=20, created_at=T0 + 10 * DAY, won_at=T0 + 40 * DAY, amount=Decimal("300.00"))
    touches = [
        Touch(1, 10, T0), Touch(2, 10, T0 + 10 * DAY), Touch(2, 10, T0 + 12 * DAY), Touch(3, 10, T0 + 199 * DAY),
        Touch(3, 20, T0 + 1 * DAY), Touch(2, 20, T0 + 1 * DAY),  # a tie: first to the lower id, last to the higher
    ]
    pairs = counting_pairs([WON_DEAL, OPEN_DEAL, second], touches, {1: 90, 2: 90, 3: 90})
    credits = credit(pairs)
    assert {campaign: (c.first_touch, c.last_touch, c.linear) for campaign, c in credits.items()} == {
        1: (Decimal("1000.00"), Decimal("0.00"), Decimal("333.34")),
        2: (Decimal("300.00"), Decimal("0.00"), Decimal("333.33") + Decimal("150.00")),
        3: (Decimal("0.00"), Decimal("1300.00"), Decimal("333.33") + Decimal("150.00")),
    }
    # the open deal is influenced by campaigns 1 and 2 (touches before its creation), earns nothing
    assert {campaign: (c.influenced_deals, c.influenced_won_deals) for campaign, c in credits.items()} == {
        1: (2, 1), 2: (3, 2), 3: (2, 2)}
    total = sum(c.linear for c in credits.values())
    assert total == sum(c.first_touch for c in credits.values()) == Decimal("1300.00")


def test_a_deal_without_a_counting_touch_earns_nothing() -> None:
    pairs = counting_pairs([WON_DEAL], [Touch(1, 10, T0 + 300 * DAY), Touch(1, 99, T0)], {1: 90})
    assert pairs == [] and credit(pairs) == {}
