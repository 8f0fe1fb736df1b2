"""One definition of a valid customer, contact, deal, order (with its lines), product, activity and task.

Pattern: a declarative table per entity (:data:`TABLES`) of :class:`Field` rows — kind,
required, size, allowed values, bounds — and small pure rules, each returning a *problem*
(a catalog key of ``locales/*/imports.json`` with its parameters, the shape
:class:`~crm_core.errors.ValidationFailed` carries) or None. Three readers, no copies:

- the create/edit services (``crm_core/services``) call :func:`check_values`;
- the import's field specs (``crm_core/importing/fields.py``) wrap these fields with the
  header spellings that suggest them;
- the GX suites (``validations/_rules.py``) turn each field into expectations whose regexes,
  lengths, value sets and bounds are read from here.

Sizes are read from the model columns (``Customer.__table__.c.name.type.length``), so a
migration that widens a column widens the rule. Every rule sees the value as it is stored:
text through :func:`clean_text` (NFKC-folded, trimmed, blank → None), tags in their stored
``,a,b,`` form, numbers as :class:`~decimal.Decimal`.

A field's rules, in the order a form reports the first one (GX reports each):

=================  ==================================================  ==========================
rule               refuses                                             key (``imports.rule.*``)
=================  ==================================================  ==========================
required           a blank required field                              required
too_long           text longer than the column                         too_long
email / phone      a malformed address or number                       email / phone
pattern            text outside the field's own pattern (SKU)          the field's key
markup             HTML tags, ``javascript:``, ``on…=`` handlers        markup
hidden             control characters (NUL …), direction overrides     hidden_characters
formula            ``=`` …, ``@`` …, ``+``/``-`` then formula text       formula
choice             a value outside the field's set                     choice
range              a number outside [minimum, maximum]                 range
decimals           more decimals than the column keeps                 decimals
=================  ==================================================  ==========================

Markup and formula apply to free text (text, tags). An email, a phone and a SKU have patterns
of their own that leave neither in (an address starting with ``=`` or holding ``<`` is no
address), so ``+86 138 0013 8000`` is a phone and never a formula — and the import judges an
email column with one regex, not three.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from crm_core.models import (
    Activity,
    ActivityType,
    Contact,
    Customer,
    CustomerKind,
    LifecycleStage,
    Opportunity,
    Order,
    OrderLine,
    OrderStatus,
    Priority,
    Product,
    Task,
    TaskStatus,
)
from crm_core.models.marketing import ConsentRecord, LawfulBasis
from crm_core.models.pipeline import OpportunityLine
from crm_core.rules.contact_details import EMAIL_PATTERN, PHONE_PATTERN

Problem = tuple[str, dict[str, Any]]
"""A catalog key and its parameters: why a value was refused."""

TEXT, EMAIL, PHONE, TAGS = "text", "email", "phone", "tags"
MONEY, NUMBER, INTEGER = "money", "number", "integer"
DATE, DATETIME, BOOL = "date", "datetime", "bool"
ENUM, REFERENCE = "enum", "reference"
FREE_TEXT = frozenset({TEXT, TAGS})  # kinds that could carry markup or a formula (see EMAIL_PATTERN)
NUMERIC = frozenset({MONEY, NUMBER, INTEGER})
CURRENCIES = ("CNY", "USD", "EUR", "HKD", "JPY", "GBP", "SGD", "TWD", "KRW", "AUD", "CAD", "CHF")

# Markup that would run when shown: a tag (<script>, <img src=x>, <b>, </div>, <!-- …), a script
# URL or an event handler attribute. "A<B" or "x < y" are not tags.
MARKUP_PATTERN = (
    r"(?i)<\s*/?\s*(?:script|iframe|object|embed|img|svg|style|link|meta|a)\b"
    r"|</?[a-z][a-z0-9-]*(?:\s[^<>]*)?/?>|<!"
    r"|javascript\s*:|\bon[a-z]+\s*="
)
# What a spreadsheet would run (OWASP "CSV injection"): = followed by anything; @ followed by a
# name; + or - followed by a function call, a cell reference, a bracket or arithmetic. A number
# (-5, +86 138 0013 8000) or a word (-Acme) after + or - is text.
_FORMULA_BODY = (
    r"\s*(?:=\s*\S"
    r"|@\s*[A-Za-z_(]"
    r"|[+\-]\s*(?:[A-Za-z_][A-Za-z0-9_.]*\s*\(|\$?[A-Za-z]{1,3}\$?\d+\b|\(|\d[\d.,]*\s*[-+*/^&]\s*[\w($]))"
)
FORMULA_PATTERN = "^" + _FORMULA_BODY
TAGS_FORMULA_PATTERN = "(?:^|,)" + _FORMULA_BODY  # any tag of the stored ",a,b," form
# Characters that change what a reader sees without being seen: C0/C1 controls (NUL, BEL, ESC …;
# tab and line breaks are text) and the bidirectional embeddings, overrides and isolates that let
# "Acme\u202egnp.exe" read as "Acmeexe.png"
HIDDEN_PATTERN = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
_HIDDEN = re.compile(HIDDEN_PATTERN)
_MARKUP = re.compile(MARKUP_PATTERN)
_FORMULA = re.compile(FORMULA_PATTERN)
_TAGS_FORMULA = re.compile(TAGS_FORMULA_PATTERN)
_EMAIL = re.compile(EMAIL_PATTERN)
_PHONE = re.compile(PHONE_PATTERN)
_CURRENCY_SIGN = re.compile(r"^(?:[¥￥$€£]|rmb|cny|usd|eur|hkd|元)|(?:[¥￥$€£元]|rmb|cny|usd|eur|hkd)$", re.IGNORECASE)


@dataclass(frozen=True)
class Field:
    """One field of an entity and what a valid value of it is.

    ``column`` is the model column that stores the field: its size bounds text and its
    precision and scale bound money. ``length`` is for a column without a size (``Text``).
    ``pattern`` is a regex the whole value must match, with the catalog key that explains it.
    ``target`` names what a reference points at (customer, product, owner, stage, deal, contact).
    """

    name: str
    kind: str = TEXT
    required: bool = False
    column: Any = None
    length: int | None = None
    choices: tuple[str, ...] = ()
    minimum: Decimal | None = None
    maximum: Decimal | None = None
    pattern: tuple[str, str] | None = None
    target: str | None = None

    @property
    def max_length(self) -> int | None:
        """The most characters the column stores (None: unbounded or not text)."""
        if self.kind not in (TEXT, EMAIL, PHONE, TAGS):
            return None
        size = getattr(getattr(self.column, "type", None), "length", None)
        return size if size is not None else self.length

    @property
    def scale(self) -> int | None:
        """The decimals the column keeps (None for a field that is not a decimal number)."""
        if self.kind not in (MONEY, NUMBER):
            return None
        return getattr(getattr(self.column, "type", None), "scale", None)

    @property
    def upper(self) -> Decimal | None:
        """The largest value: ``maximum``, else the largest the column's precision holds."""
        if self.maximum is not None or self.kind not in (MONEY, NUMBER):
            return self.maximum
        column_type = getattr(self.column, "type", None)
        precision, scale = getattr(column_type, "precision", None), getattr(column_type, "scale", None)
        if precision is None or scale is None:
            return None
        return Decimal(10) ** (precision - scale) - Decimal(1).scaleb(-scale)

    @property
    def free_text(self) -> bool:
        """Could a value carry markup or a formula? (Free text; a pattern of its own excludes both.)"""
        return self.kind in FREE_TEXT and self.pattern is None

    @property
    def formula_pattern(self) -> str | None:
        """The formula regex for this field's stored form (tags: any tag), or None."""
        if not self.free_text:
            return None
        return TAGS_FORMULA_PATTERN if self.kind == TAGS else FORMULA_PATTERN


