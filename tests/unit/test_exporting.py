"""Exports neutralise formulas and keep Chinese text and numbers intact."""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from crm_core.exporting import export_file_name, neutralise, to_csv, to_xlsx


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


def test_xlsx_stores_text_as_typed_string_cells_and_numbers_as_numbers() -> None:
    data = to_xlsx(["Name", "Phone", "Amount"],
                   [["=1+1", "+86 138 0013 8000", Decimal("12.50")], ["张三", "-5", 3], ["@SUM(A1)", None, 0]])
    sheet = load_workbook(io.BytesIO(data)).active
    assert [sheet["A2"].value, sheet["B2"].value, sheet["B3"].value, sheet["A4"].value] == [
        "=1+1", "+86 138 0013 8000", "-5", "@SUM(A1)"]  # as typed: no apostrophe
    assert {sheet[ref].data_type for ref in ("A2", "B2", "B3", "A4")} == {"s"}  # text, never a formula
    assert float(sheet["C2"].value) == 12.5 and sheet["C3"].value == 3
    assert sheet["A3"].value == "张三"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml").decode("utf-8")
    assert "<f>" not in xml and "<f " not in xml  # no formula element anywhere


def test_xlsx_drops_characters_xml_cannot_hold_and_cleans_the_sheet_title() -> None:
    data = to_xlsx(["Name"], [["Acme\x00\x07 Ltd\x1f"]], sheet_title="Q1/Q2 [大客户]: 2026?")
    workbook = load_workbook(io.BytesIO(data))
    assert workbook.active["A2"].value == "Acme Ltd"
    assert workbook.active.title == "Q1 Q2  大客户   2026"


@pytest.mark.parametrize(
    ("kind", "name", "extension", "expected"),
    [
        ("customers", None, "xlsx", "customers-2026-12-04.xlsx"),
        ("segment", "Key accounts", "csv", "segment-Key-accounts-2026-12-04.csv"),
        ("segment", "大客户 华东", "XLSX", "segment-大客户-华东-2026-12-04.xlsx"),
        ("segment", '../../etc/passwd', "csv", "segment-etc-passwd-2026-12-04.csv"),
        ("segment", 'a<b>c:"d|e?*f\\g', "csv", "segment-a-b-c-d-e-f-g-2026-12-04.csv"),
        ("segment", "...", "csv", "segment-2026-12-04.csv"),
        ("segment", "CON", "csv", "segment-CON-2026-12-04.csv"),
        ("segment", "x" * 200, "csv", f"segment-{'x' * 60}-2026-12-04.csv"),
        ("deals", "tab\there\nnew line", "csv", "deals-tab-here-new-line-2026-12-04.csv"),
    ],
)
def test_an_export_is_named_for_its_content_and_day_and_safe_on_every_system(
    kind: str, name: str | None, extension: str, expected: str
) -> None:
    file_name = export_file_name(kind, extension, name=name, day=dt.date(2026, 12, 4))
    assert file_name == expected
    assert not set(file_name) & set('<>:"/\\|?*') and not file_name.startswith(".")
