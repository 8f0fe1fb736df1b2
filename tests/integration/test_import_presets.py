"""Mapping presets for other CRMs' exports (issue 18): each preset maps a realistic export, file by file in the
move-in order, with no rejected row; detection picks the preset from the header; the dry run forecasts what the
import writes; the CLI refuses an unknown preset. SQLite only: the import route itself is tested on all three
databases elsewhere (test_import_history, test_import_references)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.access import Actor
from crm_core.cli import main
from crm_core.db import Database
from crm_core.errors import ImportNotAllowed
from crm_core.importing.guide import entities_present
from crm_core.importing.mapping import ImportOptions
from crm_core.importing.presets import PRESETS, check_preset, detect_preset, preset_mapping
from crm_core.importing.reading import ImportFile, open_import_file
from crm_core.importing.runner import run_import, validate_import
from crm_core.models import Customer, Opportunity, PipelineStage
from tests.factories import build_world, xlsx_workbook

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples" / "move_in"
D = dt.datetime


def fxiaoke_files() -> dict[str, bytes]:
    """A 纷享销客 export: one Excel workbook per object, Chinese headers, real date cells."""
    sheets: dict[str, list[list[Any]]] = {
        "products": [["产品名称", "产品编码", "标准价格", "单位", "上架状态"],
                     ["智能网关 G2", "GW-002", 3999, "台", "是"], ["年度维保服务", None, 12000, "年", "否"]],
        "customers": [["客户编号", "客户名称", "负责人", "客户级别", "所属行业", "电话", "创建时间"],
                      ["KH-0001", "深圳红隼电子有限公司", "Rita Rep", "A类", "制造业", "0755-86001234",
                       D(2017, 3, 2, 9)],
                      ["KH-0002", "杭州云帆科技有限公司", "Rita Rep", "B类", "互联网", "13912345678", D(2019, 7, 15)],
                      ["KH-0003", "成都锦程物流", "Tom Teammate", "C类", "物流", None, None]],
        "contacts": [["姓名", "客户名称", "职务", "手机", "邮箱"],
                     ["王芳", "深圳红隼电子有限公司", "采购经理", "13800138000", "wangfang@hongsun.example.cn"],
                     ["李强", "杭州云帆科技有限公司", "技术总监", "13700137000", None]],
        "opportunities": [["商机名称", "客户编号", "负责人", "销售阶段", "商机金额", "预计成交日期", "结单日期",
                           "创建时间", "输单原因"],
                          ["红隼网关项目", "KH-0001", "Rita Rep", "赢单", 39990, D(2017, 6, 30), D(2017, 6, 18),
                           D(2017, 4, 1), None],
                          ["云帆维保", "KH-0002", "Rita Rep", "输单", 12000, None, D(2020, 1, 10), D(2019, 9, 1),
                           "价格过高"],
                          ["锦程二期", "KH-0003", "Tom Teammate", "方案/报价", 80000, D(2027, 3, 31), None,
                           D(2026, 10, 8), None]],
    }
    return {entity: xlsx_workbook([("Sheet1", rows, "visible")]) for entity, rows in sheets.items()}


def export_files(preset: str) -> list[tuple[str, ImportFile]]:
    """(entity, file) of the preset's sample export, in the move-in order."""
    if preset == "fxiaoke":
        return [(entity, open_import_file(f"{entity}.xlsx", content)) for entity, content in fxiaoke_files().items()]
    names = {"salesforce": {"products": "products", "customers": "accounts", "contacts": "contacts",
                            "opportunities": "opportunities"},
             "hubspot": {"customers": "companies", "contacts": "contacts", "opportunities": "deals"}}[preset]
    return [(entity, open_import_file(path.name, path.read_bytes()))
            for entity, name in names.items() for path in [SAMPLES / f"{preset}_{name}.csv"]]


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
@pytest.mark.parametrize("preset", list(PRESETS))
def test_each_preset_moves_its_sample_export_in_without_a_rejected_row(db: Database, preset: str) -> None:
    world = build_world(db)
    admin: Actor = world.admin
    for entity, file in export_files(preset):
        assert detect_preset(file.headers) == (preset, entity), file.name
        with db.session(admin) as session:
            mapping = preset_mapping(session, "detect", entity, file.headers, admin=True)
        check = validate_import(db, admin, file, entity, mapping, ImportOptions())
        assert (check.rejected_count, [f.message() for f in check.failures]) == (0, []), file.name
        assert (check.would_create, check.would_update, check.would_skip) == (check.rows_read, 0, 0)
        result = run_import(db, admin, file, entity, mapping, ImportOptions())
        assert (result.status, result.rejected, result.created) == ("imported", 0, check.rows_read), file.name
    with db.session(admin) as session:
        deals = {deal.name: (kind, deal.closed_at, deal.customer_id) for deal, kind in session.execute(
            select(Opportunity, PipelineStage.kind).join(PipelineStage, PipelineStage.id == Opportunity.stage_id))}
        by_external = {external: id_ for external, id_ in session.execute(select(Customer.external_id, Customer.id))}
    # the old stages landed on the tenant's won / lost / open stages
    assert sorted(kind for kind, _, _ in deals.values()) == sorted(
        {"salesforce": ["won", "lost", "open", "open"], "hubspot": ["won", "lost", "open", "open"],
         "fxiaoke": ["won", "lost", "open"]}[preset])
    # each won or lost deal closed on the day the old CRM says: 纷享销客's 结单日期; the one "Close Date" of
    # Salesforce and HubSpot (the expected close while open, the actual one once closed)
    closed_on = {name: closed and closed.date() for name, (kind, closed, _) in deals.items() if kind != "open"}
    assert closed_on == {
        "salesforce": {"Edge Emergency Generator": dt.date(2017, 5, 20),
                       "Burlington Installation": dt.date(2018, 3, 30)},
        "hubspot": {"Northwind renewal 2019": dt.date(2019, 3, 31), "Contoso pilot": dt.date(2019, 9, 30)},
        "fxiaoke": {"红隼网关项目": dt.date(2017, 6, 18), "云帆维保": dt.date(2020, 1, 10)},
    }[preset]
    if preset == "fxiaoke":
        assert deals["红隼网关项目"][2] == by_external["KH-0001"]
    present = entities_present(db, admin.tenant_id)
    assert present["customers"] and present["opportunities"] and not present["orders"]


