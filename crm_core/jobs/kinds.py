"""The kinds of job Kestrel runs on its queue, each a thin call of the service that does the work.

A kind runs for one tenant (``ctx.tenant_id``), as the user who asked (``ctx.actor``) or, for
a schedule, as the system for that tenant. Its result is a small JSON object; the CLI prints
it and the Jobs page shows it.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from crm_core.db import Database
from crm_core.errors import DomainError, ImportFileRefused, ImportNotAllowed, ValidationFailed
from crm_core.jobs.context import JobContext, job_kind
from crm_core.models import Role

LOG = logging.getLogger("kestrel")

if TYPE_CHECKING:  # pragma: no cover
    from crm_core.access import Actor
    from crm_core.importing.mapping import ImportMapping

ADMINS = frozenset({Role.ADMIN})
IMPORTERS = frozenset({Role.ADMIN, Role.MANAGER})
DemoProgress = Callable[[str, int, int], None]


def _as_of(ctx: JobContext) -> dt.datetime | None:
    value = ctx.params.get("as_of")
    return dt.datetime.fromisoformat(value).replace(tzinfo=None) if value else None


@job_kind("lifecycle_refresh", roles=ADMINS, schedulable=True, default_schedule=("10", "1", "*"))
def lifecycle_refresh(ctx: JobContext) -> dict[str, Any]:
    """Reclassify every customer of the tenant (prospect → intent → customer → churned), in SQL."""
    from crm_core.services.lifecycle import refresh_lifecycle

    ctx.progress(0, 1, "jobs.progress.lifecycle")
    with ctx.db.system_transaction("lifecycle refresh") as session:
        result = refresh_lifecycle(session, ctx.tenant_id, as_of=_as_of(ctx), count_stages=True)
        ctx.check_cancelled()
    ctx.progress(1, 1)
    return {"stages": result.stage_counts, "transitions": result.transitions,
            "overrides_released": result.overrides_released, "seconds": round(result.seconds, 3)}


@job_kind("pool_return", roles=ADMINS, schedulable=True, default_schedule=("20", "2", "*"))
def pool_return(ctx: JobContext) -> dict[str, Any]:
    """Return customers to their team's pool as its rule says, and remind owners of those returning soon."""
    from crm_core.services.pool import return_to_pool

    ctx.progress(0, 1, "jobs.progress.pool_return")
    result = return_to_pool(ctx.db, ctx.tenant_id, now=_as_of(ctx))
    ctx.progress(1, 1)
    return {"returned": result.returned, "reminded": result.reminded, "by_reason": result.by_reason,
            "seconds": round(result.seconds, 3)}


@job_kind("sla_sweep", roles=ADMINS, schedulable=True, default_schedule=("*", "*", "*"))
def sla_sweep(ctx: JobContext) -> dict[str, Any]:
    """Record SLA warnings, breaches and escalations of the tenant's open cases (set-based, idempotent)."""
    from crm_core.services.sla import run_sla_sweep

    ctx.progress(0, 1, "jobs.progress.sla_sweep")
    result = run_sla_sweep(ctx.db, ctx.tenant_id, now=_as_of(ctx))
    ctx.progress(1, 1)
    return {"warnings": result.warnings, "breaches": result.breaches,
            "manager_escalations": result.manager_escalations, "seconds": round(result.seconds, 3)}


@job_kind("service_daily", roles=ADMINS, schedulable=True, default_schedule=("*/10", "*", "*"))
def service_daily(ctx: JobContext) -> dict[str, Any]:
    """Recount the service dashboard's daily figures of the last 100 days before today (decision 0033)."""
    from crm_core.services.service_daily import run_service_daily

    ctx.progress(0, 1, "jobs.progress.service_daily")
    result = run_service_daily(ctx.db, ctx.tenant_id, now=_as_of(ctx))
    ctx.progress(1, 1)
    return {"first_day": result.first_day.isoformat(), "end_day": result.end_day.isoformat(), "rows": result.rows,
            "seconds": round(result.seconds, 3)}


