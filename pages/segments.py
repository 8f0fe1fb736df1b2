"""Segments (analysts, managers, admins): lifecycle distribution and flow, RFM, the segment
builder with a live count, saved segments with their size over time, exports, bulk tasks
and campaign enrolment, and the scorers' model versions."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core.errors import DomainError
from crm_core.exporting import export_file_name, to_csv, to_xlsx
from crm_core.i18n import t as translate
from crm_core.models import Priority, Role
from crm_core.models.segments import SegmentSharing
from crm_core.queries.scores import latest_scores
from crm_core.queries.segments import (
    campaign_choices,
    count_segment,
    iter_segment_members,
    lifecycle_distribution,
    lifecycle_flow,
    list_saved_segments,
    list_segment_members,
    rfm_summary,
    segment_size_history,
    team_choices,
)
from crm_core.queries.users import assignable_owners
from crm_core.rules.segments import (
    BOOL,
    CHOICE,
    DATE,
    LIST_VALUE,
    NO_VALUE,
    NUMBER,
    OPERATORS,
    PERCENT,
    QUINTILE,
    RFM_GRID,
    TAGS,
    TEAM,
    TEXT,
    USER,
    FieldCatalog,
    SegmentSpec,
    validate_spec,
)
from crm_core.scoring import SCORERS
from crm_core.services.customers import custom_field_definitions
from crm_core.services.segments import (
    MAX_BULK,
    BulkTaskInput,
    SegmentInput,
    create_segment_tasks,
    delete_segment,
    enroll_segment_in_campaign,
    hidden_text,
    record_snapshot,
    save_segment,
)
from crm_ui.context import current_actor, get_db, lang, read_session, show_domain_error
from crm_ui.formatting import EMPTY, date_input_format, number, when_column
from crm_ui.layout import form_cells
from crm_ui.pager import numbered_pager
from crm_ui.segment_members import members_table
from crm_ui.text import chart_text, plain, plain_params

LANGUAGE = lang()


def t(key: str, **params: Any) -> str:
    """Translate in this run's language (format functions run later, outside the script run)."""
    return translate(key, LANGUAGE, **params)


STATE = st.session_state
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
actor = current_actor()
if actor.role not in (Role.ADMIN, Role.MANAGER, Role.ANALYST):
    st.error(t("error.access_denied"))
    st.stop()
db = get_db()

STATE.setdefault("segments_uids", [])
STATE.setdefault("segments_next_uid", 1)
STATE.setdefault("segments_members_page", 1)
STATE.setdefault("segments_loaded", None)  # (segment id, version, name) being edited


with read_session() as session:
    definitions = custom_field_definitions(session)
    owners = assignable_owners(session)
    teams = team_choices(session)
owner_names = dict(owners)
team_names = dict(teams)
catalog = FieldCatalog(
    custom_fields={d.name: (d.field_type, tuple(d.choices or ())) for d in definitions}, scorers=tuple(SCORERS)
)


def field_label(name: str) -> str:
    """The field's label in the user's language (custom fields: their own labels)."""
    if name.startswith("custom."):
        for definition in definitions:
            if definition.name == name.removeprefix("custom."):
                return definition.label_zh if LANGUAGE == "zh-CN" else definition.label_en
    if name.startswith("score."):
        return t("segments.field.score", scorer=t(f"scoring.scorer.{name.removeprefix('score.')}"))
    return t(f"segments.field.{name}")


FIELDS = [
    "lifecycle_stage", "name", "industry", "region", "source", "email", "kind", "tags", "owner", "team",
    "created_at", "last_contacted_at", "next_follow_up_at", "rfm_segment", "rfm_recency", "rfm_frequency",
    "rfm_monetary", *[f"score.{name}" for name in SCORERS], *[f"custom.{d.name}" for d in definitions],
]


def choice_label(name: str, value: str) -> str:
    """How a choice value shows in the builder."""
    if name == "lifecycle_stage":
        return t(f"stage.{value}")
    if name == "kind":
        return t(f"kind.{value}")
    if name == "rfm_segment":
        return t(f"rfm.{value}")
    return value


