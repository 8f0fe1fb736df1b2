"""Numbers, amounts and dates on a page, in the session's language (see :mod:`crm_core.formatting`).

Each helper is the core formatter with the language (and, for money, the tenant's currency)
filled in, so a page writes ``money(amount)`` and every page reads the same.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import streamlit as st

from crm_core import formatting
from crm_core.formatting import EMPTY, or_dash
from crm_core.queries.reports import tenant_currency
from crm_ui.context import current_actor, get_db, lang

__all__ = [
    "EMPTY", "change", "chart_config", "compact_money", "compact_number", "currency", "dashed", "date", "date_column",
    "date_input_format", "money", "money_column", "number", "number_column", "or_dash", "percent", "percent_column",
    "when", "when_column",
]


@st.cache_data(ttl=600, show_spinner=False)
def _currency_of(database_url: str, tenant_id: int) -> str:
    """The tenant's currency, read once per 10 minutes (it changes only in the tenant's settings)."""
    with get_db().session(current_actor()) as session:
        return tenant_currency(session)


def currency() -> str:
    """The acting user's tenant currency (ISO code)."""
    actor = current_actor()
    return _currency_of(str(get_db().engine.url), actor.tenant_id)


def money(value: Any, *, currency_code: str | None = None) -> str:
    """¥3,195,170.00 — the amount with cents and the tenant's (or the given) currency; None → '—'."""
    return formatting.money(value, lang(), currency=currency_code or currency())


def compact_money(value: Any, *, currency_code: str | None = None) -> str:
    """¥3.20M / ¥320万 — an amount that fits a KPI tile (the exact one belongs beside it)."""
    return formatting.compact_money(value, lang(), currency=currency_code or currency())


def money_ticks(maximum: Any) -> tuple[list[float], list[str]]:
    """A chart's money axis in the session's language and the tenant's currency (¥5M / ¥500万)."""
    return formatting.money_ticks(maximum, lang(), currency=currency())


def compact_number(value: Any) -> str:
    """1.23M / 123万 — a large count that fits a tile."""
    return formatting.compact(value, lang())


def number(value: Any, *, digits: int = 0) -> str:
    """1,234,567 — a count or measure; None → '—'."""
    return formatting.number(value, lang(), digits=digits)


def percent(ratio: Any, *, digits: int = 1) -> str:
    """0.125 → 12.5%; None → '—'."""
    return formatting.percent(ratio, lang(), digits=digits)


def change(current: Any, previous: Any) -> str | None:
    """'+12%' / '-3%' for a metric's delta; None when there is nothing to compare with."""
    return formatting.change(current, previous, lang())


def date(value: dt.date | dt.datetime | None) -> str:
    """4 Dec 2026 / 2026年12月4日; None → '—'."""
    return formatting.date(value, lang())


def when(value: dt.datetime | dt.date | None) -> str:
    """4 Dec 2026, 14:05 / 2026年12月4日 14:05; None → '—'."""
    return formatting.when(value, lang())


def chart_config(**config: Any) -> dict[str, Any]:
    """The ``config=`` for ``st.plotly_chart``: plotly's tool bar and date axes in the session's language."""
    return formatting.plotly_config(lang(), **config)


def date_input_format() -> str:
    """The ``format=`` for ``st.date_input`` in the session's language."""
    return formatting.date_input_format(lang())


def filters_label(count: int) -> str:
    """The label of a popover holding a list's filters: "Filters", or "Filters · 2" while two are on."""
    from crm_ui.context import t

    return t("records.filters_count", count=count) if count else t("records.filters_none")


def money_column(label: str | None = None, *, currency_code: str | None = None) -> Any:
    """A table column that shows amounts as :func:`money` does (still sortable as numbers)."""
    return st.column_config.NumberColumn(
        label, format=formatting.money_column_format(lang(), currency=currency_code or currency()))


def number_column(label: str | None = None, *, digits: int = 0) -> Any:
    """A table column of counts with thousands separators."""
    return st.column_config.NumberColumn(label, format=formatting.number_column_format(digits=digits))


def percent_column(label: str | None = None, *, digits: int = 1) -> Any:
    """A table column of percentages (values already × 100)."""
    return st.column_config.NumberColumn(label, format=formatting.percent_column_format(digits=digits))


def date_column(label: str | None = None) -> Any:
    """A table column of days, written as :func:`date` writes them."""
    return st.column_config.DateColumn(label, format=formatting.date_column_format(lang()))


def when_column(label: str | None = None) -> Any:
    """A table column of moments, written as :func:`when` writes them."""
    return st.column_config.DatetimeColumn(label, format=formatting.when_column_format(lang()))


def dashed(frame: pd.DataFrame) -> pd.DataFrame:
    """The table with '—' in its empty text cells (Streamlit would show 'None' in every language).

    Number and date columns keep their type (and their sorting); their empty cells read "—" through the
    table's ``placeholder=EMPTY``, which every ``st.dataframe`` passes (``tests/unit/test_page_rules.py``).
    """
    text_columns = [
        name for name, kind in frame.dtypes.items()
        # pandas 3 gives a column of strings its own str dtype (missing values NaN), older ones object
        if (pd.api.types.is_object_dtype(kind) or isinstance(kind, pd.StringDtype))
        and all(isinstance(value, str) for value in frame[name] if not _is_empty(value))
    ]
    if not text_columns:
        return frame
    filled = frame.copy()
    for name in text_columns:
        filled[name] = filled[name].map(lambda value: EMPTY if _is_empty(value) else value)
    return filled


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or (isinstance(value, float) and value != value)


def sla_countdown(due_at: dt.datetime | None, now: dt.datetime) -> str:
    """A running SLA clock as the queue and board show it: "in 2 h 05 min", "overdue by 3 d 4 h" (days past
    a day read better than "112 h"), or a dash while paused or without a policy."""
    from crm_core.rules.sla import countdown
    from crm_ui.context import t

    left = countdown(due_at, now)
    if left is None:
        return EMPTY
    state, minutes = left
    if minutes >= 24 * 60:
        return t(f"service.countdown.{state}_days", days=minutes // (24 * 60), hours=minutes // 60 % 24)
    return t(f"service.countdown.{state}", hours=minutes // 60, minutes=f"{minutes % 60:02d}")
