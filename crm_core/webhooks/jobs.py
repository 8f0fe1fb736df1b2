"""The ``webhook_dispatch`` job kind: a worker sends the tenant's due webhook deliveries.

A commit that wrote deliveries queues a run for its tenant (a ``JobAfterCommit`` in
``crm_core.webhooks.outbox``), so a first attempt goes out about a second later. A tenant also
gets a schedule (every minute, a ``job_schedules`` row shown on the Automation page) with its
first subscription (``crm_core.jobs.service.ensure_schedule``): it sends the retries that fall due
later, and anything a lost queue message left behind. While retries fall due within ``LINGER``
the run waits for them (a failing endpoint's 5-second retry is kept), up to ``MAX_RUN`` in all,
so one worker is never held much longer than a minute.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

from crm_core.jobs.context import JobContext, job_kind
from crm_core.models import Role, utcnow
from crm_core.webhooks.dispatch import LEASE, DispatchReport, dispatch_due, next_due_at
from crm_core.webhooks.retention import prune_history

LOG = logging.getLogger("kestrel.webhooks")
LINGER = dt.timedelta(seconds=10)
MAX_RUN = dt.timedelta(seconds=50)


KIND = "webhook_dispatch"
SCHEDULE = ("*", "*", "*")  # every minute, UTC


# not "schedulable": tenants without webhooks get no schedule; those with one get it above
@job_kind(KIND, roles=frozenset({Role.ADMIN}))
def webhook_dispatch(ctx: JobContext) -> dict[str, Any]:
    """Send the tenant's due webhook deliveries, then prune the log's oldest finished ones; result: attempts,
    succeeded, retrying, failed, disabled, pruned."""
    started = utcnow()
    total = DispatchReport()
    ctx.progress(0, None, "jobs.progress.webhook_dispatch")
    lease = _lease(ctx.params)
    while True:
        report = dispatch_due(ctx.db, tenant_id=ctx.tenant_id, clock=utcnow, lease=lease,
                              should_stop=_cancelled(ctx))
        total.attempts += report.attempts
        total.succeeded += report.succeeded
        total.retrying += report.retrying
        total.failed += report.failed
        total.disabled.extend(report.disabled)
        ctx.progress(total.attempts, None, "jobs.progress.webhook_dispatch")
        due = next_due_at(ctx.db, tenant_id=ctx.tenant_id)
        now = utcnow()
        if due is None or due - now > LINGER or (now - started) + (due - now) > MAX_RUN:
            break
        while utcnow() < due:
            ctx.check_cancelled()
            time.sleep(min(0.5, max(0.0, (due - utcnow()).total_seconds())))
    pruned = prune_history(ctx.db, tenant_id=ctx.tenant_id, now=utcnow())  # the log's 30 days (retention.py)
    return {"attempts": total.attempts, "succeeded": total.succeeded, "retrying": total.retrying,
            "failed": total.failed, "disabled": total.disabled, "pruned": pruned}


def _lease(params: dict[str, Any]) -> dt.timedelta:
    """``lease_seconds`` (at least 4; default the dispatcher's): how long a claim holds off other workers."""
    value = params.get("lease_seconds")
    if isinstance(value, bool) or not isinstance(value, int) or value < 4:
        return LEASE
    return dt.timedelta(seconds=value)


def _cancelled(ctx: JobContext) -> Any:
    def should_stop() -> bool:
        ctx.check_cancelled()
        return False

    return should_stop
