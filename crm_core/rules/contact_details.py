"""Normalising and checking emails, phone numbers and names for storage and duplicate detection.

:data:`EMAIL_PATTERN` and :data:`PHONE_PATTERN` are the one written form of a valid email and
phone: :mod:`crm_core.rules.fields` checks form input with them and the import's GX suites
(``validations/_rules.py``) hand the same strings to ``expect_column_values_to_match_regex``.
Both are searched (``re.search``, as pandas' ``str.contains`` does) in a value already
trimmed and NFKC-folded.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from typing import Any

# one @, no spaces, a dotted domain; no < or > (markup) and no lead a spreadsheet would run (= + - @);
# no control character; no dot at the start, before the @ or twice in a row (mail servers refuse
# ".li..na.@x.cn"); no colon, so "mailto:li@x.cn" (a link pasted as an address) is refused: it is
# not an address, and which part was meant is the user's call
EMAIL_PATTERN = (
    r"^(?![=+\-@.])(?!.*\.\.)(?!.*\.@)(?!.*@[.\-])"
    r"[^@\s<>:\x00-\x1f\x7f]+@[^@\s<>:\x00-\x1f\x7f]+\.[^@\s<>:.\x00-\x1f\x7f]{2,}$"
)
# Chinese numbers (+86, 0086 or 86 before 11 digits, or 11 digits alone): a mobile number is 1[3-9]
# and 11 digits, so 11 digits starting 10/11/12, or a 1[3-9] number of 10 or 12 digits, is a typo.
# Landlines are left alone: Beijing's +86 10 1234 5678 has 10 digits after the 86.
_SEP = r"[ ()\-./]*"
_DIGIT = rf"(?:{_SEP}\d)"
_INTL_86 = rf"^{_SEP}(?:\+|00){_SEP}8{_SEP}6{_SEP}"
_NOT_A_CHINESE_MOBILE = "|".join(
    (
        rf"{_INTL_86}1{_SEP}[3-9](?!{_DIGIT}{{9}}{_SEP}$)",  # +86 mobile of the wrong length
        rf"{_INTL_86}1{_SEP}[0-2]{_DIGIT}{{9}}{_SEP}$",  # +86 and 11 digits that no mobile starts with
        rf"^{_SEP}8{_SEP}6{_SEP}1{_SEP}[0-2]{_DIGIT}{{9}}{_SEP}$",  # 86 and the same
        rf"^{_SEP}1{_SEP}[0-2]{_DIGIT}{{9}}{_SEP}$",  # 11 digits alone, starting 10/11/12
        rf"^{_SEP}1{_SEP}[3-9](?:{_DIGIT}{{8}}|{_DIGIT}{{10}}){_SEP}$",  # a mobile one digit short or long
    )
)
# A Chinese landline's extension (转 123, ext. 123, x123, #123): kept apart from the 6 to 15 digits
_EXTENSION = r"(?:[ ]*(?:转|分机|ext\.?|x|#)[ ]*\d{1,6})"
# A number written with a leading 0 (not 00) is a Chinese landline: the area code (10, 2x, or three
# digits 3xx–9xx), then 7 or 8 digits; "0755-123" or "010 1234" is a typo, not a number.
_NOT_A_CHINESE_LANDLINE = (
    rf"^{_SEP}0{_SEP}(?!0)(?!(?:1{_SEP}0|2{_DIGIT}|[3-9]{_DIGIT}{{2}}){_DIGIT}{{7,8}}{_SEP}"
    rf"(?:-[ ]*\d{{1,6}}[ ]*|{_EXTENSION})?$)"
)
# 6 to 15 digits (E.164), written with spaces, dashes, dots or brackets, starting with +, a digit
# or a bracket: a leading - or = would make a spreadsheet read the number as a formula
PHONE_PATTERN = (
    rf"(?!{_NOT_A_CHINESE_MOBILE})(?!{_NOT_A_CHINESE_LANDLINE})"
    rf"^(?=(?:[ ()\-./+]*\d){{6,15}}[ ()\-./]*{_EXTENSION}?$)(?=[+\d(])\+?[0-9 ()\-./]{{5,30}}{_EXTENSION}?$"
)
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


# The parts of a Chinese number once separators are dropped: +86/0086/86 or a trunk 0, the area
# code (10, 2x or 3xx–9xx) and 7–8 digits, or a mobile 1[3-9] and 9 digits; an extension after.
_CN_MOBILE = re.compile(r"^(?:\+?86|0086)?(1[3-9]\d{9})$")
_CN_LANDLINE = re.compile(r"^(?:(?:\+86|0086)0?|0)((?:10|2\d|[3-9]\d\d)\d{7,8})$")
_EXTENSION_TAIL = re.compile(r"^(.*?\d)[ ]*(?:转|分机|ext\.?|x|#)[ ]*(\d{1,6})$", re.IGNORECASE)
_SEPARATED_EXTENSION = re.compile(r"^(0\d{2,3})[ \-]+(\d{7,8})[ \-]+(\d{1,6})$")


def phone_search_keys(text: str) -> list[str]:
    """The digit strings a phone search looks for inside stored (E.164) numbers, without the +; none when
    ``text`` is not phone-like (it has letters).

    The digits as typed, and for a fragment that starts with the domestic trunk 0 (``0755 8888``) also
    the same number as stored, +86 then the area code (``86755 8888``): a stored number never holds the
    0, and anchoring on 86 keeps "0100" from matching every number with 100 inside."""
    if any(ch.isalpha() for ch in text):
        return []
    key = (normalise_phone(text) or "").lstrip("+")
    keys = [key] if key else []
    if key.startswith("0") and not key.startswith("00"):
        keys.append("86" + key[1:])
    return keys


def normalise_phone(phone: str | None) -> str | None:
    """E.164 for Chinese numbers (``+8613800138000``, ``+862162123456;ext=801``), else digits
    keeping a leading +; full-width digits are folded (１３８ → 138).

    A number without a country code is read as Chinese: 11 digits 1[3-9]… is a mobile, a leading
    0 a landline (its trunk 0 dropped). Other numbers keep their digits as typed.
    """
    if phone is None:
        return None
    folded = unicodedata.normalize("NFKC", phone).strip()
    if not folded:
        return None
    extension = ""
    if tail := _EXTENSION_TAIL.match(folded):
        folded, extension = tail.group(1), tail.group(2)
    elif split := _SEPARATED_EXTENSION.match(folded):
        folded, extension = f"{split.group(1)}{split.group(2)}", split.group(3)
    digits = re.sub(r"\D", "", folded)
    if folded.startswith("+"):
        digits = "+" + digits
    elif digits.startswith("00"):
        digits = "+" + digits[2:]
    if mobile := _CN_MOBILE.match(digits):
        return "+86" + mobile.group(1)
    if landline := _CN_LANDLINE.match(digits):
        return "+86" + landline.group(1) + (f";ext={extension}" if extension else "")
    if extension:
        digits += f";ext={extension}"
    return digits.lstrip("+") and digits or None


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


@functools.cache
def _to_simplified() -> Any:
    import opencc

    return opencc.OpenCC("t2s")  # OpenCC's own traditional → simplified table (pinned package)


def simplified(text: str) -> str:
    """Traditional Chinese characters folded to simplified (``字節跳動`` → ``字节跳动``); other text unchanged."""
    return str(_to_simplified().convert(text)) if text else text


def company_key(name: str | None) -> str:
    """The key two spellings of one company share, for duplicate checks (查重): width and case folded,
    traditional characters simplified, legal forms (有限公司, Co., Ltd., GmbH …) and punctuation dropped.
    ``北京字节跳动科技有限公司``, ``北京字節跳動科技`` and ``北京字节跳动科技``, and ``ＡＣＭＥ Co., Ltd.`` and
    ``acme``, pair up. A name that is nothing but a legal form keeps its own letters. The customers'
    ``name_key`` column holds it (indexed)."""
    if not name:
        return ""
    folded = simplified(unicodedata.normalize("NFKC", name)).casefold().strip()
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
