"""Reading import files: encodings, delimiters, headers, and cell parsing, as tables."""

from __future__ import annotations

import codecs

import pytest

from crm_core.errors import ImportFileRefused
from crm_core.importing.fields import suggest_mapping
from crm_core.importing.prepare import parse_bool, parse_datetime, parse_number
from crm_core.importing.reading import count_rows, detect_delimiter, detect_encoding, iter_chunks, open_import_file

TEXT = "客户名称,电话\n张三科技,138 0013 8000\n李四,139\n"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (TEXT.encode("utf-8"), "utf-8"),
        (codecs.BOM_UTF8 + TEXT.encode("utf-8"), "utf-8-sig"),
        (TEXT.encode("gbk"), "gb18030"),
        (TEXT.encode("gb18030"), "gb18030"),
        (b"name,email\nacme,a@b.com\n", "utf-8"),
    ],
)
def test_the_encoding_is_detected(raw: bytes, expected: str) -> None:
    assert detect_encoding(raw) == expected


def test_a_file_mixing_utf8_and_gbk_lines_is_refused_with_a_reason() -> None:
    mixed = "名称\n".encode() + "张三\n".encode("gbk") + "李四\n".encode()
    with pytest.raises(ImportFileRefused) as refused:
        detect_encoding(mixed)
    assert refused.value.message_key == "imports.error.mixed_encoding"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,b,c\n1,2,3\n", ","),
        ("a;b;c\n1;2,5;3\n", ";"),
        ("a\tb\tc\n1\t2\t3\n", "\t"),
        ("a|b|c\n1|2|3\n", "|"),
        ('name,amount\n"Acme, Inc.","1,200"\n', ","),
    ],
)
def test_the_delimiter_is_detected(text: str, expected: str) -> None:
    assert detect_delimiter(text) == expected


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "imports.error.empty_file"),
        (b"   \n\n", "imports.error.empty_file"),
        (b"name,email,Name\nx,y,z\n", "imports.error.duplicate_headers"),
        (b"\xd0\xcf\x11\xe0 old excel", "imports.error.old_excel"),
    ],
)
def test_unreadable_files_are_refused_with_a_reason(content: bytes, reason: str) -> None:
    with pytest.raises(ImportFileRefused) as refused:
        open_import_file("file.csv", content)
    assert refused.value.message_key == reason


def test_chunks_are_indexed_by_the_row_number_a_spreadsheet_shows() -> None:
    file = open_import_file("c.csv", ("a;b\n" + "".join(f"{i};x\n" for i in range(5))).encode())
    chunks = list(iter_chunks(file, chunk_size=2))
    assert [list(chunk.index) for chunk in chunks] == [[2, 3], [4, 5], [6]]
    assert file.delimiter == ";"


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        (
            ["客户名称", "电话", "邮箱", "负责人", "阶段"],
            {"客户名称": "name", "电话": "phone", "邮箱": "email", "负责人": "owner", "阶段": "lifecycle_stage"},
        ),
        (
            ["Company Name", "E-mail", "Mobile", "Owner", "Lifecycle Stage", "Industry"],
            {
                "Company Name": "name",
                "E-mail": "email",
                "Mobile": "phone",
                "Owner": "owner",
                "Lifecycle Stage": "lifecycle_stage",
                "Industry": "industry",
            },
        ),
        (
            ["客户编号", "公司名称", "联系电话", "所属行业", "城市"],
            {
                "客户编号": "external_id",
                "公司名称": "name",
                "联系电话": "phone",
                "所属行业": "industry",
                "城市": "region",
            },
        ),
        (["ＥＭＡＩＬ ", "name*"], {"ＥＭＡＩＬ ": "email", "name*": "name"}),
        (["年营收", "备注2"], {}),
    ],
)
def test_customer_headers_suggest_fields_in_english_and_chinese(headers: list[str], expected: dict[str, str]) -> None:
    assert suggest_mapping("customers", headers) == expected