@job_kind("campaign_results_refresh", roles=IMPORTERS, schedulable=True, default_schedule=("*/15", "*", "*"))
def campaign_results_refresh(ctx: JobContext) -> dict[str, Any]:
    """Recount the campaign results page's rollup: members per day and step, credited deals (decision 0051)."""
    from crm_core.services.campaign_results_refresh import run_campaign_results_refresh

    ctx.progress(0, 1, "jobs.progress.campaign_results_refresh")
    result = run_campaign_results_refresh(ctx.db, ctx.tenant_id, now=_as_of(ctx))
    ctx.progress(1, 1)
    return {"daily_rows": result.daily_rows, "influence_rows": result.influence_rows,
            "seconds": round(result.seconds, 3)}


@job_kind("sales_rollup", roles=IMPORTERS, schedulable=True, default_schedule=("*/10", "*", "*"))
def sales_rollup(ctx: JobContext) -> dict[str, Any]:
    """Recount the funnel's and the dashboard's sums: deals, orders, new customers, overdue tasks (decision 0064)."""
    from crm_core.services.sales_rollup import run_sales_rollup

    ctx.progress(0, 1, "jobs.progress.sales_rollup")
    result = run_sales_rollup(ctx.db, ctx.tenant_id, now=_as_of(ctx))
    ctx.progress(1, 1)
    return {"deal_rows": result.deal_rows, "order_rows": result.order_rows,
            "counted_before": result.counted_before.isoformat(), "seconds": round(result.seconds, 3)}


@job_kind("partitions_ahead", roles=ADMINS, schedulable=True, default_schedule=("50", "2", "*"))
def partitions_ahead(ctx: JobContext) -> dict[str, Any]:
    """PostgreSQL: create the coming months' partitions of activities and audit_events, and partitions for the
    earlier months that rows in the DEFAULT partition belong to (decision 0055); nothing elsewhere. Idempotent.
    Parameter ``months_ahead`` (0–24, default crm_core.partitions.MONTHS_AHEAD)."""
    from crm_core.models import utcnow
    from crm_core.partitions import MONTHS_AHEAD, ensure_partitions

    months = ctx.params.get("months_ahead", MONTHS_AHEAD)
    if not isinstance(months, int) or isinstance(months, bool) or not 0 <= months <= 24:
        raise ValidationFailed({"months_ahead": ("jobs.error.bad_params", {})})
    ctx.progress(0, 1, "jobs.progress.partitions_ahead")
    with ctx.db.system_transaction("partitions ahead") as session:
        result = ensure_partitions(session.connection(), today=(_as_of(ctx) or utcnow()).date(), months_ahead=months)
    ctx.progress(1, 1)
    return {"database": ctx.db.dialect_name, "created": list(result.created), "moved_rows": result.moved_rows}


@job_kind("sla_recompute", roles=ADMINS)
def sla_recompute(ctx: JobContext) -> dict[str, Any]:
    """Recompute every open case's SLA clocks from its history after a change of policy or calendar."""
    from crm_core.services.sla_settings import recompute_open_cases

    ctx.progress(0, None, "jobs.progress.sla_recompute")
    count = recompute_open_cases(ctx.db, ctx.actor, tenant_id=ctx.tenant_id)
    ctx.progress(count, count)
    return {"recomputed": count}


@job_kind("customer_tier_refresh", roles=ADMINS, schedulable=True, default_schedule=("40", "1", "*"))
def customer_tier_refresh(ctx: JobContext) -> dict[str, Any]:
    """Recompute every customer's tier from their orders (set-based), nightly and after a tier change; with
    ``customer_ids``, those customers' only (queued after their orders changed)."""
    from crm_core.services.customer_tiers import run_tier_refresh

    raw = ctx.params.get("customer_ids")
    if raw is not None and (not isinstance(raw, list) or not all(isinstance(one, int) for one in raw)):
        raise ValidationFailed({"customer_ids": ("jobs.error.bad_params", {})})
    ctx.progress(0, 1, "jobs.progress.customer_tier_refresh")
    result = run_tier_refresh(ctx.db, ctx.tenant_id, now=_as_of(ctx), customer_ids=raw)
    ctx.progress(1, 1)
    return {"customers": {str(tier_id): count for tier_id, count in result.customers.items()},
            **({"only": len(set(raw))} if raw is not None else {}), "seconds": round(result.seconds, 3)}


