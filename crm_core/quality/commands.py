"""``python -m crm_core migrate`` and ``python -m crm_core check``: handlers and their arguments.

Both run as jobs (``migration``, ``quality_check`` in :mod:`crm_core.jobs.kinds`) and wait for
them (``--no-wait``, ``--inline``: :mod:`crm_core.jobs.cli`). Exit codes follow :mod:`crm_core.cli`:
0 success, 1 the command ran and a check failed (or the migration was refused), 2 usage errors.
``--json`` prints exactly one object on stdout; progress bars go to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from sqlalchemy import make_url
from sqlalchemy.exc import ArgumentError

from crm_core.db import Database
from crm_core.errors import DomainError
from crm_core.i18n import t


def _language() -> str:
    from crm_core.cli import cli_language

    return cli_language()


def _usage(message: str) -> Exception:
    from crm_core.cli import UsageError

    return UsageError(message)


def _print_json(payload: dict[str, Any]) -> None:
    print(json.dumps(payload, ensure_ascii=False, default=str))


def add_parsers(commands: Any) -> None:
    """Add ``migrate`` and ``check`` to the CLI's subcommands."""
    from crm_core.jobs.cli import add_job_options

    migrate = commands.add_parser(
        "migrate", help="copy the whole database to another one (SQLite, PostgreSQL, MariaDB) and verify it"
    )
    migrate.add_argument("--source", required=True, help="database URL to copy from (read only)")
    migrate.add_argument("--target", required=True, help="database URL to copy into (empty, or --resume)")
    migrate.add_argument("--batch-size", type=int, default=20_000)
    migrate.add_argument("--resume", action="store_true", help="continue an interrupted migration into the target")
    migrate.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    migrate.add_argument("--json", action="store_true")
    add_job_options(migrate)
    migrate.set_defaults(handler=cmd_migrate)

    check = commands.add_parser("check", help="run the data-quality suites against the database")
    check.add_argument("--suite", action="append", help="suite name (repeatable); default: every db_* suite")
    check.add_argument("--tenant", help="only the tenant with this slug")
    check.add_argument("--data-docs", action="store_true", help="also update each tenant's GX Data Docs site")
    check.add_argument("--json", action="store_true")
    add_job_options(check)
    check.set_defaults(handler=cmd_check)


def _source_database(source_url: str) -> Database:
    """The source, where the migration's job is recorded; refuses (as ``migrate`` would) one unreachable or outdated."""
    from crm_core import schema
    from crm_core.db import open_database
    from crm_core.errors import DatabaseUnreachable, SourceSchemaOutdated
    source = open_database(source_url)
    try:
        revision = schema.current_revision(source.engine)
    except Exception as error:  # an unreachable server or a missing file: say so, plainly
        source.engine.dispose()
        first_line = (str(error).strip().splitlines() or [type(error).__name__])[0][:300]
        raise DatabaseUnreachable(str(error), which="source", detail=first_line) from error
    if revision != schema.head_revision():
        source.engine.dispose()
        raise SourceSchemaOutdated(revision=revision or "-", head=schema.head_revision())
    return source


def _refused(args: argparse.Namespace, key: str, params: dict[str, Any], lang: str) -> int:
    message = t(key, lang, **params)
    if args.json:
        _print_json({"status": "refused", "error": key, "message": message})
    else:
        print(message, file=sys.stderr)
    return 1


