"""How numbers, amounts and dates read, per interface language: one format for each.

Pure functions of a value and a language (``en`` or ``zh-CN``); pages (through
``crm_ui.formatting``), exports, e-mails, the CLI and the API docs call these so that one
amount reads the same everywhere. The rules, stated once:

==============  =============================  ==================================
what            en                             zh-CN
==============  =============================  ==================================
money           ¥3,195,170.00                  ¥3,195,170.00
compact money   ¥3.20M · ¥60.0K · ¥3.62B       ¥320万 · ¥36.2亿
number          1,234,567                      1,234,567
percent         12.5%                          12.5%
change          +12% / -3%                     +12% / -3%
date            4 Dec 2026                     2026年12月4日
date and time   4 Dec 2026, 14:05              2026年12月4日 14:05
empty           —                              —
==============  =============================  ==================================

Compact figures keep three significant digits and start at 10,000 in both languages (below,
the whole number fits a tile).
Amounts keep their cents (two decimals) wherever the whole figure is shown; only a compact
figure, which always has the exact one beside it (caption or help), rounds. The currency
is the tenant's (``Tenant.default_currency``); an unknown code is written before the figure.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

EMPTY = "—"
"""What an empty cell, a missing figure or an undefined ratio shows in every language."""

MINUS = "-"
"""The ASCII minus: Streamlit colours a metric's delta red only when it starts with '-', and
spreadsheets and scripts read it back as a number."""

_SYMBOLS: dict[str, dict[str, str]] = {
    "en": {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "JP¥", "HKD": "HK$", "TWD": "NT$"},
    "zh-CN": {"CNY": "¥", "USD": "$", "EUR": "€", "GBP": "£", "JPY": "JP¥", "HKD": "HK$", "TWD": "NT$"},
}
_MONTHS_EN = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# compact steps, largest first: (threshold, divisor, suffix)
_COMPACT: dict[str, tuple[tuple[Decimal, Decimal, str], ...]] = {
    "en": (
        (Decimal(10**9), Decimal(10**9), "B"),
        (Decimal(10**6), Decimal(10**6), "M"),
        (Decimal(10**4), Decimal(10**3), "K"),
    ),
    "zh-CN": (
        (Decimal(10**8), Decimal(10**8), "亿"),
        (Decimal(10**4), Decimal(10**4), "万"),
    ),
}

DATE_INPUT_FORMATS = {"en": "YYYY-MM-DD", "zh-CN": "YYYY/MM/DD"}
"""The ``format`` of a Streamlit date box per language (the only orders Streamlit offers)."""


def _language(lang: str) -> str:
    return "zh-CN" if lang.lower().startswith("zh") else "en"


def _decimal(value: Any) -> Decimal | None:
    if value is None or value == "":
        return None
    if isinstance(value, Decimal):
        return value
    try:
        return Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None


def _grouped(value: Decimal, digits: int) -> str:
    quantum = Decimal(1).scaleb(-digits)
    rounded = value.quantize(quantum, rounding=ROUND_HALF_UP)
    if rounded == 0:
        rounded = abs(rounded)  # never "-0.00"
    text = f"{abs(rounded):,.{digits}f}"
    return MINUS + text if rounded < 0 else text


def currency_symbol(currency: str | None, lang: str) -> str:
    """The sign written before an amount: '¥' for CNY; the code and a space when there is no sign."""
    code = (currency or "CNY").upper()
    symbol = _SYMBOLS[_language(lang)].get(code)
    return symbol if symbol else f"{code} "


def _with_currency(figure: str, currency: str | None, lang: str) -> str:
    symbol = currency_symbol(currency, lang)
    if figure.startswith(MINUS):
        return f"{MINUS}{symbol}{figure[1:]}"
    return f"{symbol}{figure}"


def money(value: Any, lang: str, *, currency: str | None = "CNY") -> str:
    """An amount with its cents, thousands separators and currency sign: ¥3,195,170.00 (None → '—').

    ``currency=None`` leaves the sign out (a table column whose header names the currency).
    """
    number = _decimal(value)
    if number is None:
        return EMPTY
    figure = _grouped(number, 2)
    return figure if currency is None else _with_currency(figure, currency, lang)


def compact(value: Any, lang: str) -> str:
    """A number that fits a KPI tile, to three significant digits: 3.20M / 60.0K / 665K in English,
    320万 / 36.2亿 in Chinese.

    Below 10,000 the whole number is shown (it fits a tile as it is).
    """
    number = _decimal(value)
    if number is None:
        return EMPTY
    steps = _COMPACT[_language(lang)]
    for index, (threshold, divisor, suffix) in enumerate(steps):
        if abs(number) >= threshold:
            scaled = _significant(number / divisor)
            larger = steps[index - 1] if index else None
            # 999,999.4 rounds to "1,000K": say "1.00M" instead
            if larger and abs(scaled) * divisor >= larger[0]:
                return _figure(_significant(number / larger[1])) + larger[2]
            return _figure(scaled) + suffix
    return _grouped(number, 0)


def _significant(value: Decimal, digits: int = 3) -> Decimal:
    """``value`` rounded to ``digits`` significant digits, keeping trailing zeros (3.20, 60.0)."""
    if value == 0:
        return Decimal(0)
    rounded = value
    for _ in range(2):  # again when rounding carried into a new digit (99.95 → 100.0 → 100)
        exponent = rounded.copy_abs().adjusted() - digits + 1
        rounded = value.quantize(Decimal(1).scaleb(min(exponent, 0)), rounding=ROUND_HALF_UP)
    return rounded


def _figure(value: Decimal) -> str:
    return _grouped(value, max(0, -value.as_tuple().exponent))  # type: ignore[operator]


def compact_money(value: Any, lang: str, *, currency: str | None = "CNY") -> str:
    """An amount that fits a KPI tile, with its sign: ¥3.20M / ¥320万; small amounts whole (¥7,518)."""
    figure = compact(value, lang)
    if figure == EMPTY or currency is None:
        return figure
    return _with_currency(figure, currency, lang)


def money_ticks(maximum: Any, lang: str, *, currency: str | None = "CNY", count: int = 4) -> tuple[
        list[float], list[str]]:
    """A chart's money axis: about ``count`` round steps (1, 2 or 5 × 10ⁿ) from 0 past ``maximum``, each labelled
    as :func:`compact_money` writes it (¥5M / ¥500万), where plotly's own labels would read "5M" in Chinese too."""
    top = float(_decimal(maximum) or 0)
    if top <= 0:
        return [0.0], [compact_money(0, lang, currency=currency)]
    rough = top / count
    power = 10 ** math.floor(math.log10(rough))
    step = next(factor * power for factor in (1, 2, 5, 10) if factor * power >= rough)
    values = [float(step * index) for index in range(math.ceil(top / step) + 1)]
    # a round step needs no trailing zeros: ¥5M, ¥2.5M (a tile's ¥5.00M keeps three figures)
    return values, [re.sub(r"\.?0+(?=\D*$)", "", label) if "." in label else label
                    for label in (compact_money(Decimal(str(value)), lang, currency=currency) for value in values)]