@job_kind("automation_run", roles=ADMINS, schedulable=True, default_schedule=("*/15", "*", "*"))
def automation_run(ctx: JobContext) -> dict[str, Any]:
    """Run the tenant's due stage-automation rules once (idempotent)."""
    from crm_core.services.automation import run_automation

    ctx.progress(0, 1, "jobs.progress.automation")
    results = run_automation(ctx.db, tenant_ids=[ctx.tenant_id], now=_as_of(ctx))
    ctx.progress(1, 1)
    result = results[0] if results else None
    if result is None:
        return {"fired": 0, "seeded_rules": 0, "rules": []}
    return {
        "fired": result.fired, "seeded_rules": result.seeded, "seconds": round(result.seconds, 3),
        "rules": [{"rule_id": rule.rule_id, "name": rule.name, "fired": rule.fired, "tasks": rule.tasks,
                   "tags": rule.tags, "enrolled": rule.enrolled} for rule in result.rules],
    }


# --- imports ---------------------------------------------------------------------------


def _text(params: dict[str, Any], name: str, default: str | None = None) -> str | None:
    value = params.get(name)
    if value is None or value == "":
        return default
    if not isinstance(value, str):
        raise ImportNotAllowed("jobs.error.bad_param", name=name)
    return value


def _chunk_size(params: dict[str, Any]) -> int:
    from crm_core.importing.reading import DEFAULT_CHUNK_ROWS

    value = params.get("chunk_size")
    if value is None:
        return DEFAULT_CHUNK_ROWS
    if isinstance(value, bool) or not isinstance(value, int) or value < 100:
        raise ImportNotAllowed("imports.cli.bad_chunk")
    return value


def _refused(entity: str, file_name: str, error: ImportFileRefused, *, dry_run: bool) -> dict[str, Any]:
    """The result of a file that cannot be read: an import ``rejected`` with the reason, nothing written."""
    return {
        "dry_run": dry_run, "entity": entity, "file_name": file_name, "status": "rejected", "rows_read": 0,
        "created": 0, "updated": 0, "skipped": 0, "rejected": 0, "run_id": None, "rejected_rows_run_id": None,
        "failures": [], "error": error.message_key, "error_params": dict(error.params),
    }


def _preset_or_suggested(ctx: JobContext, actor: Actor, entity: str, headers: list[str]) -> ImportMapping:
    """No mapping given: the ``preset`` parameter's (a name or ``detect``), else the headers' suggestion."""
    from crm_core.importing.mapping import ImportMapping
    from crm_core.importing.presets import preset_mapping

    preset = _text(ctx.params, "preset")
    if not preset:
        return ImportMapping.suggested(entity, headers)
    with ctx.db.session(actor) as session:
        return preset_mapping(session, preset, entity, headers, admin=actor.is_admin)


