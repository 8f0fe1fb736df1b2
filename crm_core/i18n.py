"""Translations: ``t(key, lang, **params)`` over the English and Simplified Chinese catalogs.

The catalogs are JSON files in ``crm_core/locales/<language>/``, one file per area of the
product (``core.json``, ``sales.json`` …), merged at load; a key may live in one file only.
A test keeps both languages complete and in step with every key the code uses. A missing
key shows the key itself, never a crash.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

LOCALES_DIR = Path(__file__).resolve().parent / "locales"
LANGUAGES: dict[str, str] = {"en": "English", "zh-CN": "简体中文"}
DEFAULT_LANGUAGE = "en"


@cache
def catalog(lang: str) -> dict[str, str]:
    """The catalog for ``lang`` (English when unknown)."""
    if lang not in LANGUAGES:
        lang = DEFAULT_LANGUAGE
    merged: dict[str, str] = {}
    for path in sorted((LOCALES_DIR / lang).glob("*.json")):
        with open(path, encoding="utf-8") as handle:
            part: dict[str, str] = json.load(handle)
        clashes = set(part) & set(merged)
        if clashes:
            raise ValueError(f"{path.name} repeats keys defined in another catalog file: {sorted(clashes)[:5]}")
        merged.update(part)
    return merged


def t(key: str, lang: str = DEFAULT_LANGUAGE, /, **params: Any) -> str:
    """The text for ``key`` in ``lang``, formatted with ``params``."""
    text = catalog(lang).get(key) or catalog(DEFAULT_LANGUAGE).get(key) or key
    if params:
        try:
            return text.format(**params)
        except (KeyError, IndexError, ValueError):
            return text
    return text


def normalise_language(value: str | None) -> str:
    """Map a browser or stored language tag onto a supported one."""
    if not value:
        return DEFAULT_LANGUAGE
    lowered = value.lower()
    if lowered.startswith("zh"):
        return "zh-CN"
    return DEFAULT_LANGUAGE
