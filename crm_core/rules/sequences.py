"""A campaign's sequence, pure (decision 0049): validating the steps an admin or manager edits, and the
step machine that says what to do next for one member.

A member is *active* on a step (``step_id``) it entered at ``step_entered_at`` in its current cycle,
which started at ``cycle_started_at``. :func:`advance` walks from there as far as it can at ``now``:
an email or a task is done and the member moves on at once; a wait holds until its time (calendar
days or business days of the mainland China calendar with its 调休 make-up days); a branch holds until
its event happens or its window closes; a goal step ends the member's sequence as a goal reached; past
the last step the member has completed. Before any step, the exit rules are checked, in this order
(the first that holds wins): the owner stopped the member, the person unsubscribed, the campaign's
goal was reached, the person replied, a meeting was booked.

Live edits: a member keeps its step by id. Steps inserted before it are not run for it; a step moved
keeps its members (what follows is read from the new order); a removed (archived) step's members go
to the next live step after the removed step's position; a changed configuration applies from the
next evaluation (a wait's end is computed from when the member entered it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from crm_core.models import LifecycleStage
from crm_core.models.marketing import StepKind
from crm_core.rules import china_holidays

MAX_STEPS = 30
MAX_WAIT_DAYS = 365
MAX_TASK_DUE_DAYS = 90
MAX_TITLE = 200
BRANCH_EVENTS = ("opened", "clicked", "replied", "stage_changed", "deal_created")
GOAL_KINDS = ("deal_won", "lifecycle")
EXIT_RULES = ("replied", "meeting", "unsubscribed")
TASK_KINDS = ("call", "visit", "meeting", "email")
BRANCH_POLL = dt.timedelta(minutes=15)  # a branch waiting for its event looks again this often
MAX_MOVES = 100  # a sequence walked further in one evaluation is a loop of branches
CALENDAR_ZONE = "Asia/Shanghai"

# exit precedence: the first reason that holds is the one recorded
EXIT_ORDER = ("stopped", "unsubscribed", "goal", "replied", "meeting")

Problems = dict[str, tuple[str, dict[str, Any]]]


@dataclass(frozen=True)
class Step:
    """One step as the machine sees it; ``archived`` steps were removed from a live sequence."""

    id: int
    position: int
    kind: str
    config: Mapping[str, Any] = field(default_factory=dict)
    archived: bool = False


@dataclass(frozen=True)
class Place:
    """Where a member is."""

    state: str  # MemberState
    step_id: int | None
    step_entered_at: dt.datetime | None
    cycle_started_at: dt.datetime
    cycle: int = 1


@dataclass(frozen=True)
class Event:
    """Something that happened to the member's customer: opened, clicked, replied, stage_changed, deal_created."""

    kind: str
    at: dt.datetime


@dataclass(frozen=True)
class Facts:
    """The exit rules' and the goal's facts for this member (each since its cycle started)."""

    stopped: bool = False
    unsubscribed: bool = False
    goals: frozenset[str] = frozenset()  # goal_key()s reached: "deal_won", "lifecycle:customer"
    replied: bool = False
    meeting: bool = False


@dataclass(frozen=True)
class Action:
    """A thing the engine does: ``email`` or ``task`` (for ``step_id``), ``goal``, ``exit`` (reason in
    ``detail``) or ``complete``."""

    kind: str
    step_id: int | None = None
    detail: str = ""


@dataclass(frozen=True)
class Outcome:
    """What :func:`advance` decided: the actions in order and where the member ends up."""

    actions: tuple[Action, ...]
    state: str
    step_id: int | None
    step_entered_at: dt.datetime | None
    next_run_at: dt.datetime | None
    exit_reason: str | None = None

    @property
    def finished(self) -> bool:
        return self.state in ("completed", "goal", "exited")


# --- business days ------------------------------------------------------------------------------


def is_business_day(day: dt.date) -> bool:
    """A working day in mainland China: a weekday that is not a public holiday, or a make-up day (调休)."""
    if day in china_holidays.WORKDAYS:
        return True
    if day in china_holidays.HOLIDAYS:
        return False
    return day.isoweekday() <= 5


def add_business_days(start: dt.datetime, days: int, *, zone: str = CALENDAR_ZONE) -> dt.datetime:
    """``days`` working days after ``start`` (naive UTC), at the same local time; 0 days is ``start``.
    A start on a day off counts from the next working day's same time."""
    if days <= 0:
        return start
    tz = ZoneInfo(zone)
    local = start.replace(tzinfo=dt.UTC).astimezone(tz)
    day = local.date()
    left = days
    while left > 0:
        day += dt.timedelta(days=1)
        if is_business_day(day):
            left -= 1
    moved = dt.datetime.combine(day, local.timetz().replace(tzinfo=None), tzinfo=tz)
    return moved.astimezone(dt.UTC).replace(tzinfo=None)