@job_kind("import", roles=IMPORTERS)
def import_file(ctx: JobContext) -> dict[str, Any]:
    """Import (or, with ``dry_run``, only judge) an uploaded file, as the user who asked (admins, managers).

    Parameters (``submit_job(db, actor, "import", params)``):

    - ``entity``: customers | contacts | products | opportunities | orders | activities | tasks
    - ``file_path``: the upload, stored under ``files_dir()`` by the caller — use
      ``crm_core.jobs.uploads.store_upload(tenant_id, file_name, bytes_or_path)``; a path outside
      ``files_dir()`` or in another tenant's uploads is refused (``jobs.error.upload_outside``)
    - ``file_name``: the name the user knows (shown on the run; ``.xlsx`` decides XLSX); default the file's
    - ``mapping``: ``{"columns": {column: field}, "values": {column: {file value: stored value}},
      "match_on": [field]}`` (``ImportMapping.as_dict()``); absent or null: the ``preset``'s
      (``crm_core.importing.presets``: salesforce | hubspot | fxiaoke | detect), else suggested from the headers
    - ``mode`` (create | update | upsert, default create), ``policy`` (all-or-nothing | skip-invalid,
      default all-or-nothing), ``duplicates`` (skip | merge | create, default skip)
    - ``encoding``, ``delimiter``, ``sheet``: override what was detected (null: detect)
    - ``chunk_size``: rows per chunk (≥ 100; default 10,000)
    - ``dry_run``: true — judge the whole file and keep nothing (the wizard's "check the file" step)

    Result of an import (``dry_run`` false), the CLI's ``--json`` object plus four keys::

        {"dry_run": false, "entity", "file_name",
         "status": "imported" | "partial" | "rejected",
         "rows_read", "created", "updated", "skipped", "rejected", "run_id",
         "failures": [{"expectation", "column", "count", "examples", "rows", "message_key", "params"}],
         "rejected_rows_run_id": run_id when rows were refused (download them with
             crm_core.importing.runner.quarantined_rows_csv(db, actor, run_id, lang)), else null}

    Result of a dry run: ``{"dry_run": true, "entity", "file_name", "status": "valid" | "invalid",
    "success", "rows_read", "expectations", "rejected", "duplicates_in_file", "matches_in_database",
    "duplicates_blocked", "regions_mapped", "regions_ambiguous", "regions_not_found" (customers; an
    import's result carries these four too), "would_create", "would_update", "would_skip" (what writing
    the valid rows would do), "quality": [{"suite", "check", "count", "examples"}] (the data-quality checks
    the written rows would make fail: the dry run writes them in a transaction it rolls back and measures the
    database suites' checks before and after, decision 0056), "failures": [...], "rejected_csv_path": a CSV of the
    refused rows with a reason column, in the requester's language, beside the upload (null when
    none was refused)}``.

    A file that cannot be read (empty, unknown encoding …) is a result too: ``status`` "rejected"
    with ``error`` (an ``imports.error.*`` key) and ``error_params``. A bad mapping or option
    fails the job with its ``imports.error.*`` key. Translate a failure's reason with
    ``crm_core.importing.runner.reason_text(message_key, params, lang)``.

    The upload is deleted when an import ends imported or partial; it is kept after a dry run
    (the import of the same file comes next), a rejected import (fix and run it again) and a
    failed, cancelled or interrupted job (Retry); the daily ``uploads_cleanup`` removes it later
    (``crm_core.jobs.uploads``). Cancelling stops at the next chunk and rolls the whole import back.
    """
    from crm_core.importing.fields import ENTITIES
    from crm_core.importing.mapping import ImportMapping, ImportOptions
    from crm_core.importing.reading import open_import_file
    from crm_core.importing.runner import rejected_rows_csv, run_import, validate_import
    from crm_core.jobs.uploads import discard_upload, resolve_upload

    actor = ctx.require_actor()
    params = ctx.params
    dry_run = bool(params.get("dry_run"))
    entity = _text(params, "entity") or ""
    if entity not in ENTITIES:
        raise ImportNotAllowed("imports.error.unknown_entity", entity=entity, entities=", ".join(ENTITIES))
    path = resolve_upload(ctx.tenant_id, _text(params, "file_path") or "")
    file_name = _text(params, "file_name") or path.name
    options = ImportOptions(
        mode=_text(params, "mode", "create") or "create",
        policy=_text(params, "policy", "all-or-nothing") or "all-or-nothing",
        duplicates=_text(params, "duplicates", "skip") or "skip",
        chunk_size=_chunk_size(params),
        fallback_owner=_text(params, "fallback_owner") or None,
        orphans=_text(params, "orphans", "reject") or "reject",
        create_owners=params.get("create_owners") is True,
    )
    ctx.progress(0, None, "jobs.progress.reading_file")
    try:
        file = open_import_file(file_name, path, encoding=_text(params, "encoding"),
                                delimiter=_text(params, "delimiter"), sheet=_text(params, "sheet"))
        mapping = (ImportMapping.from_dict(params["mapping"]) if params.get("mapping")
                   else _preset_or_suggested(ctx, actor, entity, file.headers))
        if customer_match := _text(params, "customer_match"):
            mapping.customer_match = customer_match  # the option given beside the mapping (the API's, the CLI's)
        if dry_run:
            report = validate_import(ctx.db, actor, file, entity, mapping, options, progress=ctx.progress_callback())
        else:
            result = run_import(ctx.db, actor, file, entity, mapping, options, progress=ctx.progress_callback())
    except ImportFileRefused as refused:
        return _refused(entity, file_name, refused, dry_run=dry_run)
    if dry_run:
        csv_path = None
        if report.rejected:
            csv_path = path.with_name(f"rejected-rows.{ctx.language}.csv")
            csv_path.write_bytes(rejected_rows_csv(file, report, ctx.language))
        return {"dry_run": True, "entity": entity, "file_name": file_name,
                "status": "valid" if report.success else "invalid", **report.as_dict(),
                "rejected_csv_path": str(csv_path) if csv_path else None}
    if result.status in ("imported", "partial"):
        with ctx.db.system_session("import job: discard upload") as session:
            discard_upload(session, ctx.tenant_id, path, job_id=ctx.job_id)
    return {"dry_run": False, "entity": entity, "file_name": file_name, **result.as_dict(),
            "rejected_rows_run_id": result.run_id if result.rejected else None}


