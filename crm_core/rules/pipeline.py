"""Pure pipeline rules: which stage changes are allowed, what closing a deal requires,
close-date limits and the weighted amount (Salesforce's stage → probability → forecast).

Transitions, by the kind of the current and the target stage:

============  ==========  =========  ==========
from \\ to     open        won        lost
============  ==========  =========  ==========
open          allowed     allowed    allowed (reason required)
won           reopen      —          refused (reopen first)
lost          reopen      refused    —
============  ==========  =========  ==========

Reopening clears ``closed_at`` and the lost reason. A move never leaves the deal's pipeline.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from crm_core.models import StageKind

MAX_CLOSE_YEARS_AHEAD = 5
LOST_REASON_MAX = 500
CENT = Decimal("0.01")


@dataclass(frozen=True)
class StageInfo:
    """What the rules need to know about a stage."""

    id: int
    pipeline_id: int
    position: int
    kind: str
    probability: int


def transition_allowed(current: StageInfo, target: StageInfo) -> bool:
    """May a deal in ``current`` move to ``target`` (see the module table)?"""
    if current.id == target.id or current.pipeline_id != target.pipeline_id:
        return False
    if current.kind == StageKind.OPEN.value:
        return True
    # a closed deal only goes back to an open stage (reopen); won ↔ lost needs a reopen first
    return target.kind == StageKind.OPEN.value


def allowed_targets(current: StageInfo, stages: Sequence[StageInfo]) -> list[StageInfo]:
    """The stages a deal in ``current`` may move to, in pipeline order."""
    return sorted((stage for stage in stages if transition_allowed(current, stage)), key=lambda s: s.position)


def first_open_stage(stages: Sequence[StageInfo]) -> StageInfo | None:
    """Where a new deal starts: the open stage with the lowest position."""
    open_stages = [stage for stage in stages if stage.kind == StageKind.OPEN.value]
    return min(open_stages, key=lambda s: s.position) if open_stages else None


def effective_probability(stage_probability: int, deal_probability: int | None, stage_kind: str) -> int:
    """The deal's own probability when set by hand on an open deal, else the stage's."""
    if stage_kind == StageKind.WON.value:
        return 100
    if stage_kind == StageKind.LOST.value:
        return 0
    return stage_probability if deal_probability is None else deal_probability


def weighted_amount(
    amount: Decimal, stage_probability: int, deal_probability: int | None = None, stage_kind: str = "open"
) -> Decimal:
    """amount × probability, rounded to the cent."""
    probability = effective_probability(stage_probability, deal_probability, stage_kind)
    return (Decimal(amount) * probability / 100).quantize(CENT, rounding=ROUND_HALF_UP)


def expected_close_problem(
    expected_close: dt.date | None, *, today: dt.date, created_on: dt.date | None = None, is_new: bool = False
) -> str | None:
    """A catalog key when an expected close date is not plausible for an open deal.

    A new deal cannot be expected to close in the past; an existing one not before it was
    created; nothing more than five years ahead.
    """
    if expected_close is None:
        return None
    if is_new and expected_close < today:
        return "deal.close_date_past"
    if created_on is not None and expected_close < created_on:
        return "deal.close_date_before_created"
    if expected_close > today.replace(year=today.year + MAX_CLOSE_YEARS_AHEAD):
        return "deal.close_date_too_far"
    return None


def closing_problems(
    target_kind: str, *, lost_reason: str | None, closed_on: dt.date | None, created_on: dt.date, today: dt.date
) -> dict[str, str]:
    """Field → catalog key for what closing as ``target_kind`` still needs (empty when fine).

    Lost needs a reason; a close date (defaulting to today) may not be in the future nor
    before the deal was created.
    """
    problems: dict[str, str] = {}
    if target_kind == StageKind.OPEN.value:
        return problems
    if target_kind == StageKind.LOST.value:
        reason = (lost_reason or "").strip()
        if not reason:
            problems["lost_reason"] = "deal.lost_reason_required"
        elif len(reason) > LOST_REASON_MAX:
            problems["lost_reason"] = "deal.lost_reason_too_long"
    if closed_on is not None:
        if closed_on > today:
            problems["closed_at"] = "deal.closed_in_future"
        elif closed_on < created_on:
            problems["closed_at"] = "deal.closed_before_created"
    return problems


def closed_at_for(closed_on: dt.date | None, now: dt.datetime) -> dt.datetime:
    """The ``closed_at`` timestamp: now when closing today (or unspecified), else noon of that day."""
    if closed_on is None or closed_on == now.date():
        return now
    return dt.datetime.combine(closed_on, dt.time(12, 0))


def stage_order_problem(kinds_in_order: Sequence[str]) -> str | None:
    """A catalog key when a pipeline's stages cannot work: it needs an open, a won and a lost stage."""
    kinds = set(kinds_in_order)
    if StageKind.OPEN.value not in kinds:
        return "pipeline.needs_open_stage"
    if StageKind.WON.value not in kinds:
        return "pipeline.needs_won_stage"
    if StageKind.LOST.value not in kinds:
        return "pipeline.needs_lost_stage"
    return None


STAGE_COLUMNS = ("closed_at", "lost_reason", "won_reason", "lost_from_stage_id")
"""The columns :func:`stage_columns` decides besides the stage (and a closed deal's probability, which it clears)."""


def stage_columns(
    target: StageInfo,
    *,
    from_stage_id: int | None,
    lost_reason: str | None,
    won_reason: str | None,
    closed_on: dt.date | None,
    now: dt.datetime,
) -> dict[str, object]:
    """The deal's columns once it stands in ``target`` (coming from ``from_stage_id``; None: a new deal).

    The one decision shared by the deal service (a create, an edit or a move) and the import of
    deals, so that both leave the same deal behind: an open stage has no close date, no reasons;
    a won or lost stage has ``closed_at`` (``closed_on`` at noon, or now) and no hand-set
    probability (the stage's 100 % / 0 % applies); lost keeps its reason and the stage it was
    lost from (the history's latest move into it, migration 0011); won keeps its optional reason.
    The closing rules themselves (:func:`closing_problems`) are checked before.
    """
    columns: dict[str, object] = {"stage_id": target.id}
    lost = target.kind == StageKind.LOST.value
    columns["won_reason"] = (won_reason or "").strip() or None if target.kind == StageKind.WON.value else None
    if not lost:
        columns["lost_from_stage_id"] = None
    elif from_stage_id is not None and from_stage_id != target.id:
        columns["lost_from_stage_id"] = from_stage_id
    if target.kind == StageKind.OPEN.value:
        columns["closed_at"] = None
        columns["lost_reason"] = None
    else:
        columns["closed_at"] = closed_at_for(closed_on, now)
        columns["lost_reason"] = (lost_reason or "").strip() if lost else None
        columns["probability"] = None
    return columns


def opening_moves(
    target: StageInfo, first_open: StageInfo | None, *, opened_at: dt.datetime, closed_at: dt.datetime | None
) -> list[tuple[int | None, int, dt.datetime]]:
    """The stage history of a deal that arrives already in ``target`` (an import): (from, to, when) moves.

    An open deal entered its stage when it was opened. A closed one was opened in the pipeline's
    first open stage and moved to ``target`` when it closed — what the funnel and the cycle
    times read from a deal closed by hand. Used when the file carries no history of its own.
    """
    if target.kind == StageKind.OPEN.value or first_open is None or first_open.id == target.id:
        return [(None, target.id, opened_at)]
    return [(None, first_open.id, opened_at), (first_open.id, target.id, closed_at or opened_at)]
