"""Segment rules, pure: the condition model, its validation, and the RFM segment grid.

A segment is ``{"match": "all"|"any", "conditions": [{"field", "op", "value"}, …]}``.
:func:`validate_spec` turns such raw input (from the builder, a saved row or JSON) into a
:class:`SegmentSpec` of normalised values, or lists every problem as a catalog key with
parameters, so a bad condition is refused with a message before anything is stored or run.
:mod:`crm_core.queries.segments` compiles a valid spec into SQLAlchemy expressions.

Fields (``FIELD_KINDS``): customer columns, lifecycle stage, tags, owner/team, dates,
RFM (segment name or R/F/M quintile), ``score.<scorer>`` (percent 0–100) and
``custom.<name>`` for the tenant's custom fields (kind from the field's type).

RFM segments (``RFM_GRID``): R is the recency quintile (5 = most recent order), F and M the
frequency and monetary quintiles; the grid reads R against F+M (2–10), a common variant of
the classic R×F map, and covers every combination exactly once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_core.models import CustomerKind, LifecycleStage

MAX_CONDITIONS = 20
MAX_TEXT = 200
MAX_LIST = 50
MAX_DAYS = 36_500

# --- RFM ------------------------------------------------------------------------------

# (segment, recency quintiles, lowest F+M, highest F+M), first match wins; complete.
RFM_GRID: tuple[tuple[str, frozenset[int], int, int], ...] = (
    ("champions", frozenset({5}), 8, 10),
    ("loyal", frozenset({3, 4}), 8, 10),
    ("potential_loyalist", frozenset({4, 5}), 4, 7),
    ("new_customer", frozenset({5}), 2, 3),
    ("promising", frozenset({4}), 2, 3),
    ("need_attention", frozenset({3}), 6, 7),
    ("about_to_sleep", frozenset({3}), 2, 5),
    ("cant_lose", frozenset({1, 2}), 9, 10),
    ("at_risk", frozenset({1, 2}), 6, 8),
    ("hibernating", frozenset({2}), 2, 5),
    ("lost", frozenset({1}), 2, 5),
)
RFM_SEGMENTS: tuple[str, ...] = tuple(name for name, *_ in RFM_GRID)


def rfm_segment(recency: int, frequency: int, monetary: int) -> str:
    """The named segment of quintile scores R, F, M (each 1–5)."""
    for value in (recency, frequency, monetary):
        if not 1 <= value <= 5:
            raise ValueError(f"RFM scores are quintiles 1-5, got {value}")
    combined = frequency + monetary
    for name, recencies, low, high in RFM_GRID:
        if recency in recencies and low <= combined <= high:
            return name
    raise AssertionError("RFM_GRID must cover every combination")  # pragma: no cover


# --- the condition model ---------------------------------------------------------------

TEXT, CHOICE, TAGS, USER, TEAM, DATE, NUMBER, PERCENT, QUINTILE, BOOL = (
    "text", "choice", "tags", "user", "team", "date", "number", "percent", "quintile", "bool",
)

OPERATORS: dict[str, tuple[str, ...]] = {
    TEXT: ("equals", "not_equals", "contains", "starts_with", "in", "is_empty", "is_not_empty"),
    CHOICE: ("equals", "not_equals", "in", "not_in", "is_empty", "is_not_empty"),
    TAGS: ("has", "has_not", "has_any"),
    USER: ("in", "not_in", "is_empty", "is_not_empty"),
    TEAM: ("in", "not_in", "is_empty", "is_not_empty"),
    DATE: ("before", "after", "within_last_days", "more_than_days_ago", "is_empty", "is_not_empty"),
    NUMBER: ("eq", "ne", "gt", "gte", "lt", "lte", "between", "is_empty", "is_not_empty"),
    PERCENT: ("gte", "lte", "between", "is_empty", "is_not_empty"),
    QUINTILE: ("eq", "gte", "lte"),
    BOOL: ("is_true", "is_false"),
}
NO_VALUE = frozenset({"is_empty", "is_not_empty", "is_true", "is_false"})
LIST_VALUE = frozenset({"in", "not_in", "has_any"})

FIELD_KINDS: dict[str, str] = {
    "name": TEXT,
    "industry": TEXT,
    "region": TEXT,
    "source": TEXT,
    "email": TEXT,
    "kind": CHOICE,
    "lifecycle_stage": CHOICE,
    "tags": TAGS,
    "owner": USER,
    "team": TEAM,
    "created_at": DATE,
    "last_contacted_at": DATE,
    "next_follow_up_at": DATE,
    "rfm_segment": CHOICE,
    "rfm_recency": QUINTILE,
    "rfm_frequency": QUINTILE,
    "rfm_monetary": QUINTILE,
}
FIXED_CHOICES: dict[str, tuple[str, ...]] = {
    "kind": tuple(kind.value for kind in CustomerKind),
    "lifecycle_stage": tuple(stage.value for stage in LifecycleStage),
    "rfm_segment": RFM_SEGMENTS,
}
# custom field types (FieldDefinition.field_type) -> condition kind
CUSTOM_KINDS = {"text": TEXT, "number": NUMBER, "date": DATE, "bool": BOOL, "choice": CHOICE}
SCORE_PREFIX = "score."
CUSTOM_PREFIX = "custom."


@dataclass(frozen=True)
class Condition:
    """One normalised condition: ``field`` ``op`` ``value``."""

    field: str
    op: str
    value: Any = None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``segments.conditions``."""
        return {"field": self.field, "op": self.op, "value": self.value}