@job_kind("import_revert", roles=IMPORTERS)
def import_revert(ctx: JobContext) -> dict[str, Any]:
    """Undo import run ``run_id``: delete what it created, restore what it updated (admins, managers).

    Result: :meth:`RevertResult.as_dict` (deleted, restored, conflicts, consent entries appended and kept). A run
    that cannot be reverted fails the job with its ``imports.error.*`` key (nothing changed): records added since
    to what it created (``imports.error.revert_attached``), a state that is not revertible.
    """
    from crm_core.importing.runner import revert_import

    run_id = ctx.params.get("run_id")
    if isinstance(run_id, bool) or not isinstance(run_id, int):
        raise ImportNotAllowed("jobs.error.bad_param", name="run_id")
    ctx.progress(0, 1, "jobs.progress.import_revert")
    result = revert_import(ctx.db, ctx.require_actor(), run_id)
    ctx.progress(1, 1)
    return result.as_dict()


@job_kind("uploads_cleanup", roles=ADMINS, schedulable=True, default_schedule=("17", "2", "*"))
def uploads_cleanup(ctx: JobContext) -> dict[str, Any]:
    """Delete the tenant's uploads untouched for a week that no queued or running job needs (daily)."""
    from crm_core.jobs.uploads import RETENTION, remove_old_uploads

    ctx.progress(0, 1, "jobs.progress.uploads_cleanup")
    with ctx.db.system_session("uploads cleanup") as session:
        removed = remove_old_uploads(session, ctx.tenant_id)
    ctx.progress(1, 1)
    return {"removed": removed, "retention_days": RETENTION.days}


# --- whole-database work (admins only) --------------------------------------------------


class WholeDatabaseRefused(DomainError):
    """A tenant's admin asked for whole-database work while the database holds other tenants too."""

    message_key = "jobs.error.whole_database"


def _whole_database(ctx: JobContext) -> None:
    """Whole-database work reads or writes every tenant: a user's request is refused when there are others.

    An admin administers one tenant; on a database of several tenants only the operator (the
    CLI, a job without a requester) copies or seeds the whole database.
    """
    if ctx.actor is None:
        return
    from sqlalchemy import func, select

    from crm_core.models import Tenant

    with ctx.db.system_session("job: tenants") as session:
        others = session.scalar(select(func.count()).select_from(Tenant).where(Tenant.id != ctx.tenant_id))
    if others:
        raise WholeDatabaseRefused()


class DemoRefused(DomainError):
    """The demo data cannot be loaded here (its tenants or users already exist)."""

    message_key = "cli.demo.failed"


def _json_result(value: dict[str, Any]) -> dict[str, Any]:
    """``value`` as the JSON column will store it (dates as text)."""
    return dict(json.loads(json.dumps(value, default=str)))