def cmd_migrate(args: argparse.Namespace, db: Database) -> int:
    """Copy ``--source`` into ``--target`` and verify (a ``migration`` job); exit 1 when any check fails.

    The job is recorded in the source database. A worker runs it when the source is this
    command's database (``--database-url``/``CRM_DATABASE_URL``, the one the workers serve);
    any other source has no worker, so the job runs here.
    """
    from crm_core.jobs.cli import active_tenant_ids, report_failures, run_jobs

    lang = _language()
    if args.batch_size < 1:
        raise _usage(t("migration.cli.bad_batch_size", lang))
    try:
        source, target = make_url(args.source), make_url(args.target)
    except ArgumentError as error:
        raise _usage(t("migration.cli.bad_url", lang, detail=str(error))) from error
    for url in (source, target):
        if url.get_backend_name() not in ("sqlite", "postgresql", "mysql", "mariadb"):
            raise _usage(t("migration.cli.bad_url", lang, detail=url.render_as_string(hide_password=True)))
    if source == target:
        raise _usage(t("migration.cli.same_database", lang))
    try:
        source_db = _source_database(args.source)
    except DomainError as error:
        return _refused(args, error.message_key, error.params, lang)
    try:
        owners = active_tenant_ids(source_db)[:1]
        if not owners:
            raise _usage(t("jobs.cli.needs_tenant", lang))
        # the jobs row shows the target without its password; the password stays in this process
        params = {"target_url": target.render_as_string(hide_password=True), "batch_size": args.batch_size,
                  "resume": args.resume}
        secret = {"target_url": args.target} if target.password else None
        served_here = source == db.engine.url
        views = run_jobs(args, source_db, "migration", params, tenant_ids=owners,
                         inline=None if served_here else True, secret_params=secret)
    finally:
        source_db.engine.dispose()
    if views is None:
        return 0
    view = views[0]
    if view.status != "succeeded":
        if view.status == "failed" and (view.error_key or "").startswith("migration."):
            return _refused(args, view.error_key or "", view.error_params, lang)
        return report_failures(views)
    payload = {**view.result, "job_id": view.id}
    success = payload["status"] == "ok"
    if args.json:
        _print_json(payload)
        return 0 if success else 1
    for table in payload["tables"]:
        print(t("migration.cli.table", lang, table=f"{table['table']:<22}", rows=f"{table['rows']:>10,}",
                rate=f"{table['rows_per_second']:>10,.0f}"))
    print(t("migration.cli.total", lang, rows=f"{payload['rows_copied']:,}", seconds=f"{payload['copy_seconds']:.1f}",
            verify=f"{payload['verify_seconds']:.1f}", rate=f"{payload['rows_per_second']:,}"))
    for expectation in payload["checks"]["expectations"]:
        mark = "✓" if expectation["success"] else "✗"
        label = t(f"migration.check.{expectation['check']}", lang)
        print(f"  {mark} {label} ({expectation['figures']})")
    for figure in payload["failures"]:
        print(t("migration.cli.failure", lang, check=t(f"migration.check.{figure['check']}", lang),
                table=figure["table"], tenant="-" if figure["tenant_id"] is None else figure["tenant_id"],
                column=figure["column"] or "-", expected=figure["expected"], actual=figure["actual"],
                difference=figure["difference"]))
    if "whole_seconds" in payload["notes"]:
        print(t("migration.cli.whole_seconds", lang))
    print(t("migration.cli.ok" if success else "migration.cli.failed", lang))
    return 0 if success else 1


def _check_tenants(db: Database, slug: str | None) -> list[int]:
    from sqlalchemy import select

    from crm_core.jobs.cli import active_tenant_ids
    from crm_core.models import Tenant

    if not slug:
        return active_tenant_ids(db)
    with db.system_session("cli check: tenant") as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        raise _usage(t("quality.cli.unknown_tenant", _language(), tenant=slug))
    return [tenant_id]


def cmd_check(args: argparse.Namespace, db: Database) -> int:
    """Run data-quality suites (a ``quality_check`` job per tenant); exit 1 when an expectation fails."""
    from crm_core.jobs.cli import report_failures, run_jobs
    from crm_core.quality.runs import database_suites

    lang = _language()
    known = database_suites()
    suites = args.suite or known
    unknown = [name for name in suites if name not in known]
    if unknown:
        raise _usage(t("quality.cli.unknown_suite", lang, suite=", ".join(unknown), known=", ".join(known)))
    views = run_jobs(args, db, "quality_check", {"suites": suites, "data_docs": bool(args.data_docs)},
                     tenant_ids=_check_tenants(db, args.tenant))
    if views is None:
        return 0
    runs = [run for view in views for run in view.result.get("runs", [])]
    failed_jobs = report_failures(views)
    success = not failed_jobs and all(run["success"] for run in runs)
    if args.json:
        _print_json({"status": "passed" if success else "failed", "runs": runs,
                     "job_ids": [view.id for view in views]})
        return 0 if success else 1
    for run in runs:
        mark = "✓" if run["success"] else "✗"
        print(t("quality.cli.run", lang, mark=mark, suite=run["suite"], tenant=run["tenant_id"],
                failed=run["failed"], total=run["expectations"]))
        for check in run["checks"]:
            if check["success"]:
                continue
            examples = "; ".join(f"#{example['id']} {example['label']}" for example in check["examples"])
            print(t("quality.cli.failure", lang, check=t(f"quality.check.{check['check']}", lang),
                    violations=f"{check['violations']:,}", examples=examples or "-"))
    print(t("quality.cli.passed" if success else "quality.cli.failed", lang))
    return 0 if success else 1
