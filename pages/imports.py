"""Imports (admins and managers): a wizard from a dirty CSV/XLSX to validated records, and the run history.

Upload → detected encoding/delimiter and a preview → record type → column mapping (suggested
from English or Chinese headers; spare columns may become custom fields) → value mapping for
enumerated columns → mode, match keys, duplicates, policy → validate (every failing
expectation with its rows and reason, rejected rows as CSV) → import with a progress bar →
result; the history lists past runs with their quarantined rows and revert. All work is done
by ``crm_core.importing``; Great Expectations is imported only when a file is validated.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pandas as pd
import streamlit as st

from crm_core.errors import DomainError
from crm_core.importing.fields import (
    CUSTOM_FIELD_ENTITIES,
    CUSTOM_PREFIX,
    DEFAULT_MATCH,
    ENTITIES,
    MATCH_KEYS,
    fields_of,
)
from crm_core.importing.mapping import DUPLICATE_ACTIONS, MODES, POLICIES, ImportMapping, ImportOptions
from crm_core.importing.reading import ImportFile, open_import_file, preview
from crm_core.importing.runner import (
    ValidationReport,
    field_label,
    quarantined_rows_csv,
    reason_text,
    rejected_rows_csv,
    revert_import,
    run_import,
    validate_import,
)
from crm_core.importing.templates import list_import_runs, list_templates, save_template
from crm_core.importing.values import distinct_values, is_enumerated, unrecognised_values, value_choices
from crm_core.models import Role
from crm_ui.context import current_actor, get_db, lang, read_session, show_domain_error, t

STATE = st.session_state
SKIP = ""

actor = current_actor()
st.title(t("imports.title"))
if actor.role not in (Role.ADMIN, Role.MANAGER):  # hidden by navigation; the services refuse too
    st.error(t("error.access_denied"))
    st.stop()

new_tab, history_tab = st.tabs([t("imports.tab.new"), t("imports.tab.history")])


def forget_results() -> None:
    """A changed input makes the last validation stale."""
    STATE.pop("imports_report", None)
    STATE.pop("imports_result", None)


def target_label(target: str) -> str:
    if target == SKIP:
        return t("imports.map.skip")
    if target.startswith(CUSTOM_PREFIX):
        return t("imports.map.custom", name=target.removeprefix(CUSTOM_PREFIX))
    return field_label(target, lang()) + (" *" if target in required_fields else "")


def custom_name(header: str) -> str:
    """A custom field name from a header: ASCII letters/digits kept, else a short hash."""
    slug = "".join(ch.lower() if ch.isascii() and ch.isalnum() else "_" for ch in header).strip("_")
    return (slug or "field_" + hashlib.sha1(header.encode()).hexdigest()[:6])[:60]


def show_report(report: ValidationReport, file: ImportFile) -> None:
    """Per failing expectation: the reason in the user's language, how many rows, which, examples."""
    metrics = st.columns(4)
    metrics[0].metric(t("imports.metric.rows"), f"{report.rows_read:,}")
    metrics[1].metric(t("imports.metric.valid"), f"{report.rows_read - report.rejected_count:,}")
    metrics[2].metric(t("imports.metric.rejected"), f"{report.rejected_count:,}")
    metrics[3].metric(t("imports.metric.duplicates"), f"{report.duplicates_in_file + report.matches_in_database:,}")
    if report.duplicates_in_file or report.matches_in_database:
        st.info(
            t("imports.duplicates_found", in_file=report.duplicates_in_file, in_database=report.matches_in_database)
        )
    if report.success:
        st.success(t("imports.valid", rows=f"{report.rows_read:,}", expectations=report.expectations))
        return
    st.error(t("imports.invalid", failed=len(report.failures), rejected=f"{report.rejected_count:,}"))
    st.dataframe(
        pd.DataFrame(
            [
                {
                    t("imports.column.reason"): reason_text(failure.message_key, failure.params, lang()),
                    t("imports.column.count"): failure.count,
                    t("imports.column.rows"): ", ".join(str(row) for row in failure.rows[:15])
                    + (" …" if failure.count > 15 else ""),
                    t("imports.column.examples"): ", ".join(str(example) for example in failure.examples[:5]),
                }
                for failure in report.failures
            ]
        ),
        hide_index=True,
        width="stretch",
        key="imports_failures_table",
    )
    st.download_button(
        t("imports.download_rejected"),
        rejected_rows_csv(file, report, lang()),
        file_name=f"rejected-{file.name.rsplit('.', 1)[0]}.csv",
        mime="text/csv",
        key="imports_download_rejected",
    )


