"""Background jobs on a page: names, statuses, progress, errors and results in the user's language.

The Jobs page, the import wizard and the Automation page show jobs the same way through
these helpers. :func:`live_jobs` draws jobs in a fragment that reruns every second while one
of them is queued or running — only that fragment, not the page — and reruns the page once
the set of running jobs changes, so that results and buttons that depend on them follow.
Text that comes from data (file names, values, error details) is escaped: Streamlit renders
alerts and captions as Markdown.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any, Literal

import pandas as pd
import streamlit as st

from crm_core.access import Actor
from crm_core.errors import (
    DomainError,
    InvalidSchedule,
    JobNotCancellable,
    JobNotRetryable,
)
from crm_core.importing.runner import quarantined_rows_csv, reason_text
from crm_core.jobs.cli import error_text, message_text
from crm_core.jobs.service import RETRYABLE, cancel_job, retry_job
from crm_core.jobs.uploads import resolve_upload
from crm_core.models import utcnow
from crm_core.models.jobs import JobStatus
from crm_core.quality.runs import data_docs_zip
from crm_core.queries.jobs import JobView
from crm_ui.context import get_db, lang, show_domain_error, t
from crm_ui.formatting import number
from crm_ui.layout import table_or_cards
from crm_ui.navigation import pages_for
from crm_ui.text import plain

POLL_SECONDS = 1.0
"""How often a fragment showing running jobs asks again (the issue's target: progress within 2 s)."""
WAITING_HINT_SECONDS = 30
"""A job queued this long has probably no worker to run it: say how to start one."""
ACTIVE = (JobStatus.QUEUED, JobStatus.RUNNING)
BadgeColour = Literal["red", "orange", "yellow", "blue", "green", "violet", "gray", "grey", "primary"]
STATUS_COLOURS: dict[JobStatus, BadgeColour] = {
    JobStatus.QUEUED: "gray",
    JobStatus.RUNNING: "blue",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "gray",
    JobStatus.INTERRUPTED: "orange",
}
STATUS_ICONS: dict[JobStatus, str] = {
    JobStatus.QUEUED: "⏳",
    JobStatus.RUNNING: "🔄",
    JobStatus.SUCCEEDED: "✅",
    JobStatus.FAILED: "❌",
    JobStatus.CANCELLED: "⛔",
    JobStatus.INTERRUPTED: "⚠️",
}
def kind_label(kind: str) -> str:
    """A job kind's name in the user's language."""
    return t(f"jobs.kind.{kind}")


def status_label(status: JobStatus | str) -> str:
    """A job status in the user's language."""
    return t(f"jobs.status.{JobStatus(status).value}")


def duration_text(seconds: float) -> str:
    """``42 s`` or ``3 min 5 s``."""
    whole = max(0, round(seconds))
    if whole < 60:
        return t("jobs.page.seconds", seconds=whole)
    return t("jobs.page.minutes", minutes=whole // 60, seconds=whole % 60)


def when_text(moment: dt.datetime) -> str:
    """A stored (UTC) time as the pages show it."""
    return f"{moment:%Y-%m-%d %H:%M}"


def is_active(view: JobView) -> bool:
    """Queued or running: its state may still change."""
    return view.status in ACTIVE


def active_ids(views: Sequence[JobView]) -> frozenset[int]:
    """The ids of the queued and running jobs among ``views``."""
    return frozenset(view.id for view in views if is_active(view))


def flash(page_key: str, message: str) -> None:
    """Show ``message`` as a toast on the page's next run (the click that caused it reruns the page)."""
    st.session_state[f"{page_key}_flash"] = message


def show_flash(page_key: str) -> None:
    """The toast left by :func:`flash`, once."""
    if message := st.session_state.pop(f"{page_key}_flash", None):
        st.toast(message, icon="✅")


def show_job_error(error: DomainError) -> None:
    """A refused job action in the user's language; statuses and schedule fields named in it too."""
    if isinstance(error, (JobNotCancellable, JobNotRetryable)):
        st.error(plain(t(error.message_key, status=status_label(str(error.params.get("status"))))))
    elif isinstance(error, InvalidSchedule):
        field = t(f"jobs.schedules.field.{error.params.get('field')}")
        st.error(plain(t(error.message_key, field=field, value=error.params.get("value", ""))))
    else:
        show_domain_error(error)


# --- progress ------------------------------------------------------------------------------


def progress_text(view: JobView) -> str:
    """The job's current step in the user's language, with its count: ``Importing… — 2,000 of 10,000``."""
    if view.status == JobStatus.QUEUED:
        return t("jobs.page.waiting")
    message = message_text(view.message, lang()) or t("jobs.progress.working")
    if view.total:
        return t("jobs.page.progress", message=message, done=number(view.done), total=number(view.total))
    if view.done:
        return t("jobs.page.progress_count", message=message, done=number(view.done))
    return message


def show_progress(view: JobView) -> None:
    """A progress bar with the translated step; a hint when a job waits long for a worker."""
    st.progress(view.fraction or 0.0, text=plain(progress_text(view)))
    if view.status == JobStatus.QUEUED:
        waited = (utcnow() - view.created_at).total_seconds()
        if waited > WAITING_HINT_SECONDS:
            st.caption(plain(t("jobs.page.waiting_long", seconds=int(waited))))


def live_jobs(
    key: str,
    views: list[JobView],
    load: Callable[[], list[JobView]],
    draw: Callable[[list[JobView]], None],
) -> None:
    """Draw ``views`` with ``draw``; while one is queued or running, load and draw them again every second.

    Only this fragment reruns. When the set of queued and running jobs changes (one ended,
    another started), the whole page runs again, which also stops the polling once nothing
    is left running.
    """
    watched = active_ids(views)
    first_draw = [True]

    @st.fragment(run_every=POLL_SECONDS if watched else None, key=key)
    def panel() -> None:
        current = views if first_draw[0] else load()
        first_draw[0] = False
        if watched and active_ids(current) != watched:
            st.rerun()  # before drawing: what follows the change (results, downloads, buttons) is drawn once
        draw(current)

    panel()


# --- actions -------------------------------------------------------------------------------


def cancel_button(actor: Actor, view: JobView, page_key: str) -> None:
    """Cancel for a queued or running job the actor may stop (its requester or an admin)."""
    if not is_active(view) or not (actor.is_admin or view.requested_by == actor.username):
        return
    if st.button(t("jobs.page.cancel"), key=f"{page_key}_cancel_{view.id}", icon="⛔"):
        try:
            status = cancel_job(get_db(), actor, view.id)
        except DomainError as error:
            show_job_error(error)
            return
        key = "jobs.page.cancelled" if status == JobStatus.CANCELLED else "jobs.page.cancel_requested"
        flash(page_key, t(key, id=view.id))
        st.rerun()


def retry_button(actor: Actor, view: JobView, page_key: str) -> int | None:
    """Retry for a failed, cancelled or interrupted job; returns the new job's id once started."""
    if view.status not in RETRYABLE or not (actor.is_admin or view.requested_by == actor.username):
        return None
    if st.button(t("jobs.page.retry"), key=f"{page_key}_retry_{view.id}", icon="🔁"):
        try:
            new_id = retry_job(get_db(), actor, view.id)
        except DomainError as error:
            show_job_error(error)
            return None
        flash(page_key, t("jobs.page.retried", id=view.id, new_id=new_id))
        return new_id
    return None


# --- results -------------------------------------------------------------------------------


def allowed_page(actor: Actor, path: str) -> bool:
    """Whether the actor's menu holds ``path`` (a link to any other page would fail)."""
    return any(spec.path == path for spec in pages_for(actor.role))


def show_error(view: JobView) -> None:
    """Why a job failed, was cancelled or interrupted, in the user's language."""
    if view.status in (JobStatus.FAILED, JobStatus.INTERRUPTED):
        st.error(plain(error_text(view, lang())))
    elif view.status == JobStatus.CANCELLED:
        st.info(plain(t("jobs.status.cancelled")))


def show_identity_counts(result: dict[str, Any]) -> None:
    """Customers (issue 17): how many region texts met the province/city/district cascade, and blocked duplicates;
    any file (issue 18): how many rows went to the fallback owner or to inactive users of their owner's name (and how
    many such users were made), and how many rows without a customer were refused, placed or made leads."""
    mapped, ambiguous, not_found = (int(result.get(f"regions_{name}", 0) or 0)
                                    for name in ("mapped", "ambiguous", "not_found"))
    if mapped or ambiguous or not_found:
        st.caption(plain(t("imports.regions_report", mapped=number(mapped), ambiguous=number(ambiguous),
                           not_found=number(not_found))))
    if blocked := int(result.get("duplicates_blocked", 0) or 0):
        st.caption(plain(f"{t('imports.metric.duplicates_blocked')}: {number(blocked)}"))
    # issue 18: owners naming no user (a fallback owner, new inactive users), rows without a customer
    for count in ("owners_fallback", "owners_created", "owners_inactive", "orphans_rejected", "orphans_placeholder",
                  "orphans_lead"):
        if value := int(result.get(count, 0) or 0):
            st.caption(plain(f"{t(f'imports.metric.{count}')}: {number(value)}"))


def show_check_report(actor: Actor, view: JobView, key: str, *, compact: bool = False) -> None:
    """A dry run's verdict: counts, each failing check with its rows and reason, the rejected rows as CSV.

    ``compact``: the counts on one line (a card of the Jobs page) instead of four tiles (the wizard).
    """
    result = view.result
    if result.get("error"):
        st.error(plain(t(str(result["error"]), **dict(result.get("error_params") or {}))))
        return
    rows, rejected = int(result.get("rows_read", 0)), int(result.get("rejected", 0))
    duplicates = int(result.get("duplicates_in_file", 0)) + int(result.get("matches_in_database", 0))
    if compact:
        st.caption(plain(t("jobs.page.check_counts", rows=number(rows), valid=number(rows - rejected),
                           rejected=number(rejected), duplicates=number(duplicates))))
    else:
        metrics = st.container(horizontal=True, gap="large")  # one row that wraps: columns stack on a phone
        metrics.metric(t("imports.metric.rows"), number(rows))
        metrics.metric(t("imports.metric.valid"), number(rows - rejected))
        metrics.metric(t("imports.metric.rejected"), number(rejected))
        metrics.metric(t("imports.metric.duplicates"), number(duplicates))
        if duplicates:
            st.info(plain(t("imports.duplicates_found", in_file=result.get("duplicates_in_file", 0),
                            in_database=result.get("matches_in_database", 0))))
    show_identity_counts(result)
    if not compact and "would_create" in result:  # what the import would write (checks made before this was told)
        st.markdown(t("move_in.forecast", rejected=number(rejected), **{
            key: number(int(result.get(key, 0))) for key in ("would_create", "would_update", "would_skip")}))
    show_quality_forecast(result, key=key, compact=compact)
    failures: list[dict[str, Any]] = list(result.get("failures") or [])
    if result.get("success"):
        st.success(plain(t("imports.valid", rows=number(rows), expectations=result.get("expectations", 0))))
        return
    st.error(plain(t("jobs.wizard.invalid", failed=len(failures), rejected=number(rejected))))
    failures_table(failures, key=f"{key}_failures")
    csv_path = result.get("rejected_csv_path")
    if csv_path:
        download_rejected_check(actor, str(csv_path), str(result.get("file_name") or "file"), key=f"{key}_download")


def check_label(check: str) -> str:
    """A data-quality check in the user's words."""
    return t(f"quality.check.{check}")


def show_quality_forecast(result: dict[str, Any], *, key: str, compact: bool) -> None:
    """The data-quality checks the import would make fail (a dry run's ``quality``; decision 0056): each check in
    the user's words, how many more records it would flag, and the latest of them."""
    if "quality" not in result:  # a check made before the dry run measured this
        return
    quality: list[dict[str, Any]] = list(result.get("quality") or [])
    if not quality:
        if not compact:
            st.caption(t("imports.quality_forecast_none"))
        return
    if compact:
        named = [f"{check_label(str(entry['check']))} (+{number(int(entry['count']))})" for entry in quality]
        st.caption(plain(t("imports.quality_forecast_short", checks=", ".join(named))))
        return
    st.warning(t("imports.quality_forecast", count=number(len(quality))))
    table_or_cards(
        pd.DataFrame([{
            t("imports.column.check"): check_label(str(entry["check"])),
            t("imports.column.flagged"): int(entry["count"]),
            t("imports.column.latest"): ", ".join(str(example) for example in entry.get("examples") or []),
        } for entry in quality]),
        key=f"{key}_quality",
        name=f"quality_{key}",
    )


def failures_table(failures: list[dict[str, Any]], *, key: str) -> None:
    """One line per failing check: the reason in the user's words, how many rows, which, examples."""
    language = lang()
    table_or_cards(
        pd.DataFrame(
            [
                {
                    t("imports.column.reason"): reason_text(failure["message_key"], failure.get("params") or {},
                                                            language),
                    t("imports.column.count"): failure.get("count", 0),
                    t("imports.column.rows"): ", ".join(str(row) for row in (failure.get("rows") or [])[:15])
                    + (" …" if int(failure.get("count", 0)) > 15 else ""),
                    t("imports.column.examples"): ", ".join(str(example) for example in
                                                            (failure.get("examples") or [])[:5]),
                }
                for failure in failures
            ]
        ),
        key=key,
        name=f"failures_{key}",
    )


def download_rejected_check(actor: Actor, csv_path: str, file_name: str, *, key: str) -> None:
    """The dry run's rejected rows (a CSV the worker wrote beside the upload), read when clicked.

    Nothing is offered once the upload is gone (a successful import deletes it; its own run
    keeps the quarantined rows, offered with the import's result).
    """
    try:
        path = resolve_upload(actor.tenant_id, csv_path)
    except DomainError:
        return
    st.download_button(
        t("imports.download_rejected"), path.read_bytes, file_name=f"rejected-{file_name.rsplit('.', 1)[0]}.csv",
        mime="text/csv", key=key, on_click="ignore", icon="⬇️",
    )


def download_quarantined(actor: Actor, run_id: int, *, key: str) -> None:
    """A finished import's quarantined rows as CSV (in the user's language), built when clicked."""
    db, language = get_db(), lang()
    st.download_button(
        t("imports.download_quarantine"), lambda: quarantined_rows_csv(db, actor, run_id, language),
        file_name=f"import-{run_id}-rejected.csv", mime="text/csv", key=key, on_click="ignore", icon="⬇️",
    )


def show_import_result(actor: Actor, view: JobView, key: str, *, link_history: bool) -> None:
    """What an import did: its status and counts, the rejected rows, and the run in the history."""
    result = view.result
    if result.get("error"):
        st.error(plain(t(str(result["error"]), **dict(result.get("error_params") or {}))))
        return
    status = str(result.get("status", ""))
    counts = {name: number(int(result.get(name) or 0)) for name in ("created", "updated", "skipped", "rejected")}
    message = t("imports.result", status=t(f"imports.status.{status}"), run_id=result.get("run_id"), **counts)
    (st.success if status == "imported" else st.warning)(plain(message))
    show_identity_counts(result)
    failures = list(result.get("failures") or [])
    if failures:
        failures_table(failures, key=f"{key}_failures")
    actions = st.container(horizontal=True)
    with actions:
        if result.get("rejected_rows_run_id"):
            download_quarantined(actor, int(result["rejected_rows_run_id"]), key=f"{key}_download")
        if link_history and result.get("run_id") and allowed_page(actor, "pages/imports.py"):
            st.page_link("pages/imports.py", label=t("jobs.page.open_imports"), icon="📥",
                         query_params={"run": str(result["run_id"])})


def show_quality_result(actor: Actor, view: JobView, key: str) -> None:
    """A data-quality check: each suite's verdict, the Data Docs (as the data-quality page offers them), the page."""
    for run in view.result.get("runs") or []:
        suite = t(f"quality.suite.{run.get('suite')}")
        total, failed = int(run.get("expectations", 0)), int(run.get("failed", 0))
        if failed:
            st.error(plain(t("quality.run_failed", suite=suite, failed=failed, total=total)))
        else:
            st.success(plain(t("quality.run_passed", suite=suite, total=total)))
    with st.container(horizontal=True):
        if view.result.get("data_docs"):
            tenant_id = actor.tenant_id
            st.download_button(
                t("quality.docs_download"), lambda: data_docs_zip(tenant_id) or b"", file_name="kestrel-data-docs.zip",
                mime="application/zip", key=f"{key}_docs", on_click="ignore", icon="⬇️",
            )
        if allowed_page(actor, "pages/data_quality.py"):
            st.page_link("pages/data_quality.py", label=t("jobs.page.open_quality"), icon="🧪")


def show_result(actor: Actor, view: JobView, key: str) -> None:
    """A finished job's result, as its kind reads best; Details hold the whole result."""
    result = view.result
    if view.status != JobStatus.SUCCEEDED:
        show_error(view)
        return
    if view.kind == "import":
        if result.get("dry_run"):
            show_check_report(actor, view, key, compact=True)
            if allowed_page(actor, "pages/imports.py"):
                st.page_link("pages/imports.py", label=t("jobs.page.open_import_wizard"), icon="📥")
        else:
            show_import_result(actor, view, key, link_history=True)
        return
    if view.kind == "import_revert":
        st.success(plain(t("imports.reverted", **{name: result.get(name, 0) for name in
                                                   ("run_id", "deleted", "restored", "conflicts")})))
        if result.get("consent_reverted") or result.get("consent_kept"):  # the ledger only grows (decision 0053)
            st.info(plain(t("imports.reverted_consent", consent_reverted=result.get("consent_reverted", 0),
                            consent_kept=result.get("consent_kept", 0))))
    elif view.kind == "automation_run":
        rules = list(result.get("rules") or [])
        st.success(plain(t("automation.ran", fired=result.get("fired", 0),
                           tasks=sum(int(rule.get("tasks", 0)) for rule in rules),
                           tags=sum(int(rule.get("tags", 0)) for rule in rules),
                           enrolled=sum(int(rule.get("enrolled", 0)) for rule in rules))))
    elif view.kind == "lifecycle_refresh":
        st.success(plain(t("jobs.page.lifecycle_result", transitions=result.get("transitions", 0))))
    elif view.kind == "pool_return":
        st.success(plain(t("pool.job_result", returned=result.get("returned", 0), reminded=result.get("reminded", 0))))
    elif view.kind == "uploads_cleanup":
        st.success(plain(t("jobs.page.cleanup_result", removed=result.get("removed", 0))))
    elif view.kind == "quality_check":
        show_quality_result(actor, view, key)
    elif not result:
        st.caption(t("jobs.page.no_result"))
    if result:
        with st.expander(t("jobs.page.details")):
            st.json(result, expanded=False)