# --- the builder's state: one uid per condition keeps every widget's value across reruns ---


def add_condition(field: str = "lifecycle_stage", op: str | None = None, value: Any = None) -> None:
    """Append a condition row (optionally pre-filled)."""
    uid = STATE["segments_next_uid"]
    STATE["segments_next_uid"] = uid + 1
    STATE["segments_uids"].append(uid)
    kind = catalog.kind_of(field) or TEXT
    STATE[f"segments_c{uid}_field"] = field
    STATE[f"segments_c{uid}_op"] = op or OPERATORS[kind][0]
    if value is None:
        return
    if op == "between" and isinstance(value, list):
        STATE[f"segments_c{uid}_value"], STATE[f"segments_c{uid}_value2"] = float(value[0]), float(value[1])
    elif kind == DATE and op in ("before", "after"):
        STATE[f"segments_c{uid}_value"] = dt.date.fromisoformat(value)
    elif kind in (NUMBER, PERCENT, QUINTILE) or (kind == DATE):
        STATE[f"segments_c{uid}_value"] = value if kind == QUINTILE else float(value)
    elif kind in (TEXT, TAGS) and isinstance(value, list):
        STATE[f"segments_c{uid}_value"] = ", ".join(str(item) for item in value)
    else:
        STATE[f"segments_c{uid}_value"] = value


def load_conditions(conditions: dict[str, Any]) -> None:
    """Replace the builder's conditions with a saved spec."""
    STATE["segments_uids"] = []
    STATE["segments_match"] = conditions.get("match", "all")
    for condition in conditions.get("conditions", []):
        add_condition(condition["field"], condition["op"], condition.get("value"))
    STATE["segments_members_page"] = 1


def remove_condition(uid: int) -> None:
    STATE["segments_uids"] = [other for other in STATE["segments_uids"] if other != uid]


def condition_editor(uid: int, number: int) -> dict[str, Any]:
    """One condition row; returns its raw {field, op, value}."""
    columns = st.columns([3, 3, 5, 1])
    field = columns[0].selectbox(
        t("segments.condition", number=number), FIELDS, format_func=field_label, key=f"segments_c{uid}_field"
    )
    kind = catalog.kind_of(field) or TEXT
    operators = OPERATORS[kind]
    if STATE.get(f"segments_c{uid}_op") not in operators:
        STATE[f"segments_c{uid}_op"] = operators[0]
    op = columns[1].selectbox(
        t("segments.operator"), operators, format_func=lambda value: t(f"segments.op.{value}"),
        key=f"segments_c{uid}_op",
    )
    value_key = f"segments_c{uid}_value"
    value: Any = None
    slot = columns[2]
    if op in NO_VALUE:
        slot.caption(" ")
    elif kind == CHOICE:
        choices = list(catalog.choices_of(field))
        if op in LIST_VALUE:
            if not isinstance(STATE.get(value_key), list):
                STATE[value_key] = []
            value = slot.multiselect(
                t("segments.value"), choices, format_func=lambda v: choice_label(field, v), key=value_key
            )
        else:
            if STATE.get(value_key) not in choices:
                STATE[value_key] = choices[0] if choices else None
            value = slot.selectbox(
                t("segments.value"), choices, format_func=lambda v: choice_label(field, v), key=value_key
            )
    elif kind in (USER, TEAM):
        options = [owner_id for owner_id, _ in owners] if kind == USER else [team_id for team_id, _ in teams]
        names = owner_names if kind == USER else team_names
        if not isinstance(STATE.get(value_key), list):
            STATE[value_key] = []
        value = slot.multiselect(
            t("segments.value"), options, format_func=lambda v: names.get(v, str(v)), key=value_key
        )
    elif kind == DATE and op in ("before", "after"):
        if not isinstance(STATE.get(value_key), dt.date):
            STATE[value_key] = dt.date.today()
        value = slot.date_input(t("segments.value"), key=value_key, format=date_input_format())
    elif kind == DATE:
        if not isinstance(STATE.get(value_key), (int, float)) or isinstance(STATE.get(value_key), bool):
            STATE[value_key] = 30.0
        value = slot.number_input(
            t("segments.days"), min_value=1.0, max_value=36500.0, step=1.0, format="%.0f", key=value_key
        )
    elif kind == QUINTILE:
        if STATE.get(value_key) not in (1, 2, 3, 4, 5):
            STATE[value_key] = 5
        value = slot.selectbox(t("segments.value"), [1, 2, 3, 4, 5], key=value_key)
    elif kind in (NUMBER, PERCENT):
        upper = 100.0 if kind == PERCENT else None
        if not isinstance(STATE.get(value_key), float):
            STATE[value_key] = 50.0 if kind == PERCENT else 0.0
        if op == "between":
            left, right = slot.columns(2)
            if not isinstance(STATE.get(f"{value_key}2"), float):
                STATE[f"{value_key}2"] = 100.0 if kind == PERCENT else 0.0
            minimum = 0.0 if upper else None
            low = left.number_input(t("segments.from"), min_value=minimum, max_value=upper, key=value_key)
            high = right.number_input(t("segments.to"), min_value=minimum, max_value=upper, key=f"{value_key}2")
            value = [low, high]
        else:
            label = t("segments.percent") if kind == PERCENT else t("segments.value")
            value = slot.number_input(label, min_value=0.0 if upper else None, max_value=upper, key=value_key)
    else:  # text and tags
        if not isinstance(STATE.get(value_key), str):
            STATE[value_key] = ""
        hint = t("segments.list_hint") if op in LIST_VALUE else None
        value = slot.text_input(t("segments.value"), key=value_key, placeholder=hint)
        if op in LIST_VALUE:
            value = [part.strip() for part in value.split(",") if part.strip()]
    columns[3].button(
        "✕", key=f"segments_c{uid}_remove", on_click=remove_condition, args=(uid,), help=t("segments.remove")
    )
    if kind == BOOL:
        value = None
    return {"field": field, "op": op, "value": value}