# --- the wizard ------------------------------------------------------------------------
with new_tab:
    upload = st.file_uploader(
        t("imports.upload"), type=["csv", "txt", "tsv", "xlsx"], key="imports_upload", help=t("imports.upload_help")
    )
    if upload is not None:
        content = upload.getvalue()
        digest = hashlib.sha256(content).hexdigest()
        if STATE.get("imports_source_hash") != digest:
            STATE["imports_source"] = (upload.name, content)
            STATE["imports_source_hash"] = digest
            forget_results()
    elif STATE.get("imports_source_hash"):
        # the user removed the uploaded file: forget it and its results
        for key in ("imports_source", "imports_source_hash"):
            STATE.pop(key, None)
        forget_results()
    source = STATE.get("imports_source")
    file: ImportFile | None = None
    if source is None:
        st.info(t("imports.start"))
    else:
        try:
            file = open_import_file(source[0], source[1])
        except DomainError as error:
            show_domain_error(error)

    if file is not None:
        st.caption(
            t(
                "imports.detected",
                name=file.name,
                encoding=file.encoding_label,
                delimiter={"\t": "Tab", ",": ",", ";": ";", "|": "|"}.get(file.delimiter or "", "—"),
                columns=len(file.headers),
            )
        )
        for warning in file.warnings:
            st.warning(t(warning))
        try:
            st.dataframe(preview(file, 10), width="stretch", key="imports_preview")
        except DomainError as error:
            show_domain_error(error)
            file = None

    if file is not None:
        st.subheader(t("imports.step.entity"))
        entity = st.selectbox(
            t("imports.entity"),
            ENTITIES,
            format_func=lambda e: t(f"imports.entity.{e}"),
            key="imports_entity",
            on_change=forget_results,
        )
        required_fields = {spec.name for spec in fields_of(entity) if spec.required}
        with read_session() as session:
            templates = list_templates(session, entity)
        template_names = {template_id: name for template_id, name, _, _ in templates}
        template_choice = st.selectbox(
            t("imports.template"),
            [None, *template_names],
            format_func=lambda v: template_names.get(v, "—"),
            key=f"imports_template_{entity}",
            on_change=forget_results,
        )
        base = next((m for template_id, _, _, m in templates if template_id == template_choice), None)
        suggested = base or ImportMapping.suggested(entity, file.headers)
        signature_key = f"{entity}-{template_choice}-{file.sha256[:12]}"

        st.subheader(t("imports.step.mapping"))
        st.caption(t("imports.mapping_help"))
        targets = [SKIP, *[spec.name for spec in fields_of(entity)]]
        mapping_columns: dict[str, str] = {}
        grid = st.columns(3)
        for index, header in enumerate(file.headers):
            options = list(targets)
            if entity in CUSTOM_FIELD_ENTITIES:
                options.append(CUSTOM_PREFIX + custom_name(header))
            default = suggested.columns.get(header, SKIP)
            if default not in options:
                options.append(default)
            choice = grid[index % 3].selectbox(
                header,
                options,
                index=options.index(default),
                format_func=target_label,
                key=f"imports_map_{signature_key}_{index}",
                on_change=forget_results,
            )
            if choice != SKIP:
                mapping_columns[header] = choice

        value_mapping: dict[str, dict[str, str]] = {}
        enumerated = [
            (header, target)
            for header, target in mapping_columns.items()
            if not target.startswith(CUSTOM_PREFIX) and is_enumerated(entity, target)
        ]
        if enumerated:
            st.subheader(t("imports.step.values"))
            with read_session() as session:
                choices_by_field = {target: value_choices(session, actor, entity, target) for _, target in enumerated}
            any_unknown = False
            for header, target in enumerated:
                cache_key = ("imports_distinct", file.sha256, header)
                if STATE.get("imports_distinct_key") != cache_key:
                    STATE["imports_distinct_key"] = cache_key
                    STATE["imports_distinct"] = {}
                distinct_cache: dict[str, list[str]] = STATE["imports_distinct"]
                if header not in distinct_cache:
                    distinct_cache[header] = distinct_values(file, header)
                choices = choices_by_field[target]
                unknown = unrecognised_values(entity, target, distinct_cache[header], choices)
                preset = suggested.values.get(header, {})
                if not unknown:
                    continue
                any_unknown = True
                st.markdown(t("imports.values_for", column=header, field=field_label(target, lang())))
                value_columns = st.columns(3)
                for value_index, value in enumerate(unknown):
                    options = [SKIP, *choices]
                    default = preset.get(value, SKIP)
                    picked = value_columns[value_index % 3].selectbox(
                        value,
                        options,
                        index=options.index(default) if default in options else 0,
                        format_func=lambda v, field=target: (
                            t("imports.values.keep")
                            if v == SKIP
                            else (t(f"stage.{v}") if field == "lifecycle_stage" else v)
                        ),
                        key=f"imports_value_{signature_key}_{header}_{value_index}",
                        on_change=forget_results,
                    )
                    if picked != SKIP:
                        value_mapping.setdefault(header, {})[value] = picked
            if not any_unknown:
                st.caption(t("imports.values_all_known"))

        st.subheader(t("imports.step.options"))
        option_columns = st.columns(2)
        mode = option_columns[0].radio(
            t("imports.mode"),
            MODES,
            format_func=lambda m: t(f"imports.mode.{m}"),
            key="imports_mode",
            on_change=forget_results,
            horizontal=True,
        )
        policy = option_columns[1].radio(
            t("imports.policy"),
            POLICIES,
            format_func=lambda p: t(f"imports.policy.{p}"),
            key="imports_policy",
            on_change=forget_results,
        )
        match_choices = list(MATCH_KEYS[entity])
        default_match = [key for key in (suggested.match_on or DEFAULT_MATCH[entity]) if key in match_choices]
        match_on = (
            option_columns[0].multiselect(
                t("imports.match_on"),
                match_choices,
                default=default_match,
                format_func=lambda key: field_label(key, lang()),
                key=f"imports_match_{entity}",
                on_change=forget_results,
            )
            if match_choices
            else []
        )
        duplicates = option_columns[1].radio(
            t("imports.duplicates"),
            DUPLICATE_ACTIONS,
            format_func=lambda d: t(f"imports.duplicates.{d}"),
            key="imports_duplicates",
            on_change=forget_results,
            disabled=mode != "create",
        )
        mapping = ImportMapping(columns=mapping_columns, values=value_mapping, match_on=list(match_on))
        options = ImportOptions(mode=mode, policy=policy, duplicates=duplicates)
        signature = json.dumps([file.sha256, entity, mapping.as_dict(), mode, policy, duplicates], sort_keys=True)

        st.subheader(t("imports.step.validate"))
        action_columns = st.columns([1, 1, 2])
        if action_columns[0].button(t("imports.validate"), key="imports_validate", type="secondary"):
            forget_results()
            try:
                with st.spinner(t("imports.validating")):
                    STATE["imports_report"] = (
                        signature,
                        validate_import(get_db(), actor, file, entity, mapping, options),
                    )
            except DomainError as error:
                show_domain_error(error)
        stored = STATE.get("imports_report")
        report: ValidationReport | None = stored[1] if stored and stored[0] == signature else None
        if report is not None:
            show_report(report, file)
        stored_result = STATE.get("imports_result")
        already_imported = bool(stored_result and stored_result[0] == signature)
        blocked = report is None or already_imported or (not report.success and policy == "all-or-nothing")
        if report is not None and blocked and not already_imported:
            st.caption(t("imports.blocked_all_or_nothing"))
        if action_columns[1].button(t("imports.import"), key="imports_commit", type="primary", disabled=blocked):
            bar = st.progress(0.0, text=t("imports.importing"))

            def progress(done: int, total: int | None, _message_key: str) -> None:
                if total:
                    bar.progress(
                        min(done / total, 1.0), text=t("imports.progress", done=f"{done:,}", total=f"{total:,}")
                    )

            try:
                result = run_import(get_db(), actor, file, entity, mapping, options, progress=progress)
            except DomainError as error:
                show_domain_error(error)
            else:
                STATE["imports_result"] = (signature, result.as_dict())
                st.rerun()  # the result shows below, and the Import button turns off for this file
        if already_imported:
            assert stored_result is not None
            outcome = stored_result[1]
            message = t(
                "imports.result",
                status=t(f"imports.status.{outcome['status']}"),
                **{k: outcome[k] for k in ("created", "updated", "skipped", "rejected", "run_id")},
            )
            (st.success if outcome["status"] == "imported" else st.warning)(message)

        with st.expander(t("imports.save_template")):
            template_name = st.text_input(t("imports.template_name"), key="imports_template_name", max_chars=120)
            if st.button(t("imports.save"), key="imports_save_template"):
                try:
                    save_template(get_db(), actor, name=template_name, entity=entity, mapping=mapping)
                except DomainError as error:
                    show_domain_error(error, labels={"name": t("imports.template_name")})
                else:
                    st.success(t("imports.template_saved", name=template_name.strip()))


