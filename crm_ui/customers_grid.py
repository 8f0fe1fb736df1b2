"""The customers grid, rendered: search, filters, server-side keyset pages, saved views, bulk
actions, export and the create form. ``pages/customers.py`` only calls :func:`page`.

Records open by name: a click on a name (desktop table) or a card's name (phone) opens the
Customer 360 in the same tab. Coming back (its "Back to customers" link, the menu, the
browser's back button) finds the grid as it was left: the filter, sort, page size and page
(keyset cursors) are kept in **session state** — widget values are copied to a key of their
own each run, because Streamlit forgets a widget's value once another page ran — and the
scroll position is kept by the browser tab (sessionStorage) and restored after a visit to a
record. Under 640 px the table gives way to cards (no horizontal scroll) and the filters sit
in an expander, as on every width.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd
import streamlit as st

from crm_core.access import Actor
from crm_core.errors import DomainError, DuplicateCustomer
from crm_core.models import CustomerKind, LifecycleStage
from crm_core.queries.customer_export import EXPORT_LIMIT, column_label, export_customers
from crm_core.queries.customers import (
    DEFAULT_COLUMNS,
    DEFAULT_COUNT_CAP,
    GRID_COLUMNS,
    SORTABLE_COLUMNS,
    CustomerFilters,
    CustomerPage,
    CustomerRow,
    distinct_values,
    list_customers,
)
from crm_core.queries.saved_views import list_views
from crm_core.queries.scores import latest_scores
from crm_core.queries.users import assignable_owners, list_teams
from crm_core.rules.contact_details import tel_uri
from crm_core.rules.duplicates import BLOCK, may_override
from crm_core.services.access_requests import request_access
from crm_core.services.customers import (
    BULK_LIMIT,
    CustomerInput,
    bulk_add_tag,
    bulk_change_stage,
    bulk_reassign_owner,
    create_customer,
    custom_field_definitions,
)
from crm_core.services.saved_views import SavedViewInput, delete_view, save_view
from crm_core.shared import bump, generation
from crm_ui.context import choice_key, current_actor, get_db, lang, read_session, show_domain_error, t
from crm_ui.formatting import EMPTY, number, when
from crm_ui.layout import switch_css
from crm_ui.page_scripts import SCROLL_SCRIPT
from crm_ui.regions import province_filter, region_selects
from crm_ui.text import plain, plain_join, plain_line

PROFILE_PAGE = "pages/customer_profile.py"
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PER_PAGE_CHOICES = [25, 50, 100]
ALL, UNOWNED = "__all__", "__unowned__"
STATE = st.session_state
FILTER_KEYS = [
    "customers_search", "customers_owner", "customers_stage", "customers_team", "customers_industry",
    "customers_region", "customers_province", "customers_tag", "customers_created", "customers_contacted",
    "customers_never_contacted",
]
# widget values kept across a visit to another page (choice boxes are keyed per language: "key@lang")
KEPT_KEYS = [*FILTER_KEYS, "customers_per_page", "customers_descending", "customers_sort"]
KEPT_STATE = "customers_kept_widgets"
RESTORE_SCROLL_STATE = "customers_restore_scroll"
DATE_COLUMNS = {"last_contacted_at", "created_at", "updated_at"}

# the table and the cards switch with crm_ui.layout's stylesheet; a card's name is a link, in bold
@dataclass(frozen=True)
class Grid:
    """What one run of the grid knows: the actor, the look-ups, the labels."""

    actor: Actor
    owners: list[tuple[int, str]]
    owner_names: dict[int, str]
    team_names: dict[int, str]
    definitions: list[Any]
    views: list[Any]
    custom_labels: dict[str, str]

    @property
    def all_columns(self) -> list[str]:
        return GRID_COLUMNS + list(self.custom_labels)

    def label_of(self, column_key: str) -> str:
        return column_label(column_key, lang(), self.custom_labels)


def filter_choices(tenant_id: int, user_id: int, column: str) -> list[str]:
    """Industries/regions in use, cached per user for ten minutes (a GROUP BY over the tenant).

    A customer created here moves the tenant's generation (``crm_core.shared``, in Redis under
    ``make cluster``): every replica then reads the choices afresh.
    """
    return _filter_choices(tenant_id, user_id, column, generation(choices_generation(tenant_id)))


def choices_generation(tenant_id: int) -> str:
    """The shared generation the filter choices of ``tenant_id`` are keyed by."""
    return f"filter_choices.{tenant_id}"


@st.cache_data(ttl=600, show_spinner=False)
def _filter_choices(tenant_id: int, user_id: int, column: str, generation: int) -> list[str]:
    with read_session() as session:
        return distinct_values(session, column)


def page() -> None:
    """The whole screen, top to bottom."""
    actor = current_actor()
    restore_kept_widgets()
    STATE.setdefault("customers_form_generation", 0)
    STATE.setdefault("customers_cursors", [])
    with read_session() as session:
        owners = assignable_owners(session)
        teams = list_teams(session)
        definitions = custom_field_definitions(session)
        views = list_views(session, user_id=actor.user_id)
    custom_labels = {f"custom.{d.name}": d.label_zh if lang() == "zh-CN" else d.label_en for d in definitions}
    grid = Grid(actor, owners, dict(owners), {team_id: name for team_id, name, _, _ in teams}, definitions, views,
                custom_labels)

    st.html(switch_css("customers"))  # its cards' names bold, as every card list's
    st.title(t("customers.title"))
    if notice := STATE.pop("customers_notice", None):
        st.success(notice)
    view_bar(grid)
    filters, columns, sort, descending, per_page = filter_panel(grid)
    keep_widgets()

    # a new filter, sort or page size starts again at page 1
    signature = repr((filters, sort, descending, per_page))
    if STATE.get("customers_signature") != signature:
        STATE["customers_signature"] = signature
        STATE["customers_cursors"] = []
        STATE["customers_exact_count"] = False
    cursors: list[Any] = STATE["customers_cursors"]
    page_number = len(cursors) + 1
    with read_session() as session:
        found = list_customers(
            session, filters=filters, per_page=per_page, sort=sort, descending=descending,
            after=cursors[-1] if cursors else None, page=page_number,
            count_cap=None if STATE.get("customers_exact_count") else DEFAULT_COUNT_CAP,
        )
    count_line(found)
    selected_ids: list[int] = []
    if found.items:
        selected_ids = table(grid, found, columns, key=f"customers_grid_{page_number}_{abs(hash(signature)) % 10**8}")
        cards(found)
    else:
        st.info(t("customers.empty"))
    pager(found, cursors, page_number)
    # our own script, no data in it
    st.html(SCROLL_SCRIPT.replace("RESTORE", "true" if STATE.pop(RESTORE_SCROLL_STATE, False) else "false"),
            unsafe_allow_javascript=True)
    if selected_ids:
        selection(grid, selected_ids)
    tools(grid, filters, columns, sort, descending)
    create_form(grid)


# --- kept state ------------------------------------------------------------------------------


def _kept_key(key: str) -> bool:
    return any(key == name or key.startswith(name + "@") for name in KEPT_KEYS)


def restore_kept_widgets() -> None:
    """Give the filter widgets back the values they had when the user left the page."""
    for key, value in STATE.get(KEPT_STATE, {}).items():
        if key not in STATE:
            STATE[key] = value


def keep_widgets() -> None:
    """Copy this run's filter widget values where a visit to another page does not erase them."""
    STATE[KEPT_STATE] = {key: STATE[key] for key in list(STATE.keys()) if isinstance(key, str) and _kept_key(key)}


