"""The Imports page's mapping-preset choice and its "Move in" guide (issue 18), kept apart from the wizard."""

from __future__ import annotations

import streamlit as st

from crm_core.access import Actor
from crm_core.importing.guide import MOVE_IN_ORDER, entities_present
from crm_core.importing.mapping import ImportMapping
from crm_core.importing.presets import DETECT, detect_preset, preset_mapping, preset_names
from crm_ui.context import get_db, read_session, t

NO_PRESET = ""


def preset_label(name: str) -> str:
    """A preset's name in the user's words."""
    return t(f"move_in.preset.{name or 'none'}")


def choose_preset(actor: Actor, entity: str, headers: list[str], *, key: str) -> tuple[str, ImportMapping | None]:
    """A box choosing a mapping preset for the file (preselected: ``detect`` when the header matches one) and the
    mapping it gives (None: no preset chosen). The detected preset is named under the box."""
    detected = detect_preset(headers, entity)
    options = [NO_PRESET, DETECT, *preset_names()]
    chosen = st.selectbox(t("move_in.preset"), options, index=1 if detected else 0, format_func=preset_label,
                          key=key, help=t("move_in.preset_help"))
    if chosen == NO_PRESET:
        return chosen, None
    if chosen == DETECT:
        st.caption(t("move_in.detected", preset=preset_label(detected[0])) if detected else t("move_in.not_detected"))
    with read_session() as session:
        return chosen, preset_mapping(session, chosen, entity, headers, admin=actor.is_admin)


def show_move_in_guide(actor: Actor) -> None:
    """The guide: the order of the files, what each step checks, history (admins), revert; each step marked with
    whether the tenant already holds records of it."""
    present = entities_present(get_db(), actor.tenant_id)
    st.markdown(t("move_in.intro"))
    for number, entity in enumerate(MOVE_IN_ORDER, start=1):
        with st.container(border=True):
            mark = t("move_in.has_records") if present[entity] else t("move_in.no_records")
            st.markdown(f"**{number}. {t(f'imports.entity.{entity}')}** · {mark}")
            st.markdown(t(f"move_in.step.{entity}"))
    st.markdown(t("move_in.history"))
    st.markdown(t("move_in.orphans"))
    st.markdown(t("move_in.dry_run"))
    st.markdown(t("move_in.revert"))
