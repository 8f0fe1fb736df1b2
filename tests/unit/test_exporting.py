"""Exports neutralise formulas and keep Chinese text and numbers intact."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from crm_core.exporting import neutralise, to_csv, to_xlsx


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=HYPERLINK(\"http://evil\")", "'=HYPERLINK(\"http://evil\")"),
        ("+86 138", "'+86 138"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("张三科技", "张三科技"),
        ("a=b", "a=b"),
        (-5, -5),
        (None, None),
    ],
)
def test_cells_that_would_run_as_formulas_are_neutralised(value: object, expected: object) -> None:
    assert neutralise(value) == expected


def test_csv_has_a_bom_and_neutralised_cells() -> None:
    data = to_csv(["Name", "Phone"], [["=cmd|' /C calc'!A0", "+86 138"], ["张三", None]])
    text = data.decode("utf-8")
    assert text.startswith("\ufeff")
    assert "'=cmd" in text and "'+86 138" in text and "张三" in text


def test_xlsx_stores_dangerous_text_as_text_and_numbers_as_numbers() -> None:
    data = to_xlsx(["Name", "Amount"], [["=1+1", Decimal("12.50")], ["张三", 3]])
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet["A2"].value == "'=1+1"
    assert sheet["A2"].data_type == "s"
    assert float(sheet["B2"].value) == 12.5
    assert sheet["A3"].value == "张三"
