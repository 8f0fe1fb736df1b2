"""Import use cases: judge a file (a dry run), import it, revert a run.

Pattern: one route, one streaming pass. Each chunk of the file is prepared (see
:mod:`crm_core.importing.prepare`) and judged by the entity's Great Expectations suite, in
this process; then its valid rows are written and its refused rows quarantined. The whole
file goes in ONE transaction together with the ``import_runs`` row and counts and the list
of records written (``import_run_records``): all-or-nothing rolls the rows back at the
first refused row (the rest is still judged, for the report), skip-invalid writes the
valid rows. An error rolls everything back and leaves a ``failed`` run, never half a file.
A dry run (:func:`validate_import`) judges the same way and writes nothing. Memory stays
bounded by the chunk size plus the match keys of the file (for duplicates within it).

New rows are inserted in bulk (``INSERT … RETURNING`` per chunk) with the same rules the
session applies to hand-made records — tenant, who may own what (references only resolve
to records and owners the actor may use) — and an audit event each; updates go through the
ORM so the session's checks and audit trail apply as usual. Every audit event of a run
carries ``_import_run``: reverting a run deletes what it created and restores, from those
events, the fields it changed (unless someone changed them again since).
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import io
import re
import unicodedata
from collections.abc import Callable, Collection, Generator, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass, field, replace
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.orm import Session

from crm_core import access
from crm_core.access import Actor
from crm_core.bulk import driver_form, insert_returning_ids, insert_rows
from crm_core.db import Database, refresh_planner_statistics
from crm_core.errors import AccessDenied, ImportNotAllowed, NotFound
from crm_core.exporting import to_csv
from crm_core.fulltext import (
    FullTextIndex,
    fulltext_indexes,
    index_rows_from,
    insert_triggers_dropped,
)
from crm_core.i18n import catalog, t
from crm_core.importing.fields import (
    CUSTOM_FIELD_ENTITIES,
    HISTORY_FIELDS,
    LEAD_TAG,
    PLACEHOLDER_TAG,
    fields_of,
)
from crm_core.importing.first_rows import FirstRows
from crm_core.importing.mapping import ImportMapping, ImportOptions, check_mapping
from crm_core.importing.prepare import (
    LEAD_BLOCKED,
    MATCH_COLUMNS,
    TAKEN_IN_DB,
    FileState,
    Resolver,
    lead_name,
    match_value,
    orphan_label,
    prepare_chunk,
    row_rule_column,
)
from crm_core.importing.reading import EXTRA_COLUMN, ImportFile, count_rows, iter_chunks
from crm_core.models import (
    Activity,
    AuditEvent,
    Contact,
    Customer,
    FieldDefinition,
    ImportRun,
    Opportunity,
    Order,
    OrderLine,
    PipelineStage,
    Product,
    Role,
    Task,
    TaskStatus,
    User,
    utcnow,
)
from crm_core.models.marketing import Channel, ConsentAction, ConsentRecord, ProofKind
from crm_core.models.pipeline import OpportunityLine, OpportunityStageChange
from crm_core.models.quality import ImportRejectedRow, ImportRunRecord
from crm_core.quality.runs import newest_violations, tenant_violations
from crm_core.rules import fields as field_rules
from crm_core.rules import pipeline as pipeline_rules
from crm_core.rules.consent import normalise_address
from crm_core.rules.contact_details import company_key, normalise_email, normalise_phone
from crm_core.rules.custom_fields import valid_field_name
from crm_core.rules.fields import CONSENT_NONE, CONSENT_WITHDRAWN
from crm_core.rules.webhooks import OBJECT_NAMES
from crm_core.services.activities import later_contact
from crm_core.services.consent import record_in
from crm_core.services.customer_tiers import orders_changed
from crm_core.services.deal_lines import refresh_amounts
from crm_core.services.followups import NewCustomer, plan_follow_ups, record_follow_ups
from crm_core.services.lifecycle import refresh_lifecycle
from crm_core.services.orders import line_total
from crm_core.validation import ExpectationOutcome, run_suite
from crm_core.webhooks.outbox import record_created

if TYPE_CHECKING:  # pragma: no cover
    import pandas

Progress = Callable[[int, int | None, str], None]
"""``progress(done, total, message_key)``: rows handled so far, the file's rows (estimated until the
end; None when unknown) and the step's catalog key. Called between chunks; raising stops the import."""
MAX_ROWS_KEPT = 5000  # row numbers kept per expectation in the report (counts are always exact)
MODELS: dict[str, Any] = {
    "customers": Customer,
    "contacts": Contact,
    "products": Product,
    "opportunities": Opportunity,
    "orders": Order,
    "activities": Activity,
    "tasks": Task,
    "deal_lines": OpportunityLine,
}
AUDIT_ENTITY = {
    "customers": "customer",
    "contacts": "contact",
    "products": "product",
    "opportunities": "opportunity",
    "orders": "order",
    "activities": "activity",
    "tasks": "task",
    "order_lines": "order_line",
    "deal_lines": "opportunity_line",
}