def open_customer(customer_id: int) -> None:
    """Open the Customer 360 in this tab; the grid restores its scroll position on the way back."""
    STATE[RESTORE_SCROLL_STATE] = True
    st.switch_page(PROFILE_PAGE, query_params={"customer_id": str(customer_id)})


# --- saved views -----------------------------------------------------------------------------


def view_bar(grid: Grid) -> None:
    views = grid.views

    def apply_view() -> None:
        """Load the chosen view into the widgets (a callback: runs before they are drawn)."""
        chosen = next((v for v in views if v.id == STATE.get(choice_key("customers_view"))), None)
        if chosen is None:
            return
        saved = CustomerFilters.from_dict(chosen.filters)
        for key in FILTER_KEYS + [f"customers_custom_{d.name}" for d in grid.definitions]:
            STATE.pop(key, None)
            STATE.pop(choice_key(key), None)
        STATE["customers_search"] = saved.search
        STATE[choice_key("customers_owner")] = (
            UNOWNED if saved.unowned else (saved.owner_id if saved.owner_id in grid.owner_names else ALL)
        )
        STATE[choice_key("customers_stage")] = saved.lifecycle_stage or ALL
        STATE[choice_key("customers_team")] = saved.team_id if saved.team_id in grid.team_names else ALL
        STATE[choice_key("customers_industry")] = saved.industry or ""
        STATE[choice_key("customers_region")] = saved.region or ""
        STATE["customers_province"] = saved.province_code or ""
        STATE["customers_tag"] = saved.tag or ""
        STATE["customers_never_contacted"] = saved.never_contacted
        if saved.created_from or saved.created_to:
            STATE["customers_created"] = tuple(d for d in (saved.created_from, saved.created_to) if d)
        if saved.last_contacted_from or saved.last_contacted_to:
            STATE["customers_contacted"] = tuple(
                d for d in (saved.last_contacted_from, saved.last_contacted_to) if d)
        for definition in grid.definitions:
            if definition.name in saved.custom:
                STATE[f"customers_custom_{definition.name}"] = _widget_value(definition, saved.custom[definition.name])
        STATE["customers_columns_value"] = [c for c in chosen.columns if c in grid.all_columns] or DEFAULT_COLUMNS
        STATE["customers_columns_generation"] = STATE.get("customers_columns_generation", 0) + 1
        STATE[choice_key("customers_sort")] = chosen.sort if chosen.sort in SORTABLE_COLUMNS else "updated_at"
        STATE["customers_descending"] = chosen.descending
        STATE["customers_notice"] = t("grid.view_applied", name=plain(chosen.name))

    def view_name(value: Any) -> str:
        if value is None:
            return t("grid.no_view")
        return next((f"{v.name}" + ("" if v.mine else f" · {v.owner_name}") + (" 👥" if v.shared_with_team else "")
                     for v in views if v.id == value), str(value))

    st.selectbox(t("grid.saved_view"), [None, *[v.id for v in views]], format_func=view_name,
                 key=choice_key("customers_view"), on_change=apply_view)


