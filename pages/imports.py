"""Imports (admins and managers): a wizard from a dirty CSV/XLSX to validated records, and the run history.

Upload (kept under ``files_dir()`` for the worker) → detected encoding/delimiter and a preview →
record type → column mapping (suggested from English or Chinese headers; spare columns may
become custom fields) → value mapping for enumerated columns → mode, match keys, duplicates,
policy → check the file → import → result. Checking and importing are ``import`` jobs (the
check a dry run) run by a worker: the page shows their live progress, then the report (every
failing expectation with its rows and reason, the rejected rows as CSV) or the result. The
wizard remembers its jobs, so the user may leave and come back; a new session is offered the
user's latest import jobs. The history lists past runs with their quarantined rows and revert
(a job too). Nothing heavy runs in this page: reading, judging and writing happen in the worker.
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from crm_core.config import files_dir
from crm_core.errors import DomainError, NotFound
from crm_core.importing.fields import (
    CUSTOM_FIELD_ENTITIES,
    CUSTOM_PREFIX,
    CUSTOMER_MATCHES,
    DEFAULT_MATCH,
    ENTITIES,
    HISTORY_FIELDS,
    MATCH_KEYS,
    ORPHAN_ENTITIES,
    ORPHAN_POLICIES,
    fields_of,
)
from crm_core.importing.mapping import DUPLICATE_ACTIONS, MODES, POLICIES, ImportMapping
from crm_core.importing.reading import ImportFile, open_import_file, preview
from crm_core.importing.runner import field_label, reason_text
from crm_core.importing.templates import list_import_runs, list_templates, save_template
from crm_core.importing.values import distinct_values, is_enumerated, unrecognised_values, value_choices
from crm_core.jobs.service import RETRYABLE, submit_job
from crm_core.jobs.uploads import store_upload
from crm_core.models import Role
from crm_core.models.jobs import JobStatus
from crm_core.queries.jobs import JobView, get_job, list_jobs
from crm_core.queries.users import owner_choices
from crm_ui.context import current_actor, get_db, lang, read_session, record_id, show_domain_error, t
from crm_ui.formatting import EMPTY
from crm_ui.jobs import (
    cancel_button,
    download_quarantined,
    is_active,
    live_jobs,
    plain,
    show_check_report,
    show_error,
    show_flash,
    show_import_result,
    show_progress,
    show_result,
    status_label,
    when_text,
)
from crm_ui.layout import flow, table_and_cards, table_or_cards
from crm_ui.move_in import choose_preset, show_move_in_guide

STATE = st.session_state
SKIP = ""
PAGE_KEY = "imports"
CHECK_JOB = "imports_check_job"  # the id of the wizard's last check (a dry-run import job)
RUN_JOB = "imports_run_job"  # (id of the check it imports, id of the import job)
REVERT_JOB = "imports_revert_job"
UNKNOWN_OWNER = ("reject", "fallback")  # an owner naming no user: the row is refused, or goes to a chosen user
UNKNOWN_OWNER_ADMIN = (*UNKNOWN_OWNER, "create")  # … or (admins) to an inactive user of that name (decision 0043)

actor = current_actor()
st.title(t("imports.title"))
if actor.role not in (Role.ADMIN, Role.MANAGER):  # hidden by navigation; the services refuse too
    st.error(t("error.access_denied"))
    st.stop()
show_flash(PAGE_KEY)

wanted_run = st.query_params.get("run")  # the Jobs page links to a run of the history
new_tab, history_tab, guide_tab = st.tabs(
    [t("imports.tab.new"), t("imports.tab.history"), t("move_in.tab")],
    default=t("imports.tab.history") if wanted_run else None,
)


def target_label(target: str) -> str:
    if target == SKIP:
        return t("imports.map.skip")
    if target.startswith(CUSTOM_PREFIX):
        return t("imports.map.custom", name=target.removeprefix(CUSTOM_PREFIX))
    return field_label(target, lang()) + (" *" if target in required_fields else "")


def custom_name(header: str) -> str:
    """A custom field name from a header: ASCII letters/digits kept, else a short hash."""
    slug = "".join(ch.lower() if ch.isascii() and ch.isalnum() else "_" for ch in header).strip("_")
    if slug and not slug[0].isalpha():
        slug = "field_" + slug  # a name the custom fields page accepts (rules.custom_fields): a letter first
    return (slug or "field_" + hashlib.sha1(header.encode()).hexdigest()[:6])[:60]


def job_or_none(job_id: int | None) -> JobView | None:
    """A remembered job, or None when it is gone (another database, deleted)."""
    if job_id is None:
        return None
    try:
        with read_session() as session:
            return get_job(session, job_id)
    except NotFound:
        return None


def sample_values(column: pd.Series, count: int = 3, width: int = 40) -> str:
    """A source column's first distinct non-empty values, each cut to ``width`` characters."""
    values: list[str] = []
    for value in column:
        text = " ".join(str(value).split()) if value is not None and not pd.isna(value) else ""
        if text and text not in values:
            values.append(text if len(text) <= width else text[: width - 1] + "…")
        if len(values) == count:
            break
    return " · ".join(values) or EMPTY


