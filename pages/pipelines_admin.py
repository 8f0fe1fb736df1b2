"""Pipelines (admins): create, rename, delete pipelines, pick the default one, and edit the
stages of a pipeline — name, order, probability, open/won/lost — saved all-or-nothing."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.models import StageKind
from crm_core.queries.deals import list_pipelines
from crm_core.services.pipelines import (
    StageInput,
    create_pipeline,
    delete_pipeline,
    rename_pipeline,
    save_stages,
    set_default_pipeline,
)
from crm_ui.context import current_actor, get_db, lang, read_session, show_domain_error, t
from crm_ui.text import plain

STATE = st.session_state
actor = current_actor()
st.title(t("pipelines.title"))
st.caption(t("pipelines.caption"))
if not actor.is_admin:
    st.error(t("error.access_denied"))
    st.stop()
STATE.setdefault("pipelines_generation", 0)

if notice := STATE.pop("pipelines_notice", None):  # a toast: the form saved is further down the page
    st.toast(notice, icon="✅")

with read_session() as session:
    pipelines = list_pipelines(session)

KINDS = [kind.value for kind in StageKind]
kind_labels = {kind: t(f"funnel.kind.{kind}") for kind in KINDS}


def done(message: str) -> None:
    STATE["pipelines_notice"] = message
    STATE["pipelines_generation"] += 1
    st.rerun()


if pipelines:
    chosen_id = st.selectbox(
        t("board.pipeline"), [p.id for p in pipelines],
        format_func=lambda v: next(p.name + (" ★" if p.is_default else "") for p in pipelines if p.id == v),
        key="pipelines_choice",
    )
    chosen = next(p for p in pipelines if p.id == chosen_id)
    generation = STATE["pipelines_generation"]

    st.subheader(t("pipelines.stages"))
    st.caption(t("pipelines.stages_help"))
    frame = pd.DataFrame(
        [
            {"id": stage.id, "order": index + 1, "name": stage.name, "probability": stage.probability,
             "kind": kind_labels[stage.kind]}
            for index, stage in enumerate(chosen.stages)
        ],
        columns=["id", "order", "name", "probability", "kind"],
    )
    edited = st.data_editor(
        frame,
        key=f"pipelines_editor_{chosen.id}_{generation}",
        num_rows="dynamic",
        hide_index=True,
        width="stretch",
        column_config={
            "id": None,
            "order": st.column_config.NumberColumn(t("pipelines.order"), min_value=1, step=1, required=True,
                                                  width="small"),
            "name": st.column_config.TextColumn(t("pipelines.stage_name"), required=True, max_chars=120),
            "probability": st.column_config.NumberColumn(t("deal.probability"), min_value=0, max_value=100, step=1,
                                                         format="%d%%", required=True, width="small"),
            "kind": st.column_config.SelectboxColumn(t("pipelines.kind"), options=list(kind_labels.values()),
                                                     required=True),
        },
    )
    if st.button(t("pipelines.save_stages"), key=f"pipelines_save_{chosen.id}", type="primary"):
        label_to_kind = {label: kind for kind, label in kind_labels.items()}
        rows = edited.dropna(how="all").to_dict("records")
        rows.sort(key=lambda row: (row.get("order") if pd.notna(row.get("order")) else 10_000))
        stages = [
            StageInput(
                name=str(row.get("name") or ""),
                probability=int(row["probability"]) if pd.notna(row.get("probability")) else 0,
                kind=label_to_kind.get(str(row.get("kind")), str(row.get("kind"))),
                id=int(row["id"]) if pd.notna(row.get("id")) else None,
            )
            for row in rows
        ]
        labels = {f"stage.{n}": t("pipelines.stage_number", number=n) for n in range(1, len(stages) + 1)}
        labels["stages"] = t("pipelines.stages")
        try:
            save_stages(get_db(), actor, chosen.id, stages)
        except DomainError as error:
            show_domain_error(error, labels=labels)
        else:
            done(t("pipelines.stages_saved", name=plain(chosen.name)))

    st.subheader(t("pipelines.settings"))
    settings = st.columns([3, 1, 1, 1])
    new_name = settings[0].text_input(
        t("pipelines.name"), value=chosen.name, key=f"pipelines_name_{chosen.id}_{generation}"
    )
    settings[1].write("")
    if settings[1].button(t("pipelines.rename"), key=f"pipelines_rename_{chosen.id}"):
        try:
            rename_pipeline(get_db(), actor, chosen.id, name=new_name)
        except DomainError as error:
            show_domain_error(error, labels={"name": t("pipelines.name")})
        else:
            done(t("pipelines.renamed", name=plain(new_name.strip())))
    settings[2].write("")
    if settings[2].button(
        t("pipelines.make_default"), key=f"pipelines_default_{chosen.id}", disabled=chosen.is_default
    ):
        set_default_pipeline(get_db(), actor, chosen.id)
        done(t("pipelines.default_set", name=plain(chosen.name)))
    settings[3].write("")
    if settings[3].button(t("pipelines.delete"), key=f"pipelines_delete_{chosen.id}", disabled=chosen.is_default):
        try:
            delete_pipeline(get_db(), actor, chosen.id)
        except DomainError as error:
            show_domain_error(error)
        else:
            STATE.pop("pipelines_choice", None)
            done(t("pipelines.deleted", name=plain(chosen.name)))

st.divider()
st.subheader(t("pipelines.new"))
with st.form(f"pipelines_create_{STATE['pipelines_generation']}", clear_on_submit=False):
    name = st.text_input(t("pipelines.name") + " *", max_chars=120)
    submitted = st.form_submit_button(t("pipelines.create"), type="primary")
if submitted:
    try:
        create_pipeline(get_db(), actor, name=name, locale=lang())
    except DomainError as error:
        show_domain_error(error, labels={"name": t("pipelines.name")})
    else:
        done(t("pipelines.created", name=plain(name.strip())))