def _column(model: Any, name: str) -> Any:
    return model.__table__.c[name]


def _values(enum_class: type) -> tuple[str, ...]:
    return tuple(member.value for member in enum_class)  # type: ignore[attr-defined]


def _table(*fields: Field) -> dict[str, Field]:
    return {field.name: field for field in fields}


def _text(model: Any, name: str, *, required: bool = False, kind: str = TEXT) -> Field:
    return Field(name, kind, required=required, column=_column(model, name))


CONSENT_WITHDRAWN, CONSENT_NONE = "withdrawn", "none"
CONSENT_VALUES = (*_values(LawfulBasis), CONSENT_WITHDRAWN, CONSENT_NONE)
"""An imported consent column (decision 0047): a lawful basis (a grant), ``withdrawn``, or ``none`` (nothing to
record: the cell says no more than a blank one)."""
CONSENT_FIELDS = (
    Field("email_consent", ENUM, choices=CONSENT_VALUES),
    Field("email_consent_source", TEXT, column=ConsentRecord.__table__.c["proof"]),  # the proof: where it came from
    Field("email_consent_date", DATETIME),  # history: when it was given or withdrawn (admins import it)
)
CUSTOMER = _table(
    _text(Customer, "name", required=True),
    Field("kind", ENUM, choices=_values(CustomerKind)),
    _text(Customer, "industry"),
    _text(Customer, "region"),
    _text(Customer, "source"),
    Field("owner", REFERENCE, target="owner"),
    Field("lifecycle_stage", ENUM, choices=_values(LifecycleStage)),
    _text(Customer, "tags", kind=TAGS),
    _text(Customer, "email", kind=EMAIL),
    _text(Customer, "phone", kind=PHONE),
    _text(Customer, "external_id"),
    _text(Customer, "credit_code"),  # its check character: rules.identifiers
    Field("created_at", DATETIME),  # history: when the old CRM created it (admins import it; see HISTORY)
    *CONSENT_FIELDS,
)
CONTACT = _table(
    Field("customer", REFERENCE, required=True, target="customer"),
    _text(Contact, "name", required=True),
    _text(Contact, "title"),
    _text(Contact, "email", kind=EMAIL),
    _text(Contact, "phone", kind=PHONE),
    Field("is_primary", BOOL),
    _text(Contact, "external_id"),  # the old system's ID: unique per tenant when given (decision 0042)
    *CONSENT_FIELDS,
)
PRODUCT = _table(
    Field(  # optional, as in Salesforce, HubSpot and Odoo; unique per tenant when given
        "sku",
        column=_column(Product, "sku"),
        pattern=(r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$", "sales.sku_invalid"),
    ),
    _text(Product, "name", required=True),
    Field("unit_price", MONEY, column=_column(Product, "unit_price"), minimum=Decimal(0)),
    Field("currency", ENUM, choices=CURRENCIES),
    Field("is_active", BOOL),
    _text(Product, "external_id"),
)
OPPORTUNITY = _table(
    _text(Opportunity, "name", required=True),
    Field("customer", REFERENCE, required=True, target="customer"),
    Field("owner", REFERENCE, target="owner"),
    Field("stage", REFERENCE, target="stage"),
    Field("amount", MONEY, column=_column(Opportunity, "amount"), minimum=Decimal(0)),
    Field("currency", ENUM, choices=CURRENCIES),
    Field("probability", INTEGER, minimum=Decimal(0), maximum=Decimal(100)),
    Field("expected_close_date", DATE),
    _text(Opportunity, "lost_reason"),
    _text(Opportunity, "won_reason"),
    Field("product", REFERENCE, target="product"),
    Field("created_at", DATETIME),  # history: when the deal was opened
    Field("closed_at", DATE),  # history: the day a won or lost deal closed (the form's "closed on")
    _text(Opportunity, "external_id"),
)
ORDER = _table(
    # blank on the form means "the next number of the month"; the import groups lines by it
    _text(Order, "order_number"),
    Field("customer", REFERENCE, required=True, target="customer"),
    Field("owner", REFERENCE, target="owner"),
    Field("ordered_at", DATETIME),
    Field("status", ENUM, choices=_values(OrderStatus)),
    Field("currency", ENUM, choices=CURRENCIES),
    _text(Order, "external_id"),
    Field("deal", REFERENCE, target="deal"),  # by its external ID; a deal of the order's customer
)
ORDER_TOTAL = Field("total_amount", MONEY, column=_column(Order, "total_amount"), minimum=Decimal(0))
"""An order's total (the sum of its lines): bounded by its column like any amount, so that lines
each valid on their own cannot add up to more than the database stores."""
ORDER_LINE = _table(
    Field("product", REFERENCE, required=True, target="product"),
    # more than nothing: the smallest quantity the column keeps
    Field("quantity", NUMBER, column=_column(OrderLine, "quantity"), minimum=Decimal("0.01")),
    Field("unit_price", MONEY, column=_column(OrderLine, "unit_price"), minimum=Decimal(0)),
)
DEAL_LINE = _table(  # a deal's product line (decision 0045): the deal by its external ID, then as an order line
    Field("deal", REFERENCE, required=True, target="deal"),
    Field("product", REFERENCE, required=True, target="product"),
    Field("quantity", NUMBER, column=_column(OpportunityLine, "quantity"), minimum=Decimal("0.01")),
    Field("unit_price", MONEY, column=_column(OpportunityLine, "unit_price"), minimum=Decimal(0)),
)
ACTIVITY = _table(
    Field("customer", REFERENCE, required=True, target="customer"),
    Field("type", ENUM, choices=_values(ActivityType)),
    Field("occurred_at", DATETIME),
    Field("summary", column=_column(Activity, "summary"), length=5000),  # Text: no size of its own
    Field("author", REFERENCE, target="owner"),
    Field("contact", REFERENCE, target="contact"),  # by external ID; one of the activity's customer
    Field("deal", REFERENCE, target="deal"),  # by external ID; one of the activity's customer
)
TASK = _table(
    _text(Task, "title", required=True),
    Field("customer", REFERENCE, target="customer"),
    Field("assignee", REFERENCE, target="owner"),
    Field("due_at", DATETIME),
    Field("status", ENUM, choices=_values(TaskStatus)),
    Field("priority", ENUM, choices=_values(Priority)),
    Field("completed_at", DATETIME),  # history: when a done task was done
    Field("deal", REFERENCE, target="deal"),  # by external ID; one of the task's customer when it names one
)
HISTORY: dict[str, tuple[str, ...]] = {
    "customer": ("created_at", "email_consent_date"),
    "contact": ("email_consent_date",),
    "opportunity": ("created_at", "closed_at"),
    "task": ("completed_at",),
}
"""Per entity, the fields that write the past: timestamps the application otherwise sets itself
(created, closed, completed). Only admins import them, and each record written with one carries
``_imported_history`` in its audit event. (An order's ``ordered_at`` and an activity's
``occurred_at`` are typed on their forms by anyone and stay open to every importer.)"""
TABLES: dict[str, dict[str, Field]] = {
    "customer": CUSTOMER,
    "contact": CONTACT,
    "product": PRODUCT,
    "opportunity": OPPORTUNITY,
    "order": ORDER,
    "order_line": ORDER_LINE,
    "deal_line": DEAL_LINE,
    "activity": ACTIVITY,
    "task": TASK,
}


# --- reading what was typed ------------------------------------------------------------


def search_text(value: Any) -> str:
    """What a search box's text searches for: control characters (NUL breaks SQLite's full-text query
    and PostgreSQL refuses it in any string) become spaces, runs of space one, ends trimmed."""
    text = "".join(" " if unicodedata.category(char) == "Cc" else char for char in str(value or ""))
    return " ".join(text.split())


def clean_text(value: Any) -> str | None:
    """The stored form of typed or imported text: NFKC-folded (ｆｕｌｌ-width → ASCII), trimmed; blank → None."""
    if value is None:
        return None
    text = str(value)
    # NFKC leaves ASCII as it is: most cells skip the normalisation
    if text.isascii():
        return text.strip() or None
    text = unicodedata.normalize("NFKC", text).strip()
    return None if invisible(text) else text  # zero-width or combining marks only: nothing to read, blank


def read_number(text: str | None) -> tuple[Decimal | None, bool]:
    """(value, ok): ``"¥1,200.50"`` → 1200.50; ``"(30)"`` → -30; ``"1.234,56"`` → 1234.56; blank → (None, True)."""
    if text is None:
        return None, True
    cleaned = unicodedata.normalize("NFKC", text).strip() if not text.isascii() else text.strip()
    if not cleaned:
        return None, True
    cleaned = cleaned.replace("\u00a0", "").replace(" ", "").replace("'", "")
    negative = cleaned.startswith("(") and cleaned.endswith(")")
    cleaned = cleaned.strip("()")
    for _ in range(2):
        cleaned = _CURRENCY_SIGN.sub("", cleaned).strip()
    if re.fullmatch(r"-?\d{1,3}(\.\d{3})+,\d+", cleaned):  # 1.234,56 (European)
        cleaned = cleaned.replace(".", "").replace(",", ".")
    elif re.fullmatch(r"-?\d{1,3}(,\d{3})+(\.\d+)?", cleaned) or re.fullmatch(r"-?\d+(\.\d+)?", cleaned):
        cleaned = cleaned.replace(",", "")
    elif re.fullmatch(r"-?\d+,\d{1,2}", cleaned):  # 12,5 (decimal comma)
        cleaned = cleaned.replace(",", ".")
    else:
        return None, False
    try:
        value = Decimal(cleaned)
    except InvalidOperation:
        return None, False
    return (-value if negative else value), True


def plain_number(number: Decimal) -> int | float:
    """A bound as a plain JSON number for a message (0, 100, 0.01, 999999999999.99)."""
    return int(number) if number == number.to_integral_value() else float(number)


# yes/no in two languages, and dates in the formats people type (a form's and a file's alike)
TRUE_WORDS = {"true", "yes", "y", "1", "是", "对", "√", "✓", "x", "on", "t"}
FALSE_WORDS = {"false", "no", "n", "0", "否", "不", "×", "off", "f", ""}
_YMD = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[ T]+(\d{1,2})[:：](\d{2})(?:[:：](\d{2})(?:\.\d+)?)?)?$"
)
_DMY = re.compile(r"^(\d{1,2})([/.])(\d{1,2})\2(\d{4})(?:[ T]+(\d{1,2}):(\d{2})(?::(\d{2}))?)?$")



