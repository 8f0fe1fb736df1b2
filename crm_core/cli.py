"""Command line: ``python -m crm_core COMMAND …``.

Exit codes: 0 success, 1 the command ran but failed (bad data, refused), 2 usage errors.
Messages follow ``CRM_LANG`` or ``LANG`` (English or 简体中文). ``--json`` prints one object.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from crm_core import schema
from crm_core.config import DATA_DIR, load_settings
from crm_core.db import Database, open_database, refresh_planner_statistics
from crm_core.errors import DomainError, ValidationFailed
from crm_core.i18n import normalise_language, t
from crm_core.models import Tenant, User


def cli_language() -> str:
    """The language for messages: CRM_LANG, else LANG."""
    return normalise_language(os.environ.get("CRM_LANG") or os.environ.get("LANG"))


class UsageError(Exception):
    """Wrong arguments (exit code 2)."""


def _emit(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    if getattr(args, "json", False):
        print(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        for line in lines:
            print(line)


def cmd_init(args: argparse.Namespace, db: Database) -> int:
    """Create or upgrade the schema; on first run create the main tenant and its admin."""
    lang = cli_language()
    before, after = schema.upgrade_to_head(db.engine)
    if before is not None and before != after and db.dialect_name != "postgresql":
        # an upgrade may add or rebuild indexes: without fresh statistics the planner guesses
        # (PostgreSQL's ANALYZE ran inside the upgrade: crm_core/migrations/env.py)
        refresh_planner_statistics(db.engine)
    payload: dict[str, Any] = {"status": "ok", "revision_before": before, "revision": after, "admin_created": False}
    lines = [t("cli.init.schema", lang, before=before or "-", after=after)]
    with db.system_session("init") as session:
        has_users = bool(session.scalar(select(func.count()).select_from(User)))
    if not has_users:
        from crm_core.services.tenants import create_tenant

        settings = load_settings()
        username = os.environ.get("CRM_ADMIN_USERNAME", "admin").strip().lower()
        created = create_tenant(
            db,
            name=args.tenant_name,
            slug=args.tenant_slug,
            admin_username=username,
            admin_password=settings.admin_password,
        )
        payload.update(admin_created=True, admin_username=username, tenant_id=created.tenant_id)
        lines.append(t("cli.init.admin_created", lang, username=username, tenant=args.tenant_name))
        if created.generated_password:
            # shown once, never stored in clear
            payload["admin_password"] = created.admin_password
            lines.append(t("cli.init.admin_password", lang, password=created.admin_password))
    from crm_core.jobs.schedules import ensure_default_schedules

    ensure_default_schedules(db)
    _emit(args, payload, lines)
    return 0


def cmd_demo(args: argparse.Namespace, db: Database) -> int:
    """Load deterministic demo data as a job (optionally only when the database has no customers).

    The job belongs to the oldest tenant (the demo makes tenants of its own); a database with
    no tenant yet has nobody to own a job, so the load then runs here without one.
    ``make run`` loads it with ``--inline`` (CRM_JOBS_INLINE=1): no worker runs yet.
    """
    from crm_core.jobs.cli import active_tenant_ids, report_failures, run_jobs
    from crm_core.jobs.kinds import load_demo
    from crm_core.models import Customer

    lang = cli_language()
    if args.customers < 0 or args.tenants < 1:
        raise UsageError(t("cli.demo.bad_counts", lang))
    if args.locale not in ("en_US", "zh_CN"):
        raise UsageError(t("cli.demo.bad_locale", lang))
    schema.upgrade_to_head(db.engine)
    if args.if_empty:
        with db.system_session("demo check") as session:
            if session.scalar(select(func.count()).select_from(Customer)):
                _emit(args, {"status": "skipped", "reason": "not empty"}, [t("cli.demo.skipped", lang)])
                return 0
    params = {"customers": args.customers, "seed": args.seed, "tenants": args.tenants, "locale": args.locale,
              "today": args.today.isoformat() if args.today else None, "if_empty": args.if_empty,
              "profile": args.profile}
    owners = active_tenant_ids(db)[:1]
    if not owners:
        if args.no_wait:
            raise UsageError(t("jobs.cli.needs_tenant", lang))
        result = _demo_here(args, db, params, load_demo)
    else:
        views = run_jobs(args, db, "demo_load", params, tenant_ids=owners)
        if views is None:
            return 0
        if views[0].status != "succeeded":
            return report_failures(views)
        result = {**views[0].result, "job_id": views[0].id}
    if result.get("status") == "skipped":
        _emit(args, result, [t("cli.demo.skipped", lang)])
        return 0
    _emit(args, result, [t("cli.demo.done", lang, customers=result["customers"], seconds=f"{result['seconds']:.1f}")])
    return 0


def _demo_here(args: argparse.Namespace, db: Database, params: dict[str, Any],
               load: Callable[..., dict[str, Any]]) -> dict[str, Any]:
    def progress(step: str, done: int, total: int) -> None:
        if not args.json and sys.stderr.isatty():
            print(f"\r{step}: {done:,}/{total:,}", end="", file=sys.stderr, flush=True)

    result = load(db, params, progress)
    if not args.json and sys.stderr.isatty():
        print(file=sys.stderr)
    return result


def cmd_tenant_create(args: argparse.Namespace, db: Database) -> int:
    """Create a tenant with its default pipeline and first admin."""
    from crm_core.services.tenants import create_tenant

    lang = cli_language()
    created = create_tenant(
        db,
        name=args.name,
        slug=args.slug,
        admin_username=args.admin_username.strip().lower(),
        admin_password=os.environ.get("CRM_NEW_ADMIN_PASSWORD") or None,
        locale=args.locale,
    )
    payload = {"status": "ok", "tenant_id": created.tenant_id, "admin_user_id": created.admin_user_id}
    lines = [t("cli.tenant.created", lang, name=args.name, slug=args.slug)]
    if created.generated_password:
        payload["admin_password"] = created.admin_password
        lines.append(t("cli.init.admin_password", lang, password=created.admin_password))
    _emit(args, payload, lines)
    return 0


def cmd_user_unlock(args: argparse.Namespace, db: Database) -> int:
    """Lift a login lockout from the command line (for when no admin can log in)."""
    lang = cli_language()
    with db.system_transaction("cli unlock") as session:
        user = session.scalars(select(User).where(User.username == args.username.lower())).one_or_none()
        if user is None:
            print(t("cli.user.unknown", lang, username=args.username), file=sys.stderr)
            return 1
        user.locked_until = None
        user.failed_login_count = 0
    _emit(args, {"status": "ok", "username": args.username}, [t("cli.user.unlocked", lang, username=args.username)])
    return 0


def cmd_user_list(args: argparse.Namespace, db: Database) -> int:
    """List users with tenant, role and lock state."""
    with db.system_session("cli list users") as session:
        rows = session.execute(
            select(User.username, User.full_name, User.role, User.is_active, User.locked_until, Tenant.slug)
            .join(Tenant, Tenant.id == User.tenant_id)
            .order_by(Tenant.slug, User.username)
        ).all()
    users = [
        {"username": r.username, "name": r.full_name, "role": r.role, "tenant": r.slug,
         "active": r.is_active, "locked_until": r.locked_until}
        for r in rows
    ]
    lines = [f"{u['tenant']:<16} {u['username']:<24} {u['role']:<8} {u['name']}" for u in users]
    _emit(args, {"status": "ok", "users": users}, lines)
    return 0


def _iso_date(value: str) -> dt.date:
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(t("cli.bad_date", cli_language(), value=value)) from None


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every command."""
    parser = argparse.ArgumentParser(prog="python -m crm_core", description="Kestrel CRM command line")
    parser.add_argument("--database-url", help="defaults to CRM_DATABASE_URL or data/crm.db")
    commands = parser.add_subparsers(dest="command", required=True)

    init = commands.add_parser("init", help="create or upgrade the schema; create the first admin")
    init.add_argument("--tenant-name", default="Kestrel CRM")
    init.add_argument("--tenant-slug", default="main")
    init.add_argument("--json", action="store_true")
    init.set_defaults(handler=cmd_init)

    demo = commands.add_parser("demo", help="load deterministic demo data")
    demo.add_argument("--customers", type=int, default=2000)
    demo.add_argument("--seed", type=int, default=42)
    demo.add_argument("--tenants", type=int, default=1)
    demo.add_argument("--locale", default="en_US", help="en_US or zh_CN")
    demo.add_argument("--if-empty", action="store_true", help="do nothing when customers exist")
    demo.add_argument("--profile", choices=("standard", "scale"), default="standard",
                      help="history per customer: standard (1 activity), or scale (3 activities and 0.5 audit "
                           "events: issue 15's 10M set)")
    demo.add_argument(
        "--today", type=_iso_date, default=None,
        help="date the demo history ends on (YYYY-MM-DD; default 2026-11-01, so a seed always gives the same data)",
    )
    demo.add_argument("--json", action="store_true")
    from crm_core.jobs.cli import add_job_options

    add_job_options(demo)
    demo.set_defaults(handler=cmd_demo)

    tenant = commands.add_parser("tenant", help="tenant administration").add_subparsers(dest="action", required=True)
    tenant_create = tenant.add_parser("create")
    tenant_create.add_argument("--name", required=True)
    tenant_create.add_argument("--slug", required=True)
    tenant_create.add_argument("--admin-username", required=True)
    tenant_create.add_argument("--locale", default="en")
    tenant_create.add_argument("--json", action="store_true")
    tenant_create.set_defaults(handler=cmd_tenant_create)

    user = commands.add_parser("user", help="user administration").add_subparsers(dest="action", required=True)
    unlock = user.add_parser("unlock")
    unlock.add_argument("username")
    unlock.add_argument("--json", action="store_true")
    unlock.set_defaults(handler=cmd_user_unlock)
    listing = user.add_parser("list")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=cmd_user_list)

    from crm_core.quality.commands import add_parsers as add_quality_commands

    add_quality_commands(commands)  # migrate, check

    from crm_core.followups_cli import add_commands as add_followup_commands

    add_followup_commands(commands)  # lifecycle refresh, automation run

    from crm_core.importing.commands import add_parsers as add_import_commands

    add_import_commands(commands)  # import, import-revert

    from crm_core.scoring.commands import add_commands as add_scoring_commands

    add_scoring_commands(commands)  # score train|apply, segments snapshot

    from crm_core.reports_cli import add_commands as add_report_commands

    add_report_commands(commands)  # report funnel|dashboard

    from crm_core.backup_cli import add_commands as add_backup_commands

    add_backup_commands(commands)  # backup create|list|verify|restore

    from crm_core.jobs.cli import add_commands as add_job_commands

    add_job_commands(commands)  # worker, jobs list|show|cancel|retry

    from crm_core.mail.cli import add_commands as add_mail_commands

    add_mail_commands(commands)  # mail-in
    return parser


