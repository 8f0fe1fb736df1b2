"""Building blocks for the import suites.

The importer (``crm_core.importing.prepare``) hands GX a *prepared* frame: one column per
entity field holding the cleaned value, plus companion columns computed in Python or SQL
for the whole batch, which the suites expect on:

- ``<field>__missing``    set on rows that would create a record without a required field;
- ``<field>__invalid``    the raw text when it could not be read as a number/date/flag;
- ``<field>__unresolved`` the raw text when a reference (owner, customer, product …) matched nothing;
- ``_duplicate_in_file``  the key when an earlier row of the file has the same unique key;
- ``_key_taken``          the key when creating a row whose unique key already exists in the database;
- ``_match_missing``      the match key when an update matches no existing record.

Every expectation names a message key of ``locales/*/imports.json`` so the failure reads
in the user's language.
"""

from __future__ import annotations

from typing import Any

# Text that would run as markup when shown, or as a formula when opened in a spreadsheet.
MARKUP = r"(?i)<\s*/?\s*(script|iframe|object|embed|img|svg|style|link|meta|a)\b|javascript\s*:|\bon[a-z]+\s*="
FORMULA = r"^\s*=[A-Za-z(+\-]"
EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$"
PHONE = r"^(?=(?:\D*\d){6,15}\D*$)\+?[0-9 ()\-./]{5,30}$"


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
        column=column, regex=EMAIL, meta=meta("imports.rule.email", field=column)
    )


def phone(column: str) -> Any:
    """A phone number of 6 to 15 digits, when given."""
    return _gx().ExpectColumnValuesToMatchRegex(
        column=column, regex=PHONE, meta=meta("imports.rule.phone", field=column)
    )


def plain_text(column: str) -> list[Any]:
    """No markup/script and no spreadsheet formula in a text field."""
    gx = _gx()
    return [
        gx.ExpectColumnValuesToNotMatchRegex(
            column=column, regex=MARKUP, meta=meta("imports.rule.markup", field=column)
        ),
        gx.ExpectColumnValuesToNotMatchRegex(
            column=column, regex=FORMULA, meta=meta("imports.rule.formula", field=column)
        ),
    ]


def unique_in_file(key: str) -> Any:
    """No two rows of the file share the unique key ``key``."""
    return _gx().ExpectColumnValuesToBeNull(
        column="_duplicate_in_file", meta=meta("imports.rule.duplicate_in_file", field=key)
    )


def not_taken(key: str) -> Any:
    """Creating a row whose unique key already exists in the database is refused."""
    return _gx().ExpectColumnValuesToBeNull(column="_key_taken", meta=meta("imports.rule.key_taken", field=key))


def matches_existing() -> Any:
    """In update mode every row must match an existing record."""
    return _gx().ExpectColumnValuesToBeNull(column="_match_missing", meta=meta("imports.rule.match_missing"))


def from_fields(entity: str) -> list[Any]:
    """The expectations every importable field of ``entity`` implies (see crm_core.importing.fields)."""
    from crm_core.importing.fields import fields_of

    expectations: list[Any] = []
    for spec in fields_of(entity):
        if spec.required:
            expectations.append(required(spec.name))
        if spec.kind == "text":
            expectations.extend(plain_text(spec.name))
        if spec.max_length and spec.kind in ("text", "email", "phone", "tags"):
            expectations.append(max_length(spec.name, spec.max_length))
        if spec.kind == "email":
            expectations.append(email(spec.name))
        elif spec.kind == "phone":
            expectations.append(phone(spec.name))
        elif spec.kind == "choice":
            expectations.append(one_of(spec.name, list(spec.choices)))
        elif spec.kind in ("number", "integer", "date", "datetime", "bool"):
            expectations.append(readable(spec.name, spec.kind))
        elif spec.kind == "ref":
            expectations.append(resolves(spec.name, spec.target or "record"))
    return expectations


def one_order_one_customer() -> Any:
    """All lines of one order name the same customer."""
    return _gx().ExpectColumnValuesToBeNull(
        column="_duplicate_in_file", meta=meta("imports.rule.order_customer_conflict")
    )