def forget_file() -> None:
    """The user removed the uploaded file from the box: forget it (its jobs stay on the Jobs page)."""
    if STATE.get("imports_upload") is None:
        for key in ("imports_file", "imports_upload_id", "imports_refusal"):
            STATE.pop(key, None)


def receive_upload(upload: Any) -> None:
    """Inspect a new upload and keep it under ``files_dir()`` where the worker will read it."""
    STATE["imports_upload_id"] = upload.file_id
    STATE.pop("imports_file", None)
    STATE.pop("imports_refusal", None)
    content = upload.getvalue()
    try:
        inspected = open_import_file(upload.name, content)
    except DomainError as error:
        STATE["imports_refusal"] = error
        return
    stored = store_upload(actor.tenant_id, upload.name, content)
    STATE["imports_file"] = dataclasses.replace(inspected, source=stored)


def job_params(file: ImportFile, entity: str, mapping: ImportMapping, mode: str, policy: str, duplicates: str,
               fallback_owner: str | None = None, *, orphans: str = "reject",
               create_owners: bool = False) -> dict[str, Any]:
    """The ``import`` job's parameters for what the wizard shows (see ``crm_core.jobs.kinds.import_file``)."""
    path = Path(file.source)  # type: ignore[arg-type]
    return {
        "entity": entity, "file_path": str(path.relative_to(files_dir().resolve())), "file_name": file.name,
        "mapping": mapping.as_dict(), "mode": mode, "policy": policy, "duplicates": duplicates,
        "encoding": file.encoding, "delimiter": file.delimiter, "sheet": file.sheet,
        "fallback_owner": fallback_owner, "orphans": orphans, "create_owners": create_owners,
    }


def checked_params(check_view: JobView | None, file: ImportFile | None) -> dict[str, Any]:
    """The parameters of the wizard's check when it judged ``file`` (the upload on the page), else none."""
    if check_view is None or file is None:
        return {}
    checked = files_dir().resolve() / str(check_view.params.get("file_path") or "")
    return check_view.params if checked == Path(file.source) else {}  # type: ignore[arg-type]


def import_blocked(check: JobView | None, stale: bool, imported: JobView | None) -> tuple[bool, str | None]:
    """Whether Import is off, and why (a caption): no check yet, a stale or refusing check, or already imported."""
    if check is None:
        return True, t("jobs.wizard.check_first")
    if stale:
        return True, None  # the warning under the check says so
    if imported is not None and imported.status not in RETRYABLE:
        return True, plain(t("jobs.wizard.already_imported", id=imported.id))
    result = check.result if check.status == JobStatus.SUCCEEDED else {}
    if not result or result.get("error"):
        return True, None
    if not result.get("success") and check.params.get("policy") != "skip-invalid":
        return True, t("imports.blocked_all_or_nothing")
    return False, None


def start_job(params: dict[str, Any]) -> int | None:
    """Submit an ``import`` job; a refusal (queue down, access) is shown and None returned."""
    try:
        return submit_job(get_db(), actor, "import", params)
    except DomainError as error:
        show_domain_error(error)
        return None