def unexpected_error(error: Exception, db: Database, lang: str, where: str) -> int:
    """Say what went wrong in the user's language: a database not initialised (or not reachable) by name,
    anything else under an incident id whose traceback is in ``CRM_LOG_DIR`` (default data/logs)."""
    try:
        revision = schema.current_revision(db.engine)
    except Exception as unreachable:  # the database does not answer: say so, without the URL's secrets
        reason = str(getattr(unreachable, "orig", unreachable)).splitlines()[0][:200]
        print(t("cli.database_unreachable", lang, reason=reason), file=sys.stderr)
        return 1
    # "run init first" helps every command but init itself, whose failure is the incident below
    if revision != schema.head_revision() and not where.startswith("init"):
        print(t("cli.schema_not_ready", lang, command="python -m crm_core init"), file=sys.stderr)
        return 1
    from crm_core.incidents import LOG, log_incident

    folder = Path(os.environ.get("CRM_LOG_DIR") or DATA_DIR / "logs")
    folder.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(folder / "cli-incidents.log", encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    LOG.addHandler(handler)
    propagate, LOG.propagate = LOG.propagate, False  # not to a terminal through the root logger
    try:
        incident = log_incident(error, where=f"python -m crm_core {where}")
    finally:
        LOG.removeHandler(handler)
        LOG.propagate = propagate
        handler.close()
    print(t("cli.unexpected", lang, incident=incident, log=str(folder / "cli-incidents.log")), file=sys.stderr)
    return 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    lang = cli_language()
    handler: Callable[[argparse.Namespace, Database], int] = args.handler
    url = args.database_url or load_settings().database_url
    started = time.perf_counter()
    db = open_database(url)
    try:
        return handler(args, db)
    except UsageError as error:
        parser.print_usage(sys.stderr)
        print(str(error), file=sys.stderr)
        return 2
    except ValidationFailed as error:
        for field_name, (key, params) in error.errors.items():
            print(f"{field_name}: {t(key, lang, **params)}", file=sys.stderr)
        return 1
    except DomainError as error:
        print(t(error.message_key, lang, **error.params), file=sys.stderr)
        return 1
    except Exception as error:  # never a traceback on the terminal: a message; the trace goes to a log file
        return unexpected_error(error, db, lang, " ".join(sys.argv[1:3]) or "a command")
    finally:
        db.engine.dispose()
        if os.environ.get("CRM_CLI_TIMING"):
            print(f"({time.perf_counter() - started:.2f}s)", file=sys.stderr)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
