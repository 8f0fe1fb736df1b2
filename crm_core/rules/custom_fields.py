"""One definition of a valid custom-field value, for the customer form, the API and the import.

A custom field (``FieldDefinition``) has a type — text, number, date, choice or bool — and,
for a choice, its values. :func:`read_custom_value` turns what was typed or imported into the
stored JSON value, or names the type it fails. The form (``services/customers.py``) and the
import (``importing/prepare.py``) both call it: a number is read as the number fields read one
(``1,200.50``, ``¥30``), a date as the date fields do (``2026-03-05``, ``2026年3月5日``), yes/no in
two languages (``Yes``, ``是``, ``1`` → true): a filter on a yes/no field finds imported rows.

:data:`FIELD_NAME_PATTERN` is what the admin page accepts as a field's name; the import creates
no field under a name the page would refuse.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from crm_core.rules.fields import TEXT, Field, check, parse_bool, parse_datetime, read_number

FIELD_TYPES = ("text", "number", "date", "choice", "bool")
FIELD_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"
_FIELD_NAME = re.compile(FIELD_NAME_PATTERN)
TEXT_LIMIT = 1000  # characters a text value may hold (a longer one is refused, never cut)


def valid_field_name(name: str) -> bool:
    """A name the admin page accepts: lower-case letters, digits and _, starting with a letter, at most 64."""
    return bool(_FIELD_NAME.match(name))


def read_custom_value(
    field_type: str, choices: Sequence[str] | None, raw: Any, *, name: str = "value"
) -> tuple[Any, tuple[str, dict[str, Any]] | None]:
    """(stored value, None), or (None, the problem: a catalog key and its parameters).

    A number, date, yes/no or choice that its type refuses is ``validation.<type>``; a text is
    judged by the rules every free text obeys (``crm_core.rules.fields``: at most
    :data:`TEXT_LIMIT` characters, no hidden characters, markup or formula), with their
    ``imports.rule.*`` keys — the form, the API and the import say the same thing.
    Blank is (None, None): whether the field may be blank is the caller's to say.
    """
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return None, None
    if field_type == "number":
        if isinstance(raw, Decimal | int | float) and not isinstance(raw, bool):
            number: Decimal | None = Decimal(str(raw))
            ok = True
        else:
            number, ok = read_number(str(raw))
        return (str(number), None) if ok and number is not None and number.is_finite() else _refused("number")
    if field_type == "date":
        if isinstance(raw, dt.date):
            return (raw.date() if isinstance(raw, dt.datetime) else raw).isoformat(), None
        text, ok = parse_datetime(str(raw).strip(), date_only=True)
        return (text, None) if ok and text is not None else _refused("date")
    if field_type == "bool":
        if isinstance(raw, bool):
            return raw, None
        value, ok = parse_bool(str(raw).strip())
        return (value, None) if ok and value is not None else _refused("bool")
    if field_type == "choice":
        text = str(raw).strip()
        if text in (choices or []):
            return text, None
        folded = {choice.casefold(): choice for choice in choices or []}
        return (folded[text.casefold()], None) if text.casefold() in folded else _refused("choice")
    text = str(raw).strip()
    problem = check(Field(name, TEXT, length=TEXT_LIMIT), text)
    return (None, problem) if problem is not None else (text, None)


def _refused(field_type: str) -> tuple[None, tuple[str, dict[str, Any]]]:
    return None, (f"validation.{field_type}", {})