# --- the wizard ------------------------------------------------------------------------
def offer_recent_imports() -> None:
    """A new session: the user's latest import jobs, to follow one here again."""
    with read_session() as session:
        recent = list_jobs(session, kinds=["import"], mine_only=True, per_page=5).items
    if not recent:
        return
    by_id = {view.id: view for view in recent}

    def label(job_id: int) -> str:
        view = by_id[job_id]
        what = t("jobs.wizard.what_check") if view.params.get("dry_run") else t("jobs.wizard.what_import")
        return t("jobs.wizard.resume_label", id=view.id, file=view.params.get("file_name") or "—", what=what,
                 status=status_label(view.status), when=when_text(view.created_at))

    with st.container(border=True):
        st.markdown("**" + plain(t("jobs.wizard.resume")) + "**")
        st.caption(t("jobs.wizard.resume_help"))
        row = st.columns([4, 1], vertical_alignment="bottom")
        chosen = row[0].selectbox(t("jobs.wizard.resume"), list(by_id), format_func=label,
                                  key="imports_resume_choice", label_visibility="collapsed")
        if row[1].button(t("jobs.wizard.resume_open"), key="imports_resume_open") and chosen is not None:
            if by_id[chosen].params.get("dry_run"):
                STATE[CHECK_JOB] = chosen
                STATE.pop(RUN_JOB, None)
            else:
                STATE.pop(CHECK_JOB, None)
                STATE[RUN_JOB] = (None, chosen)
            st.rerun()


def draw_job(view: JobView, heading_key: str) -> None:
    """One wizard job: its progress and Cancel while it runs, then its report or result."""
    st.caption(plain(t(heading_key, id=view.id)) + " · " + plain(status_label(view.status)))
    if is_active(view):
        show_progress(view)
        st.caption(t("jobs.wizard.checking") if view.params.get("dry_run") else t("jobs.wizard.importing"))
        cancel_button(actor, view, PAGE_KEY)
    elif view.status != JobStatus.SUCCEEDED:
        show_error(view)
    elif view.params.get("dry_run"):
        show_check_report(actor, view, key=f"imports_check_{view.id}")
    else:
        show_import_result(actor, view, key=f"imports_result_{view.id}", link_history=False)


def follow(key: str, view: JobView, heading_key: str) -> None:
    """Draw ``view`` live (progress every second) until it ends."""

    def load() -> list[JobView]:
        fresh = job_or_none(view.id)
        return [fresh] if fresh else []

    def draw(views: list[JobView]) -> None:
        for current in views:
            draw_job(current, heading_key)

    live_jobs(key, [view], load, draw)


