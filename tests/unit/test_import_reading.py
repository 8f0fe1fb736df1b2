"""Reading import files: encodings, delimiters, headers, and cell parsing, as tables."""

from __future__ import annotations

import codecs

import pytest

from crm_core.errors import ImportFileRefused
from crm_core.importing.fields import suggest_mapping
from crm_core.importing.prepare import parse_bool, parse_datetime, parse_number
from crm_core.importing.reading import count_rows, detect_delimiter, detect_encoding, iter_chunks, open_import_file
from tests.factories import xlsx_workbook

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


# --- issue 19: hostile files end in a clear refusal or a correct read, never a traceback or a silent shift ----


def _rows(file_bytes: bytes, name: str = "f.csv", **options: str) -> list[list[object]]:
    file = open_import_file(name, file_bytes, **options)
    return [[number, *cells] for chunk in iter_chunks(file) for number, cells in zip(
        chunk.index.tolist(), chunk.values.tolist(), strict=True)]


@pytest.mark.parametrize(
    ("chosen", "reason"),
    [
        (";;", "imports.error.bad_delimiter"),
        ("\n", "imports.error.bad_delimiter"),
        ('"', "imports.error.bad_delimiter"),
        ("a", "imports.error.bad_delimiter"),
        (";", "imports.error.delimiter_mismatch"),
        ("\\t", "imports.error.delimiter_mismatch"),  # typed as backslash-t: read as a tab
    ],
)
def test_a_chosen_delimiter_that_cannot_be_or_does_not_match_is_refused_by_name(chosen: str, reason: str) -> None:
    with pytest.raises(ImportFileRefused) as refused:
        open_import_file("f.csv", b"name,email\nAcme,a@acme.com\n", delimiter=chosen)
    assert refused.value.message_key == reason


def test_a_chosen_delimiter_that_matches_is_used() -> None:
    assert _rows(b"name|email\nAcme|a@acme.com\n", delimiter="pipe") == [[2, "Acme", "a@acme.com", ""]]


def test_old_mac_line_endings_are_read_as_lines() -> None:
    body = b'name,email\rAcme,a@acme.com\r"Two\rLines",b@b.com\rZeta,z@z.com'
    file = open_import_file("mac.csv", body)
    assert file.headers == ["name", "email"]
    assert [row[1] for row in _rows(body)] == ["Acme", "Two\rLines", "Zeta"]
    assert count_rows(file) == 4  # an estimate: the quoted line break counts


def test_a_nul_byte_past_the_sampled_head_refuses_the_file_naming_its_row() -> None:
    body = b"name,email\n" + b"".join(b"N%d,n%d@x.com\n" % (i, i) for i in range(30_000)) + b"Bad\x00,z@x.com\n"
    assert len(body) > 256 * 1024
    with pytest.raises(ImportFileRefused) as refused:
        _rows(body)
    assert (refused.value.message_key, refused.value.params) == ("imports.error.nul_byte", {"row": 30_002})


def test_ten_megabytes_without_a_line_break_are_refused() -> None:
    with pytest.raises(ImportFileRefused) as refused:
        open_import_file("one-line.csv", b"name," + b"x" * (10 * 1024 * 1024))
    assert refused.value.message_key == "imports.error.no_line_break"


def test_a_row_with_more_cells_than_the_header_keeps_every_column_in_place() -> None:
    # a trailing comma on the first data row made pandas take column 1 as the index: every column
    # of every row moved one to the left; an unquoted comma in a name did the same to its row
    body = b"name,email\nAcme,a@acme.com,\nAcme, Inc,b@acme.com\nZeta,z@z.com\n"
    assert _rows(body) == [
        [2, "Acme", "a@acme.com", ""],  # a trailing delimiter adds nothing
        [3, "Acme", " Inc", "b@acme.com"],  # the extra cell is kept aside: the suites refuse the row
        [4, "Zeta", "z@z.com", ""],
    ]


def test_a_much_longer_row_later_in_the_file_is_kept_aside_too() -> None:
    body = b"name,email\n" + b"".join(b"N%d,n%d@x.com\n" % (i, i) for i in range(50)) + b"Wide,w@x.com" + b",z" * 60
    rows = _rows(body + b"\nLast,l@x.com\n")
    assert rows[50] == [52, "Wide", "w@x.com", ",".join(["z"] * 60)]
    assert rows[51] == [53, "Last", "l@x.com", ""] and len(rows) == 52


@pytest.mark.parametrize(
    ("text", "codec", "expected"),
    [
        ("name,city\nMüller,Köln\nFrançois,Besançon\n", "cp1252", "cp1252"),
        ("name\nMüller\n", "cp1252", "cp1252"),  # was read as GB18030: M黮ler
        ("name\n株式会社テスト\n", "shift_jis", "cp932"),  # was 姅幃夛幮僥僗僩
        ("客户名称,邮箱\n张三,m@x.com\n", "gbk", "gb18030"),
        ("客户名称\n王堃\n", "gbk", "gb18030"),  # a character outside GB2312
        ("name\n张\n", "gbk", "gb18030"),
        ("客户名称,电话\n北京字节跳动科技有限公司,13800138000\n", "gb18030", "gb18030"),
    ],
)
def test_western_japanese_and_chinese_files_are_told_apart(text: str, codec: str, expected: str) -> None:
    file = open_import_file("f.csv", text.encode(codec))
    assert file.encoding == expected
    assert _rows(text.encode(codec))[0][1] == text.splitlines()[1].split(",")[0]


def test_korean_bytes_that_read_as_chinese_too_make_the_user_pick() -> None:
    raw = "name\n삼성전자\n".encode("euc_kr")
    with pytest.raises(ImportFileRefused) as refused:
        open_import_file("f.csv", raw)
    assert refused.value.message_key == "imports.error.ambiguous_encoding"
    assert _rows(raw, encoding="euc_kr")[0][1] == "삼성전자"


