"""How amounts read on a page: whole units with separators, or KPI-sized in the user's language."""

from __future__ import annotations

from decimal import Decimal

from crm_ui.context import lang

LARGE = Decimal(1_000_000)
"""From here on a KPI tile cannot show every digit (a five-tile row truncates '3,615,95…')."""


def money(value: Decimal | int | None) -> str:
    """Whole currency units with thousands separators: 3,615,958,040."""
    return f"{Decimal(value or 0):,.0f}"


def compact_money(value: Decimal | int | None) -> str:
    """An amount that fits a KPI tile: 36.16亿 / 112.5万 in Chinese, 3.62B / 1.13M in English.

    Below a million the whole number is shown; the exact figure belongs beside the tile
    (its caption or help), as the user may need it.
    """
    number = Decimal(value or 0)
    if abs(number) < LARGE:
        return money(number)
    if lang() == "zh-CN":
        return f"{number / 10**8:,.2f}亿" if abs(number) >= 10**8 else f"{number / 10**4:,.1f}万"
    return f"{number / 10**9:,.2f}B" if abs(number) >= 10**9 else f"{number / 10**6:,.2f}M"