def parse_datetime(text: str | None, *, date_only: bool = False) -> tuple[str | None, bool]:
    """(ISO text, ok) for ``2026-03-05``, ``2026/3/5``, ``2026年3月5日``, ``05.03.2026``, ``25/12/2026`` …

    ``03/05/2026`` is refused as ambiguous (day and month both ≤ 12); a time part is kept
    unless ``date_only``.
    """
    if text is None:
        return None, True
    match = _YMD.match(text)
    if match:
        year, month, day, hour, minute, second = match.groups()
    else:
        match = _DMY.match(text)
        if not match:
            return None, False
        first, separator, second_part, year, hour, minute, second = match.groups()
        a, b = int(first), int(second_part)
        if separator == "." or a > 12 >= b:
            day, month = first, second_part
        elif b > 12 >= a:
            month, day = first, second_part
        else:
            return None, False
    import datetime as dt

    try:
        value = dt.datetime(int(year), int(month), int(day), int(hour or 0), int(minute or 0), int(second or 0))
    except ValueError:
        return None, False
    if not 1900 <= value.year <= 2200:
        return None, False
    if date_only:
        return value.date().isoformat(), True
    return value.isoformat(sep=" "), True


def parse_bool(text: str | None) -> tuple[bool | None, bool]:
    """(value, ok) for yes/no/true/false/1/0/是/否."""
    if text is None:
        return None, True
    folded = text.casefold()
    if folded in TRUE_WORDS:
        return True, True
    if folded in FALSE_WORDS:
        return False, True
    return None, False


