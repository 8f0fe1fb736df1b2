"""Tasks: my follow-ups by due bucket; complete (optionally logging the activity), reschedule,
reassign; managers see their teams' tasks and the overdue count per rep."""

from __future__ import annotations

import datetime as dt
import hashlib

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.models import ActivityType, Priority, Role, utcnow
from crm_core.queries.tasks import TaskFilters, bucket_counts, list_tasks, task_overview
from crm_core.queries.users import assignable_owners
from crm_core.services.activities import ActivityInput
from crm_core.services.tasks import (
    TaskInput,
    complete_task,
    create_task,
    reassign_task,
    reschedule_task,
)
from crm_ui.context import current_actor, get_db, read_session, show_domain_error, t
from crm_ui.formatting import EMPTY, date_input_format, number, or_dash, when_column
from crm_ui.layout import switch_css
from crm_ui.page_scripts import SCROLL_TO_TASK_FORM
from crm_ui.pager import numbered_pager
from crm_ui.text import plain, plain_join, plain_line

PER_PAGE = 50
STATE = st.session_state
MINE, TEAM, EVERYONE = "mine", "team", "everyone"
VIEWS = ["overdue", "today", "upcoming", "open", "done"]
# under 640 px the table gives way to cards (no sideways scroll: crm_ui.layout), as on the customers
# grid; the counts stay one row of three
TASKS_CSS = switch_css("tasks") + """
<style>
.st-key-tasks_counts [data-testid="stMetric"] { min-width: 5.5rem; }
</style>
"""


def reset_page() -> None:
    STATE["tasks_page"] = 1


def flash(message: str) -> None:
    """Confirm a save on the next run with a toast: it shows where the user is, not at the top of the page."""
    STATE["tasks_flash"] = message


def pick(task_id: int) -> None:
    """A card's "Work on this task": the picker below shows it (a fresh picker, see below)."""
    STATE["tasks_selected_id"] = task_id
    STATE["tasks_scroll_to_act"] = True
    # set, not dropped: a picker dropped from the state kept showing its old task in the browser while
    # its value was the new one (the very mismatch the keyed picker below exists to prevent)
    for key in [key for key in STATE if isinstance(key, str) and key.startswith("tasks_picker_")]:
        STATE[key] = task_id


actor = current_actor()
now = utcnow()
STATE.setdefault("tasks_page", 1)
st.html(TASKS_CSS)
st.title(t("tasks.title"))
if message := STATE.pop("tasks_flash", None):
    st.toast(message, icon="✅")

# --- whose tasks -----------------------------------------------------------------
scopes = [MINE]
if actor.role == Role.MANAGER:
    scopes.append(TEAM)
if actor.sees_whole_tenant:
    scopes.append(EVERYONE)
top = st.columns([2, 3]) if len(scopes) > 1 else [st.container(), st.container()]
# a manager's day starts with the team's tasks (their own list is often empty); others start with theirs
scope = top[0].radio(
    t("tasks.scope"), scopes, format_func=lambda value: t(f"tasks.scope.{value}"), key="tasks_scope",
    horizontal=True, on_change=reset_page, index=scopes.index(TEAM) if TEAM in scopes else 0,
) if len(scopes) > 1 else MINE
view = top[1].radio(
    t("tasks.view"), VIEWS, format_func=lambda value: t(f"tasks.view.{value}"), key="tasks_view",
    horizontal=True, on_change=reset_page,
)
assignee_id = actor.user_id if scope == MINE else None

with read_session() as session:
    if scope in (TEAM, EVERYONE):  # the counts and the workload in one pass over the open tasks
        counts, workload = task_overview(session, now=now)
    else:
        counts, workload = bucket_counts(session, assignee_id=assignee_id, now=now), []
    page = list_tasks(
        session, filters=TaskFilters(assignee_id=assignee_id, view=str(view)), now=now,
        page=STATE["tasks_page"], per_page=PER_PAGE,
    )
    owners = assignable_owners(session)

with st.container(horizontal=True, key="tasks_counts", wrap=False):
    for bucket in ("overdue", "today", "upcoming"):
        st.metric(t(f"tasks.view.{bucket}"), number(counts[bucket]))

if workload:
    st.subheader(t("tasks.workload"))
    st.dataframe(
        pd.DataFrame(
            [
                {t("tasks.column.assignee"): row.assignee_name, t("tasks.column.open"): row.open,
                 t("tasks.view.overdue"): row.overdue, t("tasks.view.today"): row.due_today}
                for row in workload
            ]
        ),
        hide_index=True,
        width="stretch", placeholder=EMPTY,
    )