@job_kind("migration", roles=ADMINS)
def migration(ctx: JobContext) -> dict[str, Any]:
    """Copy the WHOLE database (every tenant) into an empty one and prove the copy; admins only.

    An admin may start it only on a database of their tenant alone; with other tenants in it,
    only the operator does (``python -m crm_core migrate``: a job without a requester).

    The source is the job's own database. Parameters: ``target_url``; ``batch_size`` (default
    20,000); ``resume`` (continue an interrupted copy into the same target). The job is
    recorded in the source, so the copy carries its row: it is marked succeeded there too when
    the proof holds. Result: the ``migrate --json`` object (``status`` ok/failed, rows, tables,
    checks, failures, with URLs shown without passwords). Cancelling stops between batches; the
    batches copied so far stay in the target, and ``resume`` continues after them.
    """
    from crm_core.migration import DEFAULT_BATCH_SIZE, migrate

    _whole_database(ctx)
    source_url = ctx.db.engine.url.render_as_string(hide_password=False)
    target_url = ctx.params.get("target_url")
    batch_size = ctx.params.get("batch_size") or DEFAULT_BATCH_SIZE
    if not isinstance(target_url, str) or not target_url:
        raise ValidationFailed({"target_url": ("jobs.error.bad_param", {"name": "target_url"})})
    if ":***@" in target_url:  # stored without its password (a retry): only the CLI that knew it can run it
        raise ValidationFailed({"target_url": ("jobs.error.password_not_stored", {})})
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValidationFailed({"batch_size": ("migration.cli.bad_batch_size", {})})

    def progress(table: str, done: int, total: int) -> None:
        ctx.progress(done, total, "jobs.progress.migration", table=table)

    report = migrate(source_url, target_url, batch_size=batch_size, resume=bool(ctx.params.get("resume")),
                     progress=progress)
    result = _json_result(report.as_dict())
    if report.success:
        _mark_copied_job_done(ctx, target_url, result)
    return result


def _mark_copied_job_done(ctx: JobContext, target_url: str, result: dict[str, Any]) -> None:
    """The target holds this job's row as it was while running: end it there as it ends here."""
    from sqlalchemy import update

    from crm_core.db import make_engine
    from crm_core.models import utcnow
    from crm_core.models.jobs import Job, JobStatus

    engine = make_engine(target_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                update(Job).where(Job.id == ctx.job_id)
                .values(status=JobStatus.SUCCEEDED.value, finished_at=utcnow(), result=result,
                        progress_done=ctx.done, progress_total=ctx.total)
            )
    finally:
        engine.dispose()


@job_kind("demo_load", roles=ADMINS)
def demo_load(ctx: JobContext) -> dict[str, Any]:
    """Load the deterministic demo data: NEW tenants of their own (``demo``, ``demo-2`` …); admins only.

    A whole-database operation: it writes tenants besides the one that asked, so only an
    admin starts it, and only on a database of their tenant alone (the operator's CLI on any).
    Parameters: ``customers`` (per tenant, default
    2,000), ``seed`` (42), ``tenants`` (1), ``locale`` (en_US | zh_CN), ``today`` (YYYY-MM-DD the
    history ends on), ``if_empty`` (do nothing when the database has customers), ``profile`` (standard | scale:
    the history per customer, crm_core.demo.PROFILES). Result:
    ``{"status": "ok", customers, contacts, …, "seconds"}`` or ``{"status": "skipped", "reason":
    "not empty"}``. One transaction: a cancel or a killed worker leaves nothing.
    """

    _whole_database(ctx)

    def progress(step: str, done: int, total: int) -> None:
        ctx.progress(done, total, "jobs.progress.demo_load", step=step)

    return load_demo(ctx.db, ctx.params, progress)