def _widget_value(definition: Any, stored: Any) -> Any:
    if definition.field_type == "choice":
        return str(stored).removeprefix("=")
    if definition.field_type == "bool":
        return "yes" if stored else "no"
    if definition.field_type in ("number", "date") and isinstance(stored, list):
        return ", ".join("" if v is None else str(v) for v in stored)
    return stored


# --- filters ---------------------------------------------------------------------------------


def _date_range(value: Any) -> tuple[dt.date | None, dt.date | None]:
    chosen = list(value) if isinstance(value, (list, tuple)) else ([value] if value else [])
    return (chosen[0] if chosen else None, chosen[1] if len(chosen) > 1 else (chosen[0] if chosen else None))


def filter_panel(grid: Grid) -> tuple[CustomerFilters, list[str], str, bool, int]:
    """The search box, then every filter, the columns and the sort in one expander (the first phone screen
    shows the search and the rows, not the filters)."""
    actor = grid.actor
    search = st.text_input(t("customers.search"), key="customers_search", placeholder=t("customers.search_hint"))
    active = sum(1 for key in FILTER_KEYS[1:] if _is_active(key))
    title = t("records.filters") + (" · " + t("records.filters_active", count=active) if active else "")
    with st.expander(title):
        first = st.columns(3)
        owner_choice = first[0].selectbox(
            t("field.owner"), [ALL, UNOWNED, *[owner_id for owner_id, _ in grid.owners]],
            format_func=lambda value: {ALL: t("filter.all"), UNOWNED: t("filter.unowned")}.get(value)
            or grid.owner_names.get(value, str(value)),
            key=choice_key("customers_owner"),
        )
        stage_choice = first[1].selectbox(
            t("field.lifecycle_stage"), [ALL, *[stage.value for stage in LifecycleStage]],
            format_func=lambda value: t("filter.all") if value == ALL else t(f"stage.{value}"),
            key=choice_key("customers_stage"),
        )
        team_choice = first[2].selectbox(
            t("grid.team"), [ALL, *grid.team_names], key=choice_key("customers_team"),
            format_func=lambda value: t("filter.all") if value == ALL else grid.team_names.get(value, str(value)),
        )
        more = st.columns(4)
        industry = more[0].selectbox(
            t("field.industry"), ["", *filter_choices(actor.tenant_id, actor.user_id, "industry")],
            key=choice_key("customers_industry"), format_func=lambda value: value or t("filter.all"),
        )
        region = more[1].selectbox(
            t("field.region"), ["", *filter_choices(actor.tenant_id, actor.user_id, "region")],
            key=choice_key("customers_region"), format_func=lambda value: value or t("filter.all"),
        )
        province_code = province_filter(more[2], "customers_province")
        tag = more[3].text_input(t("grid.tag"), key="customers_tag", placeholder=t("grid.tag_hint"))
        dates = st.columns([2, 2, 1])
        STATE.setdefault("customers_created", ())
        STATE.setdefault("customers_contacted", ())
        created = dates[0].date_input(t("grid.created_between"), key="customers_created")
        contacted = dates[1].date_input(t("grid.contacted_between"), key="customers_contacted")
        never_contacted = dates[2].checkbox(t("grid.never_contacted"), key="customers_never_contacted")
        custom_filter = custom_filters(grid)
        st.divider()
        columns, sort, descending, per_page = layout_controls(grid)
    created_from, created_to = _date_range(created)
    contacted_from, contacted_to = _date_range(contacted)
    filters = CustomerFilters(
        search=search, owner_id=owner_choice if isinstance(owner_choice, int) else None,
        unowned=owner_choice == UNOWNED, team_id=team_choice if isinstance(team_choice, int) else None,
        lifecycle_stage=None if stage_choice == ALL else stage_choice, industry=industry or None,
        region=region or None, province_code=province_code, tag=tag.strip() or None, created_from=created_from,
        created_to=created_to, last_contacted_from=contacted_from, last_contacted_to=contacted_to,
        never_contacted=never_contacted, custom=custom_filter,
    )
    return filters, columns, sort, descending, per_page


