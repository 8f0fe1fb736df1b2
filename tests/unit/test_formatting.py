"""KPI amounts fit their tile in both languages; exact amounts keep every digit."""

from __future__ import annotations

from decimal import Decimal

import pytest
import streamlit as st

from crm_ui.context import LANG_STATE
from crm_ui.formatting import compact_money, money


@pytest.mark.parametrize(
    ("language", "value", "shown"),
    [
        ("en", Decimal("999999.4"), "999,999"),
        ("en", Decimal("1125480872"), "1.13B"),
        ("en", Decimal("45668000"), "45.67M"),
        ("en", Decimal("-2500000"), "-2.50M"),
        ("zh-CN", Decimal("3615958040"), "36.16亿"),
        ("zh-CN", Decimal("1234567"), "123.5万"),
        ("zh-CN", 0, "0"),
    ],
)
def test_a_kpi_amount_fits_its_tile(language: str, value: Decimal, shown: str) -> None:
    st.session_state[LANG_STATE] = language
    try:
        assert compact_money(value) == shown
    finally:
        del st.session_state[LANG_STATE]


def test_the_exact_amount_keeps_every_digit() -> None:
    assert money(Decimal("3615958040.49")) == "3,615,958,040"
    assert money(None) == "0"