def number(value: Any, lang: str, *, digits: int = 0) -> str:
    """A count or measure with thousands separators: 1,234,567 (``digits`` decimals; None → '—')."""
    del lang  # both languages group by thousands with ',' and write '.' for decimals
    parsed = _decimal(value)
    return EMPTY if parsed is None else _grouped(parsed, digits)


def percent(ratio: Any, lang: str, *, digits: int = 1) -> str:
    """A ratio as a percentage: 0.125 → '12.5%' (None → '—')."""
    del lang
    parsed = _decimal(ratio)
    return EMPTY if parsed is None else f"{_grouped(parsed * 100, digits)}%"


def change(current: Any, previous: Any, lang: str) -> str | None:
    """The change from ``previous`` to ``current``: '+12%' / '-3%'; None when there is no base to compare with."""
    del lang
    now, before = _decimal(current), _decimal(previous)
    if now is None or not before:
        return None
    ratio = (now - before) / abs(before) * 100
    figure = _grouped(ratio, 0) + "%"
    return figure if figure.startswith(MINUS) else f"+{figure}"


def date(value: dt.date | dt.datetime | None, lang: str) -> str:
    """A calendar day: '4 Dec 2026' / '2026年12月4日' (None → '—')."""
    if value is None:
        return EMPTY
    if _language(lang) == "zh-CN":
        return f"{value.year}年{value.month}月{value.day}日"
    return f"{value.day} {_MONTHS_EN[value.month - 1]} {value.year}"


