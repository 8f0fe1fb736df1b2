"""Campaign attribution (decision 0050): which touches count for a deal, and how its won revenue is
credited to campaigns under first-touch, last-touch and linear attribution.

A *touch* is something a campaign did to a customer or the customer did with it: a message sent,
opened, clicked or replied to, or a task created for the owner (:data:`ATTRIBUTED_TOUCHES`). Being
enrolled, a skipped or bounced message, an unsubscribe or an exit are not touches: nothing reached
the person, or the person said no.

A touch of campaign *K* counts for a deal when it happened before the deal was created, or (for a won
deal) before it was won, by at most *K*'s ``attribution_days``::

    created - window <= touch <= created      or      won - window <= touch <= won

A deal with at least one such touch is *influenced* (by every campaign with one). Its won revenue goes:

- **first touch**: all to the campaign of the earliest counting touch;
- **last touch**: all to the campaign of the latest counting touch;
- **linear**: in equal shares to each campaign with a counting touch (not per touch: one campaign's
  many opens, or a mail scanner fetching the pixel, do not outweigh another's reply), in whole cents,
  the cents left over given one each to the campaigns in order of their id, so the shares always add
  up to the deal's amount.

Ties between moments go to the lower campaign id (first) and the higher one (last), so the answer
never depends on the database's row order. The SQL in :mod:`crm_core.queries.campaign_results`
applies the same rule; :func:`counting_pairs` is its reference in Python.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

ATTRIBUTED_TOUCHES = ("sent", "opened", "clicked", "replied", "task")
"""The touch kinds (``marketing_events.kind``) that count for attribution."""

MODELS = ("first_touch", "last_touch", "linear")
CENT = Decimal("0.01")


@dataclass(frozen=True)
class Touch:
    campaign_id: int
    customer_id: int
    occurred_at: dt.datetime


@dataclass(frozen=True)
class Deal:
    id: int
    customer_id: int
    created_at: dt.datetime
    won_at: dt.datetime | None  # None: not won (open or lost)
    amount: Decimal


@dataclass(frozen=True)
class Pair:
    """A campaign's counting touches on one deal: the earliest and the latest moment."""

    deal_id: int
    campaign_id: int
    first_at: dt.datetime
    last_at: dt.datetime
    won: bool
    amount: Decimal


@dataclass
class Credit:
    """One campaign's attributed won revenue under each model, and the deals behind it."""

    first_touch: Decimal = Decimal("0.00")
    last_touch: Decimal = Decimal("0.00")
    linear: Decimal = Decimal("0.00")
    influenced_deals: int = 0
    influenced_won_deals: int = 0


def touch_counts(touch_at: dt.datetime, deal: Deal, window_days: int) -> bool:
    """Does a touch at ``touch_at`` (of a campaign with ``window_days``) count for ``deal``?"""
    window = dt.timedelta(days=window_days)
    if deal.created_at - window <= touch_at <= deal.created_at:
        return True
    return deal.won_at is not None and deal.won_at - window <= touch_at <= deal.won_at


def counting_pairs(deals: Iterable[Deal], touches: Iterable[Touch], windows: Mapping[int, int]) -> list[Pair]:
    """Every (deal, campaign) with a counting touch, with its first and last counting moment."""
    by_customer: dict[int, list[Touch]] = defaultdict(list)
    for touch in touches:
        by_customer[touch.customer_id].append(touch)
    pairs: list[Pair] = []
    for deal in deals:
        moments: dict[int, list[dt.datetime]] = defaultdict(list)
        for touch in by_customer.get(deal.customer_id, []):
            if touch_counts(touch.occurred_at, deal, windows[touch.campaign_id]):
                moments[touch.campaign_id].append(touch.occurred_at)
        for campaign_id in sorted(moments):
            pairs.append(Pair(deal.id, campaign_id, min(moments[campaign_id]), max(moments[campaign_id]),
                              deal.won_at is not None, deal.amount))
    return pairs


def linear_shares(amount: Decimal, campaign_ids: Iterable[int]) -> dict[int, Decimal]:
    """``amount`` in equal whole-cent shares; the leftover cents one each to the lowest campaign ids."""
    ordered = sorted(set(campaign_ids))
    if not ordered:
        return {}
    cents = int((Decimal(amount).quantize(CENT) / CENT).to_integral_value())
    share, leftover = divmod(cents, len(ordered))
    return {campaign_id: (Decimal(share + (1 if index < leftover else 0)) * CENT).quantize(CENT)
            for index, campaign_id in enumerate(ordered)}


def credit(pairs: Iterable[Pair]) -> dict[int, Credit]:
    """Each campaign's influenced deals and won revenue under the three models, from the counting pairs."""
    by_deal: dict[int, list[Pair]] = defaultdict(list)
    for pair in pairs:
        by_deal[pair.deal_id].append(pair)
    credits: dict[int, Credit] = defaultdict(Credit)
    for deal_pairs in by_deal.values():
        for pair in deal_pairs:
            credits[pair.campaign_id].influenced_deals += 1
        if not deal_pairs[0].won:
            continue
        amount = Decimal(deal_pairs[0].amount).quantize(CENT)
        first = min(deal_pairs, key=lambda pair: (pair.first_at, pair.campaign_id))
        last = max(deal_pairs, key=lambda pair: (pair.last_at, pair.campaign_id))
        credits[first.campaign_id].first_touch += amount
        credits[last.campaign_id].last_touch += amount
        for campaign_id, share in linear_shares(amount, (pair.campaign_id for pair in deal_pairs)).items():
            credits[campaign_id].linear += share
            credits[campaign_id].influenced_won_deals += 1
    return dict(credits)
