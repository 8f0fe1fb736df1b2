"""System (admins): version and schema, the job queue, recent failures with their references, the last backup."""

from __future__ import annotations

import streamlit as st

from crm_core.config import backup_dir
from crm_core.queries.system import system_status
from crm_ui.context import current_actor, read_session, t
from crm_ui.formatting import EMPTY, when
from crm_ui.jobs import kind_label
from crm_ui.layout import table_or_cards
from crm_ui.text import plain

current_actor()
st.title(t("system.title"))
st.caption(t("system.caption"))
with read_session() as session:
    status = system_status(session, backup_dir())

# a row that wraps on a phone (columns would stack: three tall tiles before anything else)
facts = st.container(horizontal=True, gap="large")
facts.metric(t("system.version"), status.version)
schema_note = t("system.schema_current") if status.schema_current else t("system.schema_behind", head=status.head)
facts.metric(t("system.schema"), status.revision or EMPTY, delta=schema_note,
              delta_color="normal" if status.schema_current else "inverse", delta_arrow="off")
facts.metric(t("system.database"), {"sqlite": "SQLite", "postgresql": "PostgreSQL", "mysql": "MariaDB"}.get(
    status.dialect, status.dialect))

st.subheader(t("system.queue"))
kinds = sorted(set(status.queued) | set(status.running))
if kinds:
    st.dataframe([{t("system.kind"): kind_label(kind), t("system.queued"): status.queued.get(kind, 0),
                   t("system.running"): status.running.get(kind, 0)} for kind in kinds], hide_index=True,
                 placeholder=EMPTY)
else:
    st.info(t("system.queue_empty"))

st.subheader(t("system.failures", count=status.failed_last_day))
if status.recent_failures:
    table_or_cards([{t("system.job"): f"#{job.id}", t("system.kind"): kind_label(job.kind),
                   t("system.finished"): when(job.finished_at),
                   t("system.reference"): job.reference or EMPTY} for job in status.recent_failures],
                   name="system_failures")
    st.caption(t("system.reference_hint"))
else:
    st.success(t("system.no_failures"))

st.subheader(t("system.incidents"))
if status.incidents:
    table_or_cards([{t("system.reference"): incident.id, t("system.finished"): when(incident.at),
                   t("system.where"): t(f"system.surface.{incident.surface}"), t("system.error"): incident.error,
                   t("system.outage"): "✓" if incident.outage else ""} for incident in status.incidents],
                   name="system_incidents")
    st.caption(t("system.reference_hint"))
else:
    st.success(t("system.no_incidents"))

st.subheader(t("system.backup"))
if status.last_backup is None:
    st.warning(t("system.no_backup"))
    st.code("python -m crm_core backup create --verify", language="bash", wrap_lines=True)
else:
    backup = status.last_backup
    st.markdown(t("system.last_backup", taken=when(backup.taken_at), size=f"{backup.size / 1024 / 1024:,.1f}"))
    drill = status.last_drill
    if drill is None:
        st.warning(t("system.not_drilled"))
    elif drill.get("verified"):
        st.success(t("system.drill_passed", restore=drill.get("restore_seconds", "?"),
                     check=drill.get("verify_seconds", "?")))
    else:
        differences = "\n".join(f"- {plain(line)}" for line in drill.get("failures", []))
        st.error(t("system.drill_failed") + "\n\n" + differences)
