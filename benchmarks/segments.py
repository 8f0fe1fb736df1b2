"""``python -m benchmarks segments --database-url URL [--train]``: segments and scoring speed.

For the lifecycle distribution, the RFM summary, several segment counts, the first page of
members and an export stream, it times the query function the Segments page calls (through
an analyst's scoped session) and then the very SQL that call emitted, replayed on the raw
DBAPI cursor, and prints both medians and their ratio. With ``--train`` it also trains and
applies both scorers (this WRITES scoring_models and scores: run it on a copy of a shared
database) and prints their held-out AUC, examples, and train/apply times.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import event, select

from crm_core.db import Database, open_database
from crm_core.models import Tenant, User
from crm_core.queries.segments import (
    count_segment,
    iter_segment_members,
    lifecycle_distribution,
    list_segment_members,
    rfm_summary,
)
from crm_core.rules.segments import FieldCatalog, SegmentSpec, validate_spec
from crm_core.services import auth

SPECS: dict[str, list[dict[str, Any]]] = {
    "stage in (intent, customer) AND tag vip": [
        {"field": "lifecycle_stage", "op": "in", "value": ["intent", "customer"]},
        {"field": "tags", "op": "has", "value": "vip"},
    ],
    "not contacted for 90 days": [{"field": "last_contacted_at", "op": "more_than_days_ago", "value": 90}],
    "RFM at risk or can't lose": [{"field": "rfm_segment", "op": "in", "value": ["at_risk", "cant_lose"]}],
    "churn risk >= 70%": [{"field": "score.churn_risk", "op": "gte", "value": 70}],
    "industry Software AND region prefix": [
        {"field": "industry", "op": "equals", "value": "Software"},
        {"field": "region", "op": "is_not_empty"},
    ],
}


def spec_of(conditions: list[dict[str, Any]]) -> SegmentSpec:
    spec, problems = validate_spec({"match": "all", "conditions": conditions},
                                   FieldCatalog(scorers=("churn_risk", "deal_win")))
    assert spec is not None, problems
    return spec


class SqlCapture:
    """The SQL statements an engine runs, to replay them on the raw cursor."""

    def __init__(self, db: Database) -> None:
        self.statements: list[tuple[str, Any]] = []
        self.active = False
        event.listen(db.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if self.active:
            self.statements.append((statement, parameters))


def median_ms(work: Callable[[], Any], runs: int) -> tuple[float, float]:
    """Median wall-clock and CPU milliseconds (SQLite runs in-process, so CPU includes the query)."""
    walls, cpus = [], []
    for _ in range(runs):
        started, cpu_started = time.perf_counter(), time.process_time()
        work()
        walls.append((time.perf_counter() - started) * 1000)
        cpus.append((time.process_time() - cpu_started) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def measure(db: Database, capture: SqlCapture, label: str, work: Callable[[], Any], runs: int) -> None:
    """Time ``work`` (the query function) and the SQL it emitted on the raw cursor."""
    capture.statements, capture.active = [], True
    result = work()  # warm-up, and the statements to replay
    capture.active = False
    statements = list(capture.statements)
    function_ms, function_cpu = median_ms(work, runs)

    def raw() -> None:
        connection = db.engine.raw_connection()
        try:
            cursor = connection.cursor()
            for statement, parameters in statements:
                cursor.execute(statement, parameters)
                cursor.fetchall()
            cursor.close()
        finally:
            connection.close()

    raw_ms, raw_cpu = median_ms(raw, runs)
    shown = result if isinstance(result, (int, str)) else ""
    print(f"{label:<48} {function_ms:>9.1f} {function_cpu:>9.1f} {raw_ms:>9.1f} {raw_cpu:>9.1f}"
          f"  ×{function_cpu / max(raw_cpu, 0.001):>5.2f}  {shown}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks segments")
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--tenant", default="demo")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--train", action="store_true", help="also train and apply the scorers (writes!)")
    parser.add_argument("--as-of", default="2026-11-01", help="the demo's reference date")
    args = parser.parse_args(argv)
    db = open_database(args.database_url)
    with db.system_session("benchmark") as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == args.tenant))
        if tenant_id is None:
            print(f"no tenant {args.tenant}", file=sys.stderr)
            return 1
        analyst = session.scalar(
            select(User.username).where(User.tenant_id == tenant_id, User.role == "analyst").limit(1)
        )
    as_of = dt.datetime.combine(dt.date.fromisoformat(args.as_of), dt.time())
    if args.train:
        from crm_core.scoring import runner

        print(f"{'scorer':<12} {'method':<9} {'AUC':>6} {'examples':>9} {'positives':>9} {'train s':>8} "
              f"{'scored':>8} {'apply s':>8}")
        for name in ("churn_risk", "deal_win"):
            cpu_started = time.process_time()
            trained = runner.train(db, tenant_id, name, as_of=as_of)
            train_cpu = time.process_time() - cpu_started
            applied = runner.apply(db, tenant_id, name, as_of=as_of)
            metrics = trained.metrics
            print(f"{name:<12} {trained.method:<9} {metrics.get('auc') or 0:>6.3f} {metrics['examples']:>9,} "
                  f"{metrics['positives']:>9,} {trained.seconds:>8.1f} {applied.scored:>8,} {applied.seconds:>8.1f}"
                  f"   (train CPU {train_cpu:.1f} s)")
        print()
    actor = auth.load_actor(db, analyst) if analyst else None
    if actor is None:
        print("no analyst in the tenant", file=sys.stderr)
        return 1
    capture = SqlCapture(db)
    print(f"{'query (analyst, whole tenant), ms':<48} {'fn wall':>9} {'fn CPU':>9} {'raw wall':>9} {'raw CPU':>9}"
          "  CPU ratio  result")
    with db.session(actor) as session:
        measure(db, capture, "lifecycle distribution", lambda: len(lifecycle_distribution(session)), args.runs)
        measure(db, capture, "RFM summary (NTILE over all orders)", lambda: len(rfm_summary(session)), args.runs)
        for label, conditions in SPECS.items():
            spec = spec_of(conditions)
            measure(db, capture, f"count: {label}"[:48], partial(count_segment, session, spec), args.runs)
        spec = spec_of(SPECS["not contacted for 90 days"])
        measure(db, capture, "members page 1 (50, with total)",
                lambda: len(list_segment_members(session, spec, per_page=50).items), args.runs)
        small = spec_of(SPECS["industry Software AND region prefix"])
        started, cpu_started = time.perf_counter(), time.process_time()
        exported = sum(1 for _ in iter_segment_members(session, small, chunk=2000))
        seconds, cpu = time.perf_counter() - started, time.process_time() - cpu_started
        print(f"export stream: {exported:,} members in {seconds:.1f} s wall, {cpu:.1f} s CPU "
              f"({exported / max(seconds, 1e-9):,.0f} rows/s wall)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
