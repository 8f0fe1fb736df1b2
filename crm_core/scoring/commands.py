"""CLI handlers: ``score train|apply`` and ``segments snapshot`` (wired in :func:`crm_core.cli.build_parser`)."""

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
    """Train new versions of the scorers, or apply the latest versions, for every (or one) tenant."""
    from crm_core.scoring import runner

    lang = _lang()
    names = [args.scorer] if args.scorer else list(SCORERS)
    unknown = [name for name in names if name not in SCORERS]
    if unknown:
        print(t("score.cli.unknown_scorer", lang, name=unknown[0], known=", ".join(SCORERS)))
        return 2
    try:
        as_of = _as_of(args)
    except ValueError:
        print(t("validation.date", lang))
        return 2
    tenants = _tenants(db, args.tenant)
    if not tenants:
        print(t("score.cli.no_tenant", lang, slug=args.tenant or "-"))
        return 1
    results: list[dict[str, Any]] = []
    lines: list[str] = []
    started = time.perf_counter()
    for tenant_id, slug in tenants:
        for name in names:
            if args.action == "train":
                trained = runner.train(db, tenant_id, name, as_of=as_of)
                metrics = trained.metrics
                results.append({"tenant": slug, "scorer": name, "version": trained.version, "method": trained.method,
                                "seconds": round(trained.seconds, 2), "metrics": metrics})
                key = "score.cli.trained_fallback" if trained.method == "fallback" else "score.cli.trained"
                lines.append(t(key, lang, tenant=slug, scorer=name, version=trained.version,
                               auc=metrics.get("auc"), examples=metrics.get("examples"),
                               positives=metrics.get("positives"), seconds=f"{trained.seconds:.1f}"))
            else:
                applied = runner.apply(db, tenant_id, name, as_of=as_of)
                results.append({"tenant": slug, "scorer": name, "version": applied.version, "method": applied.method,
                                "scored": applied.scored, "seconds": round(applied.seconds, 2)})
                lines.append(t("score.cli.applied", lang, tenant=slug, scorer=name, scored=applied.scored,
                               version=applied.version, method=applied.method, seconds=f"{applied.seconds:.1f}"))
    _print(args, {"status": "ok", "action": args.action, "results": results,
                  "seconds": round(time.perf_counter() - started, 2)}, lines)
    return 0


def cmd_segments_snapshot(args: argparse.Namespace, db: Database) -> int:
    """Record the size of every saved segment (run daily from cron for the size-over-time chart)."""
    from crm_core.services.segments import snapshot_all_segments

    lang = _lang()
    tenant_id = None
    if args.tenant:
        tenants = _tenants(db, args.tenant)
        if not tenants:
            print(t("score.cli.no_tenant", lang, slug=args.tenant))
            return 1
        tenant_id = tenants[0][0]
    started = time.perf_counter()
    run = snapshot_all_segments(db, tenant_id=tenant_id)
    seconds = time.perf_counter() - started
    _print(
        args,
        {"status": "ok", "counted": run.counted, "skipped": run.skipped, "sizes": run.sizes,
         "seconds": round(seconds, 2)},
        [t("segments.cli.snapshot_done", lang, counted=run.counted, skipped=run.skipped, seconds=f"{seconds:.1f}")],
    )
    return 0


def add_commands(commands: Any) -> None:
    """Add ``score`` and ``segments`` to the CLI's subcommands."""
    score = commands.add_parser("score", help="train or apply the scorers (churn risk, deal win)")
    score.add_argument("action", choices=["train", "apply"])
    score.add_argument("--scorer", help="one of: " + ", ".join(SCORERS) + " (default: all)")
    score.add_argument("--tenant", help="tenant slug (default: every active tenant)")
    score.add_argument("--as-of", help="YYYY-MM-DD: train/score as of this date (default: now)")
    score.add_argument("--json", action="store_true")
    score.set_defaults(handler=cmd_score)
    segments = commands.add_parser("segments", help="saved segments").add_subparsers(dest="action", required=True)
    snapshot = segments.add_parser("snapshot", help="record the size of every saved segment")
    snapshot.add_argument("--tenant", help="tenant slug (default: every tenant)")
    snapshot.add_argument("--json", action="store_true")
    snapshot.set_defaults(handler=cmd_segments_snapshot)
