"""The kinds of job Kestrel runs on its queue, each a thin call of the service that does the work.

A kind runs for one tenant (``ctx.tenant_id``), as the user who asked (``ctx.actor``) or, for
a schedule, as the system for that tenant. Its result is a small JSON object; the CLI prints
it and the Jobs page shows it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from crm_core.jobs.context import JobContext, job_kind
from crm_core.models import Role

ADMINS = frozenset({Role.ADMIN})


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
