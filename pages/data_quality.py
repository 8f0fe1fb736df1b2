"""Data quality (admins): run a database suite now, read its failures, follow the trend, open the Data Docs.

Great Expectations is imported only when a suite runs (inside ``crm_core.validation``), so opening
this page, and every other page, stays fast.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from crm_core.errors import DomainError
from crm_core.exporting import export_file_name
from crm_core.jobs.service import submit_job
from crm_core.models import utcnow
from crm_core.models.jobs import JobStatus
from crm_core.quality.docs import latest_suite_docs, render_data_docs, render_data_docs_file
from crm_core.quality.history import check_run_details, check_trend, list_check_runs
from crm_core.quality.runs import data_docs_zip, database_suites, suite_checks
from crm_core.queries.jobs import JobView, get_job
from crm_ui.context import current_actor, get_db, lang, read_session, show_domain_error, t
from crm_ui.formatting import number, when_column
from crm_ui.jobs import cancel_button, is_active, live_jobs, retry_button, show_error, show_job_error, show_progress
from crm_ui.layout import CardPick, picked_here, table_or_cards

STATE = st.session_state
ALL_SUITES = "__all__"
QUALITY_JOB = "data_quality_job_id"  # the check this session started (a quality_check job)
TREND_DAYS = 30

actor = current_actor()
st.title(t("quality.title"))
st.caption(t("quality.intro"))
if not actor.is_admin:  # navigation hides the page from other roles; the services refuse them too
    st.error(t("error.access_denied"))
    st.stop()

suites = database_suites()


def suite_label(name: str) -> str:
    return t("quality.all_suites") if name == ALL_SUITES else t(f"quality.suite.{name}")


def check_table(checks: list[dict[str, Any]]) -> pd.DataFrame:
    """One line per check: status, what it looks for, rows breaking it, a few examples."""
    return pd.DataFrame(
        [
            {
                t("quality.column.status"): "✅" if check["success"] else "❌",
                t("quality.column.check"): t(f"quality.check.{check['check']}"),
                t("quality.column.violations"): check["violations"],
                t("quality.column.examples"): "; ".join(
                    f"#{example['id']} {example['label']}" for example in check.get("examples", [])
                ),
            }
            for check in checks
        ]
    )


def show_run(run: dict[str, Any]) -> None:
    """A run's verdict, its failures one by one, then every check."""
    failed = [check for check in run["checks"] if not check["success"]]
    suite = suite_label(run["suite"])
    if failed:
        st.error(t("quality.run_failed", suite=suite, failed=len(failed), total=len(run["checks"])))
    else:
        st.success(t("quality.run_passed", suite=suite, total=len(run["checks"])))
    metrics = st.container(horizontal=True, gap="large")  # one row that wraps: columns stack on a phone
    metrics.metric(t("quality.metric.expectations"), f"{len(run['checks']) - len(failed)} / {len(run['checks'])}")
    metrics.metric(t("quality.metric.violations"), number(sum(c['violations'] for c in run['checks'])))
    metrics.metric(t("quality.metric.seconds"), f"{run.get('seconds', 0):.1f}")
    for check in failed:
        with st.container(border=True):
            st.markdown("**❌ " + t(f"quality.check.{check['check']}") + "**")
            st.caption(t("quality.failure_detail", violations=number(check['violations']),
                         entity=t(f"quality.entity.{check['entity']}")))
            if check.get("examples"):
                table_or_cards(
                    pd.DataFrame(check["examples"]).rename(
                        columns={"id": t("quality.column.id"), "label": t("quality.column.record")}
                    ),
                    name=f"quality_examples_{run['suite']}_{check['check']}", title=t("quality.column.record"),
                )
    table_or_cards(check_table(run["checks"]), name=f"quality_checks_{run['suite']}",
                   title=t("quality.column.check"))


run_tab, history_tab, docs_tab = st.tabs([t("quality.tab.run"), t("quality.tab.history"), t("docs.title")])

# --- run a suite -------------------------------------------------------------------
with run_tab:
    with st.form("data_quality_run_form", clear_on_submit=False):
        chosen = st.selectbox(
            t("quality.suite"), [ALL_SUITES, *suites], format_func=suite_label, key="data_quality_suite"
        )
        submitted = st.form_submit_button(t("quality.run"), type="primary")
    if chosen != ALL_SUITES:
        st.caption(t("quality.suite_checks") + " " + " · ".join(t(f"quality.check.{c}") for c in suite_checks(chosen)))
    if submitted:
        try:  # the suites run as a job in the worker; this page only follows it
            STATE[QUALITY_JOB] = submit_job(
                get_db(), actor, "quality_check", {"suites": suites if chosen == ALL_SUITES else [chosen]}
            )
        except DomainError as error:
            show_job_error(error)
    job_id: int | None = STATE.get(QUALITY_JOB)
    if job_id is None:
        st.info(t("quality.run_hint"))
    else:
        def load_job(job_id: int = job_id) -> list[JobView]:
            with read_session() as session:
                return [get_job(session, job_id)]

        def draw_job(views: list[JobView]) -> None:
            view = views[0]
            if is_active(view):
                show_progress(view)
                cancel_button(actor, view, "data_quality")
            elif view.status == JobStatus.SUCCEEDED:
                for run in view.result.get("runs") or []:
                    show_run(run)
            else:
                show_error(view)
                retry_button(actor, view, "data_quality")

        try:
            live_jobs("data_quality_job", load_job(), load_job, draw_job)
        except DomainError as error:  # the job was removed or is out of scope
            STATE.pop(QUALITY_JOB, None)
            show_domain_error(error)