def test_a_hidden_first_sheet_is_passed_over_for_the_first_visible_one() -> None:
    raw = xlsx_workbook(
        [("lists", [["code", "label"], ["x", "y"]], "hidden"), ("data", [["name"], ["Acme"]], "visible")])
    file = open_import_file("w.xlsx", raw)
    assert (file.sheet, file.headers) == ("data", ["name"])
    assert _rows(raw, "w.xlsx") == [[2, "Acme", ""]]


def test_a_title_above_the_header_is_not_imported() -> None:
    rows: list[list[object]] = [["Customer report 2026"], [], ["name", "email"], ["Acme", "a@acme.com"]]
    raw = xlsx_workbook([("report", rows, "visible")])
    file = open_import_file("r.xlsx", raw)
    assert (file.headers, file.header_row, file.warnings) == (["name", "email"], 3, ["imports.warning.title_rows"])
    assert _rows(raw, "r.xlsx") == [[4, "Acme", "a@acme.com", ""]]
    assert count_rows(file) == 1


@pytest.mark.parametrize(
    ("body", "header_row", "rows"),
    [
        # a report's title (and a subtitle, a blank line) above the header, as a CRM's CSV export writes it
        ("客户名单 2026\n\nname,email\nAcme,a@acme.com\nBeta,b@beta.com\n", 3,
         [[4, "Acme", "a@acme.com", ""], [5, "Beta", "b@beta.com", ""]]),
        ("Customer report,,\nExported 2026-12-05,,\nname,email\nAcme,a@acme.com\n", 3,
         [[4, "Acme", "a@acme.com", ""]]),
        ("\"Report\nspanning lines\"\nname;email\nAcme;a@acme.com\n", 2, [[3, "Acme", "a@acme.com", ""]]),
        # no title: the first row is the header
        ("name,email\nAcme,a@acme.com\n", 1, [[2, "Acme", "a@acme.com", ""]]),
        # a one-column file with a stray comma in a row is no title over a header
        ("name\nAcme\nAcme, Inc\nBeta\nGamma\n", 1, [[2, "Acme", ""], [3, "Acme", " Inc"], [4, "Beta", ""],
                                                      [5, "Gamma", ""]]),
        # three one-cell rows make a one-column file, not a title
        ("name\nAcme\nBeta\nid,email\n1,x@y.cn\n2,z@y.cn\n", 1,
         [[2, "Acme", ""], [3, "Beta", ""], [4, "id", "email"], [5, "1", "x@y.cn"], [6, "2", "z@y.cn"]]),
    ],
)
def test_a_title_above_a_csv_header_is_found_as_in_a_sheet(
    body: str, header_row: int, rows: list[list[object]]
) -> None:
    raw = body.encode()
    file = open_import_file("r.csv", raw)
    assert file.header_row == header_row
    assert file.warnings == (["imports.warning.title_rows"] if header_row > 1 else [])
    assert _rows(raw) == rows
    # the progress bar's estimate counts line breaks: a quoted title spanning two lines adds one
    assert count_rows(file) == len(rows) + ("spanning" in body)


def test_a_one_column_sheet_keeps_its_first_row_as_header() -> None:
    raw = xlsx_workbook([("names", [["name"], ["Acme"], ["Beta"], ["Gamma"]], "visible")])
    assert _rows(raw, "n.xlsx") == [[2, "Acme", ""], [3, "Beta", ""], [4, "Gamma", ""]]


def test_cells_beyond_the_xlsx_header_are_kept_aside() -> None:
    raw = xlsx_workbook([("s", [["name", "email"], ["Acme", "a@acme.com", "spill"]], "visible")])
    assert _rows(raw, "s.xlsx") == [[2, "Acme", "a@acme.com", "spill"]]


def test_a_workbook_that_inflates_far_beyond_its_size_is_refused_before_it_is_opened() -> None:
    import io
    import zipfile

    raw = xlsx_workbook([("s", [["name"], ["Acme"]], "visible")])
    source = zipfile.ZipFile(io.BytesIO(raw))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bomb:
        for entry in source.infolist():
            bomb.writestr(entry, source.read(entry))
        bomb.writestr("xl/padding.xml", b" " * (30 * 1024 * 1024))  # 30 MB of spaces: ~30 KB deflated
    with pytest.raises(ImportFileRefused) as refused:
        open_import_file("bomb.xlsx", buffer.getvalue())
    assert refused.value.message_key == "imports.error.xlsx_too_large"


def test_a_first_data_row_several_cells_too_long_loses_none_of_them() -> None:
    # with index_col=False pandas cut the first row short with only a warning (found by the corpus)
    assert _rows(b"name;email\nAcme;a@acme.com;;;spill\nZeta;z@z.com\n") == [
        [2, "Acme", "a@acme.com", ";;spill"],
        [3, "Zeta", "z@z.com", ""],
    ]


def test_a_first_row_longer_than_the_header_beyond_the_sampled_head_keeps_its_cells_aside() -> None:
    """pandas drops a first data row's cells beyond the names it was given (it only warns); the room for them
    is read from the file's head, so a row longer than the head is read again with more room, cells kept."""
    from crm_core.importing.reading import SAMPLE_BYTES

    long_cell = "x" * SAMPLE_BYTES
    raw = f"name,email\nAcme,{long_cell},spill one,spill two,spill three\nBeta,b@beta.com\n".encode()
    assert _rows(raw) == [[2, "Acme", long_cell, "spill one,spill two,spill three"], [3, "Beta", "b@beta.com", ""]]
