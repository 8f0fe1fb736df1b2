"""The province → city → district cascade (GB/T 2260, :mod:`crm_core.rules.regions`) as three selects.

The selects sit outside a form: choosing a province must refresh the cities before the form is
sent. The city's and district's widget keys carry the level above, so a new province starts
with no city chosen instead of keeping one of another province.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import streamlit as st

from crm_core.rules import regions
from crm_ui.context import t


def _options(divisions: Sequence[regions.Division]) -> list[str]:
    return ["", *(division.code for division in divisions)]


def _label(code: str) -> str:
    if not code:
        return t("regions.none")
    return f"{regions.division_name(code)} ({code})"


def region_selects(prefix: str, initial: tuple[str, str, str] = ("", "", "")) -> tuple[str, str, str]:
    """Three selects (province, city, district) under ``prefix``; returns the codes chosen ('' for none)."""
    columns = st.columns(3)
    province_options = _options(regions.provinces())
    province = columns[0].selectbox(
        t("regions.province"), province_options, key=f"{prefix}_province",
        index=province_options.index(initial[0]) if initial[0] in province_options else 0, format_func=_label,
    )
    city_options = _options(regions.cities(province))
    city = columns[1].selectbox(
        t("regions.city"), city_options, key=f"{prefix}_city_{province}",
        index=city_options.index(initial[1]) if initial[1] in city_options else 0, format_func=_label,
        disabled=not province,
    )
    district_options = _options(regions.districts(city))
    district = columns[2].selectbox(
        t("regions.district"), district_options, key=f"{prefix}_district_{city}",
        index=district_options.index(initial[2]) if initial[2] in district_options else 0, format_func=_label,
        disabled=len(district_options) < 2,
    )
    return str(province or ""), str(city or ""), str(district or "")


def province_filter(container: Any, key: str) -> str | None:
    """The grid's province filter: a select of every province (None: any), in ``container``."""
    chosen = container.selectbox(t("regions.filter"), _options(regions.provinces()), key=key,
                                 format_func=lambda code: _label(code) if code else t("filter.all"))
    return str(chosen) or None
