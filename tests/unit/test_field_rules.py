"""One definition of a valid record: the form's service and the import refuse the same values, for the same reason.

``CASES`` is one table of (entity, field, value typed or in the file, catalog key expected or
None). Every case runs (a) through the create service a form calls (``create_customer`` …)
and (b) through the import of a one-row CSV, judged by prepare + GX (``validate_import``):
both must name the expected key, or both must accept the record. The rules themselves
(:mod:`crm_core.rules.fields`) are checked as pure functions below, without a database.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import Engine

from crm_core.access import Actor
from crm_core.db import Database
from crm_core.errors import ValidationFailed
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import validate_import
from crm_core.models import Contact, Customer, Opportunity, Order, OrderLine, Product
from crm_core.rules import fields as rules
from crm_core.services.contacts import ContactInput, create_contact
from crm_core.services.customers import CustomerInput, create_customer
from crm_core.services.deals import OpportunityInput, create_opportunity
from crm_core.services.orders import OrderInput, OrderLineInput, create_order
from crm_core.services.products import ProductInput, create_product
from tests.factories import build_world, unique

REQUIRED = "imports.rule.required"
TOO_LONG = "imports.rule.too_long"
FORMULA = "imports.rule.formula"
MARKUP = "imports.rule.markup"
HIDDEN = "imports.rule.hidden_characters"
EMAIL = "imports.rule.email"
PHONE = "imports.rule.phone"
CHOICE = "imports.rule.choice"
RANGE = "imports.rule.range"
DECIMALS = "imports.rule.decimals"
NOT_A_NUMBER = "imports.rule.invalid_number"
SKU = "sales.sku_invalid"

CUSTOMER_NAME_MAX = Customer.__table__.c.name.type.length  # type: ignore[attr-defined]

CASES: list[tuple[str, str, str, str | None]] = [
    # customers: names in any script, but no formula and no markup
    ("customer", "name", "北京字节跳动科技有限公司", None),
    ("customer", "name", "Müller & Söhne GmbH", None),
    ("customer", "name", "A<B Trading", None),  # a less-than sign is not a tag
    ("customer", "name", "-Acme", None),  # a dash before a word is no formula
    ("customer", "name", "3M (China) Co.", None),
    ("customer", "name", "", REQUIRED),
    ("customer", "name", "   ", REQUIRED),
    ("customer", "name", "字" * CUSTOMER_NAME_MAX, None),  # the column's size, counted in characters
    ("customer", "name", "字" * (CUSTOMER_NAME_MAX + 1), TOO_LONG),
    ("customer", "name", '=HYPERLINK("http://evil.example","click")', FORMULA),
    ("customer", "name", "=1+1", FORMULA),
    ("customer", "name", "+1+1", FORMULA),
    ("customer", "name", "-2+3", FORMULA),
    ("customer", "name", "@SUM(A1:A9)", FORMULA),
    ("customer", "name", "@SUM", FORMULA),
    ("customer", "name", "+A1", FORMULA),
    ("customer", "name", "<script>alert(1)</script>", MARKUP),
    ("customer", "name", "<img src=x>", MARKUP),
    ("customer", "name", "Acme <b>Ltd</b>", MARKUP),
    ("customer", "name", "Click javascript:alert(1)", MARKUP),
    ("customer", "name", "Acme\u202egnp.exe", HIDDEN),  # a direction override: reads "Acmeexe.png"
    ("customer", "name", "Acme\x07 Ltd", HIDDEN),  # a control character (BEL)
    ("customer", "name", "\u200b\u200b", REQUIRED),  # zero-width spaces only: nothing to read
    ("customer", "name", "Cafe\u0301 Zürich", None),  # a combining accent within a name is text
    ("customer", "industry", "Retail\u2066", HIDDEN),
    ("customer", "industry", "x" * 81, TOO_LONG),
    ("customer", "region", "=cmd|' /C calc'!A0", FORMULA),
    ("customer", "source", "<iframe src=//evil>", MARKUP),
    ("customer", "external_id", "ERP-000123", None),
    ("customer", "phone", "+86 138 0013 8000", None),  # a phone, not a formula
    ("customer", "phone", "+86 138-0013-8000", None),
    ("customer", "phone", "(021) 6212-3456", None),
    ("customer", "phone", "+1+1", PHONE),
    ("customer", "phone", "-138 0013 8000", PHONE),
    ("customer", "phone", "12345", PHONE),
    ("customer", "phone", "call me", PHONE),
    ("customer", "email", "li.wei@example.cn", None),
    ("customer", "email", "张伟@例子.中国", None),
    ("customer", "email", "not-an-email", EMAIL),
    ("customer", "email", "a@b", EMAIL),
    ("customer", "email", "a b@c.com", EMAIL),
    ("customer", "email", '=HYPERLINK("x")@evil.com', EMAIL),  # starts like a formula: no address
    ("customer", "email", "<script>@evil.com", EMAIL),
    ("customer", "email", "+1+1@evil.com", EMAIL),
    # issue 19: addresses mail servers refuse, and a pasted link
    ("customer", "email", ".li@example.cn", EMAIL),
    ("customer", "email", "li..na@example.cn", EMAIL),
    ("customer", "email", "li.@example.cn", EMAIL),
    ("customer", "email", "li@example..cn", EMAIL),
    ("customer", "email", "li@.example.cn", EMAIL),
    ("customer", "email", "mailto:li@example.cn", EMAIL),
    ("customer", "email", "MAILTO:li@example.cn", EMAIL),
    ("customer", "email", "li\x01na@example.cn", EMAIL),
    ("customer", "email", "o'brien+crm@mail.example.co.uk", None),
    # issue 19: Chinese mobiles are 1[3-9] and 11 digits, with or without +86 / 0086 / 86
    ("customer", "phone", "13800138000", None),
    ("customer", "phone", "0086 139 1234 5678", None),
    ("customer", "phone", "86 138 0013 8000", None),
    ("customer", "phone", "+86 10 6552 9988", None),  # Beijing landline: 10 digits after 86
    ("customer", "phone", "010-6552 9988", None),
    ("customer", "phone", "+1 415 555 2671", None),
    ("customer", "phone", "+86 123 4567 8901", PHONE),
    ("customer", "phone", "12345678901", PHONE),
    ("customer", "phone", "0086 110 1234 5678", PHONE),
    ("customer", "phone", "86 120 1234 5678", PHONE),
    ("customer", "phone", "+86 138 0013 800", PHONE),
    ("customer", "phone", "+86 138 0013 80000", PHONE),
    ("customer", "phone", "1380013800", PHONE),
    ("customer", "phone", "138001380001", PHONE),
    ("customer", "tags", "vip, 华东", None),
    ("customer", "tags", "vip, =1+1", FORMULA),  # each tag of the list
    ("customer", "tags", "<b>vip</b>", MARKUP),
    ("customer", "kind", "person", None),
    ("customer", "kind", "compny", CHOICE),
    ("customer", "lifecycle_stage", "churned", None),
    ("customer", "lifecycle_stage", "sleeping", CHOICE),
    # contacts
    ("contact", "name", "王五", None),
    ("contact", "name", "", REQUIRED),
    ("contact", "name", "n" * 121, TOO_LONG),
    ("contact", "title", "=SUM(1,2)", FORMULA),
    ("contact", "title", "<svg onload=alert(1)>", MARKUP),
    ("contact", "email", "wang@example.cn", None),
    ("contact", "email", "nope", EMAIL),
    ("contact", "phone", "１３８００１３８０００", None),  # full-width digits typed with a Chinese IME
    ("contact", "phone", "12", PHONE),
    # deals (opportunities)
    ("opportunity", "name", "年度框架协议 2027", None),
    ("opportunity", "name", "", REQUIRED),
    ("opportunity", "name", "+SUM(1,2)", FORMULA),
    ("opportunity", "name", "<script>x</script>", MARKUP),
    ("opportunity", "amount", "1,200.50", None),
    ("opportunity", "amount", "¥30", None),
    ("opportunity", "amount", "-5", RANGE),
    ("opportunity", "amount", "1000000000000", RANGE),  # more than Numeric(14, 2) holds
    ("opportunity", "amount", "1" + "0" * 40, RANGE),  # more digits than Decimal's context: was InvalidOperation
    ("opportunity", "amount", "12.300", None),
    ("opportunity", "amount", "12.345", DECIMALS),
    ("opportunity", "amount", "abc", NOT_A_NUMBER),
    ("opportunity", "probability", "40", None),
    ("opportunity", "probability", "140", RANGE),
    ("opportunity", "currency", "USD", None),
    ("opportunity", "currency", "XYZ", CHOICE),
    # orders and their lines
    ("order", "order_number", "SO-2027-0001", None),
    ("order", "order_number", "=1+1", FORMULA),
    ("order", "order_number", "S" * 41, TOO_LONG),
    ("order", "status", "fulfilled", None),
    ("order", "status", "lost-in-the-mail", CHOICE),
    ("order", "currency", "EUR", None),
    ("order", "currency", "BTC", CHOICE),
    ("order_line", "quantity", "2.5", None),
    ("order_line", "quantity", "0", RANGE),
    ("order_line", "quantity", "1.005", DECIMALS),
    ("order_line", "quantity", "lots", NOT_A_NUMBER),
    ("order_line", "unit_price", "9.99", None),
    ("order_line", "unit_price", "-1", RANGE),
    # products
    ("product", "sku", "CRM-LIC/2027.1", None),
    ("product", "sku", "", None),  # optional (issue 18): blank on the form and in a file alike
    ("product", "sku", "产品 1", SKU),
    ("product", "sku", "=1+1", SKU),
    ("product", "sku", "A" * 65, TOO_LONG),
    ("product", "name", "CRM 授权", None),
    ("product", "name", "<script>x</script>", MARKUP),
    ("product", "name", "@SUM(1)", FORMULA),
    ("product", "unit_price", "1,200.50", None),
    ("product", "unit_price", "-1", RANGE),
    ("product", "unit_price", "0.001", DECIMALS),
    ("product", "currency", "JPY", None),
    ("product", "currency", "yuan", CHOICE),
]
IDS = [f"{entity}.{field}={value[:24]!r}" for entity, field, value, _ in CASES]


# --- (a) through the service a form calls ------------------------------------------------------


class Records:
    """What a case needs to exist: a customer to attach to and a product to order."""

    def __init__(self, db: Database, actor: Actor) -> None:
        self.customer_name = unique("Probe customer ")
        self.customer_id = create_customer(db, actor, CustomerInput(name=self.customer_name), allow_duplicate=True)
        self.product_sku = unique("PROBE-")
        self.product_id = create_product(db, actor, ProductInput(self.product_sku, "Probe widget", "10"))


def through_the_service(db: Database, actor: Actor, records: Records, entity: str, field: str, value: str) -> Any:
    """The problem the create service reports for ``field`` (None when it created the record)."""
    typed: dict[str, Any] = {field: value}
    try:
        if entity == "customer":
            create_customer(db, actor, CustomerInput(**{"name": "Probe Co", **typed}), allow_duplicate=True)
        elif entity == "contact":
            create_contact(db, actor, ContactInput(**{"customer_id": records.customer_id, "name": "Li", **typed}))
        elif entity == "opportunity":
            if field == "probability":
                typed[field] = int(value)
            create_opportunity(
                db, actor, OpportunityInput(**{"customer_id": records.customer_id, "name": "Probe deal", **typed})
            )
        elif entity == "order":
            line = OrderLineInput(records.product_id)
            create_order(db, actor, OrderInput(**{"customer_id": records.customer_id, "lines": [line], **typed}))
        elif entity == "order_line":
            field = "line1." + field  # a form's line fields are named by their line
            line = OrderLineInput(**{"product_id": records.product_id, **typed})
            create_order(db, actor, OrderInput(records.customer_id, [line]))
        elif entity == "product":
            create_product(db, actor, ProductInput(**{"sku": unique("SKU-"), "name": "Probe", **typed}))
    except ValidationFailed as refused:
        assert set(refused.errors) == {field}, refused.errors  # only the field of the case
        return refused.errors[field][0]
    return None


# --- (b) through the import of a file, one row per case ---------------------------------------------

IMPORT_ENTITY = {
    "customer": "customers",
    "contact": "contacts",
    "opportunity": "opportunities",
    "order": "orders",
    "order_line": "orders",
    "product": "products",
}


def import_row(records: Records, entity: str, field: str, value: str) -> dict[str, str]:
    """The row of a case: the base of its entity (unique names and keys, so rows judge alone) and the value."""
    base: dict[str, dict[str, str]] = {
        "customer": {"name": unique("Probe Co "), "industry": "Retail"},  # two cells: a blank name is no blank row
        "contact": {"customer": records.customer_name, "name": "Li"},
        "opportunity": {"name": unique("Probe deal "), "customer": records.customer_name},
        "order": {"order_number": unique("SO-PROBE-"), "customer": records.customer_name},
        "order_line": {
            "order_number": unique("SO-PROBE-"),
            "customer": records.customer_name,
            "product": records.product_sku,
        },
        "product": {"sku": unique("SKU-"), "name": "Probe"},
    }
    row = {**base[entity], field: value}
    if entity == "order":
        row["product"] = records.product_sku
    return row


def through_the_import(db: Database, actor: Actor, records: Records) -> dict[int, set[tuple[str | None, str]]]:
    """Each case's failures, as (field, catalog key) pairs, when its row is judged (prepare + GX).

    One file per import entity holds the rows of all its cases (a GX run per case would cost a
    second each); every row carries every column of the file, blank where its case has none.
    """
    verdicts: dict[int, set[tuple[str | None, str]]] = {}
    for import_entity in dict.fromkeys(IMPORT_ENTITY.values()):
        numbered = [
            (number, import_row(records, entity, field, value))
            for number, (entity, field, value, _) in enumerate(CASES)
            if IMPORT_ENTITY[entity] == import_entity
        ]
        headers = list(dict.fromkeys(header for _, row in numbered for header in row))
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(headers)
        for _, row in numbered:
            writer.writerow([row.get(header, "") for header in headers])
        file = open_import_file("cases.csv", codecs.BOM_UTF8 + buffer.getvalue().encode("utf-8"))
        mapping = ImportMapping.from_dict({"columns": {header: header for header in headers}})  # type: ignore[attr-defined]
        report = validate_import(db, actor, file, import_entity, mapping, ImportOptions())
        by_row: dict[int, set[tuple[str | None, str]]] = {}
        for failure in report.failures:
            for row_number in failure.rows:
                by_row.setdefault(row_number, set()).add((failure.field, failure.message_key))
        first_row = 2  # the file's row numbers: the header is row 1
        for position, (number, _) in enumerate(numbered):
            verdicts[number] = by_row.pop(first_row + position, set())
        assert not by_row, f"failures on rows that are no case: {by_row}"
    return verdicts


@pytest.fixture(scope="module")
def import_verdicts(engine: Engine) -> dict[int, set[tuple[str | None, str]]]:
    """The import's verdict on every case, judged once per entity; nothing is kept (rolled back at once,
    so the tests' own transactions never wait on this one)."""
    connection = engine.connect()
    transaction = connection.begin()
    try:
        db = Database(connection)
        admin = build_world(db).admin
        return through_the_import(db, admin, Records(db, admin))
    finally:
        transaction.rollback()
        connection.close()


