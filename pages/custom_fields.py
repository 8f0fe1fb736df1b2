"""Custom fields (admin): define fields per entity — labels in both languages, a type, required —
that appear in the entity's forms, grid columns, filters and exports without code changes."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.queries.customers import custom_field_definitions
from crm_core.services.custom_fields import (
    ENTITIES,
    FIELD_TYPES,
    FieldDefinitionInput,
    create_field,
    delete_field,
    update_field,
)
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t
from crm_ui.layout import form_cells, table_or_cards
from crm_ui.text import plain, plain_line

STATE = st.session_state
actor = current_actor()


def type_label(field_type: str) -> str:
    return {"text": t("custom_fields.type_text"), "number": t("custom_fields.type_number"),
            "date": t("custom_fields.type_date"), "choice": t("custom_fields.type_choice"),
            "bool": t("custom_fields.type_bool")}.get(field_type, field_type)


st.title(t("custom_fields.title"))
st.caption(t("custom_fields.intro"))
if notice := STATE.pop("custom_fields_notice", None):  # a toast: the form saved is further down the page
    st.toast(notice, icon="✅")

entity = st.selectbox(t("custom_fields.entity"), list(ENTITIES), key="custom_fields_entity",
                      format_func=lambda value: {"customer": t("custom_fields.entity_customer")}.get(value, value))
with read_session() as session:
    definitions = custom_field_definitions(session, entity)

if definitions:
    table_or_cards(pd.DataFrame([{
        t("custom_fields.name"): d.name, t("custom_fields.label_en"): d.label_en,
        t("custom_fields.label_zh"): d.label_zh,
        t("custom_fields.type"): type_label(d.field_type), t("custom_fields.required"): d.required,
        t("custom_fields.choices"): ", ".join(d.choices or []), t("custom_fields.position"): d.position,
    } for d in definitions]), name="custom_fields")
else:
    st.info(t("custom_fields.empty"))

labels = {"name": t("custom_fields.name"), "label_en": t("custom_fields.label_en"),
          "label_zh": t("custom_fields.label_zh"), "field_type": t("custom_fields.type"),
          "choices": t("custom_fields.choices"), "entity": t("custom_fields.entity")}
st.divider()
editing_id = st.selectbox(
    t("custom_fields.choose"), [None, *[d.id for d in definitions]], key="custom_fields_pick",
    format_func=lambda value: t("custom_fields.new") if value is None else next(
        f"{d.label_en} / {d.label_zh} ({d.name})" for d in definitions if d.id == value),
)
editing = next((d for d in definitions if d.id == editing_id), None)
generation = STATE.setdefault("custom_fields_generation", 0)
with st.form(f"custom_fields_form_{editing_id}_{generation}", clear_on_submit=False):
    cells = form_cells(6)  # in reading order on a phone too
    name = next(cells).text_input(labels["name"] + " *", value=editing.name if editing else "",
                                  disabled=editing is not None, help=t("custom_fields.name_help"))
    field_type = next(cells).selectbox(labels["field_type"], list(FIELD_TYPES), format_func=type_label,
                                 index=FIELD_TYPES.index(editing.field_type) if editing else 0,
                                 disabled=editing is not None)
    label_en = next(cells).text_input(labels["label_en"] + " *", value=editing.label_en if editing else "")
    label_zh = next(cells).text_input(labels["label_zh"] + " *", value=editing.label_zh if editing else "")
    choices = next(cells).text_input(labels["choices"], value=", ".join(editing.choices or []) if editing else "",
                              help=t("custom_fields.choices_help"))
    position = next(cells).number_input(t("custom_fields.position"), min_value=0, step=1,
                                  value=editing.position if editing else len(definitions) + 1)
    required = st.checkbox(t("custom_fields.required"), value=editing.required if editing else False)
    submitted = st.form_submit_button(t("custom_fields.save") if editing else t("custom_fields.create"), type="primary")
if submitted:
    form = FieldDefinitionInput(name=name, label_en=label_en, label_zh=label_zh, field_type=field_type,
                                required=required, choices=choices, entity=entity, position=int(position))
    try:
        if editing:
            update_field(get_db(), actor, editing.id, form, expected_version=editing.version)
        else:
            create_field(get_db(), actor, form)
    except DomainError as error:
        show_domain_error(error, labels=labels)
    else:
        STATE["custom_fields_generation"] = generation + 1
        STATE["custom_fields_notice"] = t("custom_fields.saved", label=plain(label_en.strip()))
        st.rerun()
if editing:
    st.caption(t("custom_fields.delete_hint"))
    if st.button(t("custom_fields.delete", label=plain_line(editing.label_en)), key="custom_fields_delete"):
        try:
            delete_field(get_db(), actor, editing.id, expected_version=editing.version)
        except DomainError as error:
            show_domain_error(error)
        else:
            STATE.pop("custom_fields_pick", None)
            STATE["custom_fields_notice"] = t("custom_fields.deleted", label=plain(editing.label_en))
            st.rerun()
