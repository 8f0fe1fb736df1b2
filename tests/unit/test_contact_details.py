"""Normalising and validating emails, phones, names and tags."""

from __future__ import annotations

import pytest

from crm_core.rules.contact_details import (
    is_valid_email,
    is_valid_phone,
    normalise_email,
    normalise_name,
    normalise_phone,
    parse_tags,
    store_tags,
)


@pytest.mark.parametrize(
    ("raw", "valid"),
    [("li.wei@example.cn", True), (" Li@Example.COM ", True), ("no-at-sign", False), ("a@b", False),
     ("a b@c.com", False), ("张伟@例子.中国", True), ("=cmd@x.com", False), ("<b>@x.com", False),
     ("li+crm@example.cn", True)],
)
def test_email_validity(raw: str, valid: bool) -> None:
    assert is_valid_email(raw) is valid


@pytest.mark.parametrize(
    ("raw", "normalised", "valid"),
    [
        ("138 0013 8000", "13800138000", True),
        ("+86 138-0013-8000", "+8613800138000", True),
        ("0086 13800138000", "+8613800138000", True),
        ("１３８００１３８０００", "13800138000", True),  # full-width digits typed with a Chinese IME
        ("(021) 6212-3456", "02162123456", True),
        ("12345", "12345", False),
        ("call me", "", False),
    ],
)
def test_phone_normalisation_and_validity(raw: str, normalised: str, valid: bool) -> None:
    assert (normalise_phone(raw) or "") == normalised
    assert is_valid_phone(raw) is valid


def test_email_and_name_normalise_case_width_and_spaces() -> None:
    assert normalise_email("  Li@Example.COM ") == "li@example.com"
    assert normalise_email("   ") is None
    assert normalise_name("  ＡＣＭＥ   Trading ") == "acme trading"


def test_tags_split_on_ascii_and_chinese_commas_and_are_stored_for_like_filters() -> None:
    tags = parse_tags("vip， 华东, vip;key account")
    assert tags == ["vip", "华东", "key account"]
    assert store_tags(tags) == ",vip,华东,key account,"
    assert store_tags([]) == ""


@pytest.mark.parametrize(("name", "key"), [
    ("北京字节跳动科技有限公司", "北京字节跳动科技"),
    ("北京字节跳动科技", "北京字节跳动科技"),
    ("北京字节跳动科技股份有限公司", "北京字节跳动科技"),
    ("深圳市腾讯计算机系统有限责任公司", "深圳市腾讯计算机系统"),
    ("阿里巴巴（中国）有限公司", "阿里巴巴中国"),  # full-width brackets are punctuation
    ("ＡＣＭＥ Co., Ltd.", "acme"),  # full-width letters, case, an English legal form
    ("Acme Limited", "acme"),
    ("acme", "acme"),
    ("Acme-Trading", "acmetrading"),
    ("Acme Trading Co.", "acmetrading"),
    ("Müller & Söhne GmbH", "müllersöhne"),
    ("3M (China) Co., Ltd.", "3mchina"),
    ("有限公司", "有限公司"),  # nothing but a legal form keeps its own letters
    ("Ltd", "ltd"),
    ("", ""),
])
def test_a_company_name_key_ignores_width_case_punctuation_and_legal_forms(name: str, key: str) -> None:
    from crm_core.rules.contact_details import company_key

    assert company_key(name) == key