# --- the rules: each returns a problem or None ---------------------------------------------


def required(field: Field, value: Any) -> Problem | None:
    """A required field must have a value."""
    if field.required and (value is None or value == ""):
        return ("imports.rule.required", {"field": field.name})
    return None


def too_long(field: Field, text: str) -> Problem | None:
    """Text no longer than its column."""
    limit = field.max_length
    if limit is not None and len(text) > limit:
        return ("imports.rule.too_long", {"field": field.name, "max": limit})
    return None


def not_an_email(field: Field, text: str) -> Problem | None:
    """An email field holds one address: one @, no spaces, a dotted domain."""
    if field.kind == EMAIL and not _EMAIL.search(text):
        return ("imports.rule.email", {"field": field.name})
    return None


def not_a_phone(field: Field, text: str) -> Problem | None:
    """A phone field holds 6 to 15 digits, written with spaces, dashes, dots or brackets."""
    if field.kind == PHONE and not _PHONE.search(text):
        return ("imports.rule.phone", {"field": field.name})
    return None


def not_matching(field: Field, text: str) -> Problem | None:
    """A field with a pattern of its own (a SKU) must match it."""
    if field.pattern is not None and not re.search(field.pattern[0], text):
        return (field.pattern[1], {"field": field.name})
    return None