def _is_active(key: str) -> bool:
    value = STATE.get(choice_key(key), STATE.get(key))
    return value not in (None, "", ALL, (), [], False)


def custom_filters(grid: Grid) -> dict[str, Any]:
    custom_filter: dict[str, Any] = {}
    if not grid.definitions:
        return custom_filter
    st.caption(t("grid.custom_filters"))
    custom_columns = st.columns(min(3, len(grid.definitions)))
    for index, definition in enumerate(grid.definitions):
        where = custom_columns[index % len(custom_columns)]
        label = plain_line(grid.custom_labels[f"custom.{definition.name}"])
        key = f"customers_custom_{definition.name}"
        if definition.field_type == "choice":
            chosen = where.selectbox(label, ["", *definition.choices], key=key,
                                     format_func=lambda value: value or t("filter.all"))
            if chosen:
                custom_filter[definition.name] = "=" + chosen
        elif definition.field_type == "bool":
            chosen = where.selectbox(label, ["", "yes", "no"], key=key,
                                     format_func=lambda value: {"": t("filter.all"), "yes": t("grid.yes"),
                                                                "no": t("grid.no")}[value])
            if chosen:
                custom_filter[definition.name] = chosen == "yes"
        elif definition.field_type in ("number", "date"):
            raw = where.text_input(label, key=key, placeholder=t("grid.range_hint_number")
                                   if definition.field_type == "number" else t("grid.range_hint_date"))
            if raw.strip():
                bounds = [part.strip() or None for part in raw.replace("，", ",").split(",")][:2]
                custom_filter[definition.name] = bounds + [None] * (2 - len(bounds))
        else:
            raw = where.text_input(label, key=key)
            if raw.strip():
                custom_filter[definition.name] = raw.strip()
    return custom_filter


def layout_controls(grid: Grid) -> tuple[list[str], str, bool, int]:
    """Columns (desktop table), sort, order and page size."""
    STATE.setdefault("customers_columns_value", DEFAULT_COLUMNS)
    columns = st.multiselect(
        t("grid.columns"), grid.all_columns, format_func=grid.label_of,
        default=[c for c in STATE["customers_columns_value"] if c in grid.all_columns],
        # per language (not carried over: the default below holds the choice), so the chips relabel
        key=f"customers_columns_{STATE.get('customers_columns_generation', 0)}_{lang()}",
    )
    STATE["customers_columns_value"] = columns
    # the name identifies the row and opens it: always first
    columns = ["name", *[c for c in (columns or DEFAULT_COLUMNS) if c != "name"]]
    row = st.columns([2, 1, 1])
    sort = row[0].selectbox(t("grid.sort"), list(SORTABLE_COLUMNS), key=choice_key("customers_sort"),
                            format_func=grid.label_of)
    STATE.setdefault("customers_descending", True)
    descending = row[1].toggle(t("grid.descending"), key="customers_descending")
    per_page = row[2].selectbox(t("customers.per_page"), PER_PAGE_CHOICES, index=1, key="customers_per_page")
    return columns, sort, descending, int(per_page)