@pytest.fixture
def world_and_records(db: Database) -> tuple[Actor, Records]:
    admin = build_world(db).admin
    return admin, Records(db, admin)


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize("case", range(len(CASES)), ids=IDS)
def test_the_form_and_the_import_refuse_the_same_values_for_the_same_reason(
    db: Database,
    world_and_records: tuple[Actor, Records],
    import_verdicts: dict[int, set[tuple[str | None, str]]],
    case: int,
) -> None:
    entity, field, value, expected = CASES[case]
    actor, records = world_and_records
    form_says = through_the_service(db, actor, records, entity, field, value)
    assert form_says == expected
    assert {key for _, key in import_verdicts[case]} == ({expected} if expected else set()), import_verdicts[case]
    if expected:
        assert {failure_field for failure_field, _ in import_verdicts[case]} == {field}


# --- the rules as pure functions ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "is_formula"),
    [
        ('=HYPERLINK("http://x")', True),
        ("=A1", True),
        ("= 1", True),
        ("+1+1", True),
        ("-2*3", True),
        ("+SUM(1,2)", True),
        ("-cmd(1)", True),
        ("+$B$2", True),
        ("+(1)", True),
        ("@SUM(A1)", True),
        ("@SUM", True),
        ("+86 138 0013 8000", False),
        ("+1 (555) 010-0100", False),
        ("-5", False),
        ("-Acme", False),
        ("- a bullet", False),
        ("Acme = best", False),
        ("1+1", False),  # no formula lead character
        ("北京字节跳动科技有限公司", False),
    ],
)
def test_a_formula_is_a_lead_character_followed_by_formula_text(text: str, is_formula: bool) -> None:
    assert (rules.formula(rules.CUSTOMER["name"], text) is not None) is is_formula