def problem_text(index: int | None, key: str, params: dict[str, Any]) -> str:
    """A refused condition, in the user's language."""
    message = t(key, **plain_params(params))
    return message if index is None else f"{t('segments.condition', number=index + 1)}: {message}"


def export_rows(spec: Any) -> tuple[list[str], Any]:
    """Headers and a row stream for the export (one query per chunk of members)."""
    headers = [t("field.name"), t("field.lifecycle_stage"), t("field.owner"), t("segments.field.team"),
               t("field.industry"), t("field.region"), t("field.email"), t("field.phone"), t("field.tags"),
               t("field.last_contacted_at"), t("segments.field.created_at"), "id"]

    def rows() -> Any:
        with read_session() as session:
            for member in iter_segment_members(session, spec):
                yield [member.name, t(f"stage.{member.lifecycle_stage}"), member.owner_name, member.team_name,
                       member.industry, member.region, member.email, member.phone, member.tags,
                       member.last_contacted_at, member.created_at, member.id]

    return headers, rows()


if pending := STATE.pop("segments_pending_open", None):
    STATE["segments_section"] = "builder"
    if isinstance(pending, dict):  # conditions only (from the RFM tab)
        STATE["segments_loaded"] = None
        load_conditions(pending)
    else:  # a saved segment: its conditions and its form
        load_conditions(pending.conditions)
        STATE["segments_loaded"] = (pending.id, pending.version, pending.name)
        STATE["segments_name"] = pending.name
        STATE["segments_description"] = pending.description
        STATE["segments_sharing"] = pending.sharing
        STATE["segments_team"] = pending.team_id
        STATE["segments_notice"] = t("segments.opened", name=plain(pending.name))

st.title(t("segments.title"))
if notice := STATE.pop("segments_notice", None):  # a toast: the button was far down the page
    st.toast(notice, icon="✅")

# one section at a time: tabs would compute every section (RFM, counts …) on every rerun
SECTIONS = ["builder", "saved", "lifecycle", "rfm", "scoring"]
section = st.radio(
    t("segments.section"), SECTIONS, format_func=lambda v: t(f"segments.tab.{v}"), horizontal=True,
    key="segments_section", label_visibility="collapsed",
)


