"""Imports (issue 17) on every database: credit codes checked and stored compact, a region column mapped
to the province → city → district cascade where it names one place (counted in the report), and rows
the tenant's blocking duplicate rules refuse, with the owner named and nothing else."""

from __future__ import annotations

import codecs
from typing import Any

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.importing.mapping import ImportMapping, ImportOptions
from crm_core.importing.reading import open_import_file
from crm_core.importing.runner import ImportResult, run_import, validate_import
from crm_core.models import Customer
from crm_core.models.quality import ImportRejectedRow
from crm_core.services.duplicate_rules import save_duplicate_rules
from tests.factories import World, build_world, create_random_customer

SHENZHEN = "91440300MA5F0A1B2N"
PUDONG = "91310115MA1K3C4D5L"
HANGZHOU = "91330106MA2H00001E"

FILE = (
    "公司名称,统一社会信用代码,地区,电话\n"
    # 2: a full-width code
    "深圳晨星科技有限公司,９１４４０３００ＭＡ５Ｆ０Ａ１Ｂ２Ｎ,广东省深圳市南山区,0755-8888 7777\n"
    "上海浦东贸易,91310115-ma1k3c4d5l,上海市浦东新区,\n"  # 3
    "朝阳咨询,,朝阳区,\n"  # 4: ambiguous (Beijing's or Changchun's)
    "火星公司,,Mars,\n"  # 5: no division
    "坏代码公司,91440300MA5F0A1B2M,广东,\n"  # 6: wrong check character: refused
    "杭州重复,91330106MA2H00001E,浙江杭州,\n"  # 7: a colleague's customer has the code: blocked
    "晨星又一次,91440300MA5F0A1B2N,深圳,\n"  # 8: row 2's code again: blocked
)
MAPPING = {"columns": {"公司名称": "name", "统一社会信用代码": "credit_code", "地区": "region", "电话": "phone"},
           "match_on": ["external_id"]}


def run(db: Database, world: World) -> tuple[ImportResult, dict[str, object]]:
    file = open_import_file("customers.csv", codecs.BOM_UTF8 + FILE.encode())
    options = ImportOptions(mode="create", duplicates="create", policy="skip-invalid")
    mapping = ImportMapping.from_dict(MAPPING)
    dry = validate_import(db, world.manager, file, "customers", mapping, options)
    return run_import(db, world.manager, file, "customers", mapping, options), dry.as_dict()


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def test_credit_codes_regions_and_blocked_duplicates_on_import(db: Database, world: World) -> None:
    # another team's rep owns the Hangzhou company: the importing manager of East cannot see it
    create_random_customer(db, world.rep_other_team, name="杭州某某有限公司 (hidden)", credit_code=HANGZHOU)
    result, dry = run(db, world)
    assert (result.status, result.rows_read, result.created, result.rejected) == ("partial", 7, 4, 3)
    assert result.report is not None
    report = result.report.as_dict()
    assert report == {key: value for key, value in dry.items() if key != "quality"}  # the dry run's verdicts: the run's
    assert (report["regions_mapped"], report["regions_ambiguous"], report["regions_not_found"]) == (5, 1, 1)
    assert report["duplicates_blocked"] == 2
    counts = {key: result.as_dict()[key] for key in ("regions_mapped", "regions_ambiguous", "duplicates_blocked")}
    assert counts == {"regions_mapped": 5, "regions_ambiguous": 1, "duplicates_blocked": 2}  # the import's own result
    with db.system_session("test") as session:
        rows = {row.name: row for row in session.scalars(
            select(Customer).where(Customer.tenant_id == world.admin.tenant_id))}
        refused = select(ImportRejectedRow.row_number, ImportRejectedRow.reasons).where(
            ImportRejectedRow.import_run_id == result.run_id)
        reasons: dict[int, list[Any]] = {number: found for number, found in session.execute(refused).all()}
    shenzhen = rows["深圳晨星科技有限公司"]
    assert (shenzhen.credit_code, shenzhen.province_code, shenzhen.city_code, shenzhen.district_code) == (
        SHENZHEN, "440000", "440300", "440305")
    assert shenzhen.phone_normalized == "+8675588887777"
    assert (rows["上海浦东贸易"].credit_code, rows["上海浦东贸易"].district_code) == (PUDONG, "310115")
    assert rows["朝阳咨询"].province_code is None and rows["朝阳咨询"].region == "朝阳区"  # the text stays
    assert rows["火星公司"].province_code is None
    assert "坏代码公司" not in rows and "杭州重复" not in rows and "晨星又一次" not in rows
    assert sorted(reasons) == [6, 7, 8]
    assert reasons[7] == [["imports.rule.duplicate_blocked_row",
                           {"field": "credit_code", "owner": "Fay Faraway"}]]  # the owner only
    assert result.report.reasons(7, "zh-CN") == "被查重规则禁止：Fay Faraway 负责的客户已有相同的统一社会信用代码。"
    assert result.report.reasons(8, "en") == (
        "Blocked by the duplicate rules: row 2 has the same Unified social credit code.")


def test_a_rule_set_to_off_lets_the_import_create_the_rows(db: Database, world: World) -> None:
    create_random_customer(db, world.rep_other_team, name="杭州某某有限公司", credit_code=HANGZHOU)
    save_duplicate_rules(db, world.admin, {"credit_code": "off"})
    result, _ = run(db, world)
    assert (result.created, result.rejected) == (6, 1)  # only the bad check character is refused
