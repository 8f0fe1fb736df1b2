"""CLI commands of the follow-up area: ``lifecycle refresh`` and ``automation run``.

Both call the same services the app uses (one path for one number) and print either
lines in the CLI language or one JSON object with ``--json``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
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
    """Reclassify every customer set-based; print counts per stage and the transitions written."""
    from crm_core.cli import _emit, cli_language
    from crm_core.services.lifecycle import refresh_lifecycle

    lang = cli_language()
    tenant_ids = _tenant_ids(db, args.tenant)
    as_of = _as_of(args.as_of)
    started = time.perf_counter()
    with db.system_session("lifecycle refresh: list tenants") as session:
        statement = select(Tenant.id, Tenant.slug).where(Tenant.is_active.is_(True)).order_by(Tenant.id)
        if tenant_ids is not None:
            statement = statement.where(Tenant.id.in_(tenant_ids))
        tenants = session.execute(statement).all()
    payload: dict[str, Any] = {"status": "ok", "tenants": []}
    lines: list[str] = []
    for tenant_id, slug in tenants:
        with db.system_transaction("lifecycle refresh") as session:
            result = refresh_lifecycle(session, tenant_id, as_of=as_of, count_stages=True)
        payload["tenants"].append(
            {"tenant": slug, "tenant_id": tenant_id, "stages": result.stage_counts, "transitions": result.transitions,
             "overrides_released": result.overrides_released, "seconds": round(result.seconds, 3)}
        )
        stages = ", ".join(f"{t(f'stage.{stage}', lang)} {count:,}" for stage, count in result.stage_counts.items())
        lines.append(t("followups.cli.refreshed", lang, tenant=slug, stages=stages,
                       transitions=f"{result.transitions:,}",
                       seconds=f"{result.seconds:.1f}"))
    payload["transitions"] = sum(item["transitions"] for item in payload["tenants"])
    payload["seconds"] = round(time.perf_counter() - started, 3)
    _emit(args, payload, lines)
    return 0


def cmd_automation_run(args: argparse.Namespace, db: Database) -> int:
    """Run every active stage automation rule once; running it again creates nothing new."""
    from crm_core.cli import _emit, cli_language
    from crm_core.services.automation import run_automation

    lang = cli_language()
    results = run_automation(db, tenant_ids=_tenant_ids(db, args.tenant), now=_as_of(args.as_of))
    payload: dict[str, Any] = {"status": "ok", "tenants": [], "fired": sum(result.fired for result in results)}
    lines: list[str] = []
    for result in results:
        payload["tenants"].append(
            {"tenant_id": result.tenant_id, "seeded_rules": result.seeded, "fired": result.fired,
             "seconds": round(result.seconds, 3),
             "rules": [{"rule_id": rule.rule_id, "name": rule.name, "fired": rule.fired, "tasks": rule.tasks,
                        "tags": rule.tags, "enrolled": rule.enrolled} for rule in result.rules]}
        )
        lines.append(t("followups.cli.automation_tenant", lang, tenant=result.tenant_id, fired=f"{result.fired:,}",
                       seconds=f"{result.seconds:.1f}"))
        if result.seeded:
            lines.append("  " + t("followups.cli.seeded", lang, count=result.seeded))
        for rule in result.rules:
            lines.append("  " + t("followups.cli.automation_rule", lang, rule=rule.name, fired=f"{rule.fired:,}",
                                  tasks=f"{rule.tasks:,}", tags=f"{rule.tags:,}", enrolled=f"{rule.enrolled:,}"))
    _emit(args, payload, lines)
    return 0


def add_commands(commands: Any) -> None:
    """Register ``lifecycle refresh`` and ``automation run`` on the CLI's subparsers."""
    lifecycle = commands.add_parser("lifecycle", help="customer lifecycle stages").add_subparsers(
        dest="action", required=True
    )
    refresh = lifecycle.add_parser("refresh", help="reclassify every customer (set-based SQL)")
    refresh.add_argument("--tenant", help="tenant slug (default: every active tenant)")
    refresh.add_argument("--as-of", help="classify as of this ISO date/time (default: now)")
    refresh.add_argument("--json", action="store_true")
    refresh.set_defaults(handler=cmd_lifecycle_refresh)

    automation = commands.add_parser("automation", help="stage automation rules").add_subparsers(
        dest="action", required=True
    )
    run = automation.add_parser("run", help="run due rules once (idempotent)")
    run.add_argument("--tenant", help="tenant slug (default: every active tenant)")
    run.add_argument("--as-of", help="evaluate the triggers as of this ISO date/time (default: now)")
    run.add_argument("--json", action="store_true")
    run.set_defaults(handler=cmd_automation_run)
