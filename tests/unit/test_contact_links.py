"""tel: and mailto: links are built from validated, normalised values only (crm_core.rules.contact_details)."""

from __future__ import annotations

import pytest

from crm_core.rules.contact_details import mailto_uri, tel_uri


@pytest.mark.parametrize(
    ("phone", "link"),
    [
        ("138 0013 8000", "tel:+8613800138000"),
        ("+86 138-0013-8000", "tel:+8613800138000"),
        ("(415) 555-0100", "tel:4155550100"),
        ("１３８ ００１３ ８０００", "tel:+8613800138000"),
        ("0086 10 1234 5678", "tel:+861012345678"),
        ("", None),
        (None, None),
        ("12345", None),
        ("=1+2", None),
        ("javascript:alert(1)", None),
        ("138 0013 8000](http://evil.example)", None),
    ],
)
def test_tel_uri(phone: str | None, link: str | None) -> None:
    assert tel_uri(phone) == link


@pytest.mark.parametrize(
    ("email", "link"),
    [
        ("Zhang@Example.CN", "mailto:zhang@example.cn"),
        ("  a.b+tag@mail.example.com ", "mailto:a.b+tag@mail.example.com"),
        ("ｗａｎｇ@example.cn", "mailto:wang@example.cn"),
        ("not-an-email", None),
        ("<a>@x.com", None),
        ("x@y.com)](javascript:alert(1)", None),  # a colon makes it no address (issue 19): no link at all
        (None, None),
    ],
)
def test_mailto_uri(email: str | None, link: str | None) -> None:
    assert mailto_uri(email) == link
