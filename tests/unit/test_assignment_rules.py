"""Assignment rules: conditions as tables, round-robin order and least-busy ties."""

from __future__ import annotations

from typing import Any

import pytest

from crm_core.rules.assignment import (
    condition_problems,
    pick_least_busy,
    pick_next_agents,
    pick_round_robin,
    round_robin_order,
    rule_matches,
)

CUSTOMER: dict[str, Any] = {
    "kind": "company", "industry": "Retail", "region": "华东", "source": "", "tags": ",vip,renewal,",
    "lifecycle_stage": "intent", "custom_fields": {"tier": "Gold"},
}


@pytest.mark.parametrize(
    ("conditions", "matches"),
    [
        ([], True),
        ([{"field": "industry", "op": "equals", "value": "retail"}], True),
        ([{"field": "industry", "op": "not_equals", "value": "Retail"}], False),
        ([{"field": "region", "op": "equals", "value": "华东"}], True),
        ([{"field": "region", "op": "in", "value": "华北, 华东"}], True),
        ([{"field": "region", "op": "in", "value": "华北,华南"}], False),
        ([{"field": "industry", "op": "contains", "value": "tai"}], True),
        ([{"field": "source", "op": "is_empty"}], True),
        ([{"field": "source", "op": "not_empty"}], False),
        ([{"field": "tags", "op": "contains", "value": "VIP"}], True),
        ([{"field": "tags", "op": "equals", "value": "vi"}], False),
        ([{"field": "custom.tier", "op": "equals", "value": "gold"}], True),
        ([{"field": "industry", "op": "equals", "value": "Retail"},
          {"field": "lifecycle_stage", "op": "equals", "value": "customer"}], False),
    ],
)
def test_a_rule_matches_when_all_its_conditions_hold(conditions: list[dict[str, Any]], matches: bool) -> None:
    assert rule_matches(CUSTOMER, conditions) is matches


@pytest.mark.parametrize(
    ("condition", "problem"),
    [
        ({"field": "industry", "op": "equals", "value": "Retail"}, None),
        ({"field": "source", "op": "is_empty"}, None),
        ({"field": "salary", "op": "equals", "value": "1"}, "followups.condition.unknown_field"),
        ({"field": "custom.unknown", "op": "equals", "value": "1"}, "followups.condition.unknown_field"),
        ({"field": "industry", "op": "like", "value": "x"}, "followups.condition.unknown_operator"),
        ({"field": "industry", "op": "equals", "value": "  "}, "followups.condition.value_required"),
        ({"field": "kind", "op": "equals", "value": "alien"}, "followups.condition.bad_choice"),
        ({"field": "lifecycle_stage", "op": "in", "value": "intent, lost"}, "followups.condition.bad_choice"),
        ({"field": "industry", "op": "equals", "value": "x" * 201}, "followups.condition.value_too_long"),
    ],
)
def test_invalid_conditions_are_named_before_saving(condition: dict[str, Any], problem: str | None) -> None:
    problems = condition_problems([condition], custom_fields=["tier"])
    assert [key for key, _ in problems] == ([problem] if problem else [])


@pytest.mark.parametrize(
    ("candidates", "last", "count", "expected"),
    [
        ([3, 1, 2], None, 4, [1, 2, 3, 1]),
        ([1, 2, 3], 2, 3, [3, 1, 2]),
        ([1, 2, 3], 3, 2, [1, 2]),
        ([10, 20], 15, 3, [20, 10, 20]),  # the last one left the team: continue after its id
        ([], None, 2, []),
    ],
)
def test_round_robin_serves_reps_in_turn_after_the_last_assigned(
    candidates: list[int], last: int | None, count: int, expected: list[int]
) -> None:
    assert pick_round_robin(candidates, last, count) == expected


@pytest.mark.parametrize(
    ("open_tasks", "last", "count", "expected"),
    [
        ({1: 5, 2: 0, 3: 2}, None, 1, [2]),
        ({1: 0, 2: 0, 3: 0}, None, 3, [1, 2, 3]),  # ties: round-robin order
        ({1: 0, 2: 0, 3: 0}, 1, 3, [2, 3, 1]),
        ({1: 1, 2: 0, 3: 0}, 3, 4, [2, 3, 1, 2]),
        ({1: 4, 2: 1}, None, 4, [2, 2, 2, 1]),
    ],
)
def test_least_busy_takes_the_rep_with_fewest_open_tasks_and_breaks_ties_in_turn(
    open_tasks: dict[int, int], last: int | None, count: int, expected: list[int]
) -> None:
    assert pick_least_busy(open_tasks, last, count) == expected


def test_round_robin_order_wraps_around() -> None:
    assert round_robin_order([5, 1, 3], 3) == [5, 1, 3]


@pytest.mark.parametrize(("method", "open_cases", "last", "current", "expected"), [
    # round-robin: the next after the pointer, never the case's own agent
    ("round_robin", {1: 0, 2: 0, 3: 0}, None, [1], [2]),
    ("round_robin", {1: 0, 2: 0, 3: 0}, 1, [2, 2, 2], [3, 1, 3]),
    ("round_robin", {1: 0, 2: 0, 3: 0}, 3, [None], [1]),
    # fewest open cases: each hand-over moves one case from the old agent to the new
    ("least_busy", {1: 5, 2: 1, 3: 1}, None, [1, 1], [2, 3]),
    ("least_busy", {1: 5, 2: 1, 3: 4}, 2, [2], [3]),
    # the team's only agent has the case: nobody to hand it to
    ("round_robin", {7: 3}, None, [7, None], [None, 7]),
])
def test_a_breached_case_goes_to_the_queues_next_agent_other_than_its_own(
        method: str, open_cases: dict[int, int], last: int | None, current: list[int | None],
        expected: list[int | None]) -> None:
    assert pick_next_agents(method, open_cases, last, current) == expected
