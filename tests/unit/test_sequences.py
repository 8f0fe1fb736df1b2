"""The step machine as tables of events → expected steps, with frozen time (decision 0049)."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_core.rules.sequences import (
    Event,
    Facts,
    Place,
    Step,
    add_business_days,
    advance,
    sequence_problems,
)

T0 = dt.datetime(2026, 12, 1, 1, 0)  # Tuesday 09:00 Beijing
STEPS = (
    Step(1, 10, "email", {"template_id": 7}),
    Step(2, 20, "wait", {"days": 2, "business_days": False}),
    Step(3, 30, "branch", {"event": "opened", "within_days": 3, "then_step": 5, "else_step": None}),
    Step(4, 40, "task", {"activity_kind": "call", "title": "Call", "due_days": 1}),
    Step(5, 50, "goal", {"kind": "deal_won"}),
)


def place(step_id: int | None, entered: dt.datetime = T0) -> Place:
    return Place("active", step_id, entered, T0, 1)


@pytest.mark.parametrize(("start", "events", "facts", "now", "actions", "state", "step", "next_run"), [
    # a fresh member: the email goes, then it waits two days
    (None, [], Facts(), T0, [("email", 1)], "active", 2, T0 + dt.timedelta(days=2)),
    # the wait is over, no open yet: the branch waits (looking again every 15 minutes)
    (2, [], Facts(), T0 + dt.timedelta(days=2), [], "active", 3, T0 + dt.timedelta(days=2, minutes=15)),
    # opened during the wait: the branch goes to the goal step; no deal won, so the member completes
    (2, [Event("opened", T0 + dt.timedelta(hours=5))], Facts(), T0 + dt.timedelta(days=2),
     [("complete", None)], "completed", None, None),
    # the branch window closes without an open: the task (else: next), then the goal step, then complete
    (3, [], Facts(), T0 + dt.timedelta(days=3), [("task", 4), ("complete", None)], "completed", None, None),
    # a deal won: the goal step is reached
    (4, [], Facts(goals=frozenset({"deal_won"})), T0, [("task", 4), ("goal", 5)], "goal", 5, None),
    # exit precedence: a stop beats an unsubscribe, which beats a reply
    (2, [], Facts(stopped=True, unsubscribed=True, replied=True), T0, [("exit", None)], "exited", 2, None),
    # a reply is an exit only when the campaign chose it
    (2, [], Facts(replied=True), T0 + dt.timedelta(hours=1), [], "active", 2, T0 + dt.timedelta(days=2)),
])
def test_the_machine(start: int | None, events: list[Event], facts: Facts, now: dt.datetime,
                     actions: list[tuple[str, int | None]], state: str, step: int | None,
                     next_run: dt.datetime | None) -> None:
    outcome = advance(STEPS, place(start), events, facts, now, exit_on=["meeting"] if facts.replied else [])
    assert [(action.kind, action.step_id) for action in outcome.actions] == actions
    assert (outcome.state, outcome.next_run_at) == (state, next_run)
    if state == "active" or state == "goal":
        assert outcome.step_id == step


def test_exit_reasons_follow_their_precedence() -> None:
    stopped = advance(STEPS, place(2), [], Facts(stopped=True, unsubscribed=True), T0)
    assert stopped.exit_reason == "stopped"
    unsubscribed = advance(STEPS, place(2), [], Facts(unsubscribed=True, goals=frozenset({"deal_won"})), T0,
                           goal={"kind": "deal_won"})
    assert unsubscribed.exit_reason == "unsubscribed"
    goal = advance(STEPS, place(2), [], Facts(goals=frozenset({"lifecycle:customer"}), replied=True), T0,
                   goal={"kind": "lifecycle", "stage": "customer"}, exit_on=["replied"])
    assert goal.state == "goal"
    replied = advance(STEPS, place(2), [], Facts(replied=True, meeting=True), T0, exit_on=["replied", "meeting"])
    assert replied.exit_reason == "replied"


def test_live_edits() -> None:
    # the member's wait step was removed: it moves to the next live step (the branch) now
    edited = tuple(Step(s.id, s.position, s.kind, s.config, archived=s.id == 2) for s in STEPS)
    outcome = advance(edited, place(2), [], Facts(), T0 + dt.timedelta(hours=1))
    assert (outcome.step_id, outcome.step_entered_at) == (3, T0 + dt.timedelta(hours=1))
    # a step inserted before the member's place is not run for it
    inserted = (Step(9, 5, "email", {"template_id": 8}), *STEPS)
    outcome = advance(inserted, place(2), [], Facts(), T0 + dt.timedelta(days=2))
    assert all(action.step_id != 9 for action in outcome.actions)
    # a longer wait applies to members already waiting (from when they entered)
    longer = tuple(Step(s.id, s.position, s.kind, {"days": 5} if s.id == 2 else s.config) for s in STEPS)
    assert advance(longer, place(2), [], Facts(), T0 + dt.timedelta(days=3)).next_run_at == T0 + dt.timedelta(days=5)


@pytest.mark.parametrize(("start", "days", "expected"), [
    (dt.datetime(2026, 12, 1, 1, 0), 2, dt.datetime(2026, 12, 3, 1, 0)),  # Tue → Thu
    (dt.datetime(2026, 12, 4, 1, 0), 1, dt.datetime(2026, 12, 7, 1, 0)),  # Fri → Mon
    (dt.datetime(2026, 9, 30, 1, 0), 1, dt.datetime(2026, 10, 8, 1, 0)),  # National Day holiday skipped
    (dt.datetime(2026, 10, 9, 1, 0), 1, dt.datetime(2026, 10, 10, 1, 0)),  # Saturday 10 Oct is a 调休 workday
    (dt.datetime(2026, 12, 1, 1, 0), 0, dt.datetime(2026, 12, 1, 1, 0)),
])
def test_business_days_follow_the_china_calendar(start: dt.datetime, days: int, expected: dt.datetime) -> None:
    assert add_business_days(start, days) == expected


def test_validation_names_each_problem() -> None:
    steps = [Step(1, 10, "email", {"template_id": 99}), Step(2, 20, "wait", {"days": -1}),
             Step(3, 30, "branch", {"event": "opened", "within_days": 1, "then_step": 1}),
             Step(4, 40, "goal", {"kind": "lifecycle", "stage": "nowhere"}),
             Step(5, 50, "task", {"activity_kind": "call", "title": " ", "due_days": 1})]
    problems = sequence_problems(steps, template_ids=[7])
    assert problems == {
        "steps.1.template_id": ("campaigns.error.template", {}),
        "steps.2.days": ("campaigns.error.days_range", {"min": 0, "max": 365}),
        "steps.3.then_step": ("campaigns.error.branch_backwards", {}),
        "steps.4.goal": ("campaigns.error.goal_stage", {}),
        "steps.5.title": ("validation.required", {}),
    }
    assert sequence_problems(STEPS, template_ids=[7]) == {}
