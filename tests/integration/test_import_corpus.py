"""A hostile corpus (issue 19): well over 100 files made here, each pushed through the import's entry point.

Every file goes the way the import job (``crm_core.jobs.kinds.import_file``: the CLI, the API and
the Imports page) sends it — ``open_import_file``, the suggested or given mapping, ``run_import`` —
under all-or-nothing and, unless that imported every row, under skip-invalid, on every database
(merge and upsert files under both). For each:

- only a named refusal (``ImportFileRefused``, ``ImportNotAllowed``, with a catalog key in both
  languages) or a report comes back, never another exception;
- all-or-nothing writes nothing when it rejects, and a refusal writes nothing at all;
- created + updated + skipped + rejected = rows read (a rejected all-or-nothing run counts only
  its refused rows: none is written);
- what is stored is what the file says (no shifted column, no mojibake), and the rows the case
  names as bad are the ones refused.

The counts (files, refused, imported, rejected rows) are printed at the end.
"""

from __future__ import annotations

import codecs
import io
import itertools
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.errors import ImportFileRefused, ImportNotAllowed
from crm_core.i18n import t
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import run_import
from crm_core.models import Customer, Opportunity
from tests.factories import World, build_world, xlsx_workbook

HEADER = ["name", "email", "phone", "region"]
_PHONES = itertools.count(1)


@dataclass
class Case:
    """One hostile file and what must come of it."""

    label: str
    data: bytes
    file_name: str = "corpus.csv"
    entity: str = "customers"
    # names that must end up stored with these fields (after the skip-invalid run)
    stored: dict[str, dict[str, Any]] = field(default_factory=dict)
    bad_rows: set[int] | None = None  # the rows skip-invalid must refuse (None: not checked)
    refusals: set[str] | None = None  # refusal keys allowed; None: the file must be read
    may_read: bool = False  # with refusals: reading the file (correctly) is fine too
    open_options: dict[str, str] = field(default_factory=dict)
    mapping: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)


def _csv(rows: list[list[str]], *, delimiter: str = ",", line_end: str = "\n") -> str:
    def cell(value: str) -> str:
        if any(char in value for char in (delimiter, '"', "\n", "\r")):
            return '"' + value.replace('"', '""') + '"'
        return value

    return "".join(delimiter.join(cell(value) for value in row) + line_end for row in rows)


def _encode(text: str, encoding: str) -> bytes:
    if encoding == "utf-8-sig":
        return codecs.BOM_UTF8 + text.encode("utf-8")
    return text.encode(encoding)


def _customers(label: str, names: list[str], *, region: str = "East") -> tuple[list[list[str]], dict[str, Any]]:
    """Rows of valid customers named ``names`` (each made unique by the label) and what must be stored."""
    rows = [HEADER]
    stored: dict[str, dict[str, Any]] = {}
    for number, base in enumerate(names, start=1):
        name = f"{base} {label}"
        email = f"c{number}.{label.lower()}@corpus.example.cn"
        serial = next(_PHONES)  # unique in the corpus: a shared phone would match an earlier file's customer
        phone = f"139 {serial // 10000:04d} {serial % 10000:04d}"
        rows.append([name, email, phone, region])
        stored[name] = {"email": email, "phone": phone, "region": region}
    return rows, stored


NAMES = {
    "utf-8": ["上海晨光贸易有限公司", "Müller GmbH", "株式会社テスト", "🚀 Rocket"],
    "utf-8-sig": ["北京字节跳动科技有限公司", "François & Fils"],
    "utf-16": ["深圳市腾讯计算机系统有限公司", "Ærø Shipping"],
    "gb18030": ["杭州阿里巴巴网络技术有限公司", "张三科技", "王堃商贸"],
    "cp1252": ["Müller GmbH", "Björk Design", "François Besançon"],
    "shift_jis": ["株式会社テスト", "山田商事"],
}


