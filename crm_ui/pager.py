"""Previous · where you are · Next for a list paged by number (jobs, tasks, a segment's members)."""

from __future__ import annotations

import streamlit as st

from crm_ui.context import t


def numbered_pager(state_key: str, page: int, has_next: bool, position: str) -> None:
    """The two buttons around ``position`` in one row on every width (columns would stack on a phone);
    a click moves ``st.session_state[state_key]`` (the page number) by one and reruns."""
    with st.container(horizontal=True, horizontal_alignment="distribute", vertical_alignment="center"):
        if st.button(t("pager.previous"), disabled=page <= 1, key=f"{state_key}_previous"):
            st.session_state[state_key] = page - 1
            st.rerun()
        st.caption(position)
        if st.button(t("pager.next"), disabled=not has_next, key=f"{state_key}_next"):
            st.session_state[state_key] = page + 1
            st.rerun()