# --- rows ------------------------------------------------------------------------------------


def count_line(found: CustomerPage) -> None:
    line = st.columns([4, 1])
    total_text = number(found.total or 0) + ("+" if found.total_capped else "")
    line[0].caption(t("customers.count", total=total_text))
    if found.total_capped and line[1].button(t("grid.count_exactly"), key="customers_count_exactly"):
        STATE["customers_exact_count"] = True
        st.rerun()


def cell_values(grid: Grid, columns: list[str]) -> Callable[[CustomerRow], dict[str, Any]]:
    """A row's cells as the user reads them; labels are translated once per run, not per cell."""
    stages = {stage.value: t(f"stage.{stage.value}") for stage in LifecycleStage}
    kinds = {kind.value: t(f"kind.{kind.value}") for kind in CustomerKind}
    labels = {column: grid.label_of(column) for column in columns}

    def cells(row: CustomerRow) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for column in columns:
            value = row.value(column)
            if column == "lifecycle_stage":
                value = stages.get(value, value)
            elif column == "kind":
                value = kinds.get(value, value)
            elif column == "tags":
                value = ", ".join(value) or None
            elif column in DATE_COLUMNS:
                value = when(value)  # written as every page writes a moment; '—' when empty
            if value is None or value == "":
                value = EMPTY
            values[labels[column]] = value
        return values

    return cells


def table(grid: Grid, found: CustomerPage, columns: list[str], *, key: str) -> list[int]:
    """The desktop table: a click on a name opens the record; ticked rows feed the bulk actions."""
    frame = pd.DataFrame([cell_values(grid, columns)(row) for row in found.items])
    name_label = grid.label_of("name")
    column_config: dict[str, Any] = {name_label: st.column_config.TextColumn(name_label + " ↗")}
    with read_session() as session:  # scores exist once `python -m crm_core score apply` has run
        churn = latest_scores(session, "churn_risk", [row.id for row in found.items])
    if churn:
        frame[t("scoring.scorer.churn_risk")] = [
            churn[row.id].percent if row.id in churn else None for row in found.items
        ]
        column_config[t("scoring.scorer.churn_risk")] = st.column_config.ProgressColumn(
            format="%d%%", min_value=0, max_value=100
        )
    with st.container(key="customers_table"):
        st.caption(t("records.open_by_name"))
        event = st.dataframe(
            frame, hide_index=True, width="stretch", column_config=column_config, key=key,
            on_select="rerun", selection_mode=["multi-row", "single-cell"], placeholder=EMPTY,
        )
    for row_index, column_name in event.selection.get("cells", []):
        if column_name == name_label and 0 <= row_index < len(found.items):
            open_customer(found.items[row_index].id)
    return [found.items[index].id for index in event.selection.rows if index < len(found.items)]


def cards(found: CustomerPage) -> None:
    """The phone's rows: one card per customer, its name a link to the record, its phone a tap to call."""
    stages = {stage.value: t(f"stage.{stage.value}") for stage in LifecycleStage}
    with st.container(key="customers_cards"):
        for row in found.items:
            with st.container(border=True):
                st.page_link(PROFILE_PAGE, label=plain_line(row.name), query_params={"customer_id": str(row.id)})
                facts = [stages.get(row.lifecycle_stage, row.lifecycle_stage), row.owner_name or t("filter.unowned"),
                         t("records.last_contact_short", when=when(row.last_contacted_at))]
                line = plain_join(facts)
                if (tel := tel_uri(row.phone)) is not None:
                    line += f" · [📞 {plain_line(row.phone)}]({tel})"
                st.markdown(line)


def pager(found: CustomerPage, cursors: list[Any], page_number: int) -> None:
    row = st.columns([1, 2, 1])
    if row[0].button(t("pager.previous"), disabled=page_number <= 1, key="customers_previous"):
        STATE["customers_cursors"] = cursors[:-1]
        st.rerun()
    page_count = found.page_count if found.total is not None and not found.total_capped else None
    position = (t("pager.position", page=page_number, pages=page_count) if page_count
                else t("grid.page", page=page_number))
    row[1].markdown(f"<div style='text-align:center'>{position}</div>", unsafe_allow_html=True)
    if row[2].button(t("pager.next"), disabled=not found.has_next, key="customers_next"):
        # offset paging (nullable sort column) has no cursor: the list then only counts pages
        STATE["customers_cursors"] = [*cursors, found.next_cursor]
        st.rerun()


