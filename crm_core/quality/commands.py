"""``python -m crm_core migrate`` and ``python -m crm_core check``: handlers and their arguments.

Exit codes follow :mod:`crm_core.cli`: 0 success, 1 the command ran and a check failed (or the
migration was refused), 2 usage errors. ``--json`` prints exactly one object on stdout; progress
bars go to stderr.
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
    migrate = commands.add_parser(
        "migrate", help="copy the whole database to another one (SQLite, PostgreSQL, MariaDB) and verify it"
    )
    migrate.add_argument("--source", required=True, help="database URL to copy from (read only)")
    migrate.add_argument("--target", required=True, help="database URL to copy into (empty, or --resume)")
    migrate.add_argument("--batch-size", type=int, default=20_000)
    migrate.add_argument("--resume", action="store_true", help="continue an interrupted migration into the target")
    migrate.add_argument("--no-progress", action="store_true", help="no progress bars on stderr")
    migrate.add_argument("--json", action="store_true")
    migrate.set_defaults(handler=cmd_migrate)

    check = commands.add_parser("check", help="run the data-quality suites against the database")
    check.add_argument("--suite", action="append", help="suite name (repeatable); default: every db_* suite")
    check.add_argument("--tenant", help="only the tenant with this slug")
    check.add_argument("--data-docs", action="store_true", help="also update each tenant's GX Data Docs site")
    check.add_argument("--json", action="store_true")
    check.set_defaults(handler=cmd_check)


def cmd_migrate(args: argparse.Namespace, _db: Database) -> int:
    """Copy ``--source`` into ``--target`` and verify; exit 1 when any check fails."""
    from crm_core.migration import difference, migrate, tqdm_progress

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
        report = migrate(
            args.source, args.target, batch_size=args.batch_size, resume=args.resume,
            progress=None if args.no_progress else tqdm_progress(),
        )
    except DomainError as error:
        message = t(error.message_key, lang, **error.params)
        if args.json:
            _print_json({"status": "refused", "error": error.message_key, "message": message})
        else:
            print(message, file=sys.stderr)
        return 1
    payload = report.as_dict()
    if args.json:
        _print_json(payload)
        return 0 if report.success else 1
    for table in report.tables:
        print(t("migration.cli.table", lang, table=f"{table.table:<22}", rows=f"{table.rows:>10,}",
                rate=f"{table.rows_per_second:>10,.0f}"))
    print(t("migration.cli.total", lang, rows=f"{report.rows:,}", seconds=f"{payload['copy_seconds']:.1f}",
            verify=f"{payload['verify_seconds']:.1f}", rate=f"{payload['rows_per_second']:,}"))
    for expectation in report.verification.expectations:
        mark = "✓" if expectation["success"] else "✗"
        label = t(f"migration.check.{expectation['check']}", lang)
        print(f"  {mark} {label} ({expectation['figures']})")
    for figure in report.verification.failures:
        print(t("migration.cli.failure", lang, check=t(f"migration.check.{figure.check}", lang), table=figure.table,
                tenant="-" if figure.tenant_id is None else figure.tenant_id, column=figure.column or "-",
                expected=figure.expected, actual=figure.actual, difference=difference(figure)))
    if "whole_seconds" in report.notes:
        print(t("migration.cli.whole_seconds", lang))
    print(t("migration.cli.ok" if report.success else "migration.cli.failed", lang))
    return 0 if report.success else 1


def cmd_check(args: argparse.Namespace, db: Database) -> int:
    """Run data-quality suites against every tenant; exit 1 when an expectation fails."""
    from crm_core.quality.runs import database_suites, run_suite_for_all_tenants

    lang = _language()
    known = database_suites()
    suites = args.suite or known
    unknown = [name for name in suites if name not in known]
    if unknown:
        raise _usage(t("quality.cli.unknown_suite", lang, suite=", ".join(unknown), known=", ".join(known)))
    runs = []
    for suite in suites:
        runs.extend(run_suite_for_all_tenants(db, suite, tenant_slug=args.tenant, data_docs=args.data_docs))
    if args.tenant and not runs:
        raise _usage(t("quality.cli.unknown_tenant", lang, tenant=args.tenant))
    success = all(run.success for run in runs)
    if args.json:
        _print_json({"status": "passed" if success else "failed", "runs": [run.as_dict() for run in runs]})
        return 0 if success else 1
    for run in runs:
        mark = "✓" if run.success else "✗"
        print(t("quality.cli.run", lang, mark=mark, suite=run.suite, tenant=run.tenant_id,
                failed=len(run.failures), total=len(run.checks)))
        for check in run.failures:
            examples = "; ".join(f"#{example['id']} {example['label']}" for example in check.examples)
            print(t("quality.cli.failure", lang, check=t(f"quality.check.{check.check}", lang),
                    violations=f"{check.violations:,}", examples=examples or "-"))
    print(t("quality.cli.passed" if success else "quality.cli.failed", lang))
    return 0 if success else 1