DATABASE = str(get_db().engine.url)  # part of every cache key: ids repeat from one database to another


@st.cache_data(ttl=300, show_spinner=False)
def cached_distribution(database: str, user_id: int, tenant_id: int) -> list[Any]:
    """Lifecycle distribution for this user, kept five minutes (a full pass over the customers)."""
    with read_session() as session:
        return lifecycle_distribution(session)


@st.cache_data(ttl=300, show_spinner=False)
def cached_rfm_summary(database: str, user_id: int, tenant_id: int) -> list[Any]:
    """RFM summary for this user, kept five minutes (ranks every order of the tenant)."""
    with read_session() as session:
        return rfm_summary(session)



@st.cache_data(ttl=60, show_spinner=False)
def cached_segment_count(database: str, user_id: int, tenant_id: int, spec: SegmentSpec) -> int:
    """How many customers this user sees in the segment, kept a minute per rule (a pass over the customers:
    0.4 s for a manager at 1M). Paging the members or typing elsewhere on the page reuses it."""
    with read_session() as session:
        return count_segment(session, spec)


# --- builder ---------------------------------------------------------------------------------
if section == "builder":
    loaded = STATE["segments_loaded"]
    if loaded:
        st.info(t("segments.editing", name=plain(loaded[2])))
    st.radio(
        t("segments.match"), ["all", "any"], format_func=lambda v: t(f"segments.match_{v}"), horizontal=True,
        key="segments_match",
    )
    raw_conditions = [condition_editor(uid, number) for number, uid in enumerate(STATE["segments_uids"], start=1)]
    st.button(t("segments.add_condition"), key="segments_add", on_click=add_condition)
    raw = {"match": STATE.get("segments_match", "all"), "conditions": raw_conditions}
    spec, problems = validate_spec(raw, catalog)
    if spec is not None and hidden_text(raw):  # NUL and the like: PostgreSQL refuses them in a query
        st.warning(t("imports.rule.hidden_characters", field=t("segments.conditions")))
        spec = None

    if problems:
        st.warning("\n\n".join(problem_text(p.index, p.key, p.params) for p in problems))
    if spec is not None:
        try:
            with read_session() as session:
                members = list_segment_members(session, spec, page=STATE["segments_members_page"], per_page=25,
                                               with_total=False)
                churn = latest_scores(session, "churn_risk", [member.id for member in members.items])
        except DomainError as error:
            show_domain_error(error)
            st.stop()
        members = replace(members, total=cached_segment_count(DATABASE, actor.user_id, actor.tenant_id, spec))
        st.metric(t("segments.live_count"), number(members.total or 0))
        if members.items:
            members_table(members.items, churn)  # cards on a phone
            scored = {member.id: member.name for member in members.items if member.id in churn}
            if scored:
                with st.expander(t("segments.explain_title")):
                    who = st.selectbox(t("segments.explain_customer"), list(scored), format_func=scored.__getitem__,
                                       key="segments_explain_customer")
                    if st.button(t("segments.explain"), key="segments_explain"):
                        from crm_core.scoring.runner import explain_record

                        factors = explain_record(db, actor.tenant_id, "churn_risk", who)
                        st.markdown(t("segments.explain_score", name=plain(scored[who]),
                                      percent=churn[who].percent))
                        if not factors:
                            st.info(t("segments.explain_none"))
                        for factor in factors:
                            direction = (
                                "segments.explain_raises" if factor.contribution > 0 else "segments.explain_lowers"
                            )
                            st.markdown(t(direction, feature=t(f"scoring.feature.{factor.feature}"),
                                          value=plain(factor.value), weight=f"{factor.contribution:+.2f}"))
            numbered_pager("segments_members_page", members.page, members.has_next,
                           t("pager.position", page=members.page, pages=members.page_count or 1))

            # exports stream the members chunk by chunk into the file
            export_row = st.container(horizontal=True)  # side by side on a phone too
            if export_row.button(t("segments.prepare_csv"), key="segments_prepare_csv"):
                headers, rows = export_rows(spec)
                STATE["segments_export"] = (spec.as_dict(), "csv", to_csv(headers, rows))
            if export_row.button(t("segments.prepare_xlsx"), key="segments_prepare_xlsx"):
                headers, rows = export_rows(spec)
                workbook = to_xlsx(headers, rows, sheet_title=t("segments.title"))
                STATE["segments_export"] = (spec.as_dict(), "xlsx", workbook)
            export = STATE.get("segments_export")
            if export and export[0] == spec.as_dict():  # a file of other conditions is not offered
                _, kind, data = export
                mime = "text/csv" if kind == "csv" else XLSX_MIME
                st.download_button(
                    t("segments.download", kind=kind.upper()), data, mime=mime,
                    file_name=export_file_name("segment", kind, name=STATE.get("segments_name")),
                    key="segments_download", type="primary",
                )
        else:
            st.info(t("segments.no_members"))

        # --- save ---
        st.divider()
        st.subheader(t("segments.save_title"))
        with st.form("segments_save_form", clear_on_submit=False):
            fields = form_cells(4)  # in reading order on a phone too
            name = next(fields).text_input(t("segments.name") + " *", max_chars=120, key="segments_name")
            sharing = next(fields).selectbox(
                t("segments.sharing"), list(SegmentSharing.ALL), format_func=lambda v: t(f"segments.sharing_{v}"),
                key="segments_sharing",
            )
            description = next(fields).text_input(t("segments.description"), max_chars=500, key="segments_description")
            my_teams = [team_id for team_id, _ in teams if actor.is_admin or team_id in actor.team_ids]
            team_id = next(fields).selectbox(
                t("segments.share_team"), [None, *my_teams],
                format_func=lambda v: "—" if v is None else team_names.get(v, str(v)), key="segments_team",
            )
            buttons = st.columns(2)
            save_new = buttons[0].form_submit_button(t("segments.save"), type="primary")
            save_changes = buttons[1].form_submit_button(t("segments.save_changes"), disabled=not loaded)
        if save_new or save_changes:
            form = SegmentInput(name=name, conditions=raw, description=description, sharing=sharing, team_id=team_id)
            labels = {"name": t("segments.name"), "description": t("segments.description"),
                      "sharing": t("segments.sharing"), "team_id": t("segments.share_team"),
                      "conditions": t("segments.conditions")}
            labels.update({f"conditions.{n}": t("segments.condition", number=n) for n in range(1, 21)})
            try:
                if save_changes and loaded:
                    segment_id = save_segment(db, actor, form, segment_id=loaded[0], expected_version=loaded[1])
                else:
                    segment_id = save_segment(db, actor, form)
            except DomainError as error:
                show_domain_error(error, labels=labels)
            else:
                STATE["segments_loaded"] = None
                STATE["segments_notice"] = t("segments.saved", name=plain(name.strip()))
                st.rerun()

        # --- bulk actions ---
        st.divider()
        st.subheader(t("segments.bulk_title"))
        if not actor.can_write:
            st.info(t("segments.bulk_read_only"))
        else:
            st.caption(t("segments.bulk_limit", max=number(MAX_BULK)))
            with st.form("segments_tasks_form", clear_on_submit=False):
                left, right = st.columns(2)
                title = left.text_input(t("segments.task_title") + " *", placeholder=t("segments.task_title_hint"),
                                        key="segments_task_title")
                due_on = right.date_input(t("segments.task_due"), value=dt.date.today() + dt.timedelta(days=3),
                                          key="segments_task_due", format=date_input_format())
                priority = left.selectbox(t("segments.task_priority"), [p.value for p in Priority], index=1,
                                          format_func=lambda v: t(f"segments.priority.{v}"),
                                          key="segments_task_priority")
                assignable = [owner_id for owner_id, _ in owners
                              if actor.is_admin or owner_id in actor.visible_owner_ids or owner_id == actor.user_id]
                assignee = right.selectbox(t("segments.task_assignee"), [None, *assignable],
                                           format_func=lambda v: t("segments.assign_owner") if v is None
                                           else owner_names.get(v, str(v)), key="segments_task_assignee")
                create_tasks = st.form_submit_button(t("segments.create_tasks"))
            if create_tasks:
                try:
                    task = BulkTaskInput(title=title, due_on=due_on, priority=priority, assignee_id=assignee)
                    created = create_segment_tasks(db, actor, raw, task)
                except DomainError as error:
                    show_domain_error(error, labels={"title": t("segments.task_title"),
                                                     "assignee_id": t("segments.task_assignee")})
                else:
                    st.success(t("segments.tasks_created", count=created))
            if actor.role in (Role.ADMIN, Role.MANAGER):
                with read_session() as session:
                    campaigns = campaign_choices(session)
                if campaigns:
                    campaign_names = dict(campaigns)
                    with st.form("segments_campaign_form", clear_on_submit=False):
                        campaign_id = st.selectbox(t("segments.campaign"), list(campaign_names),
                                                   format_func=lambda v: campaign_names[v], key="segments_campaign")
                        enroll = st.form_submit_button(t("segments.enroll"))
                    if enroll:
                        try:
                            result = enroll_segment_in_campaign(
                                db, actor, raw, campaign_id, segment_id=loaded[0] if loaded else None
                            )
                        except DomainError as error:
                            show_domain_error(error)
                        else:
                            st.success(t("segments.enrolled", count=result.enrolled, already=result.already,
                                         campaign=plain(campaign_names[campaign_id])))

