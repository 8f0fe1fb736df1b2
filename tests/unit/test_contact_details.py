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
    phone_search_keys,
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
        # Chinese mobiles: 1[3-9] and 11 digits, with or without +86 / 0086 / 86, spaces, dashes
        ("138 0013 8000", "+8613800138000", True),
        ("13800138000", "+8613800138000", True),
        ("+86 138-0013-8000", "+8613800138000", True),
        ("0086 13800138000", "+8613800138000", True),
        ("86 13800138000", "+8613800138000", True),
        ("+86 199 1234 5678", "+8619912345678", True),
        ("１３８００１３８０００", "+8613800138000", True),  # full-width digits typed with a Chinese IME
        ("＋８６ １３８－００１３－８０００", "+8613800138000", True),  # full-width plus and dashes
        ("12800138000", "12800138000", False),  # no mobile starts 12
        ("1380013800", "1380013800", False),  # one digit short
        ("138001380001", "138001380001", False),  # one digit long
        ("+86 128 0013 8000", "+8612800138000", False),
        # landlines: area code 0xx(x), 7 or 8 digits, an extension
        ("(021) 6212-3456", "+862162123456", True),
        ("010-12345678", "+861012345678", True),
        ("02162123456", "+862162123456", True),
        ("0571-8765432", "+865718765432", True),  # 7 digits after a three-digit area code
        ("023-6666666", "+86236666666", True),
        ("+86 10 1234 5678", "+861012345678", True),
        ("+86 (0)10 12345678", "+861012345678", True),
        ("0086 21 62123456", "+862162123456", True),
        ("010-12345678-801", "+861012345678;ext=801", True),
        ("0755 8888 7777 转 123", "+8675588887777;ext=123", True),
        ("021-62123456 ext. 9", "+862162123456;ext=9", True),
        ("0755-123", "0755123", False),  # a landline too short
        ("010 1234", "0101234", False),
        ("010-123456789", "010123456789", False),  # too long
        # elsewhere: + and the country code, or digits as typed
        ("+1 415 555 0100", "+14155550100", True),
        ("(415) 555-0100", "4155550100", True),
        ("+44 20 7946 0000", "+442079460000", True),
        ("12345", "12345", False),
        ("call me", "", False),
        ("=1+1", "11", False),
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
    # traditional characters fold to simplified (OpenCC t2s): one company however it is written
    ("北京字節跳動科技有限公司", "北京字节跳动科技"),
    ("深圳市騰訊計算機系統有限責任公司", "深圳市腾讯计算机系统"),
    ("臺灣積體電路製造股份有限公司", "台湾积体电路制造"),
    ("廣州ＡＢＣ貿易有限公司", "广州abc贸易"),  # traditional and full-width at once
    ("上海晨光貿易（集團）有限公司", "上海晨光贸易"),  # 集团有限公司 is a legal form too
])
def test_a_company_name_key_ignores_width_case_punctuation_and_legal_forms(name: str, key: str) -> None:
    from crm_core.rules.contact_details import company_key

    assert company_key(name) == key


@pytest.mark.parametrize(("text", "keys"), [
    ("0755 8888", ["07558888", "867558888"]),  # a trunk 0: also as stored, after +86
    ("138-0013", ["1380013"]),
    ("+86 755 8888 7777", ["8675588887777"]),
    ("0086 138", ["86138"]),  # an international prefix is no trunk 0
    ("acme 0755", []),  # letters: not a phone
])
def test_a_phone_search_looks_for_the_digits_and_the_stored_form(text: str, keys: list[str]) -> None:
    assert phone_search_keys(text) == keys
