"""Building blocks for the import suites.

The importer (``crm_core.importing.prepare``) hands GX a *prepared* frame: one column per
entity field holding the cleaned value, plus companion columns computed in Python or SQL
for the whole batch, which the suites expect on:

- ``<field>__missing``    set on rows that would create a record without a required field;
- ``<field>__invalid``    the raw text when it could not be read as a number/date/flag;
- ``<field>__decimals``   the raw text when a number has more decimals than its column keeps;
- ``<field>__unresolved`` the raw text when a reference (owner, customer, product …) matched nothing;
- ``_duplicate_in_file``  the key when an earlier row of the file has the same unique key;
- ``_key_taken``          the key when creating a row whose unique key already exists in the database;
- ``_match_missing``      the match key when an update matches no existing record;
- ``external_id__repeated`` / ``external_id__taken``  an external ID an earlier row / another record holds;
- ``<deal|contact>__other_customer`` the external ID of a deal or contact of another customer than the row's;
- ``_custom__invalid``     "field: text" for each custom value its type or the free-text rules refuse;
- ``_custom__missing``     the required custom fields left blank on a row that creates a record.

What a valid value is comes from :mod:`crm_core.rules.fields`, the table the create/edit
services check form input with: :func:`from_fields` turns each field into expectations whose
regexes, lengths, value sets and bounds are read from that table, and whose message keys are
the keys its rules return — so a row fails here exactly when the form would refuse the value.
Every expectation names a message key of ``locales/*/imports.json`` so the failure reads in
the user's language.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from crm_core.rules import fields as rules
from crm_core.rules.fields import EMAIL_PATTERN, MARKUP_PATTERN, PHONE_PATTERN


def _gx() -> Any:
    import great_expectations as gx

    return gx.expectations


def meta(key: str, **params: Any) -> dict[str, Any]:
    """The ``meta`` that carries a catalog key and its parameters."""
    return {"message_key": key, "params": params}


def required(column: str) -> Any:
    """The field must have a value on every row that creates a record (``<field>__missing`` marks those without)."""
    return _gx().ExpectColumnValuesToBeNull(
        column=f"{column}__missing", meta=meta("imports.rule.required", field=column)
    )


def readable(column: str, kind: str) -> Any:
    """A number/date/flag field must read as one (``kind``: number, date, datetime, bool, integer)."""
    return _gx().ExpectColumnValuesToBeNull(
        column=f"{column}__invalid", meta=meta(f"imports.rule.invalid_{kind}", field=column)
    )


def resolves(column: str, target: str) -> Any:
    """A reference by natural key must find its record (``target``: customer, product, owner …)."""
    return _gx().ExpectColumnValuesToBeNull(
        column=f"{column}__unresolved", meta=meta(f"imports.rule.unresolved_{target}", field=column)
    )


def max_length(column: str, limit: int) -> Any:
    """Text no longer than the database column."""
    return _gx().ExpectColumnValueLengthsToBeBetween(
        column=column, max_value=limit, meta=meta("imports.rule.too_long", field=column, max=limit)
    )


def one_of(column: str, values: list[str]) -> Any:
    """An enumerated field holds one of ``values`` (after the value mapping)."""
    return _gx().ExpectColumnValuesToBeInSet(
        column=column, value_set=values, meta=meta("imports.rule.choice", field=column, choices=", ".join(values))
    )


def between(column: str, minimum: float | None, maximum: float | None) -> Any:
    """A number within a range."""
    return _gx().ExpectColumnValuesToBeBetween(
        column=column,
        min_value=minimum,
        max_value=maximum,
        meta=meta(
            "imports.rule.range",
            field=column,
            min=minimum if minimum is not None else "-∞",
            max=maximum if maximum is not None else "∞",
        ),
    )


def email(column: str) -> Any:
    """An email address, when given."""
    return _gx().ExpectColumnValuesToMatchRegex(
        column=column, regex=EMAIL_PATTERN, meta=meta("imports.rule.email", field=column)
    )


def phone(column: str) -> Any:
    """A phone number of 6 to 15 digits, when given."""
    return _gx().ExpectColumnValuesToMatchRegex(
        column=column, regex=PHONE_PATTERN, meta=meta("imports.rule.phone", field=column)
    )


def plain_text(column: str, formula: str = rules.FORMULA_PATTERN) -> list[Any]:
    """No markup/script and no spreadsheet formula in a free-text field (``formula``: the field's pattern)."""
    gx = _gx()
    return [
        gx.ExpectColumnValuesToNotMatchRegex(
            column=column, regex=MARKUP_PATTERN, meta=meta("imports.rule.markup", field=column)
        ),
        gx.ExpectColumnValuesToNotMatchRegex(
            column=column, regex=rules.HIDDEN_PATTERN, meta=meta("imports.rule.hidden_characters", field=column)
        ),
        gx.ExpectColumnValuesToNotMatchRegex(
            column=column, regex=formula, meta=meta("imports.rule.formula", field=column)
        ),
    ]


def matches(column: str, pattern: str, key: str) -> Any:
    """A field with a pattern of its own (a SKU) matches it, when given."""
    return _gx().ExpectColumnValuesToMatchRegex(column=column, regex=pattern, meta=meta(key, field=column))


def decimals(column: str, places: int) -> Any:
    """A number has no more decimals than its column keeps (``<field>__decimals`` marks those with more)."""
    return _gx().ExpectColumnValuesToBeNull(
        column=f"{column}__decimals", meta=meta("imports.rule.decimals", field=column, places=places)
    )


def unique_in_file(key: str) -> Any:
    """No two rows of the file share the unique key ``key``."""
    return _gx().ExpectColumnValuesToBeNull(
        column="_duplicate_in_file", meta=meta("imports.rule.duplicate_in_file", field=key)
    )


def not_taken(key: str) -> Any:
    """Creating a row whose unique key already exists in the database is refused."""
    return _gx().ExpectColumnValuesToBeNull(column="_key_taken", meta=meta("imports.rule.key_taken", field=key))


def of_the_same_customer(column: str, target: str) -> Any:
    """A deal or contact named by external ID belongs to the row's customer (``<field>__other_customer``)."""
    return _gx().ExpectColumnValuesToBeNull(
        column=f"{column}__other_customer", meta=meta(f"imports.rule.other_customer_{target}", field=column)
    )


def external_id_once() -> Any:
    """No two rows of the file (two orders: the lines of one share it) carry the same external ID."""
    return _gx().ExpectColumnValuesToBeNull(
        column="external_id__repeated", meta=meta("imports.rule.duplicate_in_file", field="external_id")
    )


def external_id_free() -> Any:
    """An external ID no other record of the tenant holds (unique per tenant: decision 0042)."""
    return _gx().ExpectColumnValuesToBeNull(
        column="external_id__taken", meta=meta("imports.rule.external_id_taken", field="external_id")
    )


def matches_existing() -> Any:
    """In update mode every row must match an existing record."""
    return _gx().ExpectColumnValuesToBeNull(column="_match_missing", meta=meta("imports.rule.match_missing"))


def _bound(number: Decimal | None) -> int | float | None:
    return None if number is None else rules.plain_number(number)


def from_fields(entity: str) -> list[Any]:
    """The expectations every importable field of ``entity`` implies, read from its rule (crm_core.rules.fields)."""
    from crm_core.importing.fields import fields_of

    expectations: list[Any] = [no_extra_fields()]
    for spec in fields_of(entity):
        rule = spec.rule
        if spec.required:
            expectations.append(required(spec.name))
        if rule.formula_pattern is not None:
            expectations.extend(plain_text(spec.name, rule.formula_pattern))
        if rule.max_length:
            expectations.append(max_length(spec.name, rule.max_length))
        if rule.pattern is not None:
            expectations.append(matches(spec.name, *rule.pattern))
        if rule.kind == rules.EMAIL:
            expectations.append(email(spec.name))
        elif rule.kind == rules.PHONE:
            expectations.append(phone(spec.name))
        elif rule.kind == rules.ENUM:
            expectations.append(one_of(spec.name, list(rule.choices)))
        elif rule.kind in (*rules.NUMERIC, rules.DATE, rules.DATETIME, rules.BOOL):
            expectations.append(readable(spec.name, "number" if rule.kind == rules.MONEY else rule.kind))
        elif rule.kind == rules.REFERENCE:
            expectations.append(resolves(spec.name, rule.target or "record"))
            if rule.target in ("deal", "contact"):
                expectations.append(of_the_same_customer(spec.name, rule.target))
        if spec.name == "external_id":
            if entity != "customers":  # theirs is the file's hard key (_duplicate_in_file)
                expectations.append(external_id_once())
            expectations.append(external_id_free())
        if rule.kind in rules.NUMERIC and (rule.minimum is not None or rule.upper is not None):
            expectations.append(between(spec.name, _bound(rule.minimum), _bound(rule.upper)))
        if rule.scale is not None:
            expectations.append(decimals(spec.name, rule.scale))
    return [*expectations, *row_rules(entity)]


def row_rules(entity: str) -> list[Any]:
    """The rules a row meets as a whole (a lost deal's reason, a close date after the opening …): the prepare
    step marks the rows breaking each in its own column (``crm_core.importing.prepare.ROW_RULES``)."""
    from crm_core.importing.prepare import ROW_RULES, row_rule_column

    return [
        _gx().ExpectColumnValuesToBeNull(column=row_rule_column(key), meta=meta(key, field=field_name))
        for key, field_name in ROW_RULES.get(entity, ())
    ]


def no_extra_fields() -> Any:
    """No row has more cells than the header has columns (its cells would be read shifted)."""
    return _gx().ExpectColumnValuesToBeNull(column="_extra_fields", meta=meta("imports.rule.extra_fields"))


def order_total_fits() -> Any:
    """The lines of one order add up to no more than an order's total stores."""
    upper = rules.ORDER_TOTAL.upper
    return _gx().ExpectColumnValuesToBeNull(
        column="_total_overflow",
        meta=meta("imports.rule.range", field="total_amount", min=0, max=_bound(upper)),
    )


def custom_values_fit() -> Any:
    """Each custom field's value fits its type (number, date, yes/no, one of its choices) and, as text,
    the rules of free text (length, hidden characters, markup, formula)."""
    return _gx().ExpectColumnValuesToBeNull(column="_custom__invalid", meta=meta("imports.rule.custom_field"))


def custom_required() -> Any:
    """A row that creates a record fills every required custom field (``_custom__missing`` names those blank)."""
    return _gx().ExpectColumnValuesToBeNull(
        column="_custom__missing", meta=meta("imports.rule.custom_field_required")
    )


def one_order_one_customer() -> Any:
    """All lines of one order name the same customer."""
    return _gx().ExpectColumnValuesToBeNull(
        column="_duplicate_in_file", meta=meta("imports.rule.order_customer_conflict")
    )


def credit_code_valid() -> Any:
    """A credit code passes its check character (``stdnum.cn.uscc``; the prepare step marks those that fail)."""
    return _gx().ExpectColumnValuesToBeNull(column="credit_code__invalid", meta=meta("imports.rule.credit_code"))


def not_a_blocked_duplicate(message_key: str = "imports.rule.duplicate_blocked") -> Any:
    """No new record matches an existing one (or an earlier row) on a key the tenant's duplicate rules block
    (the prepare step marks them per entity; ``message_key`` says it for the entity)."""
    return _gx().ExpectColumnValuesToBeNull(column="_duplicate_blocked", meta=meta(message_key))