def test_detection_and_a_managers_preset_leave_out_what_they_should() -> None:
    assert detect_preset(["Deal Name", "Deal Stage", "Amount", "Close Date"]) == ("hubspot", "opportunities")
    assert detect_preset(["Opportunity Name", "Stage", "Amount", "Close Date"]) == ("salesforce", "opportunities")
    assert detect_preset(["客户名称", "负责人", "电话"], "customers") == ("fxiaoke", "customers")
    assert detect_preset(["Name", "Email", "Notes"]) is None  # too little in common with any preset
    assert check_preset(" HubSpot ") == "hubspot"
    with pytest.raises(ImportNotAllowed) as refused:
        check_preset("pipedrive")
    assert refused.value.message_key == "imports.error.unknown_preset"


@pytest.mark.parametrize("engine", ["sqlite"], indirect=True)
def test_a_managers_preset_leaves_out_the_history_fields(db: Database) -> None:
    world = build_world(db)
    headers = ["Opportunity Name", "Account ID", "Stage", "Created Date", "Close Date"]
    with db.session(world.manager) as session:
        mapping = preset_mapping(session, "salesforce", "opportunities", headers, admin=False)
    assert mapping.columns == {"Opportunity Name": "name", "Account ID": "customer", "Stage": "stage",
                               "Close Date": "expected_close_date"}
    assert mapping.customer_match == "external_id"
    assert mapping.values["Stage"]["Closed Won"] == "Won"  # the tenant's own stage name


def run_cli(capsys: pytest.CaptureFixture[str], db: Database, *args: str) -> tuple[int, str]:
    code = main(["--database-url", str(db.engine.url), *args])
    captured = capsys.readouterr()
    return code, captured.out.strip() or captured.err.strip()


def test_the_cli_checks_with_a_preset_forecasts_skips_and_refuses_an_unknown_preset(
    capsys: pytest.CaptureFixture[str], sqlite_db: Database
) -> None:
    admin = build_world(sqlite_db).admin.username
    accounts = str(SAMPLES / "salesforce_accounts.csv")
    code, out = run_cli(capsys, sqlite_db, "import", "customers", accounts, "--as", admin, "--preset", "salesforce",
                        "--inline", "--json")
    assert (code, json.loads(out)["created"]) == (0, 3)
    # the same file again, checked: every row matches a customer by its Salesforce ID and would be skipped
    code, out = run_cli(capsys, sqlite_db, "import", "customers", accounts, "--as", admin, "--preset", "detect",
                        "--check", "--inline", "--json")
    check = json.loads(out)
    assert (code, check["dry_run"], check["rejected"]) == (0, True, 0)
    assert (check["would_create"], check["would_update"], check["would_skip"]) == (0, 0, 3)
    code, out = run_cli(capsys, sqlite_db, "import", "customers", accounts, "--as", admin, "--preset", "pipedrive")
    assert code == 2
    assert "pipedrive" in out and "salesforce, hubspot, fxiaoke, detect" in out