with new_tab:
    if CHECK_JOB not in STATE and RUN_JOB not in STATE and "imports_file" not in STATE:
        offer_recent_imports()
    upload = st.file_uploader(
        t("imports.upload"), type=["csv", "txt", "tsv", "xlsx"], key="imports_upload", help=t("imports.upload_help"),
        on_change=forget_file,
    )
    if upload is not None and STATE.get("imports_upload_id") != upload.file_id:
        receive_upload(upload)
    if (refusal := STATE.get("imports_refusal")) is not None:
        show_domain_error(refusal)
    file: ImportFile | None = STATE.get("imports_file")
    if file is not None and not Path(file.source).is_file():  # type: ignore[arg-type]
        # a successful import deletes its upload (crm_core.jobs.uploads): a new import needs a new upload
        STATE.pop("imports_file", None)
        file = None
        st.caption(t("jobs.wizard.upload_gone"))
    elif file is None and refusal is None:
        st.info(t("jobs.wizard.start"))

    check_view = job_or_none(STATE.get(CHECK_JOB))
    run_check_id, run_job_id = STATE.get(RUN_JOB) or (None, None)
    run_view = job_or_none(run_job_id)
    # the check of this very file gives the wizard's defaults: coming back to the page shows what was checked
    last_check = checked_params(check_view, file)

    params: dict[str, Any] | None = None
    if file is not None:
        if upload is None:
            st.caption(plain(t("jobs.wizard.file_of_job", name=file.name)))
        st.caption(
            plain(t(
                "imports.detected",
                name=file.name,
                encoding=file.encoding_label,
                delimiter={"\t": "Tab", ",": ",", ";": ";", "|": "|"}.get(file.delimiter or "", "—"),
                columns=len(file.headers),
            ))
        )
        for warning in file.warnings:
            st.warning(t(warning))
        try:
            # read once per file: an XLSX's shared strings are parsed whole on every open
            if STATE.get("imports_preview_of") != file.sha256:
                STATE["imports_preview_rows"] = preview(file, 10)
                STATE["imports_preview_of"] = file.sha256
            # a phone reads each column's first values beside its field below, not in a sideways-scrolling table
            with table_and_cards("imports_preview")[0]:
                st.dataframe(STATE["imports_preview_rows"], width="stretch", height="content", key="imports_preview",
                             placeholder=EMPTY)
        except DomainError as error:
            show_domain_error(error)
            file = None

    if file is not None:
        st.subheader(t("imports.step.entity"))
        entity = st.selectbox(
            t("imports.entity"),
            ENTITIES,
            index=ENTITIES.index(last_check["entity"]) if last_check.get("entity") in ENTITIES else 0,
            format_func=lambda e: t(f"imports.entity.{e}"),
            key="imports_entity",
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
        )
        base = next((m for template_id, _, _, m in templates if template_id == template_choice), None)
        preset_choice, from_preset = choose_preset(actor, entity, file.headers, key=f"imports_preset_{entity}")
        if (base is None and last_check.get("entity") == entity and last_check.get("mapping")
                and last_check.get("preset", "") == preset_choice):
            base = ImportMapping.from_dict(last_check["mapping"])
        suggested = base or from_preset or ImportMapping.suggested(entity, file.headers)  # a preset: as a template
        signature_key = f"{entity}-{template_choice}-{preset_choice}-{file.sha256[:12]}"

        st.subheader(t("imports.step.mapping"))
        st.caption(t("imports.mapping_help"))
        # dates of the past (created, closed, completed) are an admin's to import: not offered to others
        withheld = set() if actor.is_admin else set(HISTORY_FIELDS.get(entity, ()))
        targets = [SKIP, *[spec.name for spec in fields_of(entity) if spec.name not in withheld]]
        mapping_columns: dict[str, str] = {}
        # one box per source column, in the file's order: its name, the field, its first values
        boxes = flow("imports_mapping", len(file.headers), item_rem=15)
        samples = STATE.get("imports_preview_rows")
        for index, header in enumerate(file.headers):
            options = list(targets)
            if entity in CUSTOM_FIELD_ENTITIES:
                options.append(CUSTOM_PREFIX + custom_name(header))
            default = suggested.columns.get(header, SKIP)
            if default in withheld:
                default = SKIP
            if default not in options:
                options.append(default)
            choice = boxes[index].selectbox(
                header,
                options,
                index=options.index(default),
                format_func=target_label,
                key=f"imports_map_{signature_key}_{index}",
            )
            if isinstance(samples, pd.DataFrame) and index < samples.shape[1]:
                boxes[index].caption(plain(t("imports.samples", values=sample_values(samples.iloc[:, index]))))
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
            value_mapping_headers: list[str] = []
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
                st.markdown(t("imports.values_for", column=plain(header), field=field_label(target, lang())))
                value_boxes = flow(f"imports_values_{len(value_mapping_headers)}", len(unknown), item_rem=14)
                value_mapping_headers.append(header)
                for value_index, value in enumerate(unknown):
                    stored_values: list[str] = [SKIP, *choices]
                    preset_value = preset.get(value, SKIP)

                    def value_label(stored: str, field: str = target) -> str:
                        if stored == SKIP:
                            return t("imports.values.keep")
                        return t(f"stage.{stored}") if field == "lifecycle_stage" else stored

                    picked = value_boxes[value_index].selectbox(
                        value,
                        stored_values,
                        index=stored_values.index(preset_value) if preset_value in stored_values else 0,
                        format_func=value_label,
                        key=f"imports_value_{signature_key}_{header}_{value_index}",
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
            index=MODES.index(last_check["mode"]) if last_check.get("mode") in MODES else 0,
            format_func=lambda m: t(f"imports.mode.{m}"),
            key="imports_mode",
            horizontal=True,
        )
        policy = option_columns[1].radio(
            t("imports.policy"),
            POLICIES,
            index=POLICIES.index(last_check["policy"]) if last_check.get("policy") in POLICIES else 0,
            format_func=lambda p: t(f"imports.policy.{p}"),
            key="imports_policy",
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
            )
            if match_choices
            else []
        )
        duplicates = option_columns[1].radio(
            t("imports.duplicates"),
            DUPLICATE_ACTIONS,
            index=DUPLICATE_ACTIONS.index(last_check["duplicates"])
            if last_check.get("duplicates") in DUPLICATE_ACTIONS else 0,
            format_func=lambda d: t(f"imports.duplicates.{d}"),
            key="imports_duplicates",
            disabled=mode != "create",
        )
        mapped = set(mapping_columns.values())
        customer_match = suggested.customer_match if suggested.customer_match in CUSTOMER_MATCHES else "any"
        if "customer" in mapped:
            # what the customer column holds: suggested from its header ("Account ID", "客户编号": external IDs)
            customer_match = option_columns[0].selectbox(
                t("imports.customer_match"), CUSTOMER_MATCHES, index=CUSTOMER_MATCHES.index(customer_match),
                format_func=lambda m: t(f"imports.customer_match.{m}"), key=f"imports_customer_match_{signature_key}",
            )
        orphans = "reject"
        if "customer" in mapped and entity in ORPHAN_ENTITIES:
            # rows whose customer cell is empty: refused, a placeholder customer each, or a lead each
            orphans = str(option_columns[0].selectbox(
                t("imports.orphans"), ORPHAN_POLICIES,
                index=ORPHAN_POLICIES.index(last_check["orphans"]) if last_check.get("orphans") in ORPHAN_POLICIES
                else 0,
                format_func=lambda policy: t(f"imports.orphans.{policy}"), key="imports_orphans",
            ))
        fallback_owner: str | None = None
        create_owners = False
        if mapped & {spec.name for spec in fields_of(entity) if spec.target == "owner"}:
            owner_choices_here = UNKNOWN_OWNER_ADMIN if actor.is_admin else UNKNOWN_OWNER
            unknown_owner = option_columns[1].radio(
                t("imports.unknown_owner"), owner_choices_here,
                index=1 if last_check.get("fallback_owner") else 2 if last_check.get("create_owners") else 0,
                format_func=lambda choice: t(f"imports.unknown_owner.{choice}"), key="imports_unknown_owner",
            )
            if unknown_owner == "fallback":
                with read_session() as session:
                    owners = dict(owner_choices(session, actor))  # the users the importer may give records to
                usernames = list(owners)
                before = last_check.get("fallback_owner")
                fallback_owner = option_columns[1].selectbox(
                    t("imports.fallback_owner"), usernames,
                    index=usernames.index(before) if before in usernames else 0,
                    format_func=lambda username: f"{owners[username]} ({username})",
                    key="imports_fallback_owner",
                ) if usernames else None
            create_owners = unknown_owner == "create"
        mapping = ImportMapping(columns=mapping_columns, values=value_mapping, match_on=list(match_on),
                                customer_match=str(customer_match))
        params = job_params(file, entity, mapping, str(mode), str(policy), str(duplicates), fallback_owner,
                            orphans=orphans, create_owners=create_owners)
        params["preset"] = preset_choice  # the mapping is given: the job only remembers which preset made it
        with st.expander(t("imports.save_template")):
            template_name = st.text_input(t("imports.template_name"), key="imports_template_name", max_chars=120)
            if st.button(t("imports.save"), key="imports_save_template"):
                try:
                    save_template(get_db(), actor, name=template_name, entity=entity, mapping=mapping)
                except DomainError as error:
                    show_domain_error(error, labels={"name": t("imports.template_name")})
                else:
                    st.success(plain(t("imports.template_saved", name=template_name.strip())))

    # --- check, then import: jobs in the worker -------------------------------------------
    if params is not None or check_view is not None or run_view is not None:
        st.subheader(t("jobs.wizard.step"))
    if params is not None:
        checking = check_view is not None and is_active(check_view)
        clicked = st.button(t("jobs.wizard.check"), key="imports_check", help=t("jobs.wizard.check_help"),
                            disabled=checking)
        if clicked and (check_id := start_job({**params, "dry_run": True})) is not None:
            STATE[CHECK_JOB] = check_id
            STATE.pop(RUN_JOB, None)
            st.rerun()
    stale = bool(check_view and params is not None and check_view.params != {**params, "dry_run": True})
    if check_view is not None:
        follow("imports_check_panel", check_view, "jobs.wizard.check_job")
        if stale and not is_active(check_view):
            st.warning(t("jobs.wizard.stale"))

    if check_view is not None or params is not None:
        blocked, reason = import_blocked(check_view, stale, run_view if run_check_id == getattr(check_view, "id", -1)
                                         else None)
        if reason:
            st.caption(reason)
        if st.button(t("imports.import"), key="imports_commit", type="primary", disabled=blocked):
            assert check_view is not None
            if (run_id := start_job({**check_view.params, "dry_run": False})) is not None:
                STATE[RUN_JOB] = (check_view.id, run_id)
                st.rerun()
    if run_view is not None:
        follow("imports_run_panel", run_view, "jobs.wizard.import_job")


