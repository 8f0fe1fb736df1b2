"""One format per language for amounts, numbers, percentages and dates (crm_core.formatting),
and the page helpers fill in the session's language and the tenant's currency."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import streamlit as st

from crm_core import formatting
from crm_core.formatting import EMPTY, MINUS
from crm_ui import formatting as page_formatting
from crm_ui.context import LANG_STATE


@pytest.mark.parametrize(
    ("language", "value", "currency", "shown"),
    [
        ("en", Decimal("3195170"), "CNY", "¥3,195,170.00"),
        ("zh-CN", Decimal("3195170"), "CNY", "¥3,195,170.00"),
        ("en", Decimal("7518"), "USD", "$7,518.00"),
        ("zh-CN", Decimal("7518"), "USD", "$7,518.00"),
        ("en", 5820, "CNY", "¥5,820.00"),
        ("en", "5820.005", "CNY", "¥5,820.01"),
        ("en", Decimal("-1234.5"), "EUR", f"{MINUS}€1,234.50"),
        ("en", Decimal("12"), "CHF", "CHF 12.00"),
        ("en", Decimal("12"), None, "12.00"),
        ("en", Decimal("-0.001"), "CNY", "¥0.00"),
        ("en", None, "CNY", EMPTY),
        ("zh-CN", None, "CNY", EMPTY),
    ],
)
def test_money_has_cents_separators_and_the_currency(language: str, value: object, currency: str | None,
                                                     shown: str) -> None:
    assert formatting.money(value, language, currency=currency) == shown


@pytest.mark.parametrize(
    ("language", "value", "shown"),
    [
        ("en", Decimal("999.4"), "¥999"),
        ("en", Decimal("7518"), "¥7,518"),
        ("en", Decimal("60000"), "¥60.0K"),
        ("en", Decimal("664630"), "¥665K"),
        ("en", Decimal("99950"), "¥100K"),
        ("en", Decimal("999999.4"), "¥1.00M"),
        ("zh-CN", Decimal("99999999"), "¥1.00亿"),
        ("en", Decimal("3195170"), "¥3.20M"),
        ("en", Decimal("1125480872"), "¥1.13B"),
        ("en", Decimal("-2500000"), f"{MINUS}¥2.50M"),
        ("zh-CN", Decimal("7518"), "¥7,518"),
        ("zh-CN", Decimal("1234567"), "¥123万"),
        ("zh-CN", Decimal("48417.16"), "¥4.84万"),
        ("zh-CN", Decimal("6646276.5"), "¥665万"),
        ("zh-CN", Decimal("3615958040"), "¥36.2亿"),
        ("zh-CN", 0, "¥0"),
        ("zh-CN", None, EMPTY),
    ],
)
def test_a_kpi_amount_fits_its_tile(language: str, value: object, shown: str) -> None:
    assert formatting.compact_money(value, language, currency="CNY") == shown


@pytest.mark.parametrize(
    ("value", "digits", "shown"),
    [(1234567, 0, "1,234,567"), (0, 0, "0"), (Decimal("2.345"), 1, "2.3"), (Decimal("2.35"), 1, "2.4"),
     (-1500, 0, f"{MINUS}1,500"), (None, 0, EMPTY), ("", 0, EMPTY), ("not a number", 0, EMPTY)],
)
def test_numbers_group_thousands_in_both_languages(value: object, digits: int, shown: str) -> None:
    assert formatting.number(value, "en", digits=digits) == shown
    assert formatting.number(value, "zh-CN", digits=digits) == shown


@pytest.mark.parametrize(
    ("ratio", "digits", "shown"),
    [(0.125, 1, "12.5%"), (Decimal("0.5"), 0, "50%"), (1, 1, "100.0%"), (None, 1, EMPTY)],
)
def test_percentages(ratio: object, digits: int, shown: str) -> None:
    assert formatting.percent(ratio, "zh-CN", digits=digits) == shown


@pytest.mark.parametrize(
    ("current", "previous", "shown"),
    [(112, 100, "+12%"), (97, 100, f"{MINUS}3%"), (0, 100, f"{MINUS}100%"), (5, 0, None), (5, None, None),
     (Decimal("100"), Decimal("100"), "+0%"), (-50, -100, "+50%")],
)
def test_a_change_is_signed_and_absent_without_a_base(current: object, previous: object, shown: str | None) -> None:
    assert formatting.change(current, previous, "en") == shown


@pytest.mark.parametrize(
    ("language", "value", "shown"),
    [
        ("en", dt.date(2026, 12, 4), "4 Dec 2026"),
        ("zh-CN", dt.date(2026, 12, 4), "2026年12月4日"),
        ("en", dt.datetime(2026, 1, 31, 9, 5), "31 Jan 2026, 09:05"),
        ("zh-CN", dt.datetime(2026, 1, 31, 9, 5), "2026年1月31日 09:05"),
        ("zh-CN", None, EMPTY),
    ],
)
def test_dates_and_moments_per_language(language: str, value: dt.date | None, shown: str) -> None:
    assert formatting.when(value, language) == shown
    if not isinstance(value, dt.datetime):
        assert formatting.date(value, language) == shown


@pytest.mark.parametrize(("value", "shown"), [(None, EMPTY), ("", EMPTY), ("  ", EMPTY), ("Acme", "Acme"), (0, "0")])
def test_an_empty_value_is_a_dash(value: object, shown: str) -> None:
    assert formatting.or_dash(value) == shown


def test_date_boxes_follow_the_language() -> None:
    assert formatting.date_input_format("en") == "YYYY-MM-DD"
    assert formatting.date_input_format("zh-CN") == "YYYY/MM/DD"


@pytest.mark.parametrize(("language", "shown"), [("en", "¥3.20M"), ("zh-CN", "¥320万")])
def test_page_helpers_use_the_session_language_and_tenant_currency(
    monkeypatch: pytest.MonkeyPatch, language: str, shown: str
) -> None:
    monkeypatch.setattr(page_formatting, "currency", lambda: "CNY")
    st.session_state[LANG_STATE] = language
    try:
        assert page_formatting.compact_money(Decimal("3195170")) == shown
        assert page_formatting.money(Decimal("3195170")) == "¥3,195,170.00"
        assert page_formatting.money(Decimal("1"), currency_code="USD")== "$1.00"
    finally:
        del st.session_state[LANG_STATE]


def test_empty_text_cells_become_dashes_whatever_pandas_calls_a_column_of_strings() -> None:
    import pandas as pd

    frame = pd.DataFrame({"name": ["Acme", None, ""], "amount": [1.5, None, 2.0]})
    objects = frame.astype({"name": "object"})  # pandas 2's column of strings; pandas 3 gives it a str dtype
    for table in (frame, objects):
        shown = page_formatting.dashed(table)
        assert list(shown["name"]) == ["Acme", EMPTY, EMPTY]
        assert shown["amount"].dtype == "float64" and shown["amount"].isna().tolist() == [False, True, False]


@pytest.mark.parametrize(("maximum", "language", "labels"), [
    (10_950_000, "en", ["¥0", "¥5M", "¥10M", "¥15M"]),
    (10_950_000, "zh-CN", ["¥0", "¥500万", "¥1,000万", "¥1,500万"]),
    (350_000_000, "zh-CN", ["¥0", "¥1亿", "¥2亿", "¥3亿", "¥4亿"]),
    (7_400_000, "en", ["¥0", "¥2M", "¥4M", "¥6M", "¥8M"]),
    (2_469, "en", ["¥0", "¥1,000", "¥2,000", "¥3,000"]),
    (Decimal("0"), "en", ["¥0"]),
])
def test_a_money_axis_has_round_steps_past_the_top_written_per_language(
        maximum: object, language: str, labels: list[str]) -> None:
    values, shown = formatting.money_ticks(maximum, language)
    assert shown == labels
    assert values[0] == 0 and values[-1] >= float(str(maximum)) and len(values) == len(labels)