def load_demo(db: Database, params: dict[str, Any], progress: DemoProgress | None = None) -> dict[str, Any]:
    """The demo load itself (the ``demo_load`` job; the CLI on a database with no tenant to own a job)."""
    from crm_core.db import refresh_planner_statistics
    from crm_core.demo import generate_demo

    if params.get("if_empty") and _has_customers(db):
        return {"status": "skipped", "reason": "not empty"}
    today = dt.date.fromisoformat(params["today"]) if params.get("today") else None
    try:
        summary = generate_demo(
            db, customers=int(params.get("customers", 2000)), seed=int(params.get("seed", 42)),
            tenants=int(params.get("tenants", 1)), locale=str(params.get("locale") or "en_US"),
            progress=progress, today=today, profile=str(params.get("profile") or "standard"),
        )
    except ValueError as error:
        raise DemoRefused(reason=str(error)) from None
    from crm_core.service_demo import add_service_desk

    add_service_desk(db, zh=str(params.get("locale") or "").lower().startswith("zh"), seed=int(params.get("seed", 42)))
    refresh_planner_statistics(db.engine, bulk_loaded=True)
    # the campaign results page reads counts a job writes: count the demo's campaigns once now, so it opens
    # with figures rather than "not counted yet" until the schedule's first run
    from crm_core.jobs.cli import active_tenant_ids
    from crm_core.services.campaign_results_refresh import run_campaign_results_refresh
    from crm_core.services.sales_rollup import run_sales_rollup

    # the rows are committed by now: a count that fails must not report the load as lost (a retry would load it
    # again); the figures are then read live until the scheduled count
    uncounted: list[int] = []
    for tenant_id in active_tenant_ids(db):
        try:
            run_campaign_results_refresh(db, tenant_id)
            run_sales_rollup(db, tenant_id)
        except Exception:
            LOG.exception("demo load: the first count of tenant %s failed; its figures are read live until the "
                          "scheduled count", tenant_id)
            uncounted.append(tenant_id)
    return _json_result({"status": "ok", **summary.as_dict(), "uncounted_tenants": uncounted})


def _has_customers(db: Database) -> bool:
    from sqlalchemy import func, select

    from crm_core.models import Customer

    with db.system_session("demo: any customers") as session:
        return bool(session.scalar(select(func.count()).select_from(select(Customer.id).limit(1).subquery())))


# --- periodic work of one tenant ---------------------------------------------------------


@job_kind("quality_check", roles=ADMINS, schedulable=True, default_schedule=("30", "3", "*"))
def quality_check(ctx: JobContext) -> dict[str, Any]:
    """Run the data-quality suites (``suites``: a list of names; absent: every ``db_*`` suite) on the tenant.

    ``data_docs`` (default true) also updates the tenant's Data Docs site. Result:
    ``{"status": "passed" | "failed", "runs": [SuiteRun.as_dict() …], "run_ids": [check_runs ids],
    "data_docs": path of the site's index.html or null}`` — the page offers the site with
    ``crm_core.quality.runs.data_docs_zip(tenant_id)``.
    """
    from crm_core.quality.runs import (
        data_docs_index,
        database_suites,
        run_suite_for_all_tenants,
        run_suite_for_tenant,
    )

    known = database_suites()
    suites = ctx.params.get("suites") or known
    if not isinstance(suites, list) or any(suite not in known for suite in suites):
        raise ValidationFailed({"suites": ("quality.cli.unknown_suite", {"suite": str(suites),
                                                                          "known": ", ".join(known)})})
    data_docs = bool(ctx.params.get("data_docs", True))
    slug = _tenant_slug(ctx)
    runs = []
    for done, suite in enumerate(suites):
        ctx.progress(done, len(suites), "jobs.progress.quality_check", suite=suite)
        if ctx.actor is not None:  # the admin who asked: measured in their scope, recorded as theirs
            runs.append(run_suite_for_tenant(ctx.db, ctx.actor, suite, data_docs=data_docs))
        else:
            runs.extend(run_suite_for_all_tenants(ctx.db, suite, tenant_slug=slug, data_docs=data_docs))
    ctx.progress(len(suites), len(suites))
    index = data_docs_index(ctx.tenant_id) if data_docs else None
    return _json_result({
        "status": "passed" if all(run.success for run in runs) else "failed",
        "runs": [run.as_dict() for run in runs],
        "run_ids": [run.run_id for run in runs],
        "data_docs": str(index) if index else None,
    })