# --- the list --------------------------------------------------------------------
if page.items:
    frame = pd.DataFrame(
        [
            {
                t("tasks.column.title"): row.title,
                t("tasks.column.customer"): row.customer_name or "",
                t("tasks.column.due"): row.due_at,
                t("tasks.column.bucket"): t(f"tasks.view.{row.bucket}") if row.status == "open" else t("tasks.done"),
                t("tasks.column.priority"): t(f"tasks.priority.{row.priority}"),
                t("tasks.column.assignee"): row.assignee_name or "",
            }
            for row in page.items
        ]
    )
    frame[t("tasks.column.due")] = pd.to_datetime(frame[t("tasks.column.due")])
    with st.container(key="tasks_table"):
        st.dataframe(
            frame,
            hide_index=True,
            width="stretch",
            column_config={t("tasks.column.due"): when_column()},
            placeholder=EMPTY,
        )
    with st.container(key="tasks_cards"):
        for row in page.items:
            with st.container(border=True, key=f"tasks_task_card_{row.id}"):
                st.markdown(f"**{plain_line(row.title)}**")
                bucket = t(f"tasks.view.{row.bucket}") if row.status == "open" else t("tasks.done")
                facts = [bucket, row.due_at.strftime("%Y-%m-%d %H:%M") if row.due_at else EMPTY,
                         t(f"tasks.priority.{row.priority}")]
                if scope != MINE:
                    facts.append(or_dash(row.assignee_name))
                st.caption(plain_join(facts))
                with st.container(horizontal=True, vertical_alignment="center", horizontal_alignment="distribute"):
                    if row.customer_id is not None:
                        st.page_link("pages/customer_profile.py", label=plain_line(or_dash(row.customer_name)),
                                     icon="🪪", query_params={"customer_id": str(row.customer_id)})
                    if row.status == "open" and actor.can_write:
                        st.button(t("tasks.work_on"), key=f"tasks_card_pick_{row.id}", on_click=pick, args=(row.id,))
else:
    st.info(t(f"tasks.empty.{view}"))

if page.page > 1 or page.has_next:  # one row on every width (columns would stack on a phone)
    numbered_pager("tasks_page", page.page, page.has_next, t("tasks.page", page=page.page))

if not actor.can_write:
    st.info(t("access.read_only"))
    st.stop()

# --- act on one task -----------------------------------------------------------------
open_rows = [row for row in page.items if row.status == "open"]
by_id = {row.id: row for row in open_rows}


def task_label(task_id: int) -> str:
    """An open task as the picker shows it: title · customer · due time."""
    row = by_id[task_id]
    due = row.due_at.strftime("%Y-%m-%d %H:%M") if row.due_at else ""
    return " · ".join(part for part in (row.title, row.customer_name or "", due) if part)


