"""The case status flow as a table: every (from, to) pair the flow allows or refuses, and the reopen window."""

from __future__ import annotations

import datetime as dt

import pytest

from crm_core.rules.case_flow import allowed_transitions, transition_problem

NOW = dt.datetime(2026, 12, 7, 12, 0)
ALLOWED, REFUSED = None, "cases.flow.not_allowed"


@pytest.mark.parametrize(("current", "target", "problem"), [
    ("new", "open", ALLOWED), ("new", "pending", ALLOWED), ("new", "on_hold", ALLOWED), ("new", "resolved", ALLOWED),
    ("new", "closed", REFUSED), ("new", "new", REFUSED),
    ("open", "pending", ALLOWED), ("open", "on_hold", ALLOWED), ("open", "resolved", ALLOWED),
    ("open", "new", REFUSED), ("open", "open", REFUSED), ("open", "closed", REFUSED),
    ("pending", "open", ALLOWED), ("pending", "on_hold", ALLOWED), ("pending", "resolved", ALLOWED),
    ("on_hold", "open", ALLOWED), ("on_hold", "pending", ALLOWED), ("on_hold", "closed", REFUSED),
    ("resolved", "closed", ALLOWED), ("resolved", "open", ALLOWED), ("resolved", "pending", REFUSED),
    ("closed", "open", "cases.flow.closed_is_final"), ("closed", "resolved", "cases.flow.closed_is_final"),
    ("open", "archived", "cases.flow.unknown_status"),
])
def test_the_flow_allows_and_refuses(current: str, target: str, problem: str | None) -> None:
    resolved_at = NOW - dt.timedelta(days=1) if current == "resolved" else None
    assert transition_problem(current, target, resolved_at=resolved_at, now=NOW) == problem


@pytest.mark.parametrize(("resolved_days_ago", "problem"), [
    (0, None), (6.9, None), (7, None),
    (7.01, "cases.flow.reopen_window_passed"), (30, "cases.flow.reopen_window_passed"),
])
def test_a_resolved_case_reopens_only_within_the_window(resolved_days_ago: float, problem: str | None) -> None:
    resolved_at = NOW - dt.timedelta(days=resolved_days_ago)
    assert transition_problem("resolved", "open", resolved_at=resolved_at, now=NOW) == problem


def test_the_actions_offered_follow_the_flow() -> None:
    assert allowed_transitions("new", resolved_at=None, now=NOW) == ["open", "pending", "on_hold", "resolved"]
    assert allowed_transitions("resolved", resolved_at=NOW - dt.timedelta(days=8), now=NOW) == ["closed"]
    assert allowed_transitions("closed", resolved_at=NOW, now=NOW) == []
