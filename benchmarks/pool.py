"""The customer pool's nightly return on the demo database, beside a hand-written SQL count of the same customers.

``python -m benchmarks pool [--database-url URL] [--idle-days N] [--keep]``

Works on a private copy of an SQLite file (default: the shared 1,000,000-customer
``/work/bench/crm-1m.db``, never written to). For each tenant it sets the default pool rule to
``--idle-days`` (reminders 7 days before), then prints:

* the hand-written SQL that finds the customers due (one SELECT over the tenant's owned customers,
  the idle clock as a CASE) and those to remind;
* the return run (:func:`crm_core.services.pool.return_to_pool`: ledger rows, the owner/team
  updates, the audit rows and the reminder tasks), then a second run with nothing left to return;
* the ratios run / raw SQL, whether the counts agree, and a rep's claim of 10 pooled customers.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time

from sqlalchemy import select, text, update

from benchmarks.lifecycle import _private_copy
from crm_core.db import open_database
from crm_core.models import Customer, Role, Tenant, User, utcnow
from crm_core.models.pool import PoolRule
from crm_core.schema import upgrade_to_head
from crm_core.services.auth import load_actor
from crm_core.services.pool import claim_customers, return_to_pool

DEFAULT_URL = "sqlite:////work/bench/crm-1m.db"

HAND_WRITTEN = """
SELECT SUM(clock < :due), SUM(clock >= :due AND clock < :soon) FROM (
  SELECT CASE WHEN c.last_contacted_at IS NOT NULL AND c.last_contacted_at > COALESCE(c.owner_since, c.created_at)
              THEN c.last_contacted_at ELSE COALESCE(c.owner_since, c.created_at) END AS clock
  FROM customers c WHERE c.tenant_id = :tenant AND c.owner_id IS NOT NULL AND c.archived_at IS NULL
) owned
"""


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks pool")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--idle-days", type=int, default=180)
    parser.add_argument("--keep", action="store_true", help="keep the private copy")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    url, folder = _private_copy(args.database_url)
    print(f"database: {args.database_url} (working on {'a private copy' if folder else 'it directly'}, "
          f"copied in {time.perf_counter() - started:.1f}s)")
    db = open_database(url)
    now = utcnow()
    try:
        upgrade_to_head(db.engine)
        with db.system_transaction("benchmark: one default rule per tenant") as session:
            tenants = session.execute(select(Tenant.id, Tenant.slug)).all()
            session.execute(update(PoolRule).values(enabled=False))
            for tenant_id, _ in tenants:
                session.add(PoolRule(tenant_id=tenant_id, team_id=None, enabled=True, idle_days=args.idle_days,
                                     reminder_days=7, daily_claim_cap=20, cooldown_days=30, protected_stage_ids=[]))
        for tenant_id, slug in tenants:
            with db.engine.connect() as connection:
                customers = connection.execute(text("SELECT COUNT(*) FROM customers WHERE tenant_id = :tenant"),
                                               {"tenant": tenant_id}).scalar_one()
                if not customers:
                    continue
                clock = time.perf_counter()
                due, soon = connection.execute(text(HAND_WRITTEN), {
                    "tenant": tenant_id, "due": now - dt.timedelta(days=args.idle_days),
                    "soon": now - dt.timedelta(days=args.idle_days - 7)}).one()
                raw_seconds = time.perf_counter() - clock
            clock = time.perf_counter()
            first = return_to_pool(db, tenant_id, now=now)
            first_seconds = time.perf_counter() - clock
            clock = time.perf_counter()
            second = return_to_pool(db, tenant_id, now=now)
            second_seconds = time.perf_counter() - clock
            print(f"\ntenant {slug}: {customers:,} customers, default rule {args.idle_days} days, "
                  "reminders 7 days before")
            print(f"  hand-written SQL (due, to remind)   {raw_seconds:8.2f} s   {int(due or 0):,} due, "
                  f"{int(soon or 0):,} to remind")
            print(f"  return run                          {first_seconds:8.2f} s   {first.returned:,} returned, "
                  f"{first.reminded:,} reminded   ratio {first_seconds / raw_seconds:5.2f}× raw SQL")
            print(f"  again (nothing left to return)      {second_seconds:8.2f} s   {second.returned:,} returned, "
                  f"{second.reminded:,} reminded   ratio {second_seconds / raw_seconds:5.2f}× raw SQL")
            print(f"  counts equal to raw SQL: {'yes' if (first.returned, first.reminded) == (due, soon) else 'NO'}")
            with db.system_session("benchmark: a rep and pooled customers") as session:
                username = session.scalar(select(User.username).where(
                    User.tenant_id == tenant_id, User.role == Role.REP.value, User.is_active.is_(True),
                    User.team_id.is_not(None)).limit(1))
                rep_team = session.scalar(select(User.team_id).where(User.username == username))
                pooled = session.scalars(select(Customer.id).where(
                    Customer.tenant_id == tenant_id, Customer.owner_id.is_(None), Customer.team_id == rep_team,
                    Customer.archived_at.is_(None)).limit(10)).all()
            actor = load_actor(db, username) if username else None
            if actor is not None and len(pooled) == 10:
                clock = time.perf_counter()
                claim_customers(db, actor, list(pooled))
                print(f"  a rep claims 10 pooled customers      {(time.perf_counter() - clock) * 1000:8.1f} ms")
    finally:
        db.engine.dispose()
        if folder is not None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0