if open_rows:
    st.divider()
    with st.container(key="tasks_act"):
        st.subheader(t("tasks.act"))
    if STATE.pop("tasks_scroll_to_act", False):  # a card's button was tapped: the form is what the user wants next
        st.html(SCROLL_TO_TASK_FORM, unsafe_allow_javascript=True)
    # The picker is a new widget whenever the list it offers changes (view, page, a task done): a
    # widget kept across lists showed one task while its value named another, and the action went
    # to the task not shown. The choice is remembered by task id, never by position.
    options = list(by_id)
    remembered = STATE.get("tasks_selected_id")
    picker_key = "tasks_picker_" + hashlib.sha1(",".join(map(str, options)).encode()).hexdigest()[:12]
    selected_id = st.selectbox(
        t("tasks.select"),
        options,
        index=options.index(remembered) if remembered in by_id else 0,
        format_func=task_label,
        key=picker_key,
    )
    STATE["tasks_selected_id"] = selected_id
    task = by_id[selected_id]
    if task.customer_id is not None:
        st.page_link("pages/customer_profile.py",
                     label=t("tasks.open_customer", name=plain_line(task.customer_name or "")),
                     icon="➡️", query_params={"customer_id": str(task.customer_id)})
    complete_tab, reschedule_tab, reassign_tab = st.tabs(
        [t("tasks.complete"), t("tasks.reschedule"), t("tasks.reassign")]
    )
    # every field below is keyed by the task it acts on: another task never inherits what was typed
    with complete_tab, st.form(f"tasks_complete_form_{task.id}", clear_on_submit=False):
        log_it = st.checkbox(t("tasks.log_activity"), value=task.customer_id is not None, key=f"tasks_log_it_{task.id}",
                             disabled=task.customer_id is None)
        activity_type = st.selectbox(
            t("tasks.activity_type"), [kind.value for kind in ActivityType],
            format_func=lambda value: t(f"tasks.activity.{value}"), key=f"tasks_activity_type_{task.id}",
        )
        summary = st.text_area(t("tasks.summary"), key=f"tasks_summary_{task.id}", max_chars=4000)
        plan_next = st.checkbox(t("tasks.plan_next"), key=f"tasks_plan_next_{task.id}")
        next_columns = st.columns(2)
        next_date = next_columns[0].date_input(
            t("tasks.next_date"), value=now.date() + dt.timedelta(days=7), key=f"tasks_next_date_{task.id}",
            format=date_input_format(),
        )
        next_time = next_columns[1].time_input(t("tasks.next_time"), value=dt.time(9, 0),
                                               key=f"tasks_next_time_{task.id}")
        if st.form_submit_button(t("tasks.complete_button"), type="primary"):
            activity = None
            if log_it and task.customer_id is not None:
                activity = ActivityInput(
                    customer_id=task.customer_id, type=activity_type, summary=summary,
                    next_follow_up_at=dt.datetime.combine(next_date, next_time) if plan_next else None,
                )
            try:
                complete_task(get_db(), actor, task.id, expected_version=task.version, activity=activity)
            except DomainError as error:
                show_domain_error(error, labels={
                    "summary": t("tasks.summary"), "type": t("tasks.activity_type"),
                    "next_follow_up_at": t("tasks.next_date"), "occurred_at": t("tasks.summary"),
                })
            else:
                for key in ("tasks_summary", "tasks_plan_next", "tasks_log_it", "tasks_activity_type"):
                    STATE.pop(f"{key}_{task.id}", None)
                STATE.pop("tasks_selected_id", None)
                flash(t("tasks.completed", title=plain(task.title)))
                st.rerun()
    with reschedule_tab, st.form(f"tasks_reschedule_form_{task.id}", clear_on_submit=False):
        due_columns = st.columns(2)
        current = task.due_at or now
        due_date = due_columns[0].date_input(t("tasks.column.due"), value=max(current.date(), now.date()),
                                             key=f"tasks_due_date_{task.id}", format=date_input_format())
        due_time = due_columns[1].time_input(t("tasks.next_time"),
                                             value=current.time().replace(second=0, microsecond=0),
                                             key=f"tasks_due_time_{task.id}")
        if st.form_submit_button(t("tasks.reschedule_button")):
            try:
                reschedule_task(get_db(), actor, task.id, due_at=dt.datetime.combine(due_date, due_time),
                                expected_version=task.version)
            except DomainError as error:
                show_domain_error(error, labels={"due_at": t("tasks.column.due")})
            else:
                flash(t("tasks.rescheduled", title=plain(task.title)))
                st.rerun()
    with reassign_tab:
        owner_names = dict(owners)
        candidates = [user_id for user_id, _ in owners if actor.is_admin or user_id == actor.user_id
                      or user_id in actor.visible_owner_ids]
        if len(candidates) <= 1 and not actor.is_admin:
            st.info(t("tasks.reassign_none"))
        else:
            with st.form(f"tasks_reassign_form_{task.id}", clear_on_submit=False):
                new_assignee = st.selectbox(
                    t("tasks.column.assignee"), candidates, format_func=lambda user_id: owner_names.get(user_id, "?"),
                    index=candidates.index(task.assignee_id) if task.assignee_id in candidates else 0,
                    key=f"tasks_new_assignee_{task.id}",
                )
                if st.form_submit_button(t("tasks.reassign_button")):
                    try:
                        reassign_task(get_db(), actor, task.id, assignee_id=int(new_assignee),
                                      expected_version=task.version)
                    except DomainError as error:
                        show_domain_error(error, labels={"assignee_id": t("tasks.column.assignee")})
                    else:
                        flash(t("tasks.reassigned", title=plain(task.title),
                                name=plain(owner_names.get(new_assignee, "?"))))
                        st.rerun()

# --- new task ----------------------------------------------------------------------
st.divider()
with st.expander(t("tasks.new")), st.form("tasks_new_form", clear_on_submit=False):
    title = st.text_input(t("tasks.column.title") + " *", key="tasks_new_title", max_chars=200)
    columns = st.columns(3)
    new_date = columns[0].date_input(t("tasks.column.due"), value=now.date() + dt.timedelta(days=1),
                                     key="tasks_new_date", format=date_input_format())
    new_time = columns[1].time_input(t("tasks.next_time"), value=dt.time(9, 0), key="tasks_new_time")
    priority = columns[2].selectbox(
        t("tasks.column.priority"), [p.value for p in Priority], index=1,
        format_func=lambda value: t(f"tasks.priority.{value}"), key="tasks_new_priority",
    )
    if st.form_submit_button(t("tasks.create_button")):
        try:
            create_task(get_db(), actor, TaskInput(title=title, due_at=dt.datetime.combine(new_date, new_time),
                                                   priority=str(priority)))
        except DomainError as error:
            show_domain_error(error, labels={"title": t("tasks.column.title")})
        else:
            STATE.pop("tasks_new_title", None)
            flash(t("tasks.created", title=plain(title.strip())))
            st.rerun()