# --- history ---------------------------------------------------------------------------
with history_tab:
    with read_session() as session:
        runs = list_import_runs(session, per_page=50).items
    if not runs:
        st.info(t("imports.no_runs"))
    else:
        st.dataframe(
            pd.DataFrame(
                [
                    {
                        "#": run.id,
                        t("imports.column.when"): run.created_at,
                        t("imports.column.who"): run.user_name or "",
                        t("imports.column.entity"): t(f"imports.entity.{run.entity}"),
                        t("imports.column.file"): run.file_name,
                        t("imports.column.status"): t(f"imports.status.{run.status}"),
                        t("imports.column.read"): run.rows_read,
                        t("imports.column.created"): run.created,
                        t("imports.column.updated"): run.updated,
                        t("imports.column.skipped"): run.skipped,
                        t("imports.column.rejected"): run.rejected,
                    }
                    for run in runs
                ]
            ),
            hide_index=True,
            width="stretch",
            key="imports_history_table",
        )
        by_id: dict[int, Any] = {run.id: run for run in runs}
        chosen = st.selectbox(
            t("imports.pick_run"),
            list(by_id),
            format_func=lambda run_id: f"#{run_id} · {by_id[run_id].file_name}",
            key="imports_history_run",
        )
        run = by_id[chosen]
        for failure in run.validation_result.get("failures", []):
            st.markdown(
                f"- {reason_text(failure['message_key'], failure.get('params', {}), lang())} "
                f"({t('imports.rows_count', count=failure['count'])})"
            )
        if run.rejected:
            try:
                st.download_button(
                    t("imports.download_quarantine"),
                    quarantined_rows_csv(get_db(), actor, run.id, lang()),
                    file_name=f"import-{run.id}-rejected.csv",
                    mime="text/csv",
                    key="imports_download_quarantine",
                )
            except DomainError as error:
                show_domain_error(error)
        if run.status in ("imported", "partial"):
            confirm = st.checkbox(
                t("imports.revert_confirm", created=run.created, updated=run.updated),
                key=f"imports_revert_confirm_{run.id}",
            )
            if st.button(t("imports.revert"), key="imports_revert", disabled=not confirm):
                try:
                    undone = revert_import(get_db(), actor, run.id)
                except DomainError as error:
                    show_domain_error(error)
                else:
                    STATE["imports_reverted_notice"] = t(
                        "imports.reverted",
                        run_id=undone.run_id,
                        deleted=undone.deleted,
                        restored=undone.restored,
                        conflicts=undone.conflicts,
                    )
                    st.rerun()
        if notice := STATE.pop("imports_reverted_notice", None):
            st.success(notice)
