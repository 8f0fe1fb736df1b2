"""Assignment rules, pure: conditions on customer fields, and the two ways to pick a rep.

A rule's conditions are a list of ``{"field", "op", "value"}``; all must hold (an empty
list matches every customer). :func:`condition_problems` is what the admin page and the
service call before a rule is saved, so a stored rule always evaluates.
Picking is fair and deterministic: round-robin walks the candidates in user-id order from
the one after the last assigned; least-busy takes the rep with fewest open tasks and
breaks ties in that same round-robin order.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from crm_core.models import CustomerKind, LifecycleStage
from crm_core.models.automation import AssignmentMethod

FIELDS = ("kind", "industry", "region", "source", "tags", "lifecycle_stage")
OPERATORS = ("equals", "not_equals", "in", "contains", "is_empty", "not_empty")
VALUELESS_OPERATORS = ("is_empty", "not_empty")
_CHOICES: dict[str, tuple[str, ...]] = {
    "kind": tuple(kind.value for kind in CustomerKind),
    "lifecycle_stage": tuple(stage.value for stage in LifecycleStage),
}

Problem = tuple[str, dict[str, Any]]


def _field_known(field_name: str, custom_fields: Iterable[str]) -> bool:
    if field_name in FIELDS:
        return True
    return field_name.startswith("custom.") and field_name.removeprefix("custom.") in set(custom_fields)


def condition_problems(
    conditions: Sequence[Mapping[str, Any]], *, custom_fields: Iterable[str] = ()
) -> list[Problem]:
    """Why ``conditions`` cannot be saved, as catalog keys with parameters (empty when fine)."""
    problems: list[Problem] = []
    custom = list(custom_fields)
    for number, condition in enumerate(conditions, start=1):
        field_name = str(condition.get("field") or "")
        op = str(condition.get("op") or "")
        value = condition.get("value")
        text = "" if value is None else str(value).strip()
        if not _field_known(field_name, custom):
            problems.append(("followups.condition.unknown_field", {"number": number, "field": field_name}))
            continue
        if op not in OPERATORS:
            problems.append(("followups.condition.unknown_operator", {"number": number, "op": op}))
            continue
        if op in VALUELESS_OPERATORS:
            continue
        if not text:
            problems.append(("followups.condition.value_required", {"number": number}))
            continue
        if len(text) > 200:
            problems.append(("followups.condition.value_too_long", {"number": number, "max": 200}))
            continue
        choices = _CHOICES.get(field_name)
        if choices:
            values = [part.strip() for part in text.split(",")] if op == "in" else [text]
            wrong = [part for part in values if part not in choices]
            if wrong:
                problems.append(
                    ("followups.condition.bad_choice",
                     {"number": number, "value": ", ".join(wrong), "choices": ", ".join(choices)})
                )
    return problems


def _field_value(customer: Mapping[str, Any], field_name: str) -> str:
    if field_name.startswith("custom."):
        custom = customer.get("custom_fields") or {}
        value = custom.get(field_name.removeprefix("custom."))
    else:
        value = customer.get(field_name)
    return "" if value is None else str(value).strip()


def condition_holds(customer: Mapping[str, Any], condition: Mapping[str, Any]) -> bool:
    """Does one condition hold for ``customer`` (a mapping of its fields)? Text compares case-blind."""
    field_name = str(condition.get("field"))
    op = str(condition.get("op"))
    expected = "" if condition.get("value") is None else str(condition.get("value")).strip().casefold()
    actual = _field_value(customer, field_name).casefold()
    if field_name == "tags":
        tags = [tag.strip().casefold() for tag in actual.split(",") if tag.strip()]
        if op == "equals" or op == "contains":
            return expected in tags
        if op == "not_equals":
            return expected not in tags
        if op == "in":
            return any(part.strip() in tags for part in expected.split(","))
        if op == "is_empty":
            return not tags
        return bool(tags)
    if op == "equals":
        return actual == expected
    if op == "not_equals":
        return actual != expected
    if op == "in":
        return actual in {part.strip() for part in expected.split(",")}
    if op == "contains":
        return expected in actual
    if op == "is_empty":
        return not actual
    if op == "not_empty":
        return bool(actual)
    return False


def rule_matches(customer: Mapping[str, Any], conditions: Sequence[Mapping[str, Any]]) -> bool:
    """All conditions hold (an empty list matches every customer)."""
    return all(condition_holds(customer, condition) for condition in conditions)


def round_robin_order(candidate_ids: Sequence[int], last_assigned_id: int | None) -> list[int]:
    """Candidates in the order round-robin serves them: by id, starting after ``last_assigned_id``."""
    ordered = sorted(set(candidate_ids))
    if last_assigned_id is None:
        return ordered
    after = [user_id for user_id in ordered if user_id > last_assigned_id]
    return after + [user_id for user_id in ordered if user_id <= last_assigned_id]


def pick_round_robin(candidate_ids: Sequence[int], last_assigned_id: int | None, count: int) -> list[int]:
    """The reps for the next ``count`` customers, in turn."""
    order = round_robin_order(candidate_ids, last_assigned_id)
    if not order:
        return []
    return [order[index % len(order)] for index in range(count)]


def pick_least_busy(
    open_tasks: Mapping[int, int], last_assigned_id: int | None, count: int
) -> list[int]:
    """The reps for the next ``count`` customers: fewest open tasks first, each assignment adding one.

    Ties go in round-robin order after ``last_assigned_id``, so equally busy reps take turns.
    """
    order = round_robin_order(list(open_tasks), last_assigned_id)
    if not order:
        return []
    load = {user_id: open_tasks[user_id] for user_id in order}
    picked: list[int] = []
    for _ in range(count):
        rank = {user_id: position for position, user_id in enumerate(order)}
        chosen = min(order, key=lambda user_id: (load[user_id], rank[user_id]))
        picked.append(chosen)
        load[chosen] += 1
        # the next tie starts after the one just chosen
        order = round_robin_order(order, chosen)
    return picked


def pick_next_agents(method: str, open_cases: Mapping[int, int], last_assigned_id: int | None,
                     current_assignees: Sequence[int | None]) -> list[int | None]:
    """For each case (given by its current assignee), the queue's next agent other than that one.

    ``method`` is the queue's: ``least_busy`` takes the fewest open cases (each hand-over moves one case
    from the old agent to the new), otherwise round-robin; ties and turns go in round-robin order after
    the last one assigned. None where the team has no other agent.
    """
    order = round_robin_order(list(open_cases), last_assigned_id)
    load = dict(open_cases)
    picked: list[int | None] = []
    for current in current_assignees:
        choices = [user_id for user_id in order if user_id != current]
        if not choices:
            picked.append(None)
            continue
        if method == AssignmentMethod.LEAST_BUSY:
            rank = {user_id: position for position, user_id in enumerate(order)}
            chosen = min(choices, key=lambda user_id: (load[user_id], rank[user_id]))
        else:
            chosen = choices[0]
        picked.append(chosen)
        load[chosen] += 1
        if current in load:
            load[current] -= 1
        order = round_robin_order(order, chosen)
    return picked