def when(value: dt.datetime | dt.date | None, lang: str) -> str:
    """A moment to the minute: '4 Dec 2026, 14:05' / '2026年12月4日 14:05' (a bare date as :func:`date`)."""
    if value is None:
        return EMPTY
    if not isinstance(value, dt.datetime):
        return date(value, lang)
    separator = " " if _language(lang) == "zh-CN" else ", "
    return f"{date(value, lang)}{separator}{value:%H:%M}"


def or_dash(value: Any) -> str:
    """The value as text, or '—' when it is empty (None, '', or only spaces)."""
    if value is None:
        return EMPTY
    text = str(value)
    return text if text.strip() else EMPTY


def date_input_format(lang: str) -> str:
    """The ``format`` for ``st.date_input`` in ``lang`` (its placeholder then reads the same order)."""
    return DATE_INPUT_FORMATS[_language(lang)]


# --- the same formats for Streamlit's table columns (printf and moment.js patterns) -------------

_DATE_COLUMN = {"en": "D MMM YYYY", "zh-CN": "YYYY年M月D日"}
_MOMENT_COLUMN = {"en": "D MMM YYYY, HH:mm", "zh-CN": "YYYY年M月D日 HH:mm"}


def money_column_format(lang: str, *, currency: str | None = "CNY") -> str:
    """``NumberColumn(format=…)`` that shows an amount as :func:`money` does: '¥%,.2f'."""
    if currency is None:
        return "%,.2f"
    return currency_symbol(currency, lang).replace("%", "%%") + "%,.2f"


def number_column_format(*, digits: int = 0) -> str:
    """``NumberColumn(format=…)`` for counts and measures: '%,d' style grouping."""
    return f"%,.{digits}f"


def percent_column_format(*, digits: int = 1) -> str:
    """``NumberColumn(format=…)`` for a column holding percentages already multiplied by 100."""
    return f"%.{digits}f%%"


def date_column_format(lang: str) -> str:
    """``DateColumn(format=…)`` matching :func:`date` (a moment.js pattern)."""
    return _DATE_COLUMN[_language(lang)]


def when_column_format(lang: str) -> str:
    """``DatetimeColumn(format=…)`` matching :func:`when` (a moment.js pattern)."""
    return _MOMENT_COLUMN[_language(lang)]


# --- charts: plotly's own texts (tool bar, messages, month names) in the user's language ------

_PLOTLY_TEXTS = {
    "Download plot as a PNG": "download_png", "Download plot": "download", "Zoom": "zoom", "Pan": "pan",
    "Zoom in": "zoom_in", "Zoom out": "zoom_out", "Autoscale": "autoscale", "Reset axes": "reset_axes",
    "Reset view": "reset_view", "Box Select": "box_select", "Lasso Select": "lasso_select",
    "Toggle Spike Lines": "spikelines", "Show closest data on hover": "hover_closest",
    "Compare data on hover": "hover_compare", "Fullscreen": "fullscreen", "Close fullscreen": "close_fullscreen",
    "Taking snapshot - this may take a few seconds": "snapshot_taking", "Snapshot succeeded": "snapshot_done",
    "Sorry, there was a problem downloading your snapshot!": "snapshot_failed",
    "Double-click to zoom back out": "double_click", "Orbital rotation": "orbit", "Turntable rotation": "turntable",
    "Reset camera to default": "reset_camera", "Zoom in to fit": "zoom_fit",
}
_ZH_MONTHS = [f"{month}月" for month in range(1, 13)]
_ZH_DAYS = ["星期日", "星期一", "星期二", "星期三", "星期四", "星期五", "星期六"]


def plotly_config(lang: str, **config: Any) -> dict[str, Any]:
    """A plotly ``config`` whose tool bar, messages and date axes read in ``lang`` (plus ``config``).

    Plotly looks every text of its own up in ``config.locales[locale].dictionary`` (English
    is its default); Streamlit passes the config through, so no script is needed.
    """
    from crm_core.i18n import t

    merged: dict[str, Any] = {"displaylogo": False, **config}
    if _language(lang) != "zh-CN":
        return merged
    dictionary = {english: t(f"chart.{key}", "zh-CN") for english, key in _PLOTLY_TEXTS.items()}
    date_format = {
        "months": _ZH_MONTHS, "shortMonths": _ZH_MONTHS, "days": _ZH_DAYS, "shortDays": [d[-1] for d in _ZH_DAYS],
        "date": "%Y/%m/%d", "decimal": ".", "thousands": ",",
    }
    return {**merged, "locale": "zh-CN", "locales": {"zh-CN": {"dictionary": dictionary, "format": date_format}}}
