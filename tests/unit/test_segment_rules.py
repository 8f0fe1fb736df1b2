"""Segment rules: which conditions are accepted (and normalised), which are refused and why; the RFM grid."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from crm_core.rules.segments import RFM_GRID, RFM_SEGMENTS, FieldCatalog, rfm_segment, validate_spec

CATALOG = FieldCatalog(
    custom_fields={"budget": ("number", ()), "tier": ("choice", ("gold", "silver")), "vip": ("bool", ()),
                   "renewal": ("date", ()), "note": ("text", ())},
    scorers=("churn_risk", "deal_win"),
)


def one(field: str, op: str, value: Any = None) -> dict[str, Any]:
    return {"match": "all", "conditions": [{"field": field, "op": op, "value": value}]}


@pytest.mark.parametrize(
    ("field", "op", "value", "normalised"),
    [
        ("name", "contains", "  张三 ", "张三"),
        ("name", "in", "Acme, Beta ,", ["Acme", "Beta"]),
        ("industry", "is_empty", "ignored", None),
        ("lifecycle_stage", "in", ["intent", "customer"], ["intent", "customer"]),
        ("lifecycle_stage", "equals", "churned", "churned"),
        ("kind", "not_equals", "person", "person"),
        ("tags", "has", "VIP", "vip"),
        ("tags", "has_any", ["vip", "partner"], ["vip", "partner"]),
        ("owner", "in", ["3", 2, 3], [2, 3]),
        ("owner", "is_empty", None, None),
        ("team", "not_in", [1], [1]),
        ("created_at", "before", "2026-01-31", "2026-01-31"),
        ("last_contacted_at", "more_than_days_ago", 30.0, 30),
        ("next_follow_up_at", "within_last_days", "7", 7),
        ("rfm_segment", "in", ["champions", "at_risk"], ["champions", "at_risk"]),
        ("rfm_recency", "gte", 4, 4),
        ("score.churn_risk", "gte", 70, "70"),
        ("score.deal_win", "between", [20, 80.5], ["20", "80.5"]),
        ("custom.budget", "gt", "1000.50", "1000.50"),
        ("custom.budget", "between", [1, 2], ["1", "2"]),
        ("custom.tier", "equals", "gold", "gold"),
        ("custom.vip", "is_true", None, None),
        ("custom.renewal", "after", "2026-12-01", "2026-12-01"),
        ("custom.note", "starts_with", "tel", "tel"),
    ],
)
def test_a_valid_condition_is_accepted_and_normalised(field: str, op: str, value: Any, normalised: Any) -> None:
    spec, problems = validate_spec(one(field, op, value), CATALOG)
    assert problems == []
    assert spec is not None and spec.conditions[0].value == normalised


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        (one("salary", "equals", "1"), "segments.error.unknown_field"),
        (one("custom.missing", "equals", "1"), "segments.error.unknown_field"),
        (one("score.magic", "gte", 50), "segments.error.unknown_field"),
        (one("name", "gt", "a"), "segments.error.bad_operator"),
        (one("lifecycle_stage", "contains", "cust"), "segments.error.bad_operator"),
        (one("name", "equals", "   "), "segments.error.value_required"),
        (one("name", "equals", "x" * 201), "validation.too_long"),
        (one("lifecycle_stage", "equals", "vip"), "segments.error.bad_choice"),
        (one("rfm_segment", "in", ["champions", "whales"]), "segments.error.bad_choice"),
        (one("custom.tier", "in", []), "segments.error.list_required"),
        (one("owner", "in", ["bob"]), "validation.choice"),
        (one("created_at", "before", "31/01/2026"), "validation.date"),
        (one("last_contacted_at", "within_last_days", 0), "segments.error.out_of_range"),
        (one("last_contacted_at", "within_last_days", 2.5), "segments.error.out_of_range"),
        (one("rfm_recency", "eq", 6), "segments.error.out_of_range"),
        (one("score.churn_risk", "gte", 101), "segments.error.out_of_range"),
        (one("score.churn_risk", "between", [80, 20]), "segments.error.range_order"),
        (one("custom.budget", "between", 5), "segments.error.range_required"),
        (one("custom.budget", "gt", "lots"), "validation.number"),
        (one("custom.budget", "gt", "NaN"), "validation.number"),
        (one("tags", "has", "a,b"), "segments.error.bad_tag"),
        ({"match": "some", "conditions": []}, "segments.error.bad_match"),
        ({"match": "all", "conditions": "name=1"}, "segments.error.malformed"),
        ({"match": "all", "conditions": ["name"]}, "segments.error.malformed"),
        (
            {"match": "all", "conditions": [{"field": "name", "op": "is_empty"}] * 21},
            "segments.error.too_many_conditions",
        ),
        ("not a segment", "segments.error.malformed"),
    ],
)
def test_an_invalid_condition_is_refused_with_a_message(raw: Any, key: str) -> None:
    spec, problems = validate_spec(raw, CATALOG)
    assert spec is None
    assert key in [problem.key for problem in problems]


def test_every_refused_condition_is_reported_with_its_position() -> None:
    raw = {"match": "all", "conditions": [
        {"field": "name", "op": "contains", "value": "ok"},
        {"field": "nope", "op": "equals", "value": 1},
        {"field": "rfm_recency", "op": "eq", "value": 9},
    ]}
    _, problems = validate_spec(raw, CATALOG)
    assert [(p.index, p.key) for p in problems] == [
        (1, "segments.error.unknown_field"), (2, "segments.error.out_of_range")]


def test_saving_needs_a_condition_but_counting_everyone_does_not() -> None:
    assert validate_spec({"match": "all", "conditions": []}, CATALOG)[0] is not None
    _, problems = validate_spec({"match": "all", "conditions": []}, CATALOG, require_conditions=True)
    assert [p.key for p in problems] == ["segments.error.no_conditions"]


@pytest.mark.parametrize(("r", "f", "m"), list(itertools.product(range(1, 6), repeat=3)))
def test_every_rfm_combination_falls_in_exactly_one_segment(r: int, f: int, m: int) -> None:
    matches = [name for name, recencies, low, high in RFM_GRID if r in recencies and low <= f + m <= high]
    assert len(matches) == 1
    assert rfm_segment(r, f, m) == matches[0]


@pytest.mark.parametrize(
    ("scores", "segment"),
    [
        ((5, 5, 5), "champions"), ((5, 4, 4), "champions"), ((4, 5, 5), "loyal"), ((3, 4, 4), "loyal"),
        ((5, 2, 3), "potential_loyalist"), ((5, 1, 1), "new_customer"), ((4, 1, 2), "promising"),
        ((3, 3, 3), "need_attention"), ((3, 1, 2), "about_to_sleep"), ((1, 5, 5), "cant_lose"),
        ((2, 4, 3), "at_risk"), ((2, 1, 2), "hibernating"), ((1, 1, 1), "lost"), ((1, 2, 3), "lost"),
    ],
)
def test_named_rfm_segments(scores: tuple[int, int, int], segment: str) -> None:
    assert rfm_segment(*scores) == segment


def test_rfm_scores_are_quintiles() -> None:
    with pytest.raises(ValueError):
        rfm_segment(0, 3, 3)
    assert len(set(RFM_SEGMENTS)) == 11
