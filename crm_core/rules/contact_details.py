"""Normalising and checking emails, phone numbers and names for storage and duplicate detection.

:data:`EMAIL_PATTERN` and :data:`PHONE_PATTERN` are the one written form of a valid email and
phone: :mod:`crm_core.rules.fields` checks form input with them and the import's GX suites
(``validations/_rules.py``) hand the same strings to ``expect_column_values_to_match_regex``.
Both are searched (``re.search``, as pandas' ``str.contains`` does) in a value already
trimmed and NFKC-folded.
"""

from __future__ import annotations

import re
import unicodedata

# one @, no spaces, a dotted domain; no < or > (markup) and no lead a spreadsheet would run (= + - @)
EMAIL_PATTERN = r"^(?![=+\-@])[^@\s<>]+@[^@\s<>]+\.[^@\s<>]{2,}$"
# 6 to 15 digits (E.164), written with spaces, dashes, dots or brackets, starting with +, a digit
# or a bracket: a leading - or = would make a spreadsheet read the number as a formula
PHONE_PATTERN = r"^(?=(?:\D*\d){6,15}\D*$)(?=[+\d(])\+?[0-9 ()\-./]{5,30}$"
_EMAIL = re.compile(EMAIL_PATTERN)
_PHONE = re.compile(PHONE_PATTERN)


def normalise_email(email: str | None) -> str | None:
    """Lower-cased, trimmed email, or None when blank."""
    if email is None:
        return None
    cleaned = unicodedata.normalize("NFKC", email).strip().lower()
    return cleaned or None


def is_valid_email(email: str) -> bool:
    """A pragmatic check: one @, no spaces, a dotted domain, nothing that reads as markup or a formula."""
    return bool(_EMAIL.search(unicodedata.normalize("NFKC", email).strip()))


def normalise_phone(phone: str | None) -> str | None:
    """Digits only, keeping a leading +; full-width digits are folded (１３８ → 138)."""
    if phone is None:
        return None
    folded = unicodedata.normalize("NFKC", phone).strip()
    if not folded:
        return None
    digits = re.sub(r"\D", "", folded)
    if folded.startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits or None


def is_valid_phone(phone: str) -> bool:
    """6 to 15 digits (E.164), written with spaces, dashes, dots or brackets."""
    return bool(_PHONE.search(unicodedata.normalize("NFKC", phone).strip()))


def normalise_name(name: str | None) -> str:
    """Case- and width-folded name with collapsed spaces, for duplicate detection."""
    if not name:
        return ""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return re.sub(r"\s+", " ", folded).strip()


# Legal-form words that say nothing about which company it is (查重 ignores them), longest first
# so that "股份有限公司" goes before "有限公司"; English forms match whole words at the end.
_CHINESE_FORMS = ("股份有限公司", "有限责任公司", "集团有限公司", "有限公司", "集团公司", "股份公司", "公司")
_LATIN_FORMS = re.compile(
    r"(?:\b(?:co|company|corp|corporation|inc|incorporated|llc|ltd|limited|plc|gmbh|ag|sa|sarl|bv|nv|pte|pty|"
    r"kk|group|holdings?)\b\s*)+$"
)
_NOT_WORD = re.compile(r"[\W_]+")  # punctuation, spaces and symbols in any script


def company_key(name: str | None) -> str:
    """The key two spellings of one company share, for duplicate checks (查重): width and case folded,
    legal forms (有限公司, Co., Ltd., GmbH …) and punctuation dropped. ``北京字节跳动科技有限公司`` and
    ``北京字节跳动科技`` and ``ＡＣＭＥ Co., Ltd.`` and ``acme`` pair up. A name that is nothing but a legal
    form keeps its own letters. The customers' ``name_key`` column holds it (indexed)."""
    if not name:
        return ""
    folded = unicodedata.normalize("NFKC", name).casefold().strip()
    words = _NOT_WORD.sub(" ", folded).strip()
    stripped = _LATIN_FORMS.sub("", words).strip()
    compact = stripped.replace(" ", "")
    for form in _CHINESE_FORMS:
        if compact.endswith(form):
            compact = compact[: -len(form)] or compact
            break
    return (compact or words.replace(" ", ""))[:200]


def parse_tags(raw: str | list[str] | None) -> list[str]:
    """Split user input on commas (ASCII or Chinese) into unique, trimmed tags."""
    if raw is None:
        return []
    parts = raw if isinstance(raw, list) else re.split(r"[,，;；]", raw)
    seen: list[str] = []
    for part in parts:
        tag = unicodedata.normalize("NFKC", str(part)).strip()
        if tag and tag not in seen:
            seen.append(tag)
    return seen


def store_tags(tags: list[str]) -> str:
    """The stored form ``,a,b,`` that lets a tag filter be a plain LIKE."""
    return "," + ",".join(tags) + "," if tags else ""


def tel_uri(phone: str | None) -> str | None:
    """A ``tel:`` link for a valid phone (``tel:+8613800138000``), built from its digits only; else None.

    The link never carries the text as typed: a value that is not a phone number (markup, a
    formula, a ``javascript:`` string) yields no link at all.
    """
    if not phone or not is_valid_phone(phone):
        return None
    digits = normalise_phone(phone)
    return f"tel:{digits}" if digits else None


def mailto_uri(email: str | None) -> str | None:
    """A ``mailto:`` link for a valid email, lower-cased and percent-encoded; else None."""
    from urllib.parse import quote

    if not email or not is_valid_email(email):
        return None
    address = normalise_email(email)
    if not address:
        return None
    local, _, domain = address.rpartition("@")
    return f"mailto:{quote(local, safe='.-_+')}@{quote(domain, safe='.-')}"