def _tenant_slug(ctx: JobContext) -> str:
    from sqlalchemy import select

    from crm_core.models import Tenant

    with ctx.db.system_session("job: tenant slug") as session:
        return str(session.scalar(select(Tenant.slug).where(Tenant.id == ctx.tenant_id)))


SCORE_ACTIONS = ("train", "apply", "refresh")


@job_kind("score_training", roles=ADMINS, schedulable=True, default_schedule=("0", "4", "0"))
def score_training(ctx: JobContext) -> dict[str, Any]:
    """Train and/or apply the scorers of the tenant (weekly by default: train new versions, then rescore).

    Parameters: ``scorer`` (one name; absent: every scorer), ``as_of`` (ISO date; default now),
    ``action``: train | apply | refresh (train, then apply the new version; the default).
    Result: ``{"action", "results": [{"scorer", "action", "version", "method", "seconds",
    "metrics" (train) | "scored" (apply)} …]}``.
    """
    from crm_core.scoring import SCORERS, runner

    action = ctx.params.get("action") or "refresh"
    if action not in SCORE_ACTIONS:
        raise ValidationFailed({"action": ("jobs.error.bad_param", {"name": "action"})})
    scorer = ctx.params.get("scorer")
    if scorer is not None and scorer not in SCORERS:
        raise ValidationFailed({"scorer": ("score.cli.unknown_scorer", {"name": str(scorer),
                                                                         "known": ", ".join(SCORERS)})})
    names = [scorer] if scorer else list(SCORERS)
    as_of = _as_of(ctx)
    steps = [(name, step) for name in names for step in (("train", "apply") if action == "refresh" else (action,))]
    results: list[dict[str, Any]] = []
    for done, (name, step) in enumerate(steps):
        ctx.progress(done, len(steps), f"jobs.progress.score_{step}", scorer=name)
        if step == "train":
            trained = runner.train(ctx.db, ctx.tenant_id, name, as_of=as_of)
            results.append({"scorer": name, "action": "train", "version": trained.version,
                            "method": trained.method, "seconds": round(trained.seconds, 2),
                            "metrics": trained.metrics})
        else:
            applied = runner.apply(ctx.db, ctx.tenant_id, name, as_of=as_of)
            results.append({"scorer": name, "action": "apply", "version": applied.version,
                            "method": applied.method, "scored": applied.scored,
                            "seconds": round(applied.seconds, 2)})
    ctx.progress(len(steps), len(steps))
    return _json_result({"action": action, "results": results})


@job_kind("segment_snapshot", roles=ADMINS, schedulable=True, default_schedule=("45", "0", "*"))
def segment_snapshot(ctx: JobContext) -> dict[str, Any]:
    """Record today's size of every saved segment of the tenant (daily; the size-over-time chart).

    Result: ``{"counted", "skipped", "sizes": {segment id: members}}``. A cancel stops before
    the next segment; the sizes recorded so far stay (each snapshot is a fact of its own).
    """
    from crm_core.services.segments import snapshot_all_segments

    def progress(done: int, total: int) -> None:
        ctx.progress(done, total, "jobs.progress.segment_snapshot")

    run = snapshot_all_segments(ctx.db, tenant_id=ctx.tenant_id, progress=progress)
    ctx.progress(run.counted + run.skipped, run.counted + run.skipped)
    return _json_result({"counted": run.counted, "skipped": run.skipped, "sizes": run.sizes})


# kinds that live with their own area register themselves when imported
import crm_core.mail.imap  # noqa: E402,F401  - mail_fetch
import crm_core.mail.outbound  # noqa: E402,F401  - case_mail_send
import crm_core.marketing.engine  # noqa: E402,F401  - marketing_tick
import crm_core.marketing.sender  # noqa: E402,F401  - marketing_send
import crm_core.notifications.robots  # noqa: E402,F401  - notification_robots
import crm_core.notifications.sweep  # noqa: E402,F401  - task_reminders
import crm_core.webhooks.jobs  # noqa: E402,F401  - webhook_dispatch