@pytest.mark.parametrize(
    ("entity", "headers", "expected"),
    [
        (
            "orders",
            ["订单号", "客户", "产品", "数量", "单价"],
            {"订单号": "order_number", "客户": "customer", "产品": "product", "数量": "quantity", "单价": "unit_price"},
        ),
        ("products", ["SKU", "Product Name", "Price"], {"SKU": "sku", "Product Name": "name", "Price": "unit_price"}),
        (
            "opportunities",
            ["商机名称", "客户名称", "金额", "销售阶段"],
            {"商机名称": "name", "客户名称": "customer", "金额": "amount", "销售阶段": "stage"},
        ),
    ],
)
def test_other_entities_suggest_their_fields(entity: str, headers: list[str], expected: dict[str, str]) -> None:
    assert suggest_mapping(entity, headers) == expected


@pytest.mark.parametrize(
    ("text", "value", "ok"),
    [
        (None, None, True),
        ("1200", 1200.0, True),
        ("1,200.50", 1200.5, True),
        ("¥1,200", 1200.0, True),
        ("￥ 3 000", 3000.0, True),
        ("$99.90", 99.9, True),
        ("1.234,56", 1234.56, True),
        ("12,5", 12.5, True),
        ("(30)", -30.0, True),
        ("1200元", 1200.0, True),
        ("abc", None, False),
        ("1,2,3", None, False),
        ("=SUM(A1:A3)", None, False),
    ],
)
def test_numbers_are_read_with_separators_and_currency_signs(text: str | None, value: float | None, ok: bool) -> None:
    assert parse_number(text) == (value, ok)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-05", ("2026-03-05 00:00:00", True)),
        ("2026/3/5", ("2026-03-05 00:00:00", True)),
        ("2026年3月5日", ("2026-03-05 00:00:00", True)),
        ("2026-03-05 14:30", ("2026-03-05 14:30:00", True)),
        ("05.03.2026", ("2026-03-05 00:00:00", True)),
        ("25/12/2026", ("2026-12-25 00:00:00", True)),
        ("12/25/2026", ("2026-12-25 00:00:00", True)),
        ("03/05/2026", (None, False)),
        ("2026-02-30", (None, False)),
        ("next week", (None, False)),
    ],
)
def test_dates_in_several_formats_are_read_and_ambiguous_ones_refused(text: str, expected: tuple) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("是", (True, True)), ("No", (False, True)), ("1", (True, True)), ("maybe", (None, False)), (None, (None, True))],
)
def test_yes_no_reads_in_both_languages(text: str | None, expected: tuple) -> None:
    assert parse_bool(text) == expected


def test_an_xlsx_workbook_is_read_with_row_numbers_numbers_and_formulas_as_text() -> None:
    from pathlib import Path

    sample = Path(__file__).resolve().parents[2] / "data" / "samples" / "products.xlsx"
    file = open_import_file(sample.name, sample.read_bytes())
    assert (file.kind, file.headers) == ("xlsx", ["SKU", "Product Name", "Unit Price", "Currency", "Active"])
    (chunk,) = list(iter_chunks(file))
    assert list(chunk.index) == [2, 3, 4, 5, 6, 7]
    assert chunk.loc[2, "Unit Price"] == "39.9" and chunk.loc[3, "Unit Price"] == "129"
    assert chunk.loc[6, "Unit Price"] == "=B2*2"  # refused later by the suite, never evaluated
    assert count_rows(file) == 6  # the sheet's dimension, less the header


@pytest.mark.parametrize(
    ("body", "rows"),
    [
        (b"a,b\n1,2\n3,4\n", 2),
        (b"a,b\n1,2\n3,4", 2),  # no line break after the last row
        (b"a,b\n", 0),
        ('名称,备注\n甲,"两\n行"\n'.encode("gb18030"), 2),  # a quoted line break counts (an estimate: 1 row)
    ],
)
def test_a_csv_file_is_counted_by_its_line_breaks(body: bytes, rows: int) -> None:
    assert count_rows(open_import_file("c.csv", body)) == rows


def test_importing_the_engine_does_not_import_great_expectations() -> None:
    import subprocess
    import sys

    code = (
        "import sys, crm_core.importing.runner, crm_core.importing.values; "
        "print('great_expectations' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "False"