def wait_until(entered: dt.datetime, config: Mapping[str, Any]) -> dt.datetime:
    """When a wait step entered at ``entered`` ends."""
    days = _int(config.get("days"), 0)
    if config.get("business_days"):
        return add_business_days(entered, days)
    return entered + dt.timedelta(days=days)


# --- validation ---------------------------------------------------------------------------------


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value.strip())
    return default


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def goal_key(goal: Mapping[str, Any] | None) -> str | None:
    """The key a goal is known by in :class:`Facts`: ``deal_won`` or ``lifecycle:<stage>``."""
    if not goal or goal.get("kind") not in GOAL_KINDS:
        return None
    return "deal_won" if goal["kind"] == "deal_won" else f"lifecycle:{goal.get('stage')}"


def validate_goal(goal: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
    """A campaign's goal: none, ``{"kind": "deal_won"}`` or ``{"kind": "lifecycle", "stage": …}``."""
    if not goal:
        return None
    kind = goal.get("kind")
    if kind not in GOAL_KINDS:
        return ("campaigns.error.goal_kind", {})
    if kind == "lifecycle" and goal.get("stage") not in {stage.value for stage in LifecycleStage}:
        return ("campaigns.error.goal_stage", {})
    return None


def step_problems(
    kind: str, config: Mapping[str, Any], *, template_ids: Iterable[int], step_ids: Iterable[int]
) -> Problems:
    """What is wrong with one step's configuration, per field (message key and parameters)."""
    problems: Problems = {}
    if kind not in {item.value for item in StepKind}:
        return {"kind": ("campaigns.error.step_kind", {})}
    if kind == StepKind.EMAIL:
        template_id = config.get("template_id")
        if not _is_int(template_id) or template_id not in set(template_ids):
            problems["template_id"] = ("campaigns.error.template", {})
    elif kind == StepKind.TASK:
        title = config.get("title")
        if not isinstance(title, str) or not title.strip():
            problems["title"] = ("validation.required", {})
        elif len(title.strip()) > MAX_TITLE:
            problems["title"] = ("validation.too_long", {"max": MAX_TITLE})
        if config.get("activity_kind") not in TASK_KINDS:
            problems["activity_kind"] = ("validation.choice", {})
        due = config.get("due_days", 0)
        if not isinstance(due, int) or isinstance(due, bool) or not 0 <= due <= MAX_TASK_DUE_DAYS:
            problems["due_days"] = ("campaigns.error.days_range", {"min": 0, "max": MAX_TASK_DUE_DAYS})
    elif kind == StepKind.WAIT:
        days = config.get("days")
        if not isinstance(days, int) or isinstance(days, bool) or not 0 <= days <= MAX_WAIT_DAYS:
            problems["days"] = ("campaigns.error.days_range", {"min": 0, "max": MAX_WAIT_DAYS})
        if not isinstance(config.get("business_days", False), bool):
            problems["business_days"] = ("validation.choice", {})
    elif kind == StepKind.BRANCH:
        if config.get("event") not in BRANCH_EVENTS:
            problems["event"] = ("validation.choice", {})
        within = config.get("within_days")
        if not isinstance(within, int) or isinstance(within, bool) or not 0 <= within <= MAX_WAIT_DAYS:
            problems["within_days"] = ("campaigns.error.days_range", {"min": 0, "max": MAX_WAIT_DAYS})
        known = set(step_ids)
        for target in ("then_step", "else_step"):
            value = config.get(target)
            if value is not None and (not _is_int(value) or value not in known):
                problems[target] = ("campaigns.error.branch_target", {})
    elif kind == StepKind.GOAL:
        problem = validate_goal(config)
        if problem is not None:
            problems["goal"] = problem
    return problems


def sequence_problems(steps: Sequence[Step], *, template_ids: Iterable[int]) -> Problems:
    """Every problem of a sequence's live steps, keyed ``steps.<n>.<field>`` (n from 1 in order)."""
    live = sorted((step for step in steps if not step.archived), key=lambda step: (step.position, step.id))
    templates = set(template_ids)
    ids = [step.id for step in live]
    problems: Problems = {}
    if len(live) > MAX_STEPS:
        problems["steps"] = ("campaigns.error.too_many_steps", {"max": MAX_STEPS})
    for number, step in enumerate(live, 1):
        for key, problem in step_problems(step.kind, step.config, template_ids=templates, step_ids=ids).items():
            problems[f"steps.{number}.{key}"] = problem
        if step.kind == StepKind.BRANCH:
            later = {other.id for other in live[number:]}
            for target in ("then_step", "else_step"):
                value = step.config.get(target)
                if value is not None and value in ids and value not in later:
                    # only forward: a sequence without loops ends, and each email goes once per cycle
                    problems[f"steps.{number}.{target}"] = ("campaigns.error.branch_backwards", {})
    return problems


# --- the machine --------------------------------------------------------------------------------


def live_steps(steps: Sequence[Step]) -> list[Step]:
    """The live steps in order."""
    return sorted((step for step in steps if not step.archived), key=lambda step: (step.position, step.id))


def resolve_step(steps: Sequence[Step], step_id: int | None) -> Step | None:
    """The live step a member on ``step_id`` is on: the step itself, or (removed) the next live step after
    its position; the first live step when it has none; None past the end."""
    live = live_steps(steps)
    if step_id is None:
        return live[0] if live else None
    by_id = {step.id: step for step in steps}
    step = by_id.get(step_id)
    if step is None:  # unknown step (should not happen): start over is wrong, finish is safe
        return None
    if not step.archived:
        return step
    return next((other for other in live if (other.position, other.id) > (step.position, step.id)), None)


def next_step(steps: Sequence[Step], step: Step) -> Step | None:
    """The live step after ``step`` in the current order."""
    live = live_steps(steps)
    return next((other for other in live if (other.position, other.id) > (step.position, step.id)), None)


def exit_reason(facts: Facts, exit_on: Iterable[str], goal: Mapping[str, Any] | None = None) -> str | None:
    """The exit that holds, by precedence: a stop, an unsubscribe (always), the campaign's goal, then the
    campaign's chosen exit rules (replied, meeting)."""
    rules = set(exit_on)
    key = goal_key(goal)
    held = {
        "stopped": facts.stopped,
        "unsubscribed": facts.unsubscribed,
        "goal": key is not None and key in facts.goals,
        "replied": facts.replied and "replied" in rules,
        "meeting": facts.meeting and "meeting" in rules,
    }
    return next((reason for reason in EXIT_ORDER if held[reason]), None)


def branch_taken(step: Step, events: Sequence[Event], cycle_started_at: dt.datetime,
                 entered: dt.datetime, now: dt.datetime) -> bool | None:
    """True (the event happened in the cycle, by the window's end), False (the window closed without
    it), None (still waiting)."""
    event = step.config.get("event")
    deadline = entered + dt.timedelta(days=_int(step.config.get("within_days"), 0))
    if any(item.kind == event and cycle_started_at <= item.at <= min(now, deadline) for item in events):
        return True
    return False if now >= deadline else None


def advance(
    steps: Sequence[Step],
    place: Place,
    events: Sequence[Event],
    facts: Facts,
    now: dt.datetime,
    *,
    exit_on: Iterable[str] = (),
    goal: Mapping[str, Any] | None = None,
) -> Outcome:
    """Walk one active member's sequence as far as it goes at ``now``. ``goal`` and ``exit_on`` are the
    campaign's; a goal step finishes the member when its own goal is reached, else it moves on."""
    if place.state != "active":
        return Outcome((), place.state, place.step_id, place.step_entered_at, None)
    actions: list[Action] = []
    reason = exit_reason(facts, exit_on, goal)
    if reason == "goal":
        return Outcome((Action("goal"),), "goal", place.step_id, place.step_entered_at, None)
    if reason is not None:
        return Outcome((Action("exit", detail=reason),), "exited", place.step_id, place.step_entered_at, None,
                       exit_reason=reason)
    step = resolve_step(steps, place.step_id)
    entered = place.step_entered_at or now
    if step is not None and step.id != place.step_id:
        entered = now  # a removed step's members enter the next live step now
    for _ in range(MAX_MOVES):
        if step is None:
            actions.append(Action("complete"))
            return Outcome(tuple(actions), "completed", None, now, None)
        if step.kind in (StepKind.EMAIL, StepKind.TASK):
            actions.append(Action(step.kind, step.id))
            step, entered = next_step(steps, step), now
        elif step.kind == StepKind.WAIT:
            due = wait_until(entered, step.config)
            if now < due:
                return Outcome(tuple(actions), "active", step.id, entered, due)
            step, entered = next_step(steps, step), now
        elif step.kind == StepKind.BRANCH:
            taken = branch_taken(step, events, place.cycle_started_at, entered, now)
            if taken is None:
                deadline = entered + dt.timedelta(days=_int(step.config.get("within_days"), 0))
                return Outcome(tuple(actions), "active", step.id, entered, min(deadline, now + BRANCH_POLL))
            target = step.config.get("then_step" if taken else "else_step")
            by_id = {item.id: item for item in live_steps(steps)}
            step = by_id.get(target) if _is_int(target) and target in by_id else next_step(steps, step)
            entered = now
        elif step.kind == StepKind.GOAL:
            if goal_key(step.config) in facts.goals:
                actions.append(Action("goal", step.id))
                return Outcome(tuple(actions), "goal", step.id, entered, None)
            step, entered = next_step(steps, step), now
        else:  # an unknown kind cannot be validated in; skip it rather than stick
            step, entered = next_step(steps, step), now
    # a loop of branches: hold the member where it is and look again later
    return Outcome(tuple(actions), "active", step.id if step else None, entered, now + BRANCH_POLL)