@dataclass
class Failure:
    """One failing expectation over the whole file: how many rows, which, examples, and why."""

    expectation: str
    column: str | None
    field: str | None
    count: int
    rows: list[int]
    examples: list[Any]
    message_key: str
    params: dict[str, Any]

    def message(self, lang: str = "en") -> str:
        """The reason in ``lang``."""
        return reason_text(self.message_key, self.params, lang)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (CLI ``--json`` failures, run history)."""
        return {
            "expectation": self.expectation,
            "column": self.field or self.column,
            "count": self.count,
            "examples": self.examples[:10],
            "rows": self.rows[:100],
            "message_key": self.message_key,
            "params": self.params,
        }


@dataclass
class ValidationReport:
    """The verdict on a whole file before anything is written."""

    entity: str
    rows_read: int = 0
    failures: list[Failure] = field(default_factory=list)
    rejected: dict[int, list[tuple[str, dict[str, Any]]]] = field(default_factory=dict)
    duplicates_in_file: int = 0  # rows repeating a match key of an earlier row
    matches_in_database: int = 0  # other rows whose match key a record already holds
    expectations: int = 0
    duplicates_blocked: int = 0  # rows the tenant's blocking duplicate rules refuse (customers)
    regions_mapped: int = 0  # region texts mapped to the province → city → district cascade
    regions_ambiguous: int = 0  # … naming a place several divisions share (朝阳区)
    regions_not_found: int = 0  # … naming no division
    owners_fallback: int = 0  # rows (not refused) given to the fallback owner: their owner named no user
    would_create: int = 0  # what writing the valid rows would do (a dry run's forecast; see _forecast)
    would_update: int = 0  # … rows linked to a record the tenant has (or an earlier row's): updated/merged
    would_skip: int = 0  # … rows matching a record, skipped (create mode, duplicates "skip")
    owners_inactive: int = 0  # rows (not refused) given to an inactive user of their owner's name (create_owners)
    owners_created: int = 0  # distinct unknown owner names that become new inactive users
    orphans_rejected: int = 0  # rows refused because their customer cell is empty (orphans=reject)
    orphans_placeholder: int = 0  # rows (not refused) attached to a placeholder customer of their own
    orphans_lead: int = 0  # rows (not refused) made into a prospect customer of their own
    new_owner_names: set[str] = field(default_factory=set, repr=False)  # case-folded, for owners_created
    # a dry run's: the data-quality checks the written rows would break (suite, check, new violations, examples)
    quality: list[dict[str, Any]] | None = None

    @property
    def success(self) -> bool:
        """True when every row passed every expectation."""
        return not self.failures

    @property
    def rejected_count(self) -> int:
        """Rows that failed at least one expectation."""
        return len(self.rejected)

    def reasons(self, row_number: int, lang: str) -> str:
        """Why a row was refused, in ``lang``."""
        return "; ".join(reason_text(key, params, lang) for key, params in self.rejected.get(row_number, []))

    def as_dict(self) -> dict[str, Any]:
        """Stored on ``import_runs.validation_result``."""
        return {
            "success": self.success,
            "rows_read": self.rows_read,
            "expectations": self.expectations,
            "rejected": self.rejected_count,
            "duplicates_in_file": self.duplicates_in_file,
            "matches_in_database": self.matches_in_database,
            "duplicates_blocked": self.duplicates_blocked,
            "regions_mapped": self.regions_mapped,
            "regions_ambiguous": self.regions_ambiguous,
            "regions_not_found": self.regions_not_found,
            "owners_fallback": self.owners_fallback,
            "would_create": self.would_create,
            "would_update": self.would_update,
            "would_skip": self.would_skip,
            "owners_inactive": self.owners_inactive,
            "owners_created": self.owners_created,
            "orphans_rejected": self.orphans_rejected,
            "orphans_placeholder": self.orphans_placeholder,
            "orphans_lead": self.orphans_lead,
            "failures": [failure.as_dict() for failure in self.failures],
            **({"quality": self.quality} if self.quality is not None else {}),
        }


REPORT_COUNTS = ("duplicates_blocked", "regions_mapped", "regions_ambiguous", "regions_not_found", "owners_fallback",
                 "owners_inactive", "owners_created", "orphans_rejected", "orphans_placeholder", "orphans_lead")
"""The report's issue-17/18 counts an import's result carries too (the dry run's carries the whole report)."""


@dataclass
class ImportResult:
    """What an import did."""

    run_id: int
    status: str  # imported / partial / rejected / failed
    rows_read: int
    created: int = 0
    updated: int = 0
    skipped: int = 0
    rejected: int = 0
    report: ValidationReport | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """The CLI's ``--json`` object."""
        return {
            "status": self.status,
            "rows_read": self.rows_read,
            "created": self.created,
            "updated": self.updated,
            "skipped": self.skipped,
            "rejected": self.rejected,
            "run_id": self.run_id,
            "failures": [failure.as_dict() for failure in (self.report.failures if self.report else [])],
            **({key: self.report.as_dict()[key] for key in REPORT_COUNTS} if self.report else {}),
            **({"error": self.error} if self.error else {}),
        }


@dataclass
class RevertResult:
    """What reverting a run undid."""

    run_id: int
    deleted: int = 0
    restored: int = 0
    conflicts: int = 0
    consent_reverted: int = 0  # ledger entries appended: the grant that held before the run, or a withdrawal
    consent_kept: int = 0  # withdrawals the run recorded that still hold: they stay (consent needs new proof)

    def as_dict(self) -> dict[str, Any]:
        """The job's result (and the CLI's ``--json``)."""
        return {"status": "reverted", "run_id": self.run_id, "deleted": self.deleted, "restored": self.restored,
                "conflicts": self.conflicts, "consent_reverted": self.consent_reverted,
                "consent_kept": self.consent_kept}


def field_label(name: str, lang: str) -> str:
    """A field's label: the core ``field.*`` key when there is one, else ``imports.field.*``."""
    if f"field.{name}" in catalog(lang):
        return t(f"field.{name}", lang)
    label = t(f"imports.field.{name}", lang)
    return name if label == f"imports.field.{name}" else label


def reason_text(key: str, params: dict[str, Any], lang: str) -> str:
    """A failure reason in ``lang``, with the field named by its label."""
    if params.get("field"):
        field_name = str(params["field"])
        params = {**params, "field": field_label(field_name, lang)}
        prefix = {"lifecycle_stage": "stage.", "kind": "kind."}.get(field_name)
        if prefix and params.get("choices"):
            # the stored values in the user's words: 潜客, 意向客户 … rather than prospect, intent …
            params["choices"] = ", ".join(
                t(prefix + choice.strip(), lang) for choice in str(params["choices"]).split(",")
            )
    return t(key, lang, **params)


ANALYZE_AFTER_ROWS = 10_000
"""An import that writes at least this many rows refreshes the planner's statistics (ANALYZE) after it commits."""


def _require_importer(actor: Actor) -> None:
    if actor.role not in (Role.ADMIN, Role.MANAGER):
        raise AccessDenied("only admins and managers import")


def history_mapped(entity: str, mapping: ImportMapping) -> list[str]:
    """The fields of the past (created, closed, completed …) the mapping fills (see ``HISTORY_FIELDS``)."""
    mapped = mapping.field_to_column()
    return [name for name in HISTORY_FIELDS.get(entity, ()) if name in mapped]


def check_history(actor: Actor, entity: str, mapping: ImportMapping) -> None:
    """Only an admin writes the past: a mapping filling a history field is refused to anyone else."""
    history = history_mapped(entity, mapping)
    if history and not actor.is_admin:
        raise ImportNotAllowed("imports.error.history_admin", fields=", ".join(history))


# --- one route: judge each chunk, then write it ----------------------------------------


class _Steps:
    """The caller's ``progress`` with the file's row count; remembers whether the caller stopped the import."""

    def __init__(self, progress: Progress | None, total: int | None, message_key: str) -> None:
        self.progress, self.total, self.message_key = progress, total, message_key
        self.stopped = False

    def done(self, rows: int, *, last: bool = False) -> None:
        """``rows`` rows of the file are handled; ``last``: all of them (the total is exact from now on)."""
        if self.progress is None:
            return
        total = rows if last or (self.total is not None and rows > self.total) else self.total
        try:
            self.progress(rows, total, self.message_key)
        except BaseException:
            self.stopped = True
            raise


def missing_custom_fields(session: Session, actor: Actor, entity: str, mapping: ImportMapping) -> list[str]:
    """The custom fields the mapping names that do not exist yet, which the import will create as text fields.

    Raises ImportNotAllowed when it may not: the importer is not an admin, or a name is one the custom
    fields page would refuse. The dry run asks too, so a bad name is told before anything runs."""
    if entity not in CUSTOM_FIELD_ENTITIES or not mapping.custom_columns():
        return []
    existing = set(session.scalars(select(FieldDefinition.name).where(
        FieldDefinition.entity == CUSTOM_FIELD_ENTITIES[entity])))
    missing = [name for name in mapping.custom_columns() if name not in existing]
    if missing and not actor.is_admin:
        raise ImportNotAllowed("imports.error.custom_field_admin", fields=", ".join(missing))
    refused = [name for name in missing if not valid_field_name(name)]
    if refused:  # the admin page would refuse these names: the import creates none of them
        raise ImportNotAllowed("imports.error.custom_field_name", fields=", ".join(name[:64] for name in refused))
    return missing


def validate_import(
    db: Database,
    actor: Actor,
    file: ImportFile,
    entity: str,
    mapping: ImportMapping,
    options: ImportOptions | None = None,
    *,
    progress: Progress | None = None,
) -> ValidationReport:
    """Judge the whole file as :func:`run_import` would (a dry run): the report; nothing is written.

    The run's own route, rolled back: the file is judged and its valid rows written (as skip-invalid would) in a
    transaction that never commits, so the verdicts are the run's and ``report.quality`` names the data-quality
    checks of the database suites the written rows would break — measured by the checks' own SQL before and
    after, in that transaction — before anything is kept. (On SQLite that transaction holds the write lock while
    it runs, as an import does.)"""
    options = options or ImportOptions()
    _require_importer(actor)
    check_mapping(entity, mapping, file.headers, options)
    check_history(actor, entity, mapping)
    check_fallback_owner(db, actor, options)
    report = ValidationReport(entity=entity)
    steps = _Steps(progress, count_rows(file), "imports.validating")
    try:
        with db.transaction(actor) as session:
            before = tenant_violations(session, actor.tenant_id)
            run = _new_run(session, actor, file, entity, mapping, options, status="validating")
            _judge_and_write(session, actor, file, entity, mapping, replace(options, policy="skip-invalid"), run,
                             report, steps)
            session.flush()
            report.quality = _quality_forecast(session, actor.tenant_id, before)
            raise _DryRun
    except _DryRun:
        pass  # everything the dry run wrote rolled back with its transaction
    return report


class _DryRun(Exception):
    """A dry run has judged and written the file: what it wrote rolls back."""


def _quality_forecast(session: Session, tenant_id: int, before: dict[tuple[str, str], int]) -> list[dict[str, Any]]:
    """The checks of the database suites with more violations now than ``before``: how many more, and the labels
    of the latest rows breaking each (the import's own, as they are the newest)."""
    forecast = []
    for (suite, check), count in tenant_violations(session, tenant_id).items():
        if count > before.get((suite, check), 0):
            forecast.append({"suite": suite, "check": check, "count": count - before.get((suite, check), 0),
                             "examples": newest_violations(session, tenant_id, check)})
    return forecast


def run_import(
    db: Database,
    actor: Actor,
    file: ImportFile,
    entity: str,
    mapping: ImportMapping,
    options: ImportOptions | None = None,
    *,
    progress: Progress | None = None,
) -> ImportResult:
    """Judge and write the file chunk by chunk in ONE transaction, per ``options.policy``.

    Leaves an ``import_runs`` row: imported, partial (skip-invalid: the valid rows written, the
    refused ones quarantined), rejected (all-or-nothing and a row was refused: nothing written,
    the refused rows quarantined) or failed (an error: nothing written, the error recorded).
    When ``progress`` raises (a cancelled job), the transaction rolls back and the error goes
    on to the caller: nothing of the run is left, not even its ``import_runs`` row.
    """
    options = options or ImportOptions()
    _require_importer(actor)
    check_mapping(entity, mapping, file.headers, options)
    check_history(actor, entity, mapping)
    check_fallback_owner(db, actor, options)
    report = ValidationReport(entity=entity)
    steps = _Steps(progress, count_rows(file), "imports.importing")
    try:
        with db.transaction(actor) as session:
            run = _new_run(session, actor, file, entity, mapping, options, status="validating")
            result = _judge_and_write(session, actor, file, entity, mapping, options, run, report, steps)
            _finish(run, result, report)
        if result.created + result.updated >= ANALYZE_AFTER_ROWS:
            refresh_planner_statistics(db.engine)  # a bulk load: the planner's row counts are stale
        return result
    except _Rejected:
        pass  # all-or-nothing and a row was refused: the writes rolled back with the transaction
    except Exception as error:
        if not steps.stopped:
            _record_failed(db, actor, file, entity, mapping, options, error, report)
        raise
    return _record_rejected(db, actor, file, entity, mapping, options, report)


def _judged_chunks(
    session: Session,
    actor: Actor,
    file: ImportFile,
    entity: str,
    mapping: ImportMapping,
    options: ImportOptions,
    report: ValidationReport,
    steps: _Steps,
    created_keys: set[str],
) -> Generator[tuple[pandas.DataFrame, pandas.DataFrame, set[int]], None, None]:
    """Prepare and judge the file chunk by chunk: per chunk (prepared rows, the file's cells, refused row numbers).

    ``report`` holds the verdicts so far after each chunk and the whole file's at the end.
    Look-ups run in ``session``: in a run, that is the run's transaction, so a row repeating
    an earlier row's key matches the record the earlier chunk wrote (``_match_id``). A unique
    key taken only by a record this run created (``created_keys``: an order whose lines go on
    in this chunk, an SKU the file repeats, reported as a repeat) is not taken: the verdicts
    are the ones a dry run (:func:`validate_import`) gives. Progress is reported when the
    caller asks for the next chunk, i.e. once it has handled (written) this one.
    """
    merged: dict[tuple[str, str | None, str], Failure] = {}
    orders_counted: set[str] = set()
    state = FileState(hard_keys=FirstRows(), match_keys=FirstRows())  # ~20 bytes a key, not ~200
    resolver = Resolver(session, actor)
    for chunk in iter_chunks(file, chunk_size=options.chunk_size):
        prepared = prepare_chunk(chunk, entity=entity, mapping=mapping, options=options, resolver=resolver, state=state)
        if created_keys:
            prepared["_key_taken"] = [
                None if value in created_keys else value for value in prepared["_key_taken"].tolist()
            ]
        result = run_suite(entity, prepared)
        repeats = prepared["_duplicate_of_row"].notna()
        report.expectations = len(result.outcomes)
        report.rows_read += len(chunk)
        report.duplicates_in_file += int(repeats.sum())
        report.matches_in_database += int((prepared["_match_id"].notna() & ~repeats).sum())
        if "_duplicate_blocked" in prepared.columns:
            report.duplicates_blocked += int(prepared["_duplicate_blocked"].notna().sum())
        if "_region_match" in prepared.columns:
            matched = prepared["_region_match"]
            report.regions_mapped += int((matched == "").sum())
            report.regions_ambiguous += int((matched == "ambiguous").sum())
            report.regions_not_found += int((matched == "not_found").sum())
        refused: set[int] = set()
        for outcome in result.failures:
            refused.update(_merge_failure(merged, report, outcome))
        if "_duplicate_blocked" in prepared.columns:
            _name_blocked_matches(report, prepared["_duplicate_blocked"], *BLOCKED_DUPLICATE_KEYS[entity])
        if (lead_column := row_rule_column(LEAD_BLOCKED)) in prepared.columns:
            _name_blocked_matches(report, prepared[lead_column], LEAD_BLOCKED, f"{LEAD_BLOCKED}_row")
        if mapping.customer_match != "any" and "customer__unresolved" in prepared.columns:
            _name_customer_key(report, merged, prepared["customer__unresolved"], mapping.customer_match)
        for column, (rule_key, row_key) in VALUE_NAMED_RULES.items():
            if column in prepared.columns:
                _name_row_values(report, prepared[column], rule_key, row_key)
        report.owners_fallback += sum(
            1 for row_number in prepared["_owner_fallback"].dropna().index if int(row_number) not in refused)
        report.owners_inactive += sum(
            1 for row_number in prepared["_owner_inactive"].dropna().index if int(row_number) not in refused)
        for row_number, name in prepared["_owner_new"].dropna().items():
            if int(row_number) not in refused:
                report.new_owner_names.add(str(name).casefold())
        report.owners_created = len(report.new_owner_names)
        for row_number, policy in prepared["_orphan"].dropna().items():
            if policy == "reject":
                report.orphans_rejected += 1
            elif int(row_number) not in refused:
                setattr(report, f"orphans_{policy}", getattr(report, f"orphans_{policy}") + 1)
        report.failures = list(merged.values())
        _forecast(report, prepared, refused, entity, options, orders_counted)
        yield prepared, chunk, refused
        steps.done(report.rows_read)
    if report.rows_read == 0:
        from crm_core.errors import ImportFileRefused

        raise ImportFileRefused("imports.error.no_rows")
    steps.done(report.rows_read, last=True)


def _forecast(report: ValidationReport, prepared: pandas.DataFrame, refused: set[int], entity: str,
              options: ImportOptions, orders_counted: set[str]) -> None:
    """Count what the writer (``_Writer.write``) would do with the chunk's valid rows: create, update (link to a
    record the tenant has, or fold into an earlier row's) or skip. Orders count orders, not lines."""
    valid = prepared.loc[~prepared.index.isin(list(refused))] if refused else prepared
    matched = valid["_match_id"].notna().tolist()
    repeats = valid["_duplicate_of_row"].notna().tolist()
    if entity == "orders":
        for number, match in zip(valid["order_number"].tolist(), matched, strict=True):
            if str(number) in orders_counted:
                continue  # another line of an order counted before (one an earlier chunk may have written)
            orders_counted.add(str(number))
            if match:
                report.would_update += 1
            else:
                report.would_create += 1
        return
    for match, repeat in zip(matched, repeats, strict=True):
        duplicate = match or repeat
        if not duplicate or (options.mode == "create" and options.duplicates == "create"):
            report.would_create += 1
        elif options.mode == "create" and options.duplicates == "skip":
            report.would_skip += 1
        else:
            report.would_update += 1


BLOCKED_DUPLICATE_KEYS = {
    "customers": ("imports.rule.duplicate_blocked", "imports.rule.duplicate_blocked_row"),
    "contacts": ("imports.rule.contact_duplicate_blocked", "imports.rule.contact_duplicate_blocked_row"),
}
"""Per entity: the message of the suite's blocked-duplicate expectation, and the one a refused row gets."""


def _name_blocked_matches(report: ValidationReport, blocked: Any, rule_key: str, row_key: str) -> None:
    """A row a blocking duplicate rule refused (the suite's ``rule_key``) says which key matched and whose customer
    it is (a contact's customer), in ``row_key``, or which row."""
    for row_number, match in blocked.dropna().items():
        field_name, _, whose = str(match).partition(": ")  # "<key>: <owner>" or "<key>: = <row>" (prepare)
        if whose.startswith("= "):
            reason = ("imports.rule.duplicate_blocked_in_file", {"field": field_name, "row": whose[2:]})
        else:
            reason = (row_key, {"field": field_name, "owner": whose})
        report.rejected[int(row_number)] = [
            reason if key == rule_key else (key, params)
            for key, params in report.rejected.get(int(row_number), [])
        ]


UNRESOLVED_CUSTOMER = "imports.rule.unresolved_customer"


def _name_customer_key(
    report: ValidationReport, merged: dict[tuple[str, str | None, str], Failure], unresolved: Any, match: str
) -> None:
    """A file whose customer column holds one kind of key (external ID, email or name) says which in the failure,
    and each refused row names its value: ``imports.rule.unresolved_customer_<kind>`` (``…_row``)."""
    for failure in merged.values():
        if failure.message_key == UNRESOLVED_CUSTOMER:
            failure.message_key = f"{UNRESOLVED_CUSTOMER}_{match}"
    row_key = f"{UNRESOLVED_CUSTOMER}_{match}_row"
    for row_number, value in unresolved.dropna().items():
        report.rejected[int(row_number)] = [
            (row_key, {"field": params.get("field") or "customer", "value": str(value)})
            if key == UNRESOLVED_CUSTOMER else (key, params)
            for key, params in report.rejected.get(int(row_number), [])
        ]


VALUE_NAMED_RULES = {
    "deal__unresolved": ("imports.rule.unresolved_deal", "imports.rule.unresolved_deal_row"),
    "contact__unresolved": ("imports.rule.unresolved_contact", "imports.rule.unresolved_contact_row"),
    "deal__other_customer": ("imports.rule.other_customer_deal", "imports.rule.other_customer_deal_row"),
    "contact__other_customer": ("imports.rule.other_customer_contact", "imports.rule.other_customer_contact_row"),
    "external_id__taken": ("imports.rule.external_id_taken", "imports.rule.external_id_taken_row"),
    row_rule_column("imports.rule.stage_transition_refused"): (
        "imports.rule.stage_transition_refused", "imports.rule.stage_transition_refused_row"),
    row_rule_column("imports.rule.closed_date_fixed"): (
        "imports.rule.closed_date_fixed", "imports.rule.closed_date_fixed_row"),
}
"""Companion column → (the suite's message, the message a refused row gets naming its value: “OPP-9”)."""


def _name_row_values(report: ValidationReport, marked: Any, rule_key: str, row_key: str) -> None:
    """Each row ``rule_key`` refused says which value it looked for (``row_key`` with ``value``)."""
    for row_number, value in marked.dropna().items():
        report.rejected[int(row_number)] = [
            (row_key, {**params, "value": str(value)}) if key == rule_key else (key, params)
            for key, params in report.rejected.get(int(row_number), [])
        ]


def check_fallback_owner(db: Database, actor: Actor, options: ImportOptions) -> None:
    """Refuse a fallback owner that names no active user the importer may give records to
    (``imports.error.fallback_owner``), and new inactive users for unknown owners asked by anyone but an admin
    (``imports.error.create_owners_admin``) or together with a fallback owner (``imports.error.owner_choices``):
    before anything is queued or written."""
    if options.create_owners and not actor.is_admin:
        raise ImportNotAllowed("imports.error.create_owners_admin")
    if options.create_owners and options.fallback_owner:
        raise ImportNotAllowed("imports.error.owner_choices")
    if options.fallback_owner is None:
        return
    with db.session(actor) as session:
        Resolver(session, actor).fallback_owner(options)


def _merge_failure(
    merged: dict[tuple[str, str | None, str], Failure], report: ValidationReport, outcome: ExpectationOutcome
) -> list[int]:
    """Add ``outcome`` to the file's failures; the row numbers it refused."""
    params = {key: value for key, value in outcome.params.items() if key not in ("regex",)}
    field_name = params.get("field") or outcome.column
    key = (outcome.expectation, outcome.column, outcome.message_key)
    failure = merged.get(key)
    if failure is None:
        failure = merged[key] = Failure(
            outcome.expectation, outcome.column, field_name, 0, [], [], outcome.message_key, params
        )
    failure.count += outcome.unexpected_count
    rows = [int(row) for row in outcome.unexpected_rows]
    room = MAX_ROWS_KEPT - len(failure.rows)
    if room > 0:
        failure.rows.extend(rows[:room])
    for example in outcome.examples:
        if example not in failure.examples and len(failure.examples) < 20:
            failure.examples.append(example)
    reason = (outcome.message_key, params)
    for row in rows:
        report.rejected.setdefault(row, []).append(reason)
    return rows


class _Rejected(Exception):
    """All or nothing, and the file has a refused row: what was written rolls back."""


def _judge_and_write(
    session: Session,
    actor: Actor,
    file: ImportFile,
    entity: str,
    mapping: ImportMapping,
    options: ImportOptions,
    run: ImportRun,
    report: ValidationReport,
    steps: _Steps,
) -> ImportResult:
    """Each chunk judged, then its valid rows written and its refused rows quarantined, in ``session``'s transaction.

    Under all-or-nothing, the first refused row stops the writing; the rest of the file is
    still judged (for the report), then :class:`_Rejected` rolls the transaction back.
    """
    session.info[access.AUDIT_TAG_KEY] = {"_import_run": [None, run.id]}
    if history := history_mapped(entity, mapping):
        # what the run changed by ORM (updates, the customers' last contact) may hold imported history
        session.info[access.AUDIT_TAG_KEY]["_imported_history"] = [None, history]
    writer = _Writer(session, actor, entity, mapping, options, run.id)
    stop_at_refusal = options.policy == "all-or-nothing"
    judged = _judged_chunks(session, actor, file, entity, mapping, options, report, steps, writer.created_keys)
    with closing(judged) as chunks:
        with writer.fulltext_deferred():
            for prepared, chunk, refused in chunks:
                if stop_at_refusal and report.failures:
                    break
                valid, quarantined = _writable(prepared, chunk, refused)
                writer.write(valid)
                _store_rejected(session, actor, run.id, report, quarantined)
            writer.finish()
        for _ in chunks:  # only after a break: the rest of the file, judged for the report
            pass
    if stop_at_refusal and report.failures:
        raise _Rejected
    return ImportResult(
        run_id=run.id,
        status="partial" if report.rejected_count else "imported",
        rows_read=report.rows_read,
        created=writer.created,
        updated=writer.updated,
        skipped=writer.skipped,
        rejected=report.rejected_count,
        report=report,
    )


def _record_rejected(
    db: Database,
    actor: Actor,
    file: ImportFile,
    entity: str,
    mapping: ImportMapping,
    options: ImportOptions,
    report: ValidationReport,
) -> ImportResult:
    """A ``rejected`` run and its refused rows (cells from a re-read of the file), in a transaction of their own."""
    with db.transaction(actor) as session:
        run = _new_run(session, actor, file, entity, mapping, options, status="rejected")
        for chunk in iter_chunks(file, chunk_size=options.chunk_size):
            refused = [number for number in chunk.index.tolist() if number in report.rejected]
            _store_rejected(session, actor, run.id, report, _quarantined(chunk, refused))
        result = ImportResult(
            run_id=run.id, status="rejected", rows_read=report.rows_read, rejected=report.rejected_count, report=report
        )
        _finish(run, result, report)
    return result


Quarantined = list[tuple[int, dict[str, str]]]
"""Refused rows of a chunk: (row number, the file's cells by header)."""

# companion columns only the suites read: not passed to the writer
_SUITE_ONLY_SUFFIXES = ("__invalid", "__unresolved", "__missing", "__repeated", "__taken", "__other_customer")
_SUITE_ONLY_COLUMNS = {"_duplicate_in_file", "_key_taken", "_match_missing", "_extra_fields", "_total_overflow",
                       "_duplicate_blocked", "_region_match", "_owner_fallback", "_owner_inactive"}


def _quarantined(chunk: pandas.DataFrame, refused: Iterable[int]) -> Quarantined:
    rows = chunk[chunk.index.isin(list(refused))]
    if rows.empty:
        return []
    return [
        (int(number), {str(k): str(v) for k, v in row.items() if k != EXTRA_COLUMN or v})
        for number, row in rows.iterrows()
    ]


def _writable(
    prepared: pandas.DataFrame, chunk: pandas.DataFrame, refused: set[int]
) -> tuple[pandas.DataFrame, Quarantined]:
    """A judged chunk's valid prepared rows (without the suites' companion columns) and its refused cells."""
    columns = [
        column
        for column in prepared.columns
        if column not in _SUITE_ONLY_COLUMNS and not column.endswith(_SUITE_ONLY_SUFFIXES)
        and not column.startswith("_rule_")
    ]
    valid = prepared.loc[~prepared.index.isin(list(refused)), columns] if refused else prepared[columns]
    return valid, _quarantined(chunk, refused) if refused else []


def _new_run(
    session: Session,
    actor: Actor,
    file: ImportFile,
    entity: str,
    mapping: ImportMapping,
    options: ImportOptions,
    *,
    status: str,
) -> ImportRun:
    run = ImportRun(
        user_id=actor.user_id,
        entity=entity,
        file_name=file.name[:255],
        file_hash=file.sha256,
        mapping={
            **mapping.as_dict(),
            "duplicates": options.duplicates,
            "fallback_owner": options.fallback_owner,
            "create_owners": options.create_owners,
            "orphans": options.orphans,
            "encoding": file.encoding_label,
            "delimiter": file.delimiter,
            MADE_RECORDED: True,
        },
        mode=options.mode,
        policy=options.policy,
        status=status,
    )
    session.add(run)
    session.flush()
    return run


def _finish(run: ImportRun, result: ImportResult, report: ValidationReport) -> None:
    run.status = result.status
    run.rows_read = result.rows_read
    run.created_count = result.created
    run.updated_count = result.updated
    run.skipped_count = result.skipped
    run.rejected_count = result.rejected
    run.validation_result = report.as_dict()
    run.finished_at = utcnow()


def _record_failed(
    db: Database,
    actor: Actor,
    file: ImportFile,
    entity: str,
    mapping: ImportMapping,
    options: ImportOptions,
    error: Exception,
    report: ValidationReport,
) -> None:
    """A ``failed`` run in a transaction of its own (the run's own rolled back with everything else)."""
    with db.transaction(actor) as session:
        run = _new_run(session, actor, file, entity, mapping, options, status="failed")
        run.rows_read = report.rows_read
        run.validation_result = {
            **report.as_dict(),
            "error": getattr(error, "message_key", None) or type(error).__name__,
        }
        run.finished_at = utcnow()


def _store_rejected(session: Session, actor: Actor, run_id: int, report: ValidationReport, rows: Quarantined) -> None:
    """Quarantine refused rows (cells and reasons) with the run."""
    now = utcnow()
    insert_rows(
        session,
        ImportRejectedRow.__table__,  # type: ignore[arg-type]
        [
            (actor.tenant_id, run_id, row_number, [[key, params] for key, params in report.rejected[row_number]],
             data, now, now)
            for row_number, data in rows
        ],
        columns=("tenant_id", "import_run_id", "row_number", "reasons", "data", "created_at", "updated_at"),
    )


def _records(frame: pandas.DataFrame, *, leave_out: Collection[str] = ()) -> list[dict[str, Any]]:
    """The rows of ``frame`` as dicts, built from its column lists (what ``to_dict("records")`` gives, cheaper)."""
    names = [str(name) for name in frame.columns if name not in leave_out]
    columns = [frame[name].tolist() for name in names]
    return [dict(zip(names, values, strict=True)) for values in zip(*columns, strict=True)]


def _none(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, float) and value != value:  # NaN
        return None
    return value


def _money(value: Any) -> Decimal | None:
    value = _none(value)
    return None if value is None else Decimal(str(round(float(value), 2)))


def _datetime(value: Any) -> dt.datetime | None:
    value = _none(value)
    return None if value is None else dt.datetime.fromisoformat(str(value))


def _date(value: Any) -> dt.date | None:
    value = _none(value)
    return None if value is None else dt.date.fromisoformat(str(value)[:10])


# a column each table's rows carry, returned beside the id to prove the id ↔ row pairing
_PAIRING_COLUMN: dict[Any, str] = {
    Customer: "name",
    Contact: "name",
    Product: "name",  # the SKU is optional
    Opportunity: "name",
    Order: "order_number",
    Activity: "customer_id",
    Task: "title",
    OrderLine: "product_id",
    OpportunityLine: "product_id",
}


def _insert_returning_ids(session: Session, model: Any, rows: list[dict[str, Any]]) -> list[int]:
    """Insert ``rows`` of ``model``; their new ids in row order (see :func:`.bulk.insert_returning_ids`)."""
    return insert_returning_ids(session, model.__table__, rows, _PAIRING_COLUMN[model])


NO_LOGIN = "!imported-owner: no password"
"""The password hash of a user made for an unknown owner: no bcrypt hash, so no password ever matches it."""
_NO_CUSTOM_FIELDS: dict[str, Any] = {}  # shared by the rows without any (never changed in place): JSON-encoded once
_CLOSING = "_closing"  # a deal row's changes: (close day, lost reason, won reason) as the file gives them
MADE = "made"
MADE_RECORDED = "records_made"  # on a run's stored mapping: the run records what the rules made (decision 0053)
"""The run records' action of rows the services' rules made for the run's records (the follow-up tasks of its new
customers, its consent entries): not rows of the file (``created``), but the run's, for its revert."""


def _field(record: Any, name: str) -> Any:
    """A column of a record, or of the values of a record not inserted yet (a dict)."""
    return record.get(name) if isinstance(record, dict) else getattr(record, name)


class _Writer:
    """Writes prepared rows of one entity for one run, chunk by chunk, inside the caller's transaction."""

    def __init__(
        self, session: Session, actor: Actor, entity: str, mapping: ImportMapping, options: ImportOptions, run_id: int
    ) -> None:
        self.session = session
        self.actor = actor
        self.entity = entity
        self.mapping = mapping
        self.options = options
        self.run_id = run_id
        self.created = self.updated = self.skipped = 0
        self.mapped = set(mapping.field_to_column())
        self.orders: dict[str, int] = {}  # order number → id of an order this run created
        self.created_keys: set[str] = set()  # unique keys (TAKEN_IN_DB: SKU, order number) of records this run created
        self._fulltext: tuple[Any, list[FullTextIndex]] | None = None  # (raw cursor, indexes) while deferred
        # what the services do after a write, done once at the end of the run (see finish)
        self.touched_customers: set[int] = set()  # whose deals, orders or activities this run wrote
        self.touched_deals: set[int] = set()  # whose product lines this run wrote (their amounts follow, at the end)
        self.line_positions: dict[int, int] = {}  # deal id → the position of its last line (read once per deal)
        self.contacted: dict[int, dt.datetime] = {}  # customer id → its latest imported activity
        self._stages: dict[int, pipeline_rules.StageInfo] | None = None
        self._first_open: dict[int, pipeline_rules.StageInfo | None] = {}
        self.now = utcnow()
        # unknown owners made inactive users (options.create_owners): case-folded name → the new user's id
        self.new_owners: dict[str, int] = {}
        self.owner_field = next((spec.name for spec in fields_of(entity) if spec.target == "owner"), None)
        # "@<email>", "tel:<phone>" a customer holds or a lead of this run took (a second lead goes without)
        self.lead_emails: set[str] = set()
        self._ensure_custom_fields()

    # -- the tenant's stages (the deal rules need their kinds) ----------------------------
    def stage(self, stage_id: Any) -> pipeline_rules.StageInfo | None:
        """The stage ``stage_id`` (None when blank or unknown)."""
        if self._stages is None:
            self._stages = {
                row.id: pipeline_rules.StageInfo(row.id, row.pipeline_id, row.position, row.kind, row.probability)
                for row in self.session.execute(
                    select(PipelineStage.id, PipelineStage.pipeline_id, PipelineStage.position, PipelineStage.kind,
                           PipelineStage.probability)
                )
            }
        stage_id = _none(stage_id)
        return None if stage_id is None else self._stages.get(int(stage_id))

    def first_open(self, pipeline_id: int) -> pipeline_rules.StageInfo | None:
        """Where a deal of ``pipeline_id`` starts (the first open stage)."""
        if pipeline_id not in self._first_open:
            self.stage(None)
            assert self._stages is not None
            self._first_open[pipeline_id] = pipeline_rules.first_open_stage(
                [stage for stage in self._stages.values() if stage.pipeline_id == pipeline_id])
        return self._first_open[pipeline_id]

    @contextmanager
    def fulltext_deferred(self) -> Iterator[None]:
        """On SQLite, index new rows in full-text search once per chunk instead of row by row.

        The per-row FTS5 insert trigger costs more than the rest of a bulk insert together
        (100,000 customers: ~9 s against ~2 s). It is dropped inside this run's transaction
        (no other connection ever sees it missing; a rollback restores it) and recreated on
        the way out; each chunk's new rows are indexed right after their insert, so an update
        later in the same run (whose trigger deletes the old entry) finds them indexed.
        Other databases index through their own means: nothing to do there.
        """
        connection = self.session.connection()
        indexes = fulltext_indexes([MODELS[self.entity].__table__.name])
        if connection.dialect.name != "sqlite" or not indexes:
            yield
            return
        cursor = connection.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            with insert_triggers_dropped(cursor, indexes):
                self._fulltext = (cursor, indexes)
                yield
        finally:
            self._fulltext = None
            cursor.close()

    def _index_fulltext(self, ids: list[int]) -> None:
        """Index the rows just inserted (all ids from the smallest: the run holds the write lock)."""
        if self._fulltext is None or not ids:
            return
        cursor, indexes = self._fulltext
        for index in indexes:
            index_rows_from(cursor, index, min(ids))

    # -- values per entity --------------------------------------------------------
    def values(self, row: dict[str, Any]) -> dict[str, Any]:
        """Column values for a new record of the entity (defaults as the hand-made forms use)."""
        actor, entity = self.actor, self.entity
        if entity == "customers":
            owner_id = _none(row.get("owner_id"))
            team_id = None
            if owner_id is None and actor.team_ids and not actor.sees_whole_tenant:
                team_id = min(actor.team_ids)  # an unowned record stays visible to the importer's team
            return {
                "name": row["name"],
                "name_key": company_key(row["name"]) or None,
                "kind": row.get("kind") or "company",
                "industry": row.get("industry"),
                "region": row.get("region"),
                "source": row.get("source"),
                "owner_id": owner_id,
                "team_id": team_id,
                "lifecycle_stage": row.get("lifecycle_stage") or "prospect",
                "tags": row.get("tags") or "",
                "email": row.get("email"),
                "email_normalized": normalise_email(row.get("email")),
                "phone": row.get("phone"),
                "phone_normalized": normalise_phone(row.get("phone")),
                "external_id": row.get("external_id"),
                "custom_fields": row.get("_custom") or _NO_CUSTOM_FIELDS,
                "credit_code": row.get("credit_code"),
                "province_code": row.get("province_code"),
                "city_code": row.get("city_code"),
                "district_code": row.get("district_code"),
                "created_at": _datetime(row.get("created_at")),
                "_history": self._history(row),
            }
        if entity == "contacts":
            return {
                "customer_id": row["customer_id"],
                "name": row["name"],
                "title": row.get("title"),
                "email": row.get("email"),
                "email_normalized": normalise_email(row.get("email")),
                "phone": row.get("phone"),
                "phone_normalized": normalise_phone(row.get("phone")),
                "is_primary": bool(_none(row.get("is_primary")) or False),
                "external_id": row.get("external_id"),
            }
        if entity == "products":
            active = _none(row.get("is_active"))
            return {
                "sku": _none(row.get("sku")),
                "name": row["name"],
                "unit_price": _money(row.get("unit_price")) or Decimal("0"),
                "currency": row.get("currency") or "CNY",
                "is_active": True if active is None else bool(active),
                "external_id": row.get("external_id"),
            }
        if entity == "opportunities":
            probability = _none(row.get("probability"))
            deal = {
                "name": row["name"],
                "customer_id": row["customer_id"],
                "owner_id": _none(row.get("owner_id")) or actor.user_id,
                "pipeline_id": row.get("pipeline_id"),
                "stage_id": row.get("stage_id"),
                "amount": _money(row.get("amount")) or Decimal("0"),
                "currency": row.get("currency") or "CNY",
                "probability": None if probability is None else int(probability),  # None: the stage's
                "expected_close_date": _date(row.get("expected_close_date")),
                "product_id": _none(row.get("product_id")),
                "external_id": row.get("external_id"),
                "created_at": _datetime(row.get("created_at")),
                "_history": self._history(row),
            }
            stage = self.stage(deal["stage_id"])
            if stage is not None:
                # as the deal service leaves a deal in this stage: close date, reasons, no hand-set
                # probability once closed, and the stage it was lost from (its synthesised history)
                first_open = self.first_open(stage.pipeline_id)
                deal.update(pipeline_rules.stage_columns(
                    stage, from_stage_id=None if first_open is None else first_open.id,
                    lost_reason=_none(row.get("lost_reason")), won_reason=_none(row.get("won_reason")),
                    closed_on=_date(row.get("closed_at")), now=self.now,
                ))
                if deal["created_at"] is None and _none(row.get("closed_at")) is not None:
                    deal["created_at"] = deal["closed_at"]  # closed in the past, opened then (no date of its own)
            return deal
        if entity == "orders":
            return {
                "order_number": row["order_number"],
                "customer_id": row["customer_id"],
                "owner_id": _none(row.get("owner_id")) or actor.user_id,
                "status": row.get("status") or "confirmed",
                "ordered_at": _datetime(row.get("ordered_at")) or utcnow(),
                "currency": row.get("currency") or "CNY",
                "total_amount": Decimal("0"),
                "external_id": row.get("external_id"),
                "opportunity_id": _none(row.get("deal_id")),
            }
        if entity == "activities":
            return {
                "type": row.get("type") or "note",
                "customer_id": row["customer_id"],
                "author_id": _none(row.get("author_id")) or actor.user_id,
                "occurred_at": _datetime(row.get("occurred_at")) or utcnow(),
                "summary": row.get("summary") or "",
                "contact_id": _none(row.get("contact_id")),
                "opportunity_id": _none(row.get("deal_id")),
            }
        if entity == "deal_lines":
            deal_id = int(row["deal_id"])
            price = _none(row.get("unit_price"))
            if price is None:
                price = _none(row.get("product_price")) or 0  # the product's list price, as on the form
            quantity = _money(_none(row.get("quantity")) or 1) or Decimal("1")
            unit_price = _money(price) or Decimal("0.00")
            return {
                "opportunity_id": deal_id,
                "product_id": row["product_id"],
                "quantity": quantity,
                "unit_price": unit_price,
                "line_total": line_total(quantity, unit_price),  # rounded as the service and an order's lines
            }
        if entity == "tasks":
            completed_at = _datetime(row.get("completed_at"))
            status = row.get("status") or (TaskStatus.DONE.value if completed_at else TaskStatus.OPEN.value)
            return {
                "title": row["title"],
                "customer_id": _none(row.get("customer_id")),
                "assignee_id": _none(row.get("assignee_id")) or actor.user_id,
                "created_by_id": actor.user_id,
                "due_at": _datetime(row.get("due_at")),
                "status": status,
                "priority": row.get("priority") or "normal",
                "completed_at": (completed_at or self.now) if status == TaskStatus.DONE.value else None,
                "opportunity_id": _none(row.get("deal_id")),
                "_history": self._history(row),
            }
        raise ImportNotAllowed("imports.error.unknown_entity", entity=entity, entities="")

    def _last_position(self, deal_id: int) -> int:
        """The position of the deal's last line: this run's, else the database's (0 when it has none)."""
        if deal_id not in self.line_positions:
            last = self.session.scalar(select(func.max(OpportunityLine.position))
                                       .where(OpportunityLine.opportunity_id == deal_id))
            self.line_positions[deal_id] = int(last or 0)
        return self.line_positions[deal_id]

    def _history(self, row: dict[str, Any]) -> list[str]:
        """The fields of the past the row fills (flagged in its audit event)."""
        return [name for name in HISTORY_FIELDS.get(self.entity, ()) if _none(row.get(name)) is not None]

    def changes(self, row: dict[str, Any]) -> dict[str, Any]:
        """The values an update sets: only mapped fields with a value (a blank cell never erases)."""
        full = self.values(row)
        fields = set()
        for name in self.mapped:
            fields |= {name, f"{name}_id", f"{name}_normalized"}
        if "stage" in self.mapped:
            fields |= {"pipeline_id"}
        if "deal" in self.mapped:
            fields |= {"opportunity_id"}
        if self.entity == "customers" and "region" in self.mapped:
            fields |= {"province_code", "city_code", "district_code"}  # read from the region text
        changes = {
            key: value
            for key, value in full.items()
            if key in fields and value is not None and value != "" and key != "team_id"
        }
        if self.entity == "customers" and row.get("_custom"):
            changes["custom_fields"] = row["_custom"]
        if self.entity == "orders":
            changes.pop("total_amount", None)
        if self.entity == "opportunities":
            # what the row says about closing; the columns it makes depend on where the deal stands (_deal_changes)
            for key in pipeline_rules.STAGE_COLUMNS:
                changes.pop(key, None)
            if _none(row.get("stage")) is None:  # a blank stage cell leaves the deal in its stage
                changes.pop("stage_id", None)
                changes.pop("pipeline_id", None)
            if _none(row.get("created_at")) is None:  # a new deal's opening defaults to its close day; a deal's stays
                changes.pop("created_at", None)
            changes[_CLOSING] = (_date(row.get("closed_at")), _none(row.get("lost_reason")),
                                 _none(row.get("won_reason")))
        return changes

    # -- one chunk ------------------------------------------------------------------
    def write(self, frame: pandas.DataFrame) -> None:
        """Create, update or skip every row of a prepared, valid chunk."""
        self.now = utcnow()
        if self.entity == "orders":
            self._write_orders(frame)
            return
        pending: list[dict[str, Any]] = []  # new records' values, and the file rows they come from
        pending_rows: list[int] = []
        pending_keys: dict[tuple[str, str], int] = {}
        updates: dict[int, list[tuple[int, dict[str, Any]]]] = {}  # record id → (row, changes) in file order
        # match keys are checked against the mapping (MATCH_KEYS), and the prepared frame has every field
        keys = [key for key in self.mapping.match_on if key in frame.columns and key in MATCH_COLUMNS[self.entity]]
        # a new record's keys, read from its values (the normalised email and phone are computed there)
        key_columns = [(key, MATCH_COLUMNS[self.entity][key][1].key) for key in keys]
        # rows without a custom field hold plain values only: the garbage collector leaves such dicts alone
        plain = () if self.mapping.custom_columns() else ("_custom",)
        sources: list[dict[str, Any]] = []  # the file row each pending record comes from
        consents: list[tuple[int | None, int | None, dict[str, Any]]] = []  # (record, or pending position, row)
        for row_number, row in zip(frame.index.tolist(), _records(frame, leave_out=plain), strict=True):
            self._give_new_owner(row)
            pending_index = None
            # the record the row matches, looked up in this run's transaction: one an earlier chunk
            # wrote included (keys tried in the mapping's order; the lowest id wins)
            target = _none(row.get("_match_id"))
            if target is not None:
                target = int(target)
            if pending_keys and _none(row.get("_duplicate_of_row")) is not None:
                # it repeats a key of an earlier row, which may be a row of this chunk not inserted yet
                for key in keys:
                    value = match_value(self.entity, key, _none(row.get(key)))
                    if value and (key, value) in pending_keys:
                        pending_index = pending_keys[(key, value)]
                        break
            is_duplicate = target is not None or pending_index is not None
            mode = self.options.mode
            if mode == "create" and is_duplicate and self.options.duplicates == "skip":
                self.skipped += 1
                continue
            if is_duplicate and (mode != "create" or self.options.duplicates == "merge"):
                if pending_index is not None:
                    # folded into a record an earlier row of this chunk creates: 'updated' when it
                    # changes a value of that row, 'skipped' when it repeats it (every row counts once)
                    merged = pending[pending_index]
                    changed = False
                    row_changes = self.changes(row)
                    if self.entity == "opportunities":  # a new deal's stage, as the file's later row leaves it
                        row_changes = self._deal_changes(merged, row_changes, None)
                    for key, change in row_changes.items():
                        if key == "custom_fields":
                            change = {**(merged.get(key) or {}), **change}
                        changed = changed or merged.get(key) != change
                        merged[key] = change
                    if changed:
                        self.updated += 1
                    else:
                        self.skipped += 1
                    self._note_consent(consents, row, None, pending_index)
                    continue
                assert target is not None
                updates.setdefault(target, []).append((row_number, self.changes(row)))
                self._note_consent(consents, row, target, None)
                continue
            values = self.values(row)
            position = len(pending)
            self._note_consent(consents, row, None, position)
            for key, column in key_columns:
                value = values[column]
                if value is not None and value != "":
                    pending_keys.setdefault((key, str(value)), position)
            pending.append(values)
            pending_rows.append(row_number)
            sources.append(row)
        self._attach_orphans(
            [(row_number, row, values) for row_number, row, values in zip(pending_rows, sources, pending, strict=True)
             if values.get("customer_id") is None and _none(row.get("_orphan")) in ("placeholder", "lead")])
        inserted = self._insert(pending_rows, pending)
        self._update(updates)
        self._write_consent(consents, inserted)

    # -- consent columns (decision 0047) ----------------------------------------------------
    def _note_consent(self, consents: list[tuple[int | None, int | None, dict[str, Any]]], row: dict[str, Any],
                      target: int | None, position: int | None) -> None:
        """Remember a row whose consent column says something, with the record it writes."""
        value = _none(row.get("email_consent"))
        if self.entity in ("customers", "contacts") and value and value != CONSENT_NONE:
            consents.append((target, position, row))

    def _write_consent(self, consents: list[tuple[int | None, int | None, dict[str, Any]]],
                       inserted: list[int]) -> None:
        """One ledger entry per row with a consent column: a grant on its basis or a withdrawal, on the row's email
        (else the record's), proven by this import run (and the source the file names), at the file's date
        (an admin's history) or now."""
        if not consents:
            return
        record_ids = [target if target is not None else inserted[position or 0] for target, position, _ in consents]
        found: dict[int, tuple[int, int | None, str | None]] = {}  # record → (customer, contact, email)
        for start in range(0, len(record_ids), 500):
            batch = sorted(set(record_ids[start:start + 500]))
            if self.entity == "customers":
                for record_id, email in self.session.execute(
                        select(Customer.id, Customer.email).where(Customer.id.in_(batch))):
                    found[record_id] = (record_id, None, email)
            else:
                for record_id, customer_id, email in self.session.execute(
                        select(Contact.id, Contact.customer_id, Contact.email).where(Contact.id.in_(batch))):
                    found[record_id] = (customer_id, record_id, email)
        entries = []
        for record_id, (_, _, row) in zip(record_ids, consents, strict=True):
            if record_id not in found:
                continue
            customer_id, contact_id, on_file = found[record_id]
            address = normalise_address(Channel.EMAIL, _none(row.get("email")) or on_file)
            if address is None:
                continue  # refused before (consent.import.no_email): nothing to key the entry on
            value = str(row["email_consent"])
            source = _none(row.get("email_consent_source"))
            proof = f"import run {self.run_id}" + (f": {source}" if source else "")
            withdrawn = value == CONSENT_WITHDRAWN
            entries.append(ConsentRecord(
                tenant_id=self.actor.tenant_id, channel=Channel.EMAIL.value, address=address,
                customer_id=customer_id, contact_id=contact_id,
                action=(ConsentAction.WITHDRAW if withdrawn else ConsentAction.GRANT).value,
                basis=None if withdrawn else value, proof_kind=ProofKind.IMPORT.value, proof=proof[:1000],
                recorded_at=_datetime(row.get("email_consent_date")) or self.now, recorded_by_id=self.actor.user_id))
        self.session.add_all(entries)
        self.session.flush()
        # with the run: its revert appends to the ledger what undoes them (the ledger keeps every entry)
        self._record([entry.id for entry in entries], [0] * len(entries), MADE, "consent", None,
                     record_entity=CONSENT_RECORDS)

    # -- unknown owners and records without a customer (decision 0043) ----------------------
    def _give_new_owner(self, row: dict[str, Any]) -> None:
        """A row whose owner names nobody, when unknown owners become inactive users: that user, made once."""
        name = _none(row.get("_owner_new"))
        if name is None or self.owner_field is None:
            return
        key = str(name).casefold()
        if key not in self.new_owners:
            user = User(username=self._free_username(str(name)), full_name=str(name)[:120], email=None,
                        role=Role.REP.value, is_active=False, password_hash=NO_LOGIN, language=self.actor.language)
            self.session.add(user)
            self.session.flush()  # audited (tagged with the run) like any admin's write of a user
            self.new_owners[key] = user.id
            self._record([user.id], [0], "created", "user", None, record_entity="users")
        row[f"{self.owner_field}_id"] = self.new_owners[key]

    def _free_username(self, name: str) -> str:
        """A username for an unknown owner: ``imported.<name in ASCII>`` (``imported.<hash>`` when nothing of the
        name is ASCII), numbered when taken in any tenant (usernames are unique across tenants)."""
        ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
        slug = re.sub(r"[^a-z0-9]+", "-", ascii_name).strip("-")[:40].strip("-")
        base = f"imported.{slug or hashlib.sha1(name.casefold().encode()).hexdigest()[:10]}"
        candidates = [base, *(f"{base}-{number}" for number in range(2, 10)),
                      f"{base}-{hashlib.sha1(f'{self.actor.tenant_id}:{name}'.encode()).hexdigest()[:8]}"]
        users = User.__table__
        # on the connection: usernames of every tenant, not only the importer's (the session's scope)
        taken = set(self.session.connection().execute(
            select(users.c.username).where(users.c.username.in_(candidates))).scalars())  # type: ignore[attr-defined]
        return next((candidate for candidate in candidates if candidate not in taken), candidates[-1])

    def _attach_orphans(self, orphans: list[tuple[int, dict[str, Any], dict[str, Any]]]) -> None:
        """New records whose customer cell was empty (``orphans``: row number, file row, the record's values) get a
        customer of their own, made as an imported customer is (owner, assignment and follow-up rules, audit,
        recorded with the run so that a revert removes it): a placeholder or a lead (``ImportOptions.orphans``)."""
        if not orphans:
            return
        if self.entity == "contacts":
            self._held_contact_details([row for _, row, _ in orphans if row.get("_orphan") == "lead"])
        customers = [self._orphan_customer(row, values) for _, row, values in orphans]
        ids = self._insert_customers([row_number for row_number, _, _ in orphans], customers)
        for (_, _, values), customer_id in zip(orphans, ids, strict=True):
            values["customer_id"] = customer_id

    def _orphan_customer(self, row: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
        """The customer an orphan row gets. A placeholder is named after the row ("<deal> (no account)", in the
        importer's language) and tagged ``no-account``; a lead is named by the row (a contact's name, with its
        email and phone unless another customer holds them; a deal's name; an order's number; an activity's
        summary), a person for a contact, tagged ``imported-lead``. Either is owned by the row's owner (the
        importer when the row names none) and starts as a prospect; the run's lifecycle refresh moves it on."""
        lang = self.actor.language
        label = orphan_label(self.entity, row, lang, self.now)
        limit = field_rules.CUSTOMER["name"].max_length or 200
        lead = row.get("_orphan") == "lead"
        email = phone = None
        if lead:
            name = lead_name(self.entity, row, lang, self.now)  # the name the judging checked (prepare._lead_rules)
            if self.entity == "contacts":
                email, phone = self._lead_contact_details(row)
        else:
            suffix = t("imports.orphan.placeholder_name", lang, name="")
            name = t("imports.orphan.placeholder_name", lang, name=label[: max(1, limit - len(suffix))])
        owner_id = values.get("owner_id") or values.get("author_id") or self.actor.user_id
        return {
            "name": name, "name_key": company_key(name) or None,
            "kind": "person" if lead and self.entity == "contacts" else "company",
            "industry": None, "region": None, "source": None, "owner_id": owner_id, "team_id": None,
            "lifecycle_stage": "prospect", "tags": LEAD_TAG if lead else PLACEHOLDER_TAG,
            "email": email, "email_normalized": normalise_email(email), "phone": phone,
            "phone_normalized": normalise_phone(phone), "external_id": None, "custom_fields": _NO_CUSTOM_FIELDS,
            "credit_code": None, "province_code": None, "city_code": None, "district_code": None, "created_at": None,
        }


    def _lead_contact_details(self, row: dict[str, Any]) -> tuple[str | None, str | None]:
        """A contact's email and phone for its lead, each left out when a customer of the tenant (or an earlier
        lead of the run) holds it already: a lead never makes a duplicate the quality checks would flag."""
        email, phone = _none(row.get("email")), _none(row.get("phone"))
        email_key, phone_key = normalise_email(email), normalise_phone(phone)
        if email_key and f"@{email_key}" in self.lead_emails:
            email = None
        if phone_key and f"tel:{phone_key}" in self.lead_emails:
            phone = None
        if email is not None and email_key:
            self.lead_emails.add(f"@{email_key}")
        if phone is not None and phone_key:
            self.lead_emails.add(f"tel:{phone_key}")
        return email, phone

    def _held_contact_details(self, rows: list[dict[str, Any]]) -> None:
        """Note the emails and phones of ``rows`` (contacts becoming leads) that a customer of the tenant holds,
        any owner's (on the connection: not only those the importer sees), in one query per kind and batch."""
        table = Customer.__table__
        connection = self.session.connection()
        for prefix, column, keys in (
            ("@", table.c.email_normalized, {normalise_email(_none(row.get("email"))) for row in rows}),  # type: ignore[attr-defined]
            ("tel:", table.c.phone_normalized, {normalise_phone(_none(row.get("phone"))) for row in rows}),  # type: ignore[attr-defined]
        ):
            present = sorted(key for key in keys if key)
            for start in range(0, len(present), 500):
                held = connection.execute(select(column).where(
                    table.c.tenant_id == self.actor.tenant_id, column.in_(present[start : start + 500])))  # type: ignore[attr-defined]
                self.lead_emails.update(f"{prefix}{value}" for value in held.scalars())

    def _insert_customers(self, row_numbers: list[int], rows: list[dict[str, Any]]) -> list[int]:
        """Insert customers a run of another entity makes (orphans' customers): stamped, owner-checked, planned by
        the follow-up rules, audited and recorded with the run as the customers of a customers file are."""
        now = utcnow()
        for values in rows:
            values.update(tenant_id=self.actor.tenant_id, created_at=now, updated_at=now)
            if not access.can_assign_owner(self.actor, values["owner_id"]):
                raise AccessDenied("cannot give this record to that owner")
        changes = self._created_changes(rows)
        planned = self._plan_follow_ups(rows)
        ids = _insert_returning_ids(self.session, Customer, rows)
        self._record(ids, row_numbers, "created", "customer", changes, record_entity="customers")
        for customer, record_id in zip(planned, ids, strict=True):
            customer.id = record_id
        record_follow_ups(self.session, self.actor, self.actor.tenant_id, planned)
        self._record_follow_up_tasks(ids)
        return ids

    def _record_follow_up_tasks(self, customer_ids: list[int]) -> None:
        """Record with the run the first follow-up tasks the rules gave its new customers (the only tasks they
        have yet): the run's own, which its revert takes with them (anything else on them is someone's since)."""
        tasks = Task.__table__
        for start in range(0, len(customer_ids), 500):
            task_ids = list(self.session.connection().execute(select(tasks.c.id).where(  # type: ignore[attr-defined]
                tasks.c.tenant_id == self.actor.tenant_id,  # type: ignore[attr-defined]
                tasks.c.customer_id.in_(customer_ids[start : start + 500]))).scalars())  # type: ignore[attr-defined]
            self._record(task_ids, [0] * len(task_ids), MADE, "task", None, record_entity="tasks")

    def _insert(self, row_numbers: list[int], rows: list[dict[str, Any]]) -> list[int]:
        """Insert new records (``rows``: their values, completed here) made from the file's ``row_numbers``."""
        if not rows:
            return []
        model = MODELS[self.entity]
        now = utcnow()
        if self.entity == "deal_lines":  # after the deal's last line (this run's, else the database's)
            for values in rows:
                deal_id = values["opportunity_id"]
                values["position"] = self.line_positions[deal_id] = self._last_position(deal_id) + 1
        history = [values.pop("_history", None) or [] for values in rows]
        for values in rows:
            # a record keeps the creation date it had in the other system (an admin's import of history)
            values.update(tenant_id=self.actor.tenant_id, created_at=values.get("created_at") or now, updated_at=now)
        if self.entity == "customers":
            for values in rows:
                if not access.can_assign_owner(self.actor, values["owner_id"]):
                    raise AccessDenied("cannot give this record to that owner")
        changes = self._created_changes(rows, history)  # what the file set, before the rules add to it
        # the same assignment and follow-up rules as customers created by hand, decided before the
        # insert so that the rows go in with their owners and follow-up dates (no UPDATE after)
        planned = self._plan_follow_ups(rows) if self.entity == "customers" else None
        ids = _insert_returning_ids(self.session, model, rows)
        if (unique_key := TAKEN_IN_DB.get(self.entity)) is not None:
            self.created_keys.update(str(values[unique_key]) for values in rows if values[unique_key] is not None)
        if self.entity in ("opportunities", "orders", "activities"):
            self.touched_customers.update(values["customer_id"] for values in rows)
        if self.entity == "activities":
            for values in rows:
                latest = self.contacted.get(values["customer_id"])
                if latest is None or values["occurred_at"] > latest:
                    self.contacted[values["customer_id"]] = values["occurred_at"]
        if self.entity == "opportunities":
            self._record_stage_history(ids, rows)
        if self.entity == "deal_lines":
            self.touched_deals.update(values["opportunity_id"] for values in rows)
        self._index_fulltext(ids)
        self._record(ids, row_numbers, "created", AUDIT_ENTITY[self.entity], changes)
        self.created += len(ids)
        if planned is not None:
            for customer, record_id in zip(planned, ids, strict=True):
                customer.id = record_id
            record_follow_ups(self.session, self.actor, self.actor.tenant_id, planned)
            self._record_follow_up_tasks(ids)
        return ids

    def _plan_follow_ups(self, rows: list[dict[str, Any]]) -> list[NewCustomer]:
        """Owners by the assignment rules and first follow-up dates, written into the new customers' ``rows``."""
        planned = [
            NewCustomer(
                name=row["name"],
                owner_id=row["owner_id"],
                team_id=row["team_id"],
                lifecycle_stage=row["lifecycle_stage"],
                fields=row,  # the new customer's columns: kind, industry … custom_fields
            )
            for row in rows
        ]
        plan_follow_ups(self.session, self.actor, self.actor.tenant_id, planned)
        for row, customer in zip(rows, planned, strict=True):
            row["owner_id"], row["team_id"] = customer.owner_id, customer.team_id
            row["next_follow_up_at"] = customer.next_follow_up_at
        return planned

    def _record_stage_history(self, ids: list[int], rows: list[dict[str, Any]]) -> None:
        """The stage history of new deals, synthesised from their open and close dates (rules.pipeline)."""
        moves = []
        for deal_id, values in zip(ids, rows, strict=True):
            stage = self.stage(values["stage_id"])
            if stage is None:
                continue
            for from_id, to_id, when in pipeline_rules.opening_moves(
                stage, self.first_open(stage.pipeline_id), opened_at=values["created_at"], closed_at=values["closed_at"]
            ):
                moves.append((self.actor.tenant_id, deal_id, from_id, to_id, self.actor.user_id, when,
                              self.now, self.now))
        insert_rows(
            self.session,
            OpportunityStageChange.__table__,  # type: ignore[arg-type]
            moves,
            columns=("tenant_id", "opportunity_id", "from_stage_id", "to_stage_id", "changed_by_id", "changed_at",
                     "created_at", "updated_at"),
        )

    def _created_changes(self, rows: list[dict[str, Any]], history: list[list[str]] | None = None) -> list[Any]:
        """The audit ``changes`` of each created row (its non-empty values, tagged with the run), driver-ready.

        Encoded (JSON text) right away rather than kept as a dict of pairs until the chunk's
        audit rows are written: 100,000 dicts of a dozen pairs each, alive through a chunk, made
        the garbage collector walk the whole heap a few times per chunk.
        """
        if not rows:
            return []
        keys = [key for key in rows[0] if key not in ("tenant_id", "created_at", "updated_at")]
        encode = driver_form(self.session, AuditEvent.__table__, "changes")  # type: ignore[arg-type]
        tag = [None, self.run_id]
        plain = {str, int, bool}
        serialise = access._serialise
        created = []
        for position, values in enumerate(rows):
            changes: dict[str, Any] = {
                key: [None, value if value.__class__ in plain else serialise(value)]
                for key in keys
                if (value := values[key]) is not None and value != "" and value != {}
            }
            changes["_import_run"] = tag
            if history is not None and history[position]:
                # dates of the past set by an admin's import: said so, with the creation date when it is one
                changes["_imported_history"] = [None, history[position]]
                changes["created_at"] = [None, serialise(values["created_at"])]
            created.append(encode(changes))
        return created

    def _record(
        self,
        ids: list[int],
        row_numbers: list[int],
        action: str,
        audit_entity: str,
        created_changes: list[Any] | None,
        *,
        record_entity: str | None = None,
    ) -> None:
        """An audit event per created row (``created_changes``: see :meth:`_created_changes`), a run record per row
        (of ``record_entity``: the run's entity unless it made records of another, as an orphan's customer)."""
        tenant_id, now = self.actor.tenant_id, utcnow()
        if ids and created_changes is not None:
            # driver executemany of tuples: the audit rows need no ORM identity, and this is the hot path
            head = (tenant_id, self.actor.user_id, "create", audit_entity)
            insert_rows(
                self.session,
                AuditEvent.__table__,  # type: ignore[arg-type]
                [
                    (*head, record_id, now, now, now, changes)
                    for record_id, changes in zip(ids, created_changes, strict=True)
                ],
                columns=(
                    "tenant_id", "actor_id", "action", "entity", "entity_id",
                    "occurred_at", "created_at", "updated_at", "changes",
                ),
                converted=("changes",),
            )
        if ids and action == "created" and audit_entity in OBJECT_NAMES:
            # what a form's create sends to the tenant's webhooks, for each imported record (its bulk insert
            # is no ORM flush): in this transaction, so a rolled-back import sends nothing
            record_created(self.session, MODELS[record_entity or self.entity], audit_entity, tenant_id, ids)
        if ids and audit_entity != "order_line":
            run = (tenant_id, self.run_id, record_entity or self.entity)
            insert_rows(
                self.session,
                ImportRunRecord.__table__,  # type: ignore[arg-type]
                [
                    (*run, record_id, action, row_number, now, now)
                    for record_id, row_number in zip(ids, row_numbers, strict=True)
                ],
                columns=(
                    "tenant_id", "import_run_id", "entity", "record_id",
                    "action", "row_number", "created_at", "updated_at",
                ),
            )

    def _update(self, updates: dict[int, list[tuple[int, dict[str, Any]]]]) -> None:
        """Apply each row's changes to its record in file order; a row counts 'updated' when it changed a value."""
        if not updates:
            return
        model = MODELS[self.entity]
        ids = sorted(updates)
        changed: list[int] = []
        first_rows: dict[int, int] = {}
        moves: list[tuple[int, int, int, dt.datetime]] = []  # deals moved to another stage: (deal, from, to, when)
        for start in range(0, len(ids), 500):
            for record in self.session.scalars(select(model).where(model.id.in_(ids[start : start + 500]))):
                if self.entity in ("opportunities", "orders"):
                    self.touched_customers.add(record.customer_id)  # the customer it leaves, when it moves
                for row_number, row_changes in updates[record.id]:
                    if self.entity == "opportunities":
                        row_changes = self._deal_changes(record, row_changes, moves)
                    elif self.entity == "tasks":
                        row_changes = self._task_status(record, row_changes)
                    row_changed = False
                    for key, value in row_changes.items():
                        if key == "custom_fields":
                            value = {**(record.custom_fields or {}), **value}
                        if getattr(record, key) != value:
                            row_changed = True
                            setattr(record, key, value)
                    if row_changed:
                        self.updated += 1
                        first_rows.setdefault(record.id, row_number)
                    else:
                        self.skipped += 1
                if record.id in first_rows and self.session.is_modified(record):
                    changed.append(record.id)
        self.session.flush()  # access checks and audit events (tagged with the run) happen here
        if self.entity in ("opportunities", "orders"):
            self.touched_customers.update(
                value for _, row_changes in (pair for rows in updates.values() for pair in rows)
                if (value := row_changes.get("customer_id")) is not None
            )
        for deal_id, from_id, to_id, when in moves:
            self.session.add(OpportunityStageChange(
                tenant_id=self.actor.tenant_id, opportunity_id=deal_id, from_stage_id=from_id, to_stage_id=to_id,
                changed_by_id=self.actor.user_id, changed_at=when,
            ))
        if moves:
            self.session.flush()
        self._record(changed, [first_rows[record_id] for record_id in changed], "updated", AUDIT_ENTITY[self.entity],
                     None)

    def _task_status(self, task: Any, changes: dict[str, Any]) -> dict[str, Any]:
        """A row setting an existing task's status or completion: done has a completion time, open none
        (as completing and reopening by hand leave it)."""
        status = changes.get("status")
        if status is None and changes.get("completed_at") is not None:
            return {**changes, "status": TaskStatus.DONE.value}  # completed then (imported history)
        if status is None or status == TaskStatus.DONE.value and (task.completed_at or changes.get("completed_at")):
            return changes
        return {**changes, "completed_at": self.now if status == TaskStatus.DONE.value else None}

    def _deal_changes(
        self, deal: Any, changes: dict[str, Any], moves: list[tuple[int, int, int, dt.datetime]] | None
    ) -> dict[str, Any]:
        """What a row changes on a deal (a record, or the values of one this chunk creates: ``moves`` None), as
        the deal service would: a move to another stage sets the columns of that stage
        (rules.pipeline.stage_columns) and is recorded in the stage history; a deal that stays in its stage keeps
        its close date (the file's is the same day: the judging refused another) and takes the reason of its kind,
        and a closed deal takes no hand-set probability. The judging (prepare._deal_rules) refused the moves the
        transition table forbids."""
        changes = dict(changes)
        closed_on, lost_reason, won_reason = changes.pop(_CLOSING, (None, None, None))
        current = self.stage(_field(deal, "stage_id"))
        target = self.stage(changes.pop("stage_id", None)) or current
        changes.pop("pipeline_id", None)  # a move never leaves the deal's pipeline
        if target is None or current is None:
            return changes
        if target.id != current.id:
            columns = pipeline_rules.stage_columns(
                target, from_stage_id=current.id,
                lost_reason=lost_reason or _field(deal, "lost_reason"),
                won_reason=won_reason or _field(deal, "won_reason"), closed_on=closed_on, now=self.now,
            )
            if moves is not None:
                moved_at = columns["closed_at"] if isinstance(columns["closed_at"], dt.datetime) else self.now
                moves.append((_field(deal, "id"), current.id, target.id, moved_at))
            return {**changes, **columns}
        if target.kind == "lost" and lost_reason:
            changes["lost_reason"] = str(lost_reason).strip()
        if target.kind == "won" and won_reason:
            changes["won_reason"] = str(won_reason).strip()
        if target.kind != "open":
            changes.pop("probability", None)
        return changes

    def _write_orders(self, frame: pandas.DataFrame) -> None:
        new_orders: dict[str, tuple[int, dict[str, Any]]] = {}
        lines: list[tuple[str, dict[str, Any]]] = []
        updates: dict[int, list[tuple[int, dict[str, Any]]]] = {}
        orphans: dict[str, dict[str, Any]] = {}  # order number → the first row of a new order without a customer
        for row_number, row in zip(frame.index.tolist(), _records(frame), strict=True):
            self._give_new_owner(row)
            number = str(row["order_number"])
            target = _none(row.get("_match_id"))
            if target is not None and number not in self.orders:  # an order already there, not one of this run
                if self.options.mode == "create":
                    self.skipped += 1  # only reachable when a duplicate order is explicitly skipped
                    continue
                updates.setdefault(int(target), []).append((row_number, self.changes(row)))
                continue
            if number not in self.orders and number not in new_orders:
                new_orders[number] = (row_number, self.values(row))
                if new_orders[number][1]["customer_id"] is None and _none(row.get("_orphan")) in ("placeholder",
                                                                                                   "lead"):
                    orphans[number] = row
            price = _none(row.get("unit_price"))
            if price is None:
                price = _none(row.get("product_price")) or 0
            quantity = _none(row.get("quantity"))
            lines.append(
                (
                    number,
                    {"product_id": row["product_id"], "quantity": _money(quantity or 1), "unit_price": _money(price)},
                )
            )
        self._attach_orphans([(new_orders[number][0], row, new_orders[number][1]) for number, row in orphans.items()])
        ids = self._insert([number for number, _ in new_orders.values()], [values for _, values in new_orders.values()])
        self.orders.update(zip(new_orders.keys(), ids, strict=True))
        totals: dict[int, Decimal] = {}
        line_rows = []
        now = utcnow()
        for number, line in lines:
            order_id = self.orders[number]
            # each line rounded to the cent as the order service rounds it (orders.line_total)
            totals[order_id] = totals.get(order_id, Decimal("0")) + line_total(line["quantity"], line["unit_price"])
            line_rows.append(
                {**line, "order_id": order_id, "tenant_id": self.actor.tenant_id, "created_at": now, "updated_at": now}
            )
        if line_rows:
            line_ids = _insert_returning_ids(self.session, OrderLine, line_rows)
            self._record(line_ids, [0] * len(line_ids), "created", "order_line", self._created_changes(line_rows))
        for order_id, amount in totals.items():
            self.session.execute(
                update(Order)
                .where(Order.id == order_id)
                .values(total_amount=Order.total_amount + amount)
                .execution_options(synchronize_session=False)
            )
        self._update(updates)

    def finish(self) -> None:
        """Nothing buffered survives the last chunk; then what the services do after each such write, once.

        An activity moves its customer's last contact (services.activities.note_contact: its own
        date, when it is the latest); deals, orders and activities re-evaluate the lifecycle of
        every customer they touched (a customer with a won deal leaves prospect), in this run's
        transaction, as the services do in theirs.
        """
        self.session.flush()
        self._note_contacts()
        if self.touched_deals:  # a deal with lines is worth their sum (decision 0045), audited with the run
            refresh_amounts(self.session, self.touched_deals)
            self.session.flush()
        if self.touched_customers:
            refresh_lifecycle(self.session, self.actor.tenant_id, sorted(self.touched_customers))
            if self.entity == "orders":  # their tiers, after the run's commit (a job)
                orders_changed(self.session, self.actor.tenant_id, self.touched_customers)

    def _note_contacts(self) -> None:
        """Move each customer's last contact to its latest imported activity where that is later
        (services.activities.later_contact), set-based: one UPDATE per batch (the version moves, as
        for any edit, so an open form sees the change) and an audit event per customer, tagged with
        the run. (Through the ORM it was 10,000 loaded customers and as many flushed UPDATEs: half
        the time of 100,000 activities.)"""
        contacted = sorted(self.contacted)
        table = Customer.__table__
        statement = (
            table.update()  # type: ignore[attr-defined]
            .where(table.c.id == bindparam("customer_id"))
            .values(last_contacted_at=bindparam("contacted_at"), version=table.c.version + 1,
                    updated_at=bindparam("now"))
        )
        for start in range(0, len(contacted), 500):
            batch = contacted[start : start + 500]
            # read through the actor's session: only customers the importer may see (as the references resolved)
            current = self.session.execute(
                select(Customer.id, Customer.last_contacted_at).where(Customer.id.in_(batch))
            ).all()
            moved = [(customer_id, before, self.contacted[customer_id]) for customer_id, before in current
                     if later_contact(before, self.contacted[customer_id])]
            if not moved:
                continue
            now = utcnow()
            self.session.connection().execute(
                statement,
                [{"customer_id": customer_id, "contacted_at": at, "now": now} for customer_id, _, at in moved],
            )
            encode = driver_form(self.session, AuditEvent.__table__, "changes")  # type: ignore[arg-type]
            tag = self.session.info.get(access.AUDIT_TAG_KEY, {})
            insert_rows(
                self.session,
                AuditEvent.__table__,  # type: ignore[arg-type]
                [
                    (self.actor.tenant_id, self.actor.user_id, "update", "customer", customer_id, now, now, now,
                     encode({"last_contacted_at": [access._serialise(before), access._serialise(at)], **tag}))
                    for customer_id, before, at in moved
                ],
                columns=("tenant_id", "actor_id", "action", "entity", "entity_id", "occurred_at", "created_at",
                         "updated_at", "changes"),
                converted=("changes",),
            )

    def _ensure_custom_fields(self) -> None:
        """Unknown custom fields named in the mapping become text fields (admins only)."""
        missing = missing_custom_fields(self.session, self.actor, self.entity, self.mapping)
        if not missing:
            return
        entity_name = CUSTOM_FIELD_ENTITIES[self.entity]
        position = int(self.session.scalar(select(func.count()).select_from(FieldDefinition)) or 0)
        for offset, name in enumerate(missing):
            column = self.mapping.custom_columns()[name]
            self.session.add(
                FieldDefinition(
                    entity=entity_name,
                    name=name,
                    label_en=column[:120],
                    label_zh=column[:120],
                    field_type="text",
                    position=position + offset,
                )
            )
        self.session.flush()


# --- revert -----------------------------------------------------------------------------


def revert_import(db: Database, actor: Actor, run_id: int) -> RevertResult:
    """Undo a run: delete what it created, restore what it updated (skipping fields changed since).

    All or nothing: when a created record is now used elsewhere (a product on a later order …)
    the database refuses the delete and nothing is reverted (ImportNotAllowed says so).
    """
    from sqlalchemy.exc import IntegrityError

    try:
        return _revert_import(db, actor, run_id)
    except IntegrityError as error:
        raise ImportNotAllowed("imports.error.revert_in_use") from error


def _revert_import(db: Database, actor: Actor, run_id: int) -> RevertResult:
    _require_importer(actor)
    result = RevertResult(run_id=run_id)
    with db.transaction(actor) as session:
        session.info[access.AUDIT_TAG_KEY] = {"_revert_import_run": [None, run_id]}
        run = session.get(ImportRun, run_id)
        if run is None:
            raise NotFound("import run")
        if run.status not in ("imported", "partial"):
            raise ImportNotAllowed("imports.error.not_revertible", status=run.status)
        entity = run.entity
        model = MODELS[entity]
        records: dict[tuple[str, str], list[int]] = {}
        for record_entity, action, record_id in session.execute(
            select(ImportRunRecord.entity, ImportRunRecord.action, ImportRunRecord.record_id)
            .where(ImportRunRecord.import_run_id == run_id).order_by(ImportRunRecord.id)
        ):
            records.setdefault((record_entity, action), []).append(record_id)
        created, updated = records.get((entity, "created"), []), records.get((entity, "updated"), [])
        # what the run made besides its entity's records: customers for orphan rows, users for unknown owners
        made_customers = records.get(("customers", "created"), []) if entity != "customers" else []
        made_users = records.get(("users", "created"), [])
        created = _still_the_runs(session, model, created, run.finished_at)
        made_customers = _still_the_runs(session, Customer, made_customers, run.finished_at)
        deleting = {MODELS[entity].__table__.name: created, "customers": created if entity == "customers"
                    else made_customers}
        attached = _attached_since(session, actor, run, records, deleting)
        if attached:  # someone (or a later import) added to what the run created: not the run's to take
            lang = actor.language
            raise ImportNotAllowed(
                "imports.error.revert_attached", count=sum(attached.values()),
                records=", ".join(f"{_table_label(table, lang)}: {count}" for table, count in attached.items()))
        result.consent_reverted, result.consent_kept = _revert_consent(
            session, actor, run, records.get((CONSENT_RECORDS, MADE), []),
            customers=set(deleting["customers"]), contacts=set(created) if entity == "contacts" else set())
        touched: list[int] = []
        if entity in ("opportunities", "orders", "activities"):
            for start in range(0, len(created + updated), 500):
                batch = (created + updated)[start : start + 500]
                touched.extend(session.scalars(select(model.customer_id).where(model.id.in_(batch))))
        stages_before = _deal_stages(session, updated) if entity == "opportunities" else {}
        lined_deals: list[int] = []  # a deal_lines run: the deals whose lines it wrote (their amounts go back)
        if entity == "deal_lines":
            for start in range(0, len(created), 500):
                lined_deals.extend(session.scalars(select(OpportunityLine.opportunity_id)
                                                   .where(OpportunityLine.id.in_(created[start : start + 500]))))
            lined_deals = sorted(set(lined_deals))
        result.restored, result.conflicts = _restore(session, entity, model, updated, run_id, run.created_at)
        if stages_before:  # a deal the revert moves back to its stage: the move in its history, as by hand
            lost = set(session.scalars(select(PipelineStage.id).where(PipelineStage.kind == "lost")))
            for deal_id, stage_id in _deal_stages(session, updated).items():
                if stage_id != stages_before.get(deal_id):
                    if stage_id in lost:  # lost from the stage it leaves now (the history's copy, rules.pipeline)
                        deal = session.get(Opportunity, deal_id)
                        assert deal is not None
                        deal.lost_from_stage_id = stages_before.get(deal_id)
                    session.add(OpportunityStageChange(
                        opportunity_id=deal_id, from_stage_id=stages_before.get(deal_id), to_stage_id=stage_id,
                        changed_by_id=actor.user_id, changed_at=utcnow()))
            session.flush()
        if entity == "activities" and touched:
            # the customers' last contact as it was before the run (unless it moved again since): the run's
            # activities go, and with them the contact they stood for
            _, conflicts = _restore(session, "customers", Customer, sorted(set(touched) - set(made_customers)),
                                    run_id, run.created_at)
            result.conflicts += conflicts
        result.deleted = _delete_created(session, entity, model, created, run.finished_at)
        if lined_deals:  # the amounts the run's lines set, back to what they were (unless changed since)
            _, conflicts = _restore(session, "opportunities", Opportunity, lined_deals, run_id, run.created_at)
            result.conflicts += conflicts
        result.deleted += _delete_created(session, "customers", Customer, made_customers, run.finished_at)
        remaining = sorted(set(touched) - set(made_customers))
        if remaining:  # the customers' lifecycle without what the run wrote, as after an archive by hand
            refresh_lifecycle(session, actor.tenant_id, remaining)
            if entity == "orders":
                orders_changed(session, actor.tenant_id, remaining)
        if made_users and actor.is_admin:  # users are an admin's to delete; anyone else's revert leaves them inactive
            result.deleted += _delete_unused_users(session, made_users)
        run.status = "reverted"
        run.finished_at = utcnow()
    return result


def _restore(
    session: Session, entity: str, model: Any, ids: list[int], run_id: int, since: dt.datetime
) -> tuple[int, int]:
    restored = conflicts = 0
    audit_entity = AUDIT_ENTITY[entity]
    tag = [None, run_id]
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        events = session.execute(
            select(AuditEvent.entity_id, AuditEvent.changes, AuditEvent.id)
            .where(
                AuditEvent.entity == audit_entity,
                AuditEvent.entity_id.in_(batch),
                AuditEvent.occurred_at >= since - dt.timedelta(seconds=1),
                AuditEvent.action == "update",
            )
            .order_by(AuditEvent.id.desc())
        ).all()
        by_record: dict[int, list[dict[str, Any]]] = {}
        for record_id, changes, _ in events:
            if (changes or {}).get("_import_run") == tag:
                by_record.setdefault(record_id, []).append(changes)
        for record in session.scalars(select(model).where(model.id.in_(batch))):
            conflict = False
            for changes in by_record.get(record.id, []):  # newest first
                for key, pair in changes.items():
                    if key.startswith("_") or not isinstance(pair, list) or len(pair) != 2:
                        continue
                    column = model.__table__.columns.get(key)  # type: ignore[attr-defined]
                    if column is None:
                        continue
                    current = access._serialise(getattr(record, key))
                    if not _same_stored(current, pair[1]):
                        conflict = True  # changed again after the import: keep the newer value
                        continue
                    setattr(record, key, _from_audit(column, pair[0]))
            restored += 1
            conflicts += int(conflict)
    session.flush()
    return restored, conflicts


def _same_stored(current: Any, recorded: Any) -> bool:
    """Does the value read back equal the one the audit event recorded? A time compares to the second: MariaDB's
    DATETIME keeps no microseconds, so the time an import wrote reads back without those the event holds."""
    if current == recorded:
        return True
    if isinstance(current, str) and isinstance(recorded, str) and "T" in current and "T" in recorded:
        return current.split(".")[0] == recorded.split(".")[0] and current[:4].isdigit()
    return False


def _from_audit(column: Any, value: Any) -> Any:
    if value is None:
        return None
    python_type = getattr(column.type, "python_type", None)
    try:
        if python_type is Decimal:
            return Decimal(str(value))
        if python_type is dt.datetime:
            return dt.datetime.fromisoformat(value)
        if python_type is dt.date:
            return dt.date.fromisoformat(value)
    except (TypeError, ValueError, NotImplementedError):
        return value
    return value


def _still_the_runs(session: Session, model: Any, ids: list[int], finished_at: dt.datetime | None) -> list[int]:
    """The records of ``ids`` the run created that are still the run's: SQLite gives a deleted row's id to the
    next insert, so a record created after the run ended under one of its ids is someone else's (the run's
    records were created by its end, or earlier: imported history)."""
    if finished_at is None:
        return list(ids)
    kept: list[int] = []
    for start in range(0, len(ids), 500):
        kept.extend(session.scalars(select(model.id).where(model.id.in_(ids[start : start + 500]),
                                                           model.created_at <= finished_at)))
    return sorted(kept)


CONSENT_RECORDS = "consent_records"
"""The run records' entity of the consent ledger entries a run wrote (the revert appends what undoes them)."""
RECORD_PARTS: dict[str, frozenset[str]] = {
    "customers": frozenset({"lifecycle_transitions", "lifecycle_overrides", "customer_tier_standings",
                            "customer_tier_pins", "automation_firings", "pool_events", "access_requests"}),
    "opportunities": frozenset({"opportunity_lines", "opportunity_stage_changes"}),
    "orders": frozenset({"order_lines"}),
}
"""Rows that are part of a record, its settings or its history, whenever made: they go with it (a deal's lines and
stage history, an order's lines; a customer's lifecycle history and hand-set stage, its tier and pinned tier, its
pool history, the automation's log and the requests for access to it). Work done on a record — contacts, deals,
orders, activities, tasks, cases, campaign memberships and mail — is not: it blocks the revert."""
LEDGER_LINKS = frozenset({CONSENT_RECORDS})
"""Ledgers whose entries outlive the records they name: a revert clears the link, never the entry."""


def _attached_since(session: Session, actor: Actor, run: ImportRun, records: dict[tuple[str, str], list[int]],
                    deleting: dict[str, list[int]]) -> dict[str, int]:
    """Per table, the rows referencing a record the revert would delete that are not the run's (not among its run
    records: typed by hand since, made by a job, written by a later import — dated in the past or not). A
    record's parts (:data:`RECORD_PARTS`) and the ledgers' links (:data:`LEDGER_LINKS`) are not counted. Read from
    the tables themselves, within the tenant: rows the reverter may not see count too. (Runs before decision 0053
    did not record their new customers' follow-up tasks: a task made by such a run's end counts as its own.)"""
    from crm_core.models import Base

    finished_at = run.finished_at or utcnow()
    own: dict[str, set[int]] = {}
    for (entity, action), ids in records.items():
        if action in ("created", MADE) and entity in MODELS:
            own.setdefault(MODELS[entity].__table__.name, set()).update(ids)
    legacy = not (run.mapping or {}).get(MADE_RECORDED)
    connection = session.connection()
    counts: dict[str, int] = {}
    for parent, ids in deleting.items():
        if not ids:
            continue
        for table in Base.metadata.sorted_tables:
            if table.name in RECORD_PARTS.get(parent, ()) or table.name in LEDGER_LINKS or "tenant_id" not in table.c:
                continue
            for column in table.columns:
                if not any(key.column.table.name == parent for key in column.foreign_keys):
                    continue
                for start in range(0, len(ids), 500):
                    for row_id, created_at in connection.execute(
                            select(table.c.id, table.c.created_at).where(
                                table.c.tenant_id == actor.tenant_id, column.in_(ids[start : start + 500]))):
                        if row_id in own.get(table.name, ()):
                            continue  # the run's own (a deal on the placeholder it made, a new customer's task)
                        if legacy and table.name == "tasks" and created_at <= finished_at:
                            continue
                        counts[table.name] = counts.get(table.name, 0) + 1
    return counts


def _table_label(table: str, lang: str) -> str:
    """What a table's rows are called (the merge dialog's labels)."""
    label = t(f"merge.table.{table}", lang)
    return table if label == f"merge.table.{table}" else label


def _revert_consent(session: Session, actor: Actor, run: ImportRun, entry_ids: list[int], *, customers: set[int],
                    contacts: set[int]) -> tuple[int, int]:
    """Undo the run's consent entries by adding to the ledger (it is append-only): per address whose latest entry
    is still the run's grant, an entry giving back what held before the run — that grant again (its basis, naming
    the entry), or a withdrawal where nothing or a withdrawal did. A withdrawal the run recorded stays: consent
    comes back only with new proof. Then no entry keeps a link to a customer or contact the revert deletes.
    Returns (entries appended, withdrawals kept)."""
    entries: dict[tuple[str, str], list[ConsentRecord]] = {}
    for start in range(0, len(entry_ids), 500):
        for entry in session.scalars(select(ConsentRecord).where(ConsentRecord.id.in_(entry_ids[start : start + 500]))):
            entries.setdefault((entry.channel, entry.address), []).append(entry)
    run_entries = set(entry_ids)
    appended = kept = 0
    now = utcnow()
    by_channel: dict[str, list[str]] = {}
    for channel, address in entries:
        by_channel.setdefault(channel, []).append(address)
    for channel, addresses in by_channel.items():
        for start in range(0, len(addresses), 500):
            ledger: dict[str, list[Any]] = {}
            for row in session.execute(
                    select(ConsentRecord.id, ConsentRecord.address, ConsentRecord.action, ConsentRecord.basis)
                    .where(ConsentRecord.channel == channel, ConsentRecord.address.in_(addresses[start : start + 500]))
                    .order_by(ConsentRecord.recorded_at.desc(), ConsentRecord.id.desc())):
                ledger.setdefault(row.address, []).append(row)  # newest first, as latest_entry reads it
            for address, history in ledger.items():
                latest = history[0]
                if latest.id not in run_entries:
                    continue  # a newer entry holds: the run's is history already
                if latest.action == ConsentAction.WITHDRAW.value:
                    kept += 1
                    continue
                before = next((row for row in history if row.id not in run_entries), None)
                mine = next(entry for entry in entries[(channel, address)] if entry.id == latest.id)
                held = before if before is not None and before.action == ConsentAction.GRANT.value else None
                proof = f"import run {run.id} reverted" + (f": entry #{held.id} holds again" if held else "")
                record_in(session, channel=channel, address=address,
                          action=ConsentAction.GRANT if held else ConsentAction.WITHDRAW,
                          basis=held.basis if held else None, proof_kind=ProofKind.IMPORT.value, proof=proof,
                          customer_id=None if mine.customer_id in customers else mine.customer_id,
                          contact_id=None if mine.contact_id in contacts else mine.contact_id,
                          recorded_by_id=actor.user_id, now=now)
                appended += 1
    ledger_table = ConsentRecord.__table__
    for column, removed in (("customer_id", customers), ("contact_id", contacts)):
        listed = sorted(removed)
        for start in range(0, len(listed), 500):
            session.connection().execute(
                ledger_table.update().where(ledger_table.c.tenant_id == actor.tenant_id,  # type: ignore[attr-defined]
                                            ledger_table.c[column].in_(listed[start : start + 500]))  # type: ignore[attr-defined]
                .values({column: None}))
    return appended, kept


def _delete_created(
    session: Session, entity: str, model: Any, ids: list[int], finished_at: dt.datetime | None
) -> int:
    """Delete the records the run created (``ids``) that are still the run's (:func:`_still_the_runs`)."""
    deleted = 0
    for start in range(0, len(ids), 500):
        batch = ids[start : start + 500]
        if finished_at is not None:
            batch = list(session.scalars(select(model.id).where(model.id.in_(batch), model.created_at <= finished_at)))
        if entity == "orders":
            session.execute(
                delete(OrderLine).where(OrderLine.order_id.in_(batch)).execution_options(synchronize_session=False)
            )
        if entity == "customers":
            # rows the follow-up rules hung on the new customers go with them
            _delete_dependents(session, batch)
        if entity == "opportunities":  # the stage history and product lines the run wrote for its deals
            session.execute(
                delete(OpportunityLine).where(OpportunityLine.opportunity_id.in_(batch))
                .execution_options(synchronize_session=False)
            )
            session.execute(
                delete(OpportunityStageChange).where(OpportunityStageChange.opportunity_id.in_(batch))
                .execution_options(synchronize_session=False)
            )
        records = list(session.scalars(select(model).where(model.id.in_(batch))))
        for record in records:
            session.delete(record)
        session.flush()
        deleted += len(records)
    return deleted


def _deal_stages(session: Session, deal_ids: list[int]) -> dict[int, int]:
    """Deal id → its stage, for ``deal_ids``."""
    stages: dict[int, int] = {}
    for start in range(0, len(deal_ids), 500):
        for deal_id, stage_id in session.execute(select(Opportunity.id, Opportunity.stage_id)
                                                 .where(Opportunity.id.in_(deal_ids[start : start + 500]))):
            stages[deal_id] = stage_id
    return stages


def _delete_unused_users(session: Session, user_ids: list[int]) -> int:
    """Delete the users a run made for unknown owners that nothing refers to any more (a record given to one
    since, a comment they are named on …): those stay, inactive. Returns how many went."""
    from crm_core.models import Base

    users = User.__table__
    references = [
        column for table in Base.metadata.tables.values() if table is not users
        for column in table.columns for key in column.foreign_keys if key.column is users.c.id  # type: ignore[attr-defined]
    ]
    connection = session.connection()
    deleted = 0
    for user in session.scalars(select(User).where(User.id.in_(user_ids), User.is_active.is_(False))):
        if any(connection.execute(select(column).where(column == user.id).limit(1)).first() for column in references):
            continue
        session.delete(user)
        deleted += 1
    session.flush()
    return deleted


def _delete_dependents(session: Session, customer_ids: list[int]) -> None:
    from crm_core.models import Base

    for mapper in Base.registry.mappers:
        cls = mapper.class_
        table = getattr(cls, "__table__", None)
        if table is None or cls is Customer or "customer_id" not in table.columns:
            continue
        if cls in (Task,) or not table.columns["customer_id"].nullable:
            session.execute(
                delete(cls).where(table.c.customer_id.in_(customer_ids)).execution_options(synchronize_session=False)
            )
        else:
            session.execute(
                update(cls)
                .where(table.c.customer_id.in_(customer_ids))
                .values(customer_id=None)
                .execution_options(synchronize_session=False)
            )


# --- rejected rows as CSV --------------------------------------------------------------


def rejected_rows_csv(file: ImportFile, report: ValidationReport, lang: str) -> bytes:
    """The refused rows of ``file`` with a row number and a reason column, as UTF-8 CSV (Excel-safe)."""
    headers = [t("imports.csv.row", lang), *file.headers, EXTRA_COLUMN, t("imports.csv.reason", lang)]
    rows: list[list[Any]] = []
    if report.rejected:
        for chunk in iter_chunks(file):
            selected = chunk[chunk.index.isin(list(report.rejected))][[*file.headers, EXTRA_COLUMN]]
            for row_number, row in selected.iterrows():
                rows.append([int(row_number), *row.tolist(), report.reasons(int(row_number), lang)])
    return to_csv(headers, rows)


def quarantined_rows_csv(db: Database, actor: Actor, run_id: int, lang: str) -> bytes:
    """The rows a past run refused, from its quarantine, as CSV with a reason column."""
    with db.session(actor) as session:
        run = session.get(ImportRun, run_id)
        if run is None:
            raise NotFound("import run")
        stored = session.execute(
            select(ImportRejectedRow.row_number, ImportRejectedRow.reasons, ImportRejectedRow.data)
            .where(ImportRejectedRow.import_run_id == run_id)
            .order_by(ImportRejectedRow.row_number)
        ).all()
    columns: list[str] = []
    for _, _, data in stored:
        for key in data:
            if key not in columns:
                columns.append(key)
    headers = [t("imports.csv.row", lang), *columns, t("imports.csv.reason", lang)]
    rows = [
        [
            number,
            *[data.get(column, "") for column in columns],
            "; ".join(reason_text(key, params, lang) for key, params in reasons),
        ]
        for number, reasons, data in stored
    ]
    return to_csv(headers, rows)


def csv_text(data: bytes) -> str:
    """Decode exported CSV bytes (tests, CLI)."""
    return data.decode("utf-8-sig")


def read_csv_rows(data: bytes) -> list[list[str]]:
    """Parse exported CSV bytes into rows (tests, CLI)."""
    return list(csv.reader(io.StringIO(csv_text(data))))


def entity_fields(entity: str) -> list[str]:
    """Field names of ``entity`` (for the wizard's mapping choices)."""
    return [spec.name for spec in fields_of(entity)]