# --- saved segments ---------------------------------------------------------------------------------
if section == "saved":
    with read_session() as session:
        saved = list_saved_segments(session)
    if not saved:
        st.info(t("segments.none_saved"))
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        t("segments.name"): row.name,
                        t("segments.description"): row.description,
                        t("field.owner"): row.owner_name,
                        t("segments.sharing"): t(f"segments.sharing_{row.sharing}")
                        + (f" · {row.team_name}" if row.team_name else ""),
                        t("segments.last_count"): row.last_count,
                        t("segments.counted_at"): row.last_counted_at,
                    }
                    for row in saved
                ]
            ),
            hide_index=True,
            width="stretch",
            column_config={t("segments.counted_at"): when_column()},
            placeholder=EMPTY,
        )
        by_id = {row.id: row for row in saved}
        chosen_id = st.selectbox(t("segments.choose"), list(by_id), format_func=lambda v: by_id[v].name,
                                 key="segments_chosen")
        chosen = by_id[chosen_id]
        actions = st.columns(3)
        if actions[0].button(t("segments.open"), key="segments_open", type="primary"):
            # applied at the top of the next run, before the builder's widgets exist
            STATE["segments_pending_open"] = chosen
            st.rerun()
        if actions[1].button(t("segments.record_size"), key="segments_record"):
            try:
                size = record_snapshot(db, actor, chosen.id)
            except DomainError as error:
                show_domain_error(error)
            else:
                STATE["segments_notice"] = t("segments.recorded", name=plain(chosen.name), count=number(size))
                st.rerun()
        may_delete = actor.is_admin or chosen.owner_id == actor.user_id
        confirm = actions[2].checkbox(
            t("segments.confirm_delete"), key="segments_confirm_delete", disabled=not may_delete
        )
        if actions[2].button(t("segments.delete"), key="segments_delete", disabled=not (may_delete and confirm)):
            try:
                delete_segment(db, actor, chosen.id)
            except DomainError as error:
                show_domain_error(error)
            else:
                if STATE["segments_loaded"] and STATE["segments_loaded"][0] == chosen.id:
                    STATE["segments_loaded"] = None
                STATE["segments_notice"] = t("segments.deleted", name=plain(chosen.name))
                st.rerun()
        with read_session() as session:
            history = segment_size_history(session, chosen.id)
        st.caption(t("segments.size_over_time_hint"))
        if history:
            figure = go.Figure(
                go.Scatter(x=[point.taken_at for point in history], y=[point.member_count for point in history],
                           mode="lines+markers", name=chart_text(chosen.name))
            )
            figure.update_layout(title=t("segments.size_over_time", name=chart_text(chosen.name)), height=320,
                                 margin={"l": 10, "r": 10, "t": 40, "b": 10}, yaxis_title=t("segments.customers"))
            st.plotly_chart(figure, key="segments_history_chart")