# --- selection: open, bulk actions -----------------------------------------------------------


def selection(grid: Grid, selected_ids: list[int]) -> None:
    actor = grid.actor
    st.caption(t("grid.selected", count=len(selected_ids)))
    if len(selected_ids) == 1 and st.button(t("grid.open_selected"), key="customers_open_selected"):
        open_customer(selected_ids[0])
    if not actor.can_write:
        return
    with st.container(border=True):
        st.markdown(f"**{t('bulk.title')}**")
        bulk = st.columns([2, 3, 2])
        action = bulk[0].selectbox(
            t("bulk.action"), ["owner", "tag", "stage"], key=choice_key("customers_bulk_action"),
            format_func=lambda value: {"owner": t("bulk.action_owner"), "tag": t("bulk.action_tag"),
                                       "stage": t("bulk.action_stage")}[value],
        )
        if action == "owner":
            allowed = [o for o, _ in grid.owners if actor.sees_whole_tenant or o in actor.visible_owner_ids]
            bulk_value: Any = bulk[1].selectbox(
                t("field.owner"), [*allowed, None], key=choice_key("customers_bulk_owner"),
                format_func=lambda value: t("filter.unowned") if value is None
                else grid.owner_names.get(value, str(value)),
            )
        elif action == "tag":
            bulk_value = bulk[1].text_input(t("grid.tag"), key="customers_bulk_tag")
        else:
            bulk_value = bulk[1].selectbox(
                t("field.lifecycle_stage"), [s.value for s in LifecycleStage], key=choice_key("customers_bulk_stage"),
                format_func=lambda value: t(f"stage.{value}"),
            )
        if bulk[2].button(t("bulk.apply", count=len(selected_ids)), key="customers_bulk_apply",
                          disabled=len(selected_ids) > BULK_LIMIT):
            if action == "tag" and not str(bulk_value).strip():
                st.error(t("grid.tag") + ": " + t("validation.required"))
            else:
                STATE["customers_bulk_pending"] = (action, bulk_value, list(selected_ids))
        if STATE.get("customers_bulk_pending"):
            confirm_bulk(grid)


def confirm_bulk(grid: Grid) -> None:
    pending_action, pending_value, pending_ids = STATE["customers_bulk_pending"]
    shown = {
        "owner": t("filter.unowned") if pending_value is None else grid.owner_names.get(pending_value, ""),
        "tag": str(pending_value), "stage": t(f"stage.{pending_value}") if pending_action == "stage" else "",
    }[pending_action]
    question = {"owner": "bulk.confirm_owner", "tag": "bulk.confirm_tag", "stage": "bulk.confirm_stage"}
    st.warning(t(question[pending_action], count=len(pending_ids), value=plain(shown)))
    confirm = st.columns([1, 1, 4])
    if confirm[0].button(t("bulk.confirm"), type="primary", key="customers_bulk_confirm"):
        STATE.pop("customers_bulk_pending", None)
        try:
            if pending_action == "owner":
                result = bulk_reassign_owner(get_db(), grid.actor, pending_ids, pending_value)
            elif pending_action == "tag":
                result = bulk_add_tag(get_db(), grid.actor, pending_ids, str(pending_value))
            else:
                result = bulk_change_stage(get_db(), grid.actor, pending_ids, str(pending_value))
        except DomainError as error:
            show_domain_error(error, labels={"owner_id": t("field.owner"), "tags": t("grid.tag"),
                                             "selection": t("grid.selection")})
        else:
            STATE["customers_notice"] = t("bulk.done", changed=result.changed, unchanged=result.unchanged)
            st.rerun()
    if confirm[1].button(t("bulk.cancel"), key="customers_bulk_cancel"):
        STATE.pop("customers_bulk_pending", None)
        st.rerun()


# --- export and saved views ------------------------------------------------------------------


def tools(grid: Grid, filters: CustomerFilters, columns: list[str], sort: str, descending: bool) -> None:
    actor, db, export_lang = grid.actor, get_db(), lang()
    row = st.columns([1, 1, 2])

    def customer_file(file_format: str) -> Callable[[], bytes]:
        """The export in ``file_format``: built only when clicked, in chunks, with the grid's filter, sort and scope."""
        return lambda: export_customers(db, actor, filters=filters, columns=columns, file_format=file_format,
                                        lang=export_lang, sort=sort, descending=descending)

    for where, file_format, label, mime in (
        (row[0], "csv", t("grid.export_csv"), "text/csv"),
        (row[1], "xlsx", t("grid.export_xlsx"), XLSX_MIME),
    ):
        where.download_button(
            label, data=customer_file(file_format), file_name=f"customers-{dt.date.today():%Y%m%d}.{file_format}",
            mime=mime, key=f"customers_export_{file_format}", on_click="ignore",
            help=t("grid.export_help", limit=number(EXPORT_LIMIT)),
        )
    if actor.can_write:
        with row[2].popover(t("grid.save_view")):
            save_view_form(grid, filters, columns, sort, descending)