def markup(field: Field, text: str) -> Problem | None:
    """Free text holds no HTML tag, script URL or event handler."""
    if field.free_text and _MARKUP.search(text):
        return ("imports.rule.markup", {"field": field.name})
    return None


def hidden_characters(field: Field, text: str) -> Problem | None:
    """Free text holds no control character and no direction override."""
    if field.free_text and _HIDDEN.search(text):
        return ("imports.rule.hidden_characters", {"field": field.name})
    return None


def strip_hidden(text: str) -> str:
    """Text that came from outside (an email) without its hidden characters: it cannot be refused back to
    whoever typed it, and PostgreSQL stores no NUL."""
    return _HIDDEN.sub("", text)


def free_text_problem(name: str, text: str, limit: int) -> Problem | None:
    """The shared limits of free text that is otherwise kept as typed (a reply, a note, a reason, a comment):
    at most ``limit`` characters and no hidden characters (NUL, controls, direction overrides)."""
    field = Field(name, TEXT, length=limit)
    return too_long(field, text) or hidden_characters(field, text)


def invisible(text: str) -> bool:
    """Only zero-width, format, combining and space characters (or nothing): nothing a reader sees."""
    return all(unicodedata.category(char) in ("Cf", "Mn", "Me", "Zs", "Cc") for char in text)