@dataclass(frozen=True)
class SegmentSpec:
    """A validated segment: all or any of its conditions (no conditions: every customer)."""

    match: str = "all"
    conditions: tuple[Condition, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The JSON form stored in ``segments.conditions``."""
        return {"match": self.match, "conditions": [condition.as_dict() for condition in self.conditions]}

    @property
    def uses_rfm(self) -> bool:
        """Whether compiling needs the RFM ranking of orders."""
        return any(condition.field.startswith("rfm_") for condition in self.conditions)


@dataclass(frozen=True)
class Problem:
    """Why a condition (``index``, or None for the whole spec) was refused: a catalog key and its parameters."""

    index: int | None
    key: str
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FieldCatalog:
    """What a tenant's segments may refer to besides the fixed fields."""

    custom_fields: Mapping[str, tuple[str, tuple[str, ...]]] = field(default_factory=dict)  # name -> (type, choices)
    scorers: Collection[str] = ()

    def kind_of(self, name: str) -> str | None:
        """The condition kind of field ``name``, or None when the tenant has no such field."""
        if name in FIELD_KINDS:
            return FIELD_KINDS[name]
        if name.startswith(SCORE_PREFIX):
            return PERCENT if name.removeprefix(SCORE_PREFIX) in self.scorers else None
        if name.startswith(CUSTOM_PREFIX):
            definition = self.custom_fields.get(name.removeprefix(CUSTOM_PREFIX))
            return CUSTOM_KINDS.get(definition[0]) if definition else None
        return None

    def choices_of(self, name: str) -> tuple[str, ...]:
        """The allowed values of a choice field."""
        if name in FIXED_CHOICES:
            return FIXED_CHOICES[name]
        definition = self.custom_fields.get(name.removeprefix(CUSTOM_PREFIX))
        return tuple(definition[1]) if definition else ()


class ConditionRefused(Exception):
    """A condition was refused: ``key`` is the catalog message, ``params`` its parameters."""

    def __init__(self, key: str, **params: Any) -> None:
        super().__init__(key)
        self.key = key
        self.params = params


def _text(value: Any) -> str:
    if value is None or isinstance(value, (list, dict)):
        raise ConditionRefused("segments.error.value_required")
    text = str(value).strip()
    if not text:
        raise ConditionRefused("segments.error.value_required")
    if len(text) > MAX_TEXT:
        raise ConditionRefused("validation.too_long", max=MAX_TEXT)
    return text


def _list(value: Any) -> list[Any]:
    if isinstance(value, str):
        value = [part for part in value.split(",")]
    if not isinstance(value, (list, tuple)):
        raise ConditionRefused("segments.error.list_required")
    items = [item for item in value if not (isinstance(item, str) and not item.strip())]
    if not items:
        raise ConditionRefused("segments.error.list_required")
    if len(items) > MAX_LIST:
        raise ConditionRefused("segments.error.too_many_values", max=MAX_LIST)
    return items


def _number(value: Any) -> Decimal:
    if isinstance(value, bool):
        raise ConditionRefused("validation.number")
    try:
        number = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise ConditionRefused("validation.number") from None
    if not number.is_finite():
        raise ConditionRefused("validation.number")
    return number


def _integer(value: Any, low: int, high: int) -> int:
    number = _number(value)
    if number != number.to_integral_value() or not low <= number <= high:
        raise ConditionRefused("segments.error.out_of_range", min=low, max=high)
    return int(number)


def _date(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    try:
        return dt.date.fromisoformat(str(value).strip()).isoformat()
    except ValueError:
        raise ConditionRefused("validation.date") from None


def _ids(value: Any) -> list[int]:
    items = _list(value)
    try:
        ids = sorted({int(item) for item in items})
    except (TypeError, ValueError):
        raise ConditionRefused("validation.choice") from None
    return ids


def _range(value: Any, convert: Any) -> list[Any]:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConditionRefused("segments.error.range_required")
    low, high = convert(value[0]), convert(value[1])
    if low > high:
        raise ConditionRefused("segments.error.range_order")
    return [low, high]


def _percent(value: Any) -> Decimal:
    number = _number(value)
    if not Decimal(0) <= number <= Decimal(100):
        raise ConditionRefused("segments.error.out_of_range", min=0, max=100)
    return number


def _normalise_value(name: str, kind: str, op: str, value: Any, catalog: FieldCatalog) -> Any:
    if op in NO_VALUE:
        return None
    if kind == TEXT:
        return [_text(item) for item in _list(value)] if op in LIST_VALUE else _text(value)
    if kind == CHOICE:
        allowed = catalog.choices_of(name)
        values = [str(item).strip() for item in _list(value)] if op in LIST_VALUE else [_text(value)]
        unknown = [item for item in values if item not in allowed]
        if unknown:
            raise ConditionRefused("segments.error.bad_choice", value=unknown[0])
        return values if op in LIST_VALUE else values[0]
    if kind == TAGS:
        tags = [_text(item).lower() for item in _list(value)] if op in LIST_VALUE else [_text(value).lower()]
        if any("," in tag for tag in tags):
            raise ConditionRefused("segments.error.bad_tag")
        return tags if op in LIST_VALUE else tags[0]
    if kind in (USER, TEAM):
        return _ids(value)
    if kind == DATE:
        if op in ("within_last_days", "more_than_days_ago"):
            return _integer(value, 1, MAX_DAYS)
        return _date(value)
    if kind == NUMBER:
        return [str(v) for v in _range(value, _number)] if op == "between" else str(_number(value))
    if kind == PERCENT:
        return [str(v) for v in _range(value, _percent)] if op == "between" else str(_percent(value))
    if kind == QUINTILE:
        return _integer(value, 1, 5)
    raise ConditionRefused("segments.error.bad_operator", field=name, op=op)  # pragma: no cover


def validate_condition(raw: Any, catalog: FieldCatalog) -> Condition:
    """One raw condition as a :class:`Condition`; raises ConditionRefused."""
    if not isinstance(raw, Mapping):
        raise ConditionRefused("segments.error.malformed")
    name = str(raw.get("field") or "").strip()
    op = str(raw.get("op") or "").strip()
    kind = catalog.kind_of(name)
    if kind is None:
        raise ConditionRefused("segments.error.unknown_field", field=name or "?")
    if op not in OPERATORS[kind]:
        raise ConditionRefused("segments.error.bad_operator", field=name, op=op or "?")
    return Condition(name, op, _normalise_value(name, kind, op, raw.get("value"), catalog))


def validate_spec(
    raw: Any, catalog: FieldCatalog, *, require_conditions: bool = False
) -> tuple[SegmentSpec | None, list[Problem]]:
    """Check a raw segment; returns the normalised spec, or None and every problem found."""
    if not isinstance(raw, Mapping):
        return None, [Problem(None, "segments.error.malformed")]
    problems: list[Problem] = []
    match = str(raw.get("match") or "all")
    if match not in ("all", "any"):
        problems.append(Problem(None, "segments.error.bad_match"))
    conditions_raw = raw.get("conditions") or []
    if not isinstance(conditions_raw, (list, tuple)):
        return None, [Problem(None, "segments.error.malformed")]
    if len(conditions_raw) > MAX_CONDITIONS:
        problems.append(Problem(None, "segments.error.too_many_conditions", {"max": MAX_CONDITIONS}))
    if require_conditions and not conditions_raw:
        problems.append(Problem(None, "segments.error.no_conditions"))
    conditions: list[Condition] = []
    for index, condition_raw in enumerate(conditions_raw[:MAX_CONDITIONS]):
        try:
            conditions.append(validate_condition(condition_raw, catalog))
        except ConditionRefused as refused:
            problems.append(Problem(index, refused.key, refused.params))
    if problems:
        return None, problems
    return SegmentSpec(match, tuple(conditions)), []
