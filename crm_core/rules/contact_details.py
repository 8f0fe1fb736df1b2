"""Normalising and checking emails, phone numbers and names for storage and duplicate detection."""

from __future__ import annotations

import re
import unicodedata

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]{2,}$")
_PHONE_ALLOWED = re.compile(r"^\+?[0-9 ()\-./]{5,30}$")


def normalise_email(email: str | None) -> str | None:
    """Lower-cased, trimmed email, or None when blank."""
    if email is None:
        return None
    cleaned = unicodedata.normalize("NFKC", email).strip().lower()
    return cleaned or None


def is_valid_email(email: str) -> bool:
    """A pragmatic check: one @, no spaces, a dotted domain."""
    return bool(_EMAIL.match(unicodedata.normalize("NFKC", email).strip()))


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
    folded = unicodedata.normalize("NFKC", phone).strip()
    if not _PHONE_ALLOWED.match(folded):
        return False
    digit_count = len(re.sub(r"\D", "", folded))
    return 6 <= digit_count <= 15


def normalise_name(name: str | None) -> str:
    """Case- and width-folded name with collapsed spaces, for duplicate detection."""
    if not name:
        return ""
    folded = unicodedata.normalize("NFKC", name).casefold()
    return re.sub(r"\s+", " ", folded).strip()


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
