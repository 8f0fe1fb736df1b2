"""CLI commands of the follow-up area: ``lifecycle refresh`` and ``automation run``.

Both call the same services the app uses (one path for one number) and print either
lines in the CLI language or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import select

from crm_core.db import Database
from crm_core.i18n import t
from crm_core.models import Tenant


def _tenant_ids(db: Database, slug: str | None) -> list[int] | None:
    if not slug:
        return None
    with db.system_session("cli: find tenant") as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == slug))
    if tenant_id is None:
        from crm_core.cli import UsageError, cli_language

        raise UsageError(t("followups.cli.unknown_tenant", cli_language(), slug=slug))
    return [tenant_id]


def _as_of(value: str | None) -> dt.datetime | None:
    if not value:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value)
    except ValueError:
        from crm_core.cli import UsageError, cli_language

        raise UsageError(t("followups.cli.bad_date", cli_language(), value=value)) from None
    return parsed.replace(tzinfo=None)


def cmd_lifecycle_refresh(args: argparse.Namespace, db: Database) -> int:
    """Reclassify every customer set-based (a job per tenant); print counts per stage and the transitions."""
    from crm_core.cli import _emit, cli_language
    from crm_core.jobs.cli import report_failures, run_jobs

    lang = cli_language()
    _as_of(args.as_of)  # refuse a bad date before anything is queued
    started = time.perf_counter()
    views = run_jobs(args, db, "lifecycle_refresh", {"as_of": args.as_of}, tenant_ids=_tenant_ids(db, args.tenant))
    if views is None:
        return 0
    slugs = _slugs(db)
    payload: dict[str, Any] = {"status": "ok", "tenants": []}
    lines: list[str] = []
    for view in views:
        result = view.result
        slug = slugs.get(view.tenant_id, "?")
        if not result:
            continue
        payload["tenants"].append({"tenant": slug, "job_id": view.id, **result})
        stages = ", ".join(f"{t(f'stage.{stage}', lang)} {count:,}" for stage, count in result["stages"].items())
        lines.append(t("followups.cli.refreshed", lang, tenant=slug, stages=stages,
                       transitions=f"{result['transitions']:,}", seconds=f"{result['seconds']:.1f}"))
    payload["transitions"] = sum(item["transitions"] for item in payload["tenants"])
    payload["seconds"] = round(time.perf_counter() - started, 3)
    failed = report_failures(views)
    if failed:
        payload["status"] = "failed"
    _emit(args, payload, lines)
    return failed


def _slugs(db: Database) -> dict[int, str]:
    with db.system_session("cli: tenant slugs") as session:
        return {tenant_id: slug for tenant_id, slug in session.execute(select(Tenant.id, Tenant.slug))}


def _run_per_tenant(args: argparse.Namespace, db: Database, kind: str, totals: tuple[str, ...],
                    describe: Callable[[str, int, dict[str, Any]], list[str]]) -> int:
    """Queue ``kind`` for each tenant (``--tenant`` or all), wait, print ``describe``'s lines per tenant
    and the summed ``totals``; the exit status is the number of failed jobs."""
    from crm_core.cli import _emit, cli_language
    from crm_core.jobs.cli import report_failures, run_jobs

    lang = cli_language()
    _as_of(args.as_of)
    views = run_jobs(args, db, kind, {"as_of": args.as_of}, tenant_ids=_tenant_ids(db, args.tenant))
    if views is None:
        return 0
    payload: dict[str, Any] = {"status": "ok", "tenants": [], **dict.fromkeys(totals, 0)}
    lines: list[str] = []
    for view in views:
        if not view.result:
            continue
        payload["tenants"].append({"tenant_id": view.tenant_id, "job_id": view.id, **view.result})
        for total in totals:
            payload[total] += view.result[total]
        lines += describe(lang, view.tenant_id, view.result)
    failed = report_failures(views)
    if failed:
        payload["status"] = "failed"
    _emit(args, payload, lines)
    return failed


def cmd_automation_run(args: argparse.Namespace, db: Database) -> int:
    """Run every active stage automation rule once (a job per tenant); running it again creates nothing new."""

    def describe(lang: str, tenant_id: int, result: dict[str, Any]) -> list[str]:
        lines = [t("followups.cli.automation_tenant", lang, tenant=tenant_id, fired=f"{result['fired']:,}",
                   seconds=f"{result.get('seconds', 0):.1f}")]
        if result["seeded_rules"]:
            lines.append("  " + t("followups.cli.seeded", lang, count=result["seeded_rules"]))
        for rule in result["rules"]:
            lines.append("  " + t("followups.cli.automation_rule", lang, rule=rule["name"], fired=f"{rule['fired']:,}",
                                  tasks=f"{rule['tasks']:,}", tags=f"{rule['tags']:,}",
                                  enrolled=f"{rule['enrolled']:,}"))
        return lines

    return _run_per_tenant(args, db, "automation_run", ("fired",), describe)


def cmd_pool_return(args: argparse.Namespace, db: Database) -> int:
    """Return customers to their team's pool as the pool rules say (a job per tenant); remind owners first."""

    def describe(lang: str, tenant_id: int, result: dict[str, Any]) -> list[str]:
        return [t("pool.cli.tenant", lang, tenant=tenant_id, returned=f"{result['returned']:,}",
                  reminded=f"{result['reminded']:,}", seconds=f"{result.get('seconds', 0):.1f}")]

    return _run_per_tenant(args, db, "pool_return", ("returned", "reminded"), describe)


def add_commands(commands: Any) -> None:
    """Register ``lifecycle refresh``, ``automation run`` and ``pool return`` on the CLI's subparsers."""
    from crm_core.jobs.cli import add_job_options

    lifecycle = commands.add_parser("lifecycle", help="customer lifecycle stages").add_subparsers(
        dest="action", required=True
    )
    refresh = lifecycle.add_parser("refresh", help="reclassify every customer (set-based SQL)")
    refresh.add_argument("--tenant", help="tenant slug (default: every active tenant)")
    refresh.add_argument("--as-of", help="classify as of this ISO date/time (default: now)")
    refresh.add_argument("--json", action="store_true")
    add_job_options(refresh)
    refresh.set_defaults(handler=cmd_lifecycle_refresh)

    automation = commands.add_parser("automation", help="stage automation rules").add_subparsers(
        dest="action", required=True
    )
    run = automation.add_parser("run", help="run due rules once (idempotent)")
    run.add_argument("--tenant", help="tenant slug (default: every active tenant)")
    run.add_argument("--as-of", help="evaluate the triggers as of this ISO date/time (default: now)")
    run.add_argument("--json", action="store_true")
    add_job_options(run)
    run.set_defaults(handler=cmd_automation_run)

    pool = commands.add_parser("pool", help="the customer pool (公海)").add_subparsers(dest="action", required=True)
    back = pool.add_parser("return", help="return idle customers to their team's pool; remind owners first")
    back.add_argument("--tenant", help="tenant slug (default: every active tenant)")
    back.add_argument("--as-of", help="apply the rules as of this ISO date/time (default: now)")
    back.add_argument("--json", action="store_true")
    add_job_options(back)
    back.set_defaults(handler=cmd_pool_return)