@pytest.mark.parametrize(
    ("text", "is_markup"),
    [
        ("<script>alert(1)</script>", True),
        ("<img src=x>", True),
        ("<img src=x onerror=alert(1)", True),
        ("</div>", True),
        ("<b>", True),
        ("<!-- x -->", True),
        ("javascript:alert(1)", True),
        ('x" onmouseover="alert(1)', True),
        ("A<B", False),
        ("x < y > z", False),
        ("Tom <tom@example.com>", False),
        ("《红楼梦》出版社", False),
    ],
)
def test_markup_is_a_tag_a_script_url_or_an_event_handler(text: str, is_markup: bool) -> None:
    assert (rules.markup(rules.CUSTOMER["name"], text) is not None) is is_markup


def test_a_phone_field_is_never_judged_as_a_formula() -> None:
    phone = rules.CUSTOMER["phone"]
    assert rules.problems(phone, "+86 138 0013 8000") == []
    assert rules.problems(phone, "+1+1") == [("imports.rule.phone", {"field": "phone"})]


@pytest.mark.parametrize(
    ("table", "field", "model"),
    [
        (rules.CUSTOMER, "name", Customer),
        (rules.CUSTOMER, "industry", Customer),
        (rules.CUSTOMER, "tags", Customer),
        (rules.CUSTOMER, "email", Customer),
        (rules.CUSTOMER, "phone", Customer),
        (rules.CUSTOMER, "external_id", Customer),
        (rules.CONTACT, "name", Contact),
        (rules.CONTACT, "title", Contact),
        (rules.PRODUCT, "sku", Product),
        (rules.OPPORTUNITY, "name", Opportunity),
        (rules.ORDER, "order_number", Order),
    ],
)
def test_text_sizes_are_read_from_the_model_columns(table: dict[str, rules.Field], field: str, model: Any) -> None:
    assert table[field].max_length == model.__table__.c[field].type.length