def corpus() -> list[Case]:
    cases: list[Case] = []
    # A. encodings × delimiters: the names come back as written
    delimiters = [("c", ","), ("s", ";"), ("t", "\t"), ("p", "|")]
    for turn, (encoding, names) in enumerate(NAMES.items()):
        # UTF-8 with every delimiter, the other encodings with two each (all four in turn)
        chosen = delimiters if encoding == "utf-8" else [delimiters[turn % 4], delimiters[(turn + 1) % 4]]
        for tag, delimiter in chosen:
            label = f"E{encoding.replace('-', '')[:6]}{tag}"
            rows, stored = _customers(label, names)
            cases.append(Case(label, _encode(_csv(rows, delimiter=delimiter), encoding), stored=stored))
    # EUC-KR: read correctly or refused, asking for the encoding
    rows, stored = _customers("Ekr", ["삼성전자", "현대상사"])
    cases.append(Case("Ekr", _csv(rows).encode("euc_kr"), stored=stored, refusals={"imports.error.ambiguous_encoding"},
                      may_read=True))
    rows, stored = _customers("Ekr2", ["삼성전자"])
    cases.append(Case("Ekr2", _csv(rows).encode("euc_kr"), stored=stored, open_options={"encoding": "euc_kr"}))
    # B. line endings
    for encoding in ("utf-8", "gb18030", "cp1252"):
        for tag, end in (("lf", "\n"), ("crlf", "\r\n"), ("cr", "\r")):
            label = f"L{encoding[:2]}{tag}"
            rows, stored = _customers(label, NAMES[encoding][:2])
            cases.append(Case(label, _encode(_csv(rows, line_end=end), encoding), stored=stored))
    # C. quotes: delimiters, quotes and line breaks inside quoted cells
    for number, name in enumerate(['Acme, Inc.', 'The "Best" Co', "Two\nLines Ltd", 'Semi;colon|pipe', '""'], 1):
        label = f"Q{number}"
        full = f"{name} {label}"
        body = _csv([HEADER, [full, f"q{number}@corpus.example.cn", "", "North"]])
        cases.append(Case(label, body.encode(), stored={full: {"email": f"q{number}@corpus.example.cn"}}))
    # D. formula prefixes in free text: the row is refused; a number or a word after + or - is text
    for number, (cell, bad) in enumerate(
        [("=1+1", True), ("=HYPERLINK(\"http://x\")", True), ("+SUM(A1:A2)", True), ("-2+3", True),
         ("@SUM(A1)", True), ("-Acme", False), ("+86 Trading", False), ("@home", True)], 1
    ):
        label = f"F{number}"
        rows, stored = _customers(label, ["Fine"])
        rows.append([f"{cell} {label}" if not bad else cell, f"f{number}@corpus.example.cn", "", "East"])
        stored = {**stored, **({} if bad else {f"{cell} {label}": {"email": f"f{number}@corpus.example.cn"}})}
        cases.append(Case(label, _csv(rows).encode(), stored=stored, bad_rows={3} if bad else set()))
        tag_rows, tag_stored = _customers(f"FT{number}", ["Tagged"])
        tag_rows = [[*row, "tags" if index == 0 else cell] for index, row in enumerate(tag_rows)]
        cases.append(Case(f"FT{number}", _csv(tag_rows).encode(), stored={} if bad else tag_stored,
                          bad_rows={2} if bad else set()))
    # E. 100,000-character cells
    rows, stored = _customers("H1", ["Short"])
    rows.append(["N" * 100_000, "h1@corpus.example.cn", "", "East"])
    cases.append(Case("H1", _csv(rows).encode(), stored=stored, bad_rows={3}))
    rows, stored = _customers("H2", ["Short"])
    rows.append(["Long region H2", "h2@corpus.example.cn", "", "R" * 100_000])
    cases.append(Case("H2", _csv(rows).encode(), stored=stored, bad_rows={3}))
    rows, stored = _customers("H3", ["Short"])
    rows.append(["Spill H3", "h3@corpus.example.cn", "", "East", "X" * 100_000])
    cases.append(Case("H3", _csv(rows).encode(), stored=stored, bad_rows={3}))
    # F. NUL bytes: in the head, and past it
    cases.append(Case("N1", b"name,email\nNul\x00Co,n@corpus.example.cn\n", refusals={"imports.error.binary"}))
    rows, _ = _customers("N2", [f"Row{number}" for number in range(6000)])
    deep = _csv(rows).encode() + b"Nul\x00Deep N2,n2@corpus.example.cn,,East\n"
    cases.append(Case("N2", deep, refusals={"imports.error.nul_byte"}))
    # G. invisible, control, direction and emoji characters
    for number, (name, bad) in enumerate(
        [("\u200b\u200b\u200b", True), ("\u0301\u0301", True), ("Bell\x07 Co", True), ("Acme\u202egnp.exe", True),
         ("\u2066Isolate\u2069", True), ("🚀🚀 Emoji Only", False), ("Zero\u200dJoiner", False),
         ("ｆｕｌｌ　ｗｉｄｔｈ", False)], 1
    ):
        label = f"G{number}"
        rows, stored = _customers(label, ["Plain"])
        rows.append([name, f"g{number}@corpus.example.cn", "", "West"])
        if not bad:
            import unicodedata

            stored[unicodedata.normalize("NFKC", name).strip()] = {"email": f"g{number}@corpus.example.cn"}
        cases.append(Case(label, _csv(rows).encode(), stored=stored, bad_rows={3} if bad else set()))
    # H. names of files that look like paths: only a name, never a place
    for number, name in enumerate(
        ["../../etc/passwd.csv", "..\\..\\windows\\win.ini.csv", "/abs/path/x.csv", "C:\\x\\y.csv",
         "名" * 300 + ".csv", "semi;colon\n.csv"], 1
    ):
        label = f"P{number}"
        rows, stored = _customers(label, ["Path"])
        cases.append(Case(label, _csv(rows).encode(), file_name=name, stored=stored))
    # I. empty and header-only files
    for number, empty in enumerate(
        [b"", codecs.BOM_UTF8, b"   \n\n", b"name,email\n", b"name,email\r\n\r\n\r\n", b"\n\n\nname,email\n",
         "客户名称,邮箱\n".encode("gbk")], 1
    ):
        cases.append(Case(f"I{number}", empty, refusals={
            "imports.error.empty_file", "imports.error.no_rows", "imports.error.no_header",
            "imports.error.required_unmapped"}))
    # J. ragged rows: short rows are padded, long ones refused as themselves
    rows, stored = _customers("J1", ["Ragged"])
    rows.append(["Short Row J1"])
    stored["Short Row J1"] = {"email": None, "region": None}
    cases.append(Case("J1", _csv(rows).encode(), stored=stored))
    body = "name,email\nTrailing J2,j2@corpus.example.cn,\nNext J2,n2@corpus.example.cn\n"
    cases.append(Case("J2", body.encode(), stored={
        "Trailing J2": {"email": "j2@corpus.example.cn"}, "Next J2": {"email": "n2@corpus.example.cn"}}))
    body = "name,email\nAcme, Inc J3,j3@corpus.example.cn\nNext J3,n3@corpus.example.cn\n"
    cases.append(Case("J3", body.encode(), stored={"Next J3": {"email": "n3@corpus.example.cn"}}, bad_rows={2}))
    body = "name,email\n" + "".join(f"Wide{i} J4,w{i}@corpus.example.cn\n" for i in range(30))
    body += "Wider J4,x@y.cn" + ",z" * 300 + "\nLast J4,l4@corpus.example.cn\n"
    cases.append(Case("J4", body.encode(), bad_rows={32}, stored={
        "Last J4": {"email": "l4@corpus.example.cn"}, "Wide0 J4": {"email": "w0@corpus.example.cn"}}))
    body = "name;email\nSemi J5;s5@corpus.example.cn;;;\n"
    cases.append(Case("J5", body.encode(), stored={"Semi J5": {"email": "s5@corpus.example.cn"}}))
    # K. many columns
    spare = [f"col{number}" for number in range(2000)]
    rows = [["name", "email", *spare], ["Many K1", "k1@corpus.example.cn", *["v"] * 2000]]
    cases.append(Case("K1", _csv(rows).encode(), stored={"Many K1": {"email": "k1@corpus.example.cn"}}))
    cases.append(Case("K2", b"name,email,NAME\nx,y,z\n", refusals={"imports.error.duplicate_headers"}))
    rows = [["name", *[""] * 50, "email"], ["Blank Heads K3", *["x"] * 50, "k3@corpus.example.cn"]]
    cases.append(Case("K3", _csv(rows).encode(), stored={"Blank Heads K3": {"email": "k3@corpus.example.cn"}}))
    # L. delimiters chosen by the user
    rows, _ = _customers("D1", ["Delim"])
    for number, typed in enumerate([";", "\\t", ";;", "\n", "a", '"'], 1):
        cases.append(Case(f"D{number}", _csv(rows).encode(), open_options={"delimiter": typed},
                          refusals={"imports.error.delimiter_mismatch", "imports.error.bad_delimiter"}))
    rows, stored = _customers("D7", ["Piped"])
    cases.append(Case("D7", _csv(rows, delimiter="|").encode(), open_options={"delimiter": "pipe"}, stored=stored))
    # M. a line that never ends
    cases.append(Case("M1", b"name," + b"x" * (10 * 1024 * 1024), refusals={"imports.error.no_line_break"}))
    # N. a wrong encoding chosen
    rows, _ = _customers("W1", NAMES["gb18030"])
    cases.append(Case("W1", _csv(rows).encode("gbk"), open_options={"encoding": "utf-8"},
                      refusals={"imports.error.unknown_encoding", "imports.error.mixed_encoding"}))
    cases.append(Case("W2", b"name\nx\n", open_options={"encoding": "no-such-codec"},
                      refusals={"imports.error.unknown_encoding"}))
    # O. emails and phones the rules refuse
    for number, (email, phone) in enumerate(
        [(".lead@corpus.example.cn", ""), ("two..dots@corpus.example.cn", ""), ("mailto:m@corpus.example.cn", ""),
         ("", "12345678901"), ("", "+86 123 4567 8901"), ("", "+86 138 0013 800")], 1
    ):
        label = f"O{number}"
        rows, stored = _customers(label, ["Valid"])
        rows.append([f"Bad Contact {label}", email, phone, "East"])
        cases.append(Case(label, _csv(rows).encode(), stored=stored, bad_rows={3}))
    # P. workbooks
    header = ["name", "email"]
    cases.append(Case("X1", xlsx_workbook([("s", [header, ["Book X1", "x1@corpus.example.cn"]], "visible")]),
                      file_name="x1.xlsx", stored={"Book X1": {"email": "x1@corpus.example.cn"}}))
    cases.append(Case("X2", xlsx_workbook([("lists", [["code"], ["Hidden X2"]], "hidden"),
                                   ("data", [header, ["Visible X2", "x2@corpus.example.cn"]], "visible")]),
                      file_name="x2.xlsx", stored={"Visible X2": {"email": "x2@corpus.example.cn"}}))
    titled = [["Customer report"], [], header, ["Titled X3", "x3@corpus.example.cn"]]
    cases.append(Case("X3", xlsx_workbook([("r", titled, "visible")]),
                      file_name="x3.xlsx", stored={"Titled X3": {"email": "x3@corpus.example.cn"}}))
    formula = [header, ["=1+1", "x4@corpus.example.cn"], ["Ok X4", "o4@corpus.example.cn"]]
    cases.append(Case("X4", xlsx_workbook([("s", formula, "visible")]),
                      file_name="x4.xlsx", stored={"Ok X4": {"email": "o4@corpus.example.cn"}}, bad_rows={2}))
    cases.append(Case("X5", xlsx_workbook([("s", [header, ["Spill X5", "x5@corpus.example.cn", "extra"],
                                          ["Fit X5", "f5@corpus.example.cn"]], "visible")]),
                      file_name="x5.xlsx", stored={"Fit X5": {"email": "f5@corpus.example.cn"}}, bad_rows={2}))
    source = zipfile.ZipFile(io.BytesIO(xlsx_workbook([("s", [header, ["Bomb", "b@corpus.example.cn"]], "visible")])))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as bomb:
        for entry in source.infolist():
            bomb.writestr(entry, source.read(entry))
        bomb.writestr("xl/sharedStrings2.xml", b"<si><t>a</t></si>" * 2_000_000)
    cases.append(Case("X6", buffer.getvalue(), file_name="bomb.xlsx", refusals={"imports.error.xlsx_too_large"}))
    cases.append(Case("X7", b"PK\x03\x04 not really a zip", file_name="x7.xlsx", refusals={"imports.error.bad_xlsx"}))
    cases.append(Case("X8", xlsx_workbook([("s", [header, ["Book X8", "x8@corpus.example.cn"]], "visible")]),
                      file_name="x8.xlsx", open_options={"sheet": "missing"}, refusals={"imports.error.no_sheet"}))
    # S. not a spreadsheet at all
    cases.append(Case("S1", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), file_name="s1.csv",
                      refusals={"imports.error.binary"}))
    cases.append(Case("S2", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, file_name="s2.xls",
                      refusals={"imports.error.old_excel"}))
    cases.append(Case("S3", bytes(range(1, 256)) * 50, file_name="s3.csv",
                      refusals={"imports.error.binary", "imports.error.unknown_encoding", "imports.error.no_header",
                                "imports.error.required_unmapped", "imports.error.bad_csv",
                                "imports.error.mixed_encoding", "imports.error.no_line_break",
                                "imports.error.duplicate_headers"}, may_read=True))
    # R. a file that repeats its own rows, under upsert and merge: every row counts once
    rows, stored = _customers("R1", ["Again"])
    rows += [rows[1], rows[1], [rows[1][0], rows[1][1], rows[1][2], "South"]]
    stored[rows[1][0]]["region"] = "South"
    for number, options in enumerate(({"mode": "upsert"}, {"mode": "create", "duplicates": "merge"}), 1):
        cases.append(Case(f"R{number}", _csv(rows).encode(), stored=stored, options=options,
                          mapping={"columns": {h: h for h in HEADER}, "match_on": ["email"]}))
    # T. deals: an amount beyond the column is that row's problem
    body = (
        "name,customer,amount\n"
        "Fine deal T1,Corpus Buyer,999999999999.99\n"
        "Huge deal T1,Corpus Buyer,1000000000000\n"
        "Absurd deal T1,Corpus Buyer,1" + "0" * 40 + "\n"
    )
    cases.append(Case("T1", body.encode(), entity="opportunities", bad_rows={3, 4},
                      stored={"Fine deal T1": {"amount": Decimal("999999999999.99")}}))
    # U. custom fields: a yes/no stored as a boolean, a number as a number, junk refused
    body = "name,vip,employees\nCustom U1,是,\"1,200\"\nCustom Bad U1,perhaps,12\nCustom Bad2 U1,yes,abc\n"
    cases.append(Case("U1", body.encode(), stored={"Custom U1": {"custom_fields": {"vip": True, "employees": "1200"}}},
                      bad_rows={3, 4}, mapping={"columns": {"name": "name", "vip": "custom:vip",
                                                           "employees": "custom:employees"}}))
    cases.append(Case("U2", b"name,x\nCustom U2,1\n", refusals={"imports.error.custom_field_name"},
                      mapping={"columns": {"name": "name", "x": "custom:Not A Name"}}))
    return cases


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def _count(db: Database, world: World, entity: str) -> int:
    model = Opportunity if entity == "opportunities" else Customer
    with db.session(world.admin) as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def _stored(db: Database, world: World, case: Case, name: str) -> list[dict[str, Any]]:
    model: Any = Opportunity if case.entity == "opportunities" else Customer
    with db.session(world.admin) as session:
        return [
            {key: getattr(record, key) for key in case.stored[name]}
            for record in session.scalars(select(model).where(model.name == name))
        ]


