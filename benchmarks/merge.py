"""Merging a customer with 1,000 related rows (issue 17), beside the hand-written SQL UPDATEs that move them.

``python -m benchmarks merge [--database-url URL] [--background N] [--related N] [--runs N] [--keep]``

Without ``--database-url`` it works in a fresh SQLite file; a database without the demo tenant gets
``--background`` demo customers first (default 50,000, so tables and indexes are not toy-sized).
In the first demo tenant each run creates two identical pairs of customers, the one to merge away
carrying ``--related`` rows (default 1,000) spread over contacts, activities, deals, orders, tasks,
cases, lifecycle history, pool events and campaign memberships, then:

* the hand-written SQL: one UPDATE per table moving the rows, one archiving the customer, in one
  transaction (what a careful DBA would type, with no audit, no locking, no lifecycle);
* :func:`crm_core.services.merging.merge_customers` on the other pair, as the demo admin: both
  versions checked, the field choices, every referencing column moved (found from the metadata),
  twins dropped, an audit row per moved row, the ledger, the survivor's lifecycle refreshed.

It prints both times, their ratio, and whether both left nothing on the merged customer. The target
is a merge under 2 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from sqlalchemy import func, select, text

from crm_core.access import Actor
from crm_core.bulk import insert_rows
from crm_core.db import Database, open_database
from crm_core.demo import DEMO_SLUG, generate_demo
from crm_core.models import Base, Campaign, Customer, PipelineStage, Role, Tenant, User, utcnow
from crm_core.queries.merges import references_to
from crm_core.schema import upgrade_to_head
from crm_core.services.auth import load_actor
from crm_core.services.merging import Versions, merge_customers

# how --related rows are spread (shares of the total, in this order)
SPREAD = (("contacts", 0.10), ("activities", 0.25), ("opportunities", 0.10), ("orders", 0.15), ("tasks", 0.15),
          ("cases", 0.10), ("lifecycle_transitions", 0.08), ("pool_events", 0.05), ("campaign_members", 0.02))
RAW_TABLES = tuple(table for table, _ in SPREAD)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks merge")
    parser.add_argument("--database-url", help="a database to work in (default: a fresh SQLite file); the demo "
                                                 "tenant is loaded when it has none")
    parser.add_argument("--background", type=int, default=50_000, help="demo customers loaded when there are none")
    parser.add_argument("--related", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--keep", action="store_true", help="keep the database built here")
    args = parser.parse_args(argv)
    folder: Path | None = None
    url = args.database_url
    if url is None:
        folder = Path(tempfile.mkdtemp(prefix="bench-merge-", dir=os.environ.get("BENCH_TMP", "/tmp")))
        url = f"sqlite:///{folder / 'crm.db'}"
    db = open_database(url)
    try:
        upgrade_to_head(db.engine)
        actor = demo_admin(db)
        if actor is None:
            clock = time.perf_counter()
            generate_demo(db, customers=args.background)
            print(f"loaded {args.background:,} demo customers in {time.perf_counter() - clock:.1f}s")
            actor = demo_admin(db)
        assert actor is not None
        print(f"database: {db.dialect_name}, tenant {actor.tenant_id}, {args.related:,} related rows per merge, "
              f"{args.runs} runs")
        raw_times, merge_times = [], []
        for run in range(1, args.runs + 1):
            raw_pair, merge_pair = pair(db, actor, args.related, run, "raw"), pair(db, actor, args.related, run, "svc")
            raw_seconds = raw_merge(db, actor.tenant_id, *raw_pair)
            clock = time.perf_counter()
            result = merge_customers(db, actor, merge_pair[0], merge_pair[1], {}, versions(db, *merge_pair))
            merge_seconds = time.perf_counter() - clock
            left = (left_on(db, actor.tenant_id, raw_pair[1]), left_on(db, actor.tenant_id, merge_pair[1]))
            raw_times.append(raw_seconds)
            merge_times.append(merge_seconds)
            print(f"  run {run}: hand-written SQL {raw_seconds * 1000:8.1f} ms   merge_customers "
                  f"{merge_seconds * 1000:8.1f} ms ({sum(result.moved.values()):,} rows moved)   "
                  f"ratio {merge_seconds / raw_seconds:5.1f}×   left on the merged customer: "
                  f"{left[0]} (SQL), {left[1]} (merge)")
        raw, merged = statistics.median(raw_times), statistics.median(merge_times)
        print(f"median: hand-written SQL {raw * 1000:.1f} ms, merge_customers {merged * 1000:.1f} ms, "
              f"ratio {merged / raw:.1f}×; target < 2 s: {'met' if merged < 2 else 'MISSED'}")
    finally:
        db.engine.dispose()
        if folder is not None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


def demo_admin(db: Database) -> Actor | None:
    """The admin of the first demo tenant (None when there is none yet)."""
    with db.system_session("benchmark: the demo admin") as session:
        username = session.scalar(
            select(User.username).join(Tenant, Tenant.id == User.tenant_id)
            .where(Tenant.slug.like(f"{DEMO_SLUG}%"), User.role == Role.ADMIN.value).order_by(User.id).limit(1))
    return load_actor(db, username) if username else None


def pair(db: Database, actor: Actor, related: int, run: int, label: str) -> tuple[int, int]:
    """A survivor and a customer to merge into it carrying ``related`` rows (inserted in bulk)."""
    tenant_id, now = actor.tenant_id, utcnow()
    tables = Base.metadata.tables
    with db.system_transaction("benchmark: a pair to merge") as session:
        ids = []
        for role in ("survivor", "merged"):
            customer = Customer(tenant_id=tenant_id, name=f"Merge bench {label} {run} {role} {now.isoformat()}",
                                owner_id=actor.user_id)
            session.add(customer)
            session.flush()
            ids.append(customer.id)
        merged = ids[1]
        stage = session.scalars(select(PipelineStage).where(PipelineStage.tenant_id == tenant_id,
                                                            PipelineStage.kind == "open")).first()
        assert stage is not None
        campaign_ids = [row for row in session.scalars(
            select(tables["campaigns"].c.id).where(tables["campaigns"].c.tenant_id == tenant_id))]
        if not campaign_ids:
            campaign = Campaign(tenant_id=tenant_id, name="Merge bench")
            session.add(campaign)
            session.flush()
            campaign_ids = [campaign.id]
        stamp = f"{label}{run}-{now.timestamp():.0f}"
        base = {"tenant_id": tenant_id, "created_at": now, "updated_at": now}
        versioned = {**base, "version": 1}
        makers = {
            "contacts": lambda n: {**versioned, "customer_id": merged, "name": f"Person {n}", "is_primary": False},
            "activities": lambda n: {**base, "customer_id": merged, "type": "call", "occurred_at": now,
                                     "summary": f"Call {n}"},
            "opportunities": lambda n: {**versioned, "customer_id": merged, "pipeline_id": stage.pipeline_id,
                                        "stage_id": stage.id, "name": f"Deal {n}", "amount": Decimal("100"),
                                        "currency": "CNY"},
            "orders": lambda n: {**versioned, "customer_id": merged, "order_number": f"MB-{stamp}-{n}",
                                 "status": "confirmed", "ordered_at": now, "total_amount": Decimal("0"),
                                 "currency": "CNY"},
            "tasks": lambda n: {**versioned, "customer_id": merged, "title": f"Task {n}", "status": "open",
                                "priority": "normal"},
            "cases": lambda n: {**versioned, "customer_id": merged, "subject": f"Case {n}", "description": "",
                                "status": "open", "priority": "normal", "opened_at": now},
            "lifecycle_transitions": lambda n: {**base, "customer_id": merged, "occurred_at": now,
                                                "from_stage": "prospect", "to_stage": "intent", "source": "rule",
                                                "reason": "bench"},
            "pool_events": lambda n: {**base, "customer_id": merged, "kind": "released", "occurred_at": now},
            "campaign_members": lambda n: {**base, "customer_id": merged, "source": "manual", "enrolled_at": now,
                                           "campaign_id": campaign_ids[n % len(campaign_ids)]},
        }
        for table, count in spread(related, len(campaign_ids)).items():
            insert_rows(session, tables[table], [makers[table](n) for n in range(count)])
    return ids[0], ids[1]


def spread(related: int, campaigns: int) -> dict[str, int]:
    """Rows per table adding up to ``related``: one membership per campaign at most, activities take the rest."""
    counts = {table: round(related * share) for table, share in SPREAD}
    counts["campaign_members"] = min(counts["campaign_members"], campaigns)
    counts["activities"] += related - sum(counts.values())
    return counts


def versions(db: Database, survivor_id: int, merged_id: int) -> Versions:
    with db.system_session("benchmark: versions") as session:
        found = dict(session.execute(select(Customer.id, Customer.version)
                                     .where(Customer.id.in_([survivor_id, merged_id]))).all())
    return Versions(found[survivor_id], found[merged_id])


def raw_merge(db: Database, tenant_id: int, survivor_id: int, merged_id: int) -> float:
    """The hand-written UPDATEs, in one transaction; their time."""
    params = {"tenant": tenant_id, "survivor": survivor_id, "merged": merged_id, "now": utcnow()}
    clock = time.perf_counter()
    with db.engine.begin() as connection:
        for table in RAW_TABLES:
            connection.execute(text(f"UPDATE {table} SET customer_id = :survivor "
                                    "WHERE tenant_id = :tenant AND customer_id = :merged"), params)
        connection.execute(text("UPDATE customers SET archived_at = :now WHERE id = :merged"), params)
    return time.perf_counter() - clock


def left_on(db: Database, tenant_id: int, merged_id: int) -> int:
    """Rows of every referencing column still pointing at ``merged_id``."""
    total = 0
    with db.engine.connect() as connection:
        for reference in references_to("customers"):
            total += int(connection.scalar(
                select(func.count()).select_from(reference.table)
                .where(reference.table.c.tenant_id == tenant_id, reference.column == merged_id, *reference.where)
            ) or 0)
    return total