def test_money_bounds_and_decimals_are_read_from_the_columns() -> None:
    amount = rules.OPPORTUNITY["amount"]
    assert (amount.minimum, amount.upper, amount.scale) == (0, Decimal("999999999999.99"), 2)
    quantity = rules.ORDER_LINE["quantity"]
    precision = OrderLine.__table__.c.quantity.type.precision  # type: ignore[attr-defined]
    assert quantity.upper == Decimal(10) ** (precision - 2) - Decimal("0.01")
    assert rules.check(quantity, Decimal("0.01")) is None
    assert rules.check(quantity, Decimal("0"))[0] == RANGE  # type: ignore[index]


def test_the_import_specs_and_the_gx_suites_are_built_from_the_rules() -> None:
    """No copy: each import spec holds its rule, and every GX regex, length and value set comes from one."""
    from crm_core.importing.fields import FIELDS
    from validations import customers, opportunities

    specs = {spec.name: spec for spec in FIELDS["customers"]}
    assert all(specs[name].rule is rules.CUSTOMER[name] for name in specs)
    suite = customers.expectations()
    regexes = {(e.column, e.regex) for e in suite if hasattr(e, "regex")}
    assert ("name", rules.FORMULA_PATTERN) in regexes
    assert ("name", rules.MARKUP_PATTERN) in regexes
    assert ("tags", rules.TAGS_FORMULA_PATTERN) in regexes
    assert ("email", rules.EMAIL_PATTERN) in regexes and ("phone", rules.PHONE_PATTERN) in regexes
    lengths = {e.column: e.max_value for e in suite if type(e).__name__ == "ExpectColumnValueLengthsToBeBetween"}
    assert lengths["name"] == CUSTOMER_NAME_MAX and lengths["tags"] == rules.CUSTOMER["tags"].max_length
    in_set = {e.column: list(e.value_set) for e in suite if type(e).__name__ == "ExpectColumnValuesToBeInSet"}
    assert in_set["kind"] == list(rules.CUSTOMER["kind"].choices)
    bounds = {
        e.column: (e.min_value, e.max_value)
        for e in opportunities.expectations()
        if type(e).__name__ == "ExpectColumnValuesToBeBetween"
    }
    assert bounds == {"amount": (0, 999999999999.99), "probability": (0, 100)}
    # and the patterns are real regexes (GX hands them to pandas' str.contains, i.e. re.search)
    for pattern in (rules.FORMULA_PATTERN, rules.TAGS_FORMULA_PATTERN, rules.MARKUP_PATTERN):
        re.compile(pattern)