def formula(field: Field, text: str) -> Problem | None:
    """Free text does not start like a spreadsheet formula (each tag of a tag list neither)."""
    pattern = _TAGS_FORMULA if field.kind == TAGS else _FORMULA
    if field.free_text and pattern.search(text):
        return ("imports.rule.formula", {"field": field.name})
    return None


def not_a_choice(field: Field, value: str) -> Problem | None:
    """An enumerated field holds one of its values."""
    if field.kind == ENUM and value not in field.choices:
        return ("imports.rule.choice", {"field": field.name, "choices": ", ".join(field.choices)})
    return None


def out_of_range(field: Field, number: Decimal) -> Problem | None:
    """A number within the field's bounds (the upper one from the column's precision by default)."""
    low, high = field.minimum, field.upper
    if (low is not None and number < low) or (high is not None and number > high):
        return (
            "imports.rule.range",
            {
                "field": field.name,
                "min": plain_number(low) if low is not None else "-∞",
                "max": plain_number(high) if high is not None else "∞",
            },
        )
    return None


def too_many_decimals(field: Field, number: Decimal) -> Problem | None:
    """No more decimals than the column keeps (a cent is the smallest amount)."""
    places = field.scale
    if places is not None and decimal_places(number) > places:
        return ("imports.rule.decimals", {"field": field.name, "places": places})
    return None