# --- history ---------------------------------------------------------------------------
with history_tab:
    with read_session() as session:
        runs = list_import_runs(session, per_page=50).items
    if not runs:
        st.info(t("imports.no_runs"))
    else:
        table_or_cards(
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
            key="imports_history_table",
            name="imports_history", title=t("imports.column.file"),
        )
        by_id: dict[int, Any] = {run.id: run for run in runs}
        if wanted_run and STATE.get("imports_history_linked") != wanted_run:
            # once per link: afterwards the user's own choice of run stands
            STATE["imports_history_linked"] = wanted_run
            if (linked_run := record_id(wanted_run)) in by_id:
                STATE["imports_history_run"] = linked_run
        chosen = st.selectbox(
            t("imports.pick_run"),
            list(by_id),
            format_func=lambda run_id: f"#{run_id} · {by_id[run_id].file_name}",
            key="imports_history_run",
        )
        run = by_id[chosen]
        for failure in run.validation_result.get("failures", []):
            st.markdown(
                "- " + plain(reason_text(failure["message_key"], failure.get("params", {}), lang()))
                + f" ({t('imports.rows_count', count=failure['count'])})"
            )
        if run.rejected:
            download_quarantined(actor, run.id, key="imports_download_quarantine")
        revert_view = job_or_none(STATE.get(REVERT_JOB))
        reverting = revert_view is not None and is_active(revert_view)
        if run.status in ("imported", "partial"):
            confirm = st.checkbox(
                t("imports.revert_confirm", created=run.created, updated=run.updated),
                key=f"imports_revert_confirm_{run.id}",
            )
            if st.button(t("imports.revert"), key=f"imports_revert_{run.id}", disabled=not confirm or reverting):
                try:
                    revert_id = submit_job(get_db(), actor, "import_revert", {"run_id": run.id})
                except DomainError as error:
                    show_domain_error(error)
                else:
                    STATE[REVERT_JOB] = revert_id
                    st.rerun()
        if revert_view is not None:

            def load_revert() -> list[JobView]:
                fresh = job_or_none(revert_view.id)  # type: ignore[union-attr]
                return [fresh] if fresh else []

            def draw_revert(views: list[JobView]) -> None:
                for view in views:
                    run_id = view.params.get("run_id")
                    st.caption(plain(t("jobs.wizard.revert_started", run_id=run_id, id=view.id)))
                    if is_active(view):
                        show_progress(view)
                    else:
                        show_result(actor, view, key=f"imports_revert_result_{view.id}")

            live_jobs("imports_revert_panel", [revert_view], load_revert, draw_revert)


# --- the "Move in" guide ---------------------------------------------------------------
with guide_tab:
    show_move_in_guide(actor)
