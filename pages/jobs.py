"""Jobs: the long work running in the background — my jobs (an admin: the workspace's) — with live progress.

In progress: queued and running jobs in a fragment that asks again every second (only it reruns,
and only while something runs), each with its translated step, a progress bar and Cancel.
Finished: a page at a time, newest first, each with its result — an import's counts and
rejected rows, a link to the run history or the data-quality results — or its error, and Retry.
``?job=ID`` shows that one job (the schedules and "Run now" link here). Users other than admins
read the schedules below the list. Which jobs a user sees is decided by the access rules in
``crm_core``, not here.
"""

from __future__ import annotations

import streamlit as st

from crm_core.errors import NotFound
from crm_core.jobs.context import kinds
from crm_core.models.jobs import JobStatus
from crm_core.queries.jobs import JobView, get_job, list_jobs
from crm_ui.context import choice_key, current_actor, read_session, record_id, show_domain_error, t
from crm_ui.formatting import filters_label
from crm_ui.jobs import (
    ACTIVE,
    STATUS_COLOURS,
    STATUS_ICONS,
    allowed_page,
    cancel_button,
    duration_text,
    is_active,
    kind_label,
    live_jobs,
    plain,
    retry_button,
    show_flash,
    show_progress,
    show_result,
    status_label,
    when_text,
)
from crm_ui.pager import numbered_pager
from crm_ui.schedules import schedules_section

STATE = st.session_state
PAGE_KEY = "jobs"
PER_PAGE = 20
ACTIVE_LIMIT = 50  # queued and running jobs drawn at once; more wait their turn

actor = current_actor()
STATE.setdefault("jobs_page", 1)
st.title(t("jobs.page.title"))
st.caption(t("jobs.page.intro_admin") if actor.is_admin else t("jobs.page.intro_own"))
show_flash(PAGE_KEY)


def reset_page() -> None:
    STATE["jobs_page"] = 1


def job_card(view: JobView) -> None:
    """One job: kind, status, who and when; its progress and Cancel, or its result or error and Retry."""
    with st.container(border=True, key=f"jobs_card_{view.id}"):
        with st.container(horizontal=True, vertical_alignment="center"):
            title = t("jobs.page.header", id=view.id, kind=kind_label(view.kind))
            if view.kind == "import" and view.params.get("dry_run"):
                title += " · " + t("jobs.wizard.what_check")
            st.markdown(f"**{plain(title)}**")
            st.badge(status_label(view.status), icon=STATUS_ICONS[view.status], color=STATUS_COLOURS[view.status])
        who = t("jobs.page.by", who=view.requested_by) if view.requested_by else t("jobs.page.by_schedule")
        details = [who, t("jobs.page.queued_at", when=when_text(view.created_at))]
        if view.started_at and view.finished_at:
            details.append(t("jobs.page.took", duration=duration_text(
                (view.finished_at - view.started_at).total_seconds())))
        if view.retry_of_id:
            details.append(t("jobs.page.retry_of", id=view.retry_of_id))
        if view.params.get("file_name"):
            details.append(t("jobs.page.file", name=view.params["file_name"]))
        st.caption(plain(" · ".join(details)))
        if is_active(view):
            show_progress(view)
            cancel_button(actor, view, PAGE_KEY)
        else:
            show_result(actor, view, key=f"jobs_result_{view.id}")
            if retry_button(actor, view, PAGE_KEY) is not None:
                st.rerun()


def draw_active(views: list[JobView]) -> None:
    if not views:
        st.caption(t("jobs.page.nothing_active"))
    for view in views:
        job_card(view)


linked = st.query_params.get("job")  # a link from elsewhere (a schedule's last job, "Run now") to one job
if linked is not None:
    if st.button(t("jobs.page.show_all"), key="jobs_show_all", icon="⬅️"):
        del st.query_params["job"]
        st.rerun()
    linked_id = record_id(linked) or 0

    def load_linked() -> list[JobView]:
        with read_session() as session:
            return [get_job(session, linked_id)]

    def draw_linked(views: list[JobView]) -> None:
        for view in views:
            job_card(view)

    try:
        linked_views = load_linked()
    except NotFound as error:  # not a job, or not one this user may see
        show_domain_error(error)
    else:
        live_jobs("jobs_linked_panel", linked_views, load_linked, draw_linked)
    st.stop()

# the filters in a popover that says how many are on, beside Refresh: a phone shows the jobs on its first
# screen, not two boxes (as on the service queue)
filters_on = sum(1 for key in ("jobs_status", "jobs_kind") if STATE.get(choice_key(key)))
with st.container(horizontal=True, vertical_alignment="center"):
    with st.popover(filters_label(filters_on)):
        statuses: list[JobStatus] = st.multiselect(
            t("jobs.page.filter_status"), list(JobStatus), format_func=status_label, key=choice_key("jobs_status"),
            placeholder=t("jobs.page.filter_placeholder"), on_change=reset_page,
        )
        kind_names = sorted(kinds(), key=kind_label)
        chosen_kinds: list[str] = st.multiselect(
            t("jobs.page.filter_kind"), kind_names, format_func=kind_label, key=choice_key("jobs_kind"),
            placeholder=t("jobs.page.filter_placeholder"), on_change=reset_page,
        )
    st.button(t("jobs.page.refresh"), key="jobs_refresh", icon="🔄")  # a click runs the page again
active_statuses = [status for status in ACTIVE if not statuses or status in statuses]
finished_statuses = [status for status in JobStatus if status.finished and (not statuses or status in statuses)]


def load_active() -> list[JobView]:
    """The queued and running jobs under the filters (an empty status list would mean all: asked only if any)."""
    if not active_statuses:
        return []
    with read_session() as session:
        return list_jobs(session, statuses=active_statuses, kinds=chosen_kinds or None, per_page=ACTIVE_LIMIT).items


with read_session() as session:
    active_page = (
        list_jobs(session, statuses=active_statuses, kinds=chosen_kinds or None, per_page=ACTIVE_LIMIT)
        if active_statuses else None
    )
    finished_page = (
        list_jobs(session, statuses=finished_statuses, kinds=chosen_kinds or None, page=STATE["jobs_page"],
                  per_page=PER_PAGE)
        if finished_statuses else None
    )
active_views = active_page.items if active_page else []
finished_views = finished_page.items if finished_page else []
if not finished_views and STATE["jobs_page"] > 1:  # the jobs of that page went away (filters, other tabs)
    reset_page()
    st.rerun()

nothing = not active_views and not finished_views
if nothing and (statuses or chosen_kinds):
    st.info(t("jobs.page.empty_filtered"))
elif nothing:
    st.info(t("jobs.page.empty"))
    if allowed_page(actor, "pages/imports.py"):
        st.page_link("pages/imports.py", label=t("jobs.page.open_import_wizard"), icon="📥")


if not nothing:
    st.subheader(t("jobs.page.active"))
    live_jobs("jobs_active_panel", active_views, load_active, draw_active)
    if active_page is not None and active_page.has_next:
        st.caption(t("jobs.page.more_active"))

    st.subheader(t("jobs.page.finished"))
    if not finished_views:
        st.caption(t("jobs.page.nothing_finished"))
    for finished in finished_views:
        job_card(finished)
    if finished_page is not None and (finished_page.page > 1 or finished_page.has_next):
        numbered_pager("jobs_page", finished_page.page, finished_page.has_next,
                       t("grid.page", page=finished_page.page))

if not actor.is_admin:  # admins edit the schedules on the Automation page; everyone may read them
    with st.expander(t("jobs.page.schedules")):
        schedules_section(actor)