def test_a_hostile_corpus_ends_in_refusals_or_reports_and_stores_what_the_files_say(
    db: Database, world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    from crm_core.services.custom_fields import FieldDefinitionInput, create_field
    from crm_core.services.customers import CustomerInput, create_customer

    create_customer(db, world.admin, CustomerInput(name="Corpus Buyer"))
    create_field(db, world.admin, FieldDefinitionInput("vip", "VIP", "重要", field_type="bool"))
    create_field(db, world.admin, FieldDefinitionInput("employees", "Employees", "员工", field_type="number"))
    cases = corpus()
    assert len(cases) >= 100

    tally: Counter[str] = Counter()
    refusal_keys: Counter[str] = Counter()
    import time

    slowest: list[tuple[float, str]] = []
    for case in cases:
        started = time.perf_counter()
        tally["files"] += 1
        was_refused = whole = False
        for policy in ("all-or-nothing", "skip-invalid"):
            if policy == "skip-invalid" and whole:
                continue  # every row went in: skip-invalid would write the same (the run time stays < 60 s)
            before = _count(db, world, case.entity)
            try:
                file = open_import_file(case.file_name, case.data, **case.open_options)  # type: ignore[arg-type]
                mapping = (ImportMapping.from_dict(case.mapping) if case.mapping
                           else ImportMapping.suggested(case.entity, file.headers))
                result = run_import(db, world.admin, file, case.entity, mapping,
                                    ImportOptions(policy=policy, **case.options))
            except (ImportFileRefused, ImportNotAllowed) as refused:
                key = refused.message_key
                assert case.refusals is not None and key in case.refusals, (case.label, policy, key, refused.params)
                for lang in ("en", "zh-CN"):
                    assert t(key, lang, **refused.params) != key, (case.label, key, lang)
                assert _count(db, world, case.entity) == before, (case.label, "a refusal wrote rows")
                was_refused = True
                if policy == "all-or-nothing":
                    tally["refused"] += 1
                    refusal_keys[key] += 1
                continue
            assert case.refusals is None or case.may_read, (case.label, policy, "read, not refused", result.status)
            written = _count(db, world, case.entity) - before
            if result.status == "rejected":  # all or nothing: none of the rows is written, the refused ones counted
                assert (result.created, result.updated, result.skipped) == (0, 0, 0) and result.rejected > 0
            else:
                assert result.created + result.updated + result.skipped + result.rejected == result.rows_read, (
                    case.label, policy, result.as_dict())
            assert written == result.created, (case.label, policy, written, result.as_dict())
            if policy == "all-or-nothing":
                assert result.status in ("imported", "rejected"), (case.label, result.status)
                if result.status == "rejected":
                    assert written == 0, (case.label, "all-or-nothing wrote part of a rejected file")
                tally["imported" if result.status == "imported" else "rejected files"] += 1
                whole = result.status == "imported" and not case.options
            else:
                tally["rejected rows"] += result.rejected
                tally["created rows"] += result.created
                if case.bad_rows is not None:
                    assert result.report is not None
                    assert set(result.report.rejected) == case.bad_rows, (
                        case.label, {row: reasons for row, reasons in result.report.rejected.items()})
        slowest.append((time.perf_counter() - started, case.label))
        if was_refused:
            continue
        for name, expected in case.stored.items():
            assert _stored(db, world, case, name) == [expected], (case.label, name)
    with db.session(world.admin) as session:
        dialect = session.get_bind().dialect.name
    with capsys.disabled():
        print(
            f"\nimport corpus on {dialect}: "
            f"{tally['files']} files, {tally['refused']} refused as files, {tally['imported']} imported whole "
            f"and {tally['rejected files']} rejected under all-or-nothing; under skip-invalid "
            f"{tally['created rows']} rows created, {tally['rejected rows']} rows rejected; "
            f"refusals: {dict(sorted(refusal_keys.items()))}; slowest files: "
            + ", ".join(f"{label} {seconds:.1f} s" for seconds, label in sorted(slowest, reverse=True)[:5])
        )