def save_view_form(grid: Grid, filters: CustomerFilters, columns: list[str], sort: str, descending: bool) -> None:
    db, actor = get_db(), grid.actor
    with st.form("customers_save_view", clear_on_submit=False):
        view_name = st.text_input(t("grid.view_name"), key="customers_view_name", max_chars=120)
        share = st.checkbox(t("grid.share_with_team"), key="customers_view_share")
        saved = st.form_submit_button(t("grid.save_view"))
    if saved:
        try:
            save_view(db, actor, SavedViewInput(view_name, filters.as_dict(), columns, sort, descending, share))
        except DomainError as error:
            show_domain_error(error, labels={"name": t("grid.view_name"),
                                             "shared_with_team": t("grid.share_with_team")})
        else:
            STATE["customers_notice"] = t("grid.view_saved", name=plain(view_name.strip()))
            st.rerun()
    own_views = [v for v in grid.views if v.mine]
    if own_views:
        doomed = st.selectbox(t("grid.delete_view"), [v.id for v in own_views], key="customers_view_delete",
                              format_func=lambda value: next(v.name for v in own_views if v.id == value))
        if st.button(t("grid.delete_view_button"), key="customers_view_delete_button"):
            try:
                delete_view(db, actor, doomed)
            except DomainError as error:
                show_domain_error(error)
            else:
                if STATE.get(choice_key("customers_view")) == doomed:
                    STATE.pop(choice_key("customers_view"), None)
                st.rerun()


# --- create form -----------------------------------------------------------------------------


