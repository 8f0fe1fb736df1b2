"""CLI handlers: ``score train|apply`` and ``segments snapshot`` (wired in :func:`crm_core.cli.build_parser`).

Each submits a job per tenant (``score_training``, ``segment_snapshot``) and waits for it;
``--no-wait`` prints the job ids, ``--inline`` runs them in this process.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import time
from typing import Any

from sqlalchemy import select

from crm_core.db import Database
from crm_core.i18n import normalise_language, t
from crm_core.models import Tenant
from crm_core.scoring import SCORERS


def _lang() -> str:
    import os

    return normalise_language(os.environ.get("CRM_LANG") or os.environ.get("LANG"))


def _tenants(db: Database, slug: str | None) -> list[tuple[int, str]]:
    with db.system_session("cli tenants") as session:
        statement = select(Tenant.id, Tenant.slug).where(Tenant.is_active.is_(True)).order_by(Tenant.id)
        if slug:
            statement = statement.where(Tenant.slug == slug)
        return [(row.id, row.slug) for row in session.execute(statement)]


def _print(args: argparse.Namespace, payload: dict[str, Any], lines: list[str]) -> None:
    if args.json:
        print(json.dumps(payload, ensure_ascii=False, default=str))
    else:
        print("\n".join(lines))


def _as_of(args: argparse.Namespace) -> dt.datetime | None:
    if not args.as_of:
        return None
    return dt.datetime.combine(dt.date.fromisoformat(args.as_of), dt.time())


def cmd_score(args: argparse.Namespace, db: Database) -> int:
    """Train new versions of the scorers, or apply the latest versions (a ``score_training`` job per tenant)."""
    from crm_core.jobs.cli import report_failures, run_jobs

    lang = _lang()
    names = [args.scorer] if args.scorer else list(SCORERS)
    unknown = [name for name in names if name not in SCORERS]
    if unknown:
        print(t("score.cli.unknown_scorer", lang, name=unknown[0], known=", ".join(SCORERS)))
        return 2
    try:
        _as_of(args)
    except ValueError:
        print(t("validation.date", lang))
        return 2
    tenants = dict(_tenants(db, args.tenant))
    if not tenants:
        print(t("score.cli.no_tenant", lang, slug=args.tenant or "-"))
        return 1
    started = time.perf_counter()
    views = run_jobs(args, db, "score_training", {"scorer": args.scorer, "as_of": args.as_of, "action": args.action},
                     tenant_ids=list(tenants))
    if views is None:
        return 0
    results: list[dict[str, Any]] = []
    lines: list[str] = []
    for view in views:
        slug = tenants.get(view.tenant_id, "?")
        for item in view.result.get("results", []):
            results.append({"tenant": slug, "job_id": view.id, **item})
            if item["action"] == "train":
                metrics = item["metrics"]
                key = "score.cli.trained_fallback" if item["method"] == "fallback" else "score.cli.trained"
                lines.append(t(key, lang, tenant=slug, scorer=item["scorer"], version=item["version"],
                               auc=metrics.get("auc"), examples=metrics.get("examples"),
                               positives=metrics.get("positives"), seconds=f"{item['seconds']:.1f}"))
            else:
                lines.append(t("score.cli.applied", lang, tenant=slug, scorer=item["scorer"], scored=item["scored"],
                               version=item["version"], method=item["method"], seconds=f"{item['seconds']:.1f}"))
    failed = report_failures(views)
    _print(args, {"status": "failed" if failed else "ok", "action": args.action, "results": results,
                  "seconds": round(time.perf_counter() - started, 2)}, lines)
    return failed


def cmd_segments_snapshot(args: argparse.Namespace, db: Database) -> int:
    """Record the size of every saved segment (a ``segment_snapshot`` job per tenant; daily on the queue)."""
    from crm_core.jobs.cli import report_failures, run_jobs

    lang = _lang()
    tenants = _tenants(db, args.tenant)
    if args.tenant and not tenants:
        print(t("score.cli.no_tenant", lang, slug=args.tenant))
        return 1
    started = time.perf_counter()
    views = run_jobs(args, db, "segment_snapshot", {}, tenant_ids=[tenant_id for tenant_id, _ in tenants])
    if views is None:
        return 0
    counted = sum(view.result.get("counted", 0) for view in views)
    skipped = sum(view.result.get("skipped", 0) for view in views)
    sizes = {key: value for view in views for key, value in view.result.get("sizes", {}).items()}
    seconds = time.perf_counter() - started
    failed = report_failures(views)
    _print(
        args,
        {"status": "failed" if failed else "ok", "counted": counted, "skipped": skipped, "sizes": sizes,
         "seconds": round(seconds, 2)},
        [t("segments.cli.snapshot_done", lang, counted=counted, skipped=skipped, seconds=f"{seconds:.1f}")],
    )
    return failed


def add_commands(commands: Any) -> None:
    """Add ``score`` and ``segments`` to the CLI's subcommands."""
    from crm_core.jobs.cli import add_job_options

    score = commands.add_parser("score", help="train or apply the scorers (churn risk, deal win)")
    score.add_argument("action", choices=["train", "apply"])
    score.add_argument("--scorer", help="one of: " + ", ".join(SCORERS) + " (default: all)")
    score.add_argument("--tenant", help="tenant slug (default: every active tenant)")
    score.add_argument("--as-of", help="YYYY-MM-DD: train/score as of this date (default: now)")
    score.add_argument("--json", action="store_true")
    add_job_options(score)
    score.set_defaults(handler=cmd_score)
    segments = commands.add_parser("segments", help="saved segments").add_subparsers(dest="action", required=True)
    snapshot = segments.add_parser("snapshot", help="record the size of every saved segment")
    snapshot.add_argument("--tenant", help="tenant slug (default: every tenant)")
    snapshot.add_argument("--json", action="store_true")
    add_job_options(snapshot)
    snapshot.set_defaults(handler=cmd_segments_snapshot)