# --- history and trend ------------------------------------------------------------
with history_tab:
    with read_session() as session:
        trend = check_trend(session, days=TREND_DAYS)
        history = list_check_runs(session, limit=100)
    if not history:
        st.info(t("quality.history_empty"))
    else:
        # every day of the window, so a quiet day shows as a gap rather than vanishing
        last_day = max(point.day for point in trend) if trend else history[0].started_at.date()
        days = [last_day - dt.timedelta(days=offset) for offset in range(TREND_DAYS - 1, -1, -1)]
        day_labels = [day.strftime("%m-%d") for day in days]
        passed = [sum(p.passed for p in trend if p.day == day) for day in days]
        failed_counts = [sum(p.failed for p in trend if p.day == day) for day in days]
        figure = go.Figure()
        figure.add_bar(x=day_labels, y=passed, name=t("quality.status.passed"), marker_color="#2e7d32")
        figure.add_bar(x=day_labels, y=failed_counts, name=t("quality.status.failed"), marker_color="#c62828")
        for suite in sorted({point.suite for point in trend}):
            points = [p for p in trend if p.suite == suite]
            figure.add_scatter(x=[p.day.strftime("%m-%d") for p in points], y=[p.violations for p in points],
                               name=suite_label(suite), mode="lines+markers", yaxis="y2")
        figure.update_layout(
            barmode="stack", height=400, margin={"l": 10, "r": 10, "t": 40, "b": 90},
            title=t("quality.trend_title", days=TREND_DAYS),
            xaxis={"type": "category", "tickangle": -45},
            yaxis={"title": t("quality.trend_runs"), "rangemode": "tozero"},
            yaxis2={"title": t("quality.metric.violations"), "overlaying": "y", "side": "right", "rangemode": "tozero"},
            legend={"orientation": "h", "y": -0.3},
        )
        st.plotly_chart(figure, key="data_quality_trend_chart")
        table_or_cards(
            pd.DataFrame(
                [
                    {
                        t("quality.column.started_at"): row.started_at,
                        t("quality.suite"): suite_label(row.suite),
                        t("quality.column.status"): t(f"quality.status.{row.status}"),
                        t("quality.column.failed"): f"{row.expectations_failed} / {row.expectations_total}",
                        t("quality.column.violations"): row.violations,
                        t("quality.column.run_by"): row.run_by or t(f"quality.trigger.{row.trigger}"),
                    }
                    for row in history
                ]
            ),
            column_config={t("quality.column.started_at"): when_column()},
            name="quality_history", title=t("quality.suite"),
            pick=CardPick(t("quality.open_run"), "data_quality_history_run", [row.run_id for row in history]),
        )
        run_ids = [row.run_id for row in history]
        run_labels = {row.run_id: f"{row.started_at:%Y-%m-%d %H:%M} · {suite_label(row.suite)}" for row in history}
        picked_here("data_quality_history_run")  # a card's "Show its checks" brings them into view
        picked = st.selectbox(
            t("quality.pick_run"), run_ids, format_func=run_labels.__getitem__, key="data_quality_history_run"
        )
        if picked is not None:
            with read_session() as session:
                details = check_run_details(session, picked)
            table_or_cards(check_table(details), name="quality_details", title=t("quality.column.check"))

# --- Data Docs: our rendering of the same results, in the user's language (decision 0018) -------
with docs_tab:
    with read_session() as session:
        docs = latest_suite_docs(session, suites)
    if not docs:
        st.info(t("docs.empty"))
    else:
        st.caption(t("docs.intro"))
        st.html(render_data_docs(docs, lang()))
        downloads = st.columns(2)
        downloads[0].download_button(
            t("docs.download"), render_data_docs_file(docs, lang(), generated_at=utcnow()).encode("utf-8"),
            file_name=export_file_name("data-docs", "html"), mime="text/html", key="data_quality_docs_html",
        )
        archive = data_docs_zip(actor.tenant_id)
        if archive is not None:
            downloads[1].download_button(
                t("docs.gx_download"), archive, file_name=export_file_name("data-docs-gx", "zip"),
                mime="application/zip", key="data_quality_docs_download", help=t("docs.gx_download_help"),
            )