# --- lifecycle ---------------------------------------------------------------------------------
if section == "lifecycle":
    distribution = cached_distribution(DATABASE, actor.user_id, actor.tenant_id)
    total = sum(item.count for item in distribution) or 1
    columns = st.columns(len(distribution))
    for column, item in zip(columns, distribution, strict=True):
        column.metric(t(f"stage.{item.stage}"), number(item.count))
        column.caption(t("segments.share_of_customers", share=f"{item.count / total:.0%}"))
    bars = go.Figure(go.Bar(x=[t(f"stage.{item.stage}") for item in distribution],
                            y=[item.count for item in distribution], marker_color="#3b6ea8"))
    bars.update_layout(title=t("segments.distribution"), height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    st.plotly_chart(bars, key="segments_distribution_chart")

    st.subheader(t("segments.flow"))
    today = dt.date.today()
    period = st.date_input(t("segments.period"), value=(today - dt.timedelta(days=90), today), key="segments_period",
                           format=date_input_format())
    if isinstance(period, (tuple, list)) and len(period) == 2:
        with read_session() as session:
            links = lifecycle_flow(session, start=period[0], end=period[1])
        if not links:
            st.info(t("segments.no_transitions"))
        else:
            stages = ["new", "prospect", "intent", "customer", "churned"]
            colours = {"new": "108,142,191", "prospect": "154,165,177", "intent": "242,169,59",
                       "customer": "46,139,87", "churned": "192,57,43"}
            extra = sorted({link.to_stage for link in links} - set(stages))
            nodes = [*stages, *extra]
            outflow = {n: sum(link.count for link in links if (link.from_stage or "new") == n) for n in nodes}
            inflow = {n: sum(link.count for link in links if link.to_stage == n) for n in nodes}

            def stage_name(node: str) -> str:
                return t("segments.new_customer") if node == "new" else t(f"stage.{node}")

            # a Sankey must be acyclic: stages left as sources, again right as targets
            targets = [n for n in nodes if n != "new"]
            node_labels = [f"{stage_name(n)} ({outflow[n]:,})" for n in nodes]
            node_labels += [f"{stage_name(n)} ({inflow[n]:,})" for n in targets]
            node_colours = [f"rgb({colours.get(n, '120,120,120')})" for n in [*nodes, *targets]]
            target_node = {n: len(nodes) + i for i, n in enumerate(targets)}
            sankey = go.Figure(
                go.Sankey(
                    node={"label": node_labels, "pad": 18, "color": node_colours},
                    link={
                        "source": [nodes.index(link.from_stage or "new") for link in links],
                        "target": [target_node[link.to_stage] for link in links],
                        "value": [link.count for link in links],
                        "color": [f"rgba({colours.get(link.to_stage, '120,120,120')},0.35)" for link in links],
                    },
                )
            )
            sankey.update_layout(height=420, margin={"l": 10, "r": 10, "t": 10, "b": 10})
            st.plotly_chart(sankey, key="segments_sankey")
            st.caption(t("segments.flow_total", count=number(sum(link.count for link in links))))
    else:
        st.caption(t("segments.period_hint"))

# --- RFM ---------------------------------------------------------------------------------
if section == "rfm":
    st.caption(t("segments.rfm_explained"))
    summary = cached_rfm_summary(DATABASE, actor.user_id, actor.tenant_id)
    st.caption(t("segments.cached_hint"))
    buyers = sum(row.customers for row in summary) or 1
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("segments.rfm_segment"): t(f"rfm.{row.segment}"),
                    t("segments.rfm_rule"): t("segments.rfm_rule_text", r="/".join(str(v) for v in sorted(grid[1])),
                                              low=grid[2], high=grid[3]),
                    t("segments.customers"): row.customers,
                    t("segments.share"): row.customers / buyers * 100,
                    t("segments.revenue"): float(row.monetary),
                    t("segments.average_orders"): round(row.average_orders, 2),
                    t("segments.last_order_range"): (
                        f"{row.oldest_order_at:%Y-%m-%d} – {row.newest_order_at:%Y-%m-%d}"
                        if row.newest_order_at
                        else ""
                    ),
                }
                for row, grid in zip(summary, RFM_GRID, strict=True)
            ]
        ),
        hide_index=True,
        width="stretch",
        height=36 * (len(summary) + 1) + 3,  # every segment visible without scrolling
        column_config={
            t("segments.share"): st.column_config.NumberColumn(format="%.1f%%"),
            t("segments.revenue"): st.column_config.NumberColumn(format="%,.2f"),
        }, placeholder=EMPTY,
    )
    treemap = go.Figure(go.Treemap(labels=[t(f"rfm.{row.segment}") for row in summary],
                                   parents=["" for _ in summary], values=[row.customers for row in summary]))
    treemap.update_layout(height=360, margin={"l": 0, "r": 0, "t": 10, "b": 0})
    st.plotly_chart(treemap, key="segments_rfm_treemap")
    rfm_choice = st.selectbox(t("segments.rfm_segment"), [row.segment for row in summary],
                              format_func=lambda v: t(f"rfm.{v}"), key="segments_rfm_choice")
    if st.button(t("segments.rfm_open"), key="segments_rfm_open"):
        STATE["segments_pending_open"] = {"match": "all", "conditions": [
            {"field": "rfm_segment", "op": "in", "value": [rfm_choice]}]}
        STATE["segments_notice"] = t("segments.rfm_opened", segment=t(f"rfm.{rfm_choice}"))
        st.rerun()