def decimal_places(number: Decimal) -> int:
    """The decimals ``number`` needs (``1.50`` → 1), read from its digits: no arithmetic context.

    ``quantize`` raised InvalidOperation for a number with more than 28 digits (an amount of
    10⁴⁰ in a deal): the import ended in a traceback instead of refusing the value as too large.
    """
    _, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int) or exponent >= 0:
        return 0
    trailing_zeros = len(digits) - len("".join(map(str, digits)).rstrip("0"))
    return max(-exponent - trailing_zeros, 0)


def not_whole(field: Field, number: Decimal) -> Problem | None:
    """An integer field holds a whole number."""
    if field.kind == INTEGER and number != number.to_integral_value():
        return ("imports.rule.invalid_integer", {"field": field.name})
    return None


_TEXT_RULES = (too_long, not_an_email, not_a_phone, not_matching, markup, hidden_characters, formula)
_NUMBER_RULES = (not_whole, out_of_range, too_many_decimals)


def problems(field: Field, value: Any) -> list[Problem]:
    """Every problem of a stored-form ``value`` (text cleaned, numbers Decimal), in rule order."""
    found: list[Problem] = []
    if value is None or value == "":
        missing = required(field, value)
        return [missing] if missing else []
    if field.kind in (TEXT, EMAIL, PHONE, TAGS):
        found.extend(p for rule in _TEXT_RULES if (p := rule(field, str(value))) is not None)
    elif field.kind == ENUM:
        found.extend(p for p in [not_a_choice(field, str(value))] if p is not None)
    elif field.kind in NUMERIC:
        number = value if isinstance(value, Decimal) else Decimal(str(value))
        if not number.is_finite():
            return [("imports.rule.invalid_number", {"field": field.name})]
        found.extend(p for rule in _NUMBER_RULES if (p := rule(field, number)) is not None)
    return found


def check(field: Field, value: Any) -> Problem | None:
    """The first problem of ``value`` against ``field``'s rules, or None when it is valid."""
    found = problems(field, value)
    return found[0] if found else None


def check_values(table: Mapping[str, Field], values: Mapping[str, Any]) -> dict[str, Problem]:
    """``{field: first problem}`` for every entry of ``values`` (stored forms) that breaks its rules."""
    errors: dict[str, Problem] = {}
    for name, value in values.items():
        problem = check(table[name], value)
        if problem is not None:
            errors[name] = problem
    return errors


def read_decimal(field: Field, raw: Any) -> tuple[Decimal | None, Problem | None]:
    """A typed number (``1,200.50``, ``１２００``, ``¥30``) as a Decimal checked against ``field``.

    Blank reads as None (a required field then reports it).
    """
    if isinstance(raw, Decimal | int | float) and not isinstance(raw, bool):
        number: Decimal | None = Decimal(str(raw))
        ok = True
    else:
        number, ok = read_number(None if raw is None else str(raw))
    if not ok or (number is not None and not number.is_finite()):
        key = "imports.rule.invalid_integer" if field.kind == INTEGER else "imports.rule.invalid_number"
        return None, (key, {"field": field.name})
    return number, check(field, number)