def create_form(grid: Grid) -> None:
    """A new customer, with the duplicate check; the typed values stay when something is refused."""
    actor, owners, owner_names = grid.actor, grid.owners, grid.owner_names
    st.divider()
    st.subheader(t("customers.new"))
    if not actor.can_write:
        st.info(t("access.read_only"))
        return
    generation = STATE["customers_form_generation"]
    if owners and not actor.sees_whole_tenant:
        owner_options: list[int | None] = [
            owner_id for owner_id, _ in owners if owner_id == actor.user_id or owner_id in actor.visible_owner_ids
        ]
    else:
        owner_options = [owner_id for owner_id, _ in owners]
    owner_options = [actor.user_id, *[o for o in owner_options if o != actor.user_id], None]
    field_labels = {
        "name": t("field.name"), "kind": t("field.kind"), "email": t("field.email"), "phone": t("field.phone"),
        "owner_id": t("field.owner"), "lifecycle_stage": t("field.lifecycle_stage"), "industry": t("field.industry"),
        "region": t("field.region"), "source": t("field.source"), "tags": t("field.tags"),
        "credit_code": t("field.credit_code"), "province_code": t("field.province_code"),
        "city_code": t("field.city_code"), "district_code": t("field.district_code"), **grid.custom_labels,
    }
    if created := STATE.pop("customers_created_notice", None):
        name_text, created_id = created
        st.success(t("customers.created", name=plain(name_text)))
        st.page_link(PROFILE_PAGE, label=t("grid.open_created"), icon="➡️",
                     query_params={"customer_id": str(created_id)})
    pending_duplicate = STATE.get("customers_duplicate_pending")
    if pending_duplicate:
        show_domain_error(pending_duplicate)
        if pending_duplicate.existing_id:
            st.page_link(PROFILE_PAGE, label=t("grid.open_existing", name=plain_line(pending_duplicate.existing_name)),
                         icon="🔗", query_params={"customer_id": str(pending_duplicate.existing_id)})
        blocked = pending_duplicate.action == BLOCK
        st.caption(t("customers.duplicate_blocked_hint" if blocked else "customers.duplicate_hint"))
        request_access_form(actor, pending_duplicate)

    # outside the form: choosing a province refreshes the cities before the form is sent
    province_code, city_code, district_code = region_selects(f"customers_region_{generation}")
    with st.form(f"customers_create_{generation}", clear_on_submit=False):
        left, right = st.columns(2)
        name = left.text_input(field_labels["name"] + " *", max_chars=200)
        kind = right.selectbox(field_labels["kind"], [kind.value for kind in CustomerKind],
                               format_func=lambda v: t(f"kind.{v}"))
        email = left.text_input(field_labels["email"], placeholder="name@example.com")
        phone = right.text_input(field_labels["phone"], placeholder="+86 138 0013 8000")
        owner_id = left.selectbox(
            field_labels["owner_id"], owner_options,
            format_func=lambda value: t("filter.unowned") if value is None else owner_names.get(value, str(value)),
        )
        stage = right.selectbox(field_labels["lifecycle_stage"], [s.value for s in LifecycleStage],
                                format_func=lambda v: t(f"stage.{v}"))
        industry_input = left.text_input(field_labels["industry"], max_chars=80)
        region_input = right.text_input(field_labels["region"], max_chars=80)
        source = left.text_input(field_labels["source"], max_chars=80)
        tags = right.text_input(field_labels["tags"], placeholder=t("customers.tags_hint"))
        credit_code = left.text_input(field_labels["credit_code"], max_chars=40, placeholder="91110108551385082Q")
        custom_values: dict[str, Any] = {}
        for definition in grid.definitions:
            label = plain_line(field_labels[f"custom.{definition.name}"]) + (" *" if definition.required else "")
            if definition.field_type == "choice":
                custom_values[definition.name] = st.selectbox(label, ["", *definition.choices])
            elif definition.field_type == "bool":
                custom_values[definition.name] = st.checkbox(label)
            elif definition.field_type == "date":
                custom_values[definition.name] = st.date_input(label, value=None)
            else:
                custom_values[definition.name] = st.text_input(label)
        confirm_duplicate = False
        if pending_duplicate and may_override(actor.role, pending_duplicate.action):
            confirm_label = "customers.create_blocked_anyway" if pending_duplicate.action == BLOCK else \
                "customers.create_anyway"
            confirm_duplicate = st.checkbox(t(confirm_label), key=f"customers_confirm_{generation}")
        submitted = st.form_submit_button(t("customers.create"), type="primary")

    if submitted:
        form = CustomerInput(
            name=name, kind=kind, email=email, phone=phone, owner_id=owner_id, lifecycle_stage=stage,
            industry=industry_input, region=region_input, source=source, tags=tags, custom_fields=custom_values,
            credit_code=credit_code, province_code=province_code, city_code=city_code, district_code=district_code,
        )
        try:
            new_id = create_customer(get_db(), actor, form, allow_duplicate=confirm_duplicate)
        except DuplicateCustomer as error:
            # keep the typed values (same form key) and ask for confirmation on the next run
            STATE["customers_duplicate_pending"] = error
            STATE["customers_duplicate_input"] = (name, email, phone)
            st.rerun()
        except DomainError as error:
            show_domain_error(error, labels=field_labels)
        else:
            STATE.pop("customers_duplicate_pending", None)
            STATE.pop("customers_duplicate_input", None)
            STATE["customers_form_generation"] = generation + 1
            STATE["customers_created_notice"] = (name.strip(), new_id)
            STATE["customers_cursors"] = []
            bump(choices_generation(actor.tenant_id))
            st.rerun()


def request_access_form(actor: Actor, duplicate: DuplicateCustomer) -> None:
    """Under a blocked creation (撞单): ask the owner (or their manager) for the customer, with a reason.

    The request sends what the user typed; the core finds the record again and reveals nothing of it."""
    if STATE.pop("customers_access_requested", False):
        st.success(t("access_request.sent"))
        return
    if actor.sees_whole_tenant or (duplicate.existing_id and duplicate.params.get("owner") == actor.full_name):
        return  # an admin takes or gives customers directly; one's own customer needs no request
    typed = STATE.get("customers_duplicate_input")
    if typed is None:
        return
    with st.form("customers_request_access", border=True):
        reason = st.text_input(t("access_request.reason"), max_chars=500, key="customers_access_reason")
        asked = st.form_submit_button(t("access_request.button"))
    if asked:
        name, email, phone = typed
        try:
            request_access(get_db(), actor, name=name, email=email, phone=phone, reason=reason)
        except DomainError as error:
            show_domain_error(error, labels={"reason": t("access_request.reason")})
        else:
            STATE["customers_access_requested"] = True
            st.rerun()