def factor_text(factor: dict[str, Any]) -> str:
    """A model-wide factor: the feature (and category), and its weight in log-odds."""
    label = t(f"scoring.feature.{factor['feature']}")
    if factor.get("category") is not None:
        label += f" = {factor['category'] or '—'}"
    return plain(f"{label} ({factor['weight']:+.2f})")


# --- scoring ---------------------------------------------------------------------------------
if section == "scoring":
    from crm_core.queries.scores import model_versions

    st.caption(t("segments.scoring_explained"))
    with read_session() as session:
        versions = {name: model_versions(session, name) for name in SCORERS}
    for name, rows in versions.items():
        st.markdown(f"**{t(f'scoring.scorer.{name}')}**")
        if not rows:
            st.info(t("segments.not_trained"))
            continue
        latest = rows[0]
        metrics = latest.metrics
        auc = metrics.get("auc")  # None for a fallback model, else a number (stored JSON)
        cells = st.columns(4)
        cells[0].metric(t("segments.model_version"), f"v{latest.version}")
        cells[1].metric(t("segments.auc"), "—" if auc is None else f"{auc:.3f}")
        cells[2].metric(t("segments.examples"), number(metrics.get('examples', 0)))
        cells[3].metric(t("segments.positives"), number(metrics.get('positives', 0)))
        if isinstance(auc, int | float) and auc < 0.55:
            st.warning(t("segments.weak_model", auc=f"{auc:.3f}"))
        if latest.method == "fallback":
            st.warning(t("segments.fallback", positives=metrics.get("positives", 0),
                         negatives=metrics.get("negatives", 0), minimum=metrics.get("min_class_examples", 0)))
        top_factors = metrics.get("top_factors")  # a list of {feature, category, weight}; absent for a fallback
        if isinstance(top_factors, list) and top_factors:
            st.caption(t("segments.top_factors") + ": " + "; ".join(factor_text(f) for f in top_factors))
        st.dataframe(
            pd.DataFrame([{t("segments.model_version"): f"v{row.version}", t("segments.trained_at"): row.trained_at,
                           t("segments.method"): t(f"segments.method_{row.method}"),
                           t("segments.auc"): row.metrics.get("auc"),
                           t("segments.examples"): row.metrics.get("examples")}
                          for row in rows]),
            hide_index=True, width="stretch", placeholder=EMPTY,
        )
