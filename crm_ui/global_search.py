"""The sidebar's global search: one box on every page, Enter opens the best match.

The box is a form, so the query runs on Enter (or the button) and never on other reruns of
the page: the search costs nothing while the user works elsewhere. The grouped results of
the last query stay listed under the box (customers, contacts, deals), so when the best
match was not the one meant, the next is one click away. Every hit opens a Customer 360 (a
contact's or a deal's customer). Found values are user text: labels go through
:func:`crm_ui.text.plain_line`.
"""

from __future__ import annotations

import streamlit as st

from crm_core.queries.search import SearchHit, SearchResults, global_search
from crm_ui.context import read_session, t
from crm_ui.page_scripts import FOLD_SIDEBAR
from crm_ui.text import plain_line

PROFILE_PAGE = "pages/customer_profile.py"
QUERY_KEY = "global_search_query"
RESULTS_STATE = "global_search_results"
ICONS = {"customer": "🏢", "contact": "👤", "deal": "💼"}
FOLD_STATE = "global_search_fold"


def global_search_box() -> None:
    """Draw the search box and the last query's grouped results in the current container (the sidebar)."""
    with st.form("global_search", border=False, enter_to_submit=True):
        query = st.text_input(
            t("search.label"), key=QUERY_KEY, placeholder=t("search.placeholder"), max_chars=200,
        )
        submitted = st.form_submit_button(t("search.submit"), width="stretch")
    if submitted:
        _search(query)
    if st.session_state.pop(FOLD_STATE, False):
        st.html(FOLD_SIDEBAR, unsafe_allow_javascript=True)
    results: SearchResults | None = st.session_state.get(RESULTS_STATE)
    if results is not None:
        _show(results)


def _search(query: str) -> None:
    if not query.strip():
        st.session_state.pop(RESULTS_STATE, None)
        return
    with read_session() as session:
        results = global_search(session, query)
    st.session_state[RESULTS_STATE] = results
    best = results.best
    if best is not None:
        open_hit(best)


def open_hit(hit: SearchHit) -> None:
    """Open the Customer 360 the hit belongs to."""
    st.session_state[FOLD_STATE] = True
    st.switch_page(PROFILE_PAGE, query_params={"customer_id": str(hit.customer_id)})


def _show(results: SearchResults) -> None:
    if not results:
        st.caption(t("search.none", query=plain_line(results.query)))
        return
    best = results.best
    for kind, hits in results.groups.items():
        if not hits:
            continue
        st.caption(t(f"search.group.{kind}"))
        for hit in hits:
            label = hit.title + (f" · {hit.detail}" if hit.detail else "")
            st.page_link(
                PROFILE_PAGE, label=plain_line(label), icon=ICONS[kind],
                query_params={"customer_id": str(hit.customer_id)},
                help=t("search.best") if hit == best else None,
            )
