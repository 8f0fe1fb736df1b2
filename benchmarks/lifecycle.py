"""Lifecycle refresh on the demo database, beside a hand-written SQL classification.

``python -m benchmarks lifecycle [--database-url URL] [--as-of ISO] [--keep]``

Works on a private copy of an SQLite file (default: the shared 1,000,000-customer
``/work/bench/crm-1m.db``, never written to), then prints:

* the hand-written SQL classification (one SELECT … GROUP BY over every customer, each fact
  an uncorrelated ``IN (SELECT customer_id …)``: written as correlated EXISTS, SQLite without
  statistics probes the tenant's orders through a (tenant, date) covering index once per
  customer and needs many minutes on a million customers);
* the full set-based refresh (:func:`crm_core.services.lifecycle.refresh_lifecycle`),
  once with the stage changes it finds and once more with nothing left to change;
* the ratios refresh / raw SQL, and whether the stage counts agree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
from pathlib import Path

from sqlalchemy import select, text

from crm_core.db import open_database
from crm_core.models import Tenant, utcnow
from crm_core.schema import upgrade_to_head
from crm_core.services.lifecycle import refresh_lifecycle

DEFAULT_URL = "sqlite:////work/bench/crm-1m.db"

HAND_WRITTEN = """
WITH won AS (SELECT id FROM pipeline_stages WHERE tenant_id = :tenant AND kind = 'won'),
     open_stage AS (SELECT id FROM pipeline_stages WHERE tenant_id = :tenant AND kind = 'open')
SELECT expected, COUNT(*) FROM (
  SELECT CASE
    WHEN c.id IN (SELECT customer_id FROM opportunities WHERE tenant_id = :tenant AND archived_at IS NULL
                    AND stage_id IN (SELECT id FROM won) AND COALESCE(closed_at, updated_at) >= :cutoff)
      OR c.id IN (SELECT customer_id FROM orders WHERE tenant_id = :tenant AND status <> 'cancelled'
                    AND archived_at IS NULL AND ordered_at >= :cutoff) THEN 'customer'
    WHEN c.id IN (SELECT customer_id FROM opportunities WHERE tenant_id = :tenant AND archived_at IS NULL
                    AND stage_id IN (SELECT id FROM won))
      OR c.id IN (SELECT customer_id FROM orders WHERE tenant_id = :tenant AND status <> 'cancelled'
                    AND archived_at IS NULL)
      THEN CASE WHEN c.id IN (SELECT customer_id FROM activities WHERE tenant_id = :tenant AND occurred_at >= :cutoff)
                THEN 'customer' ELSE 'churned' END
    WHEN c.id IN (SELECT customer_id FROM opportunities WHERE tenant_id = :tenant AND archived_at IS NULL
                    AND stage_id IN (SELECT id FROM open_stage)) THEN 'intent'
    ELSE 'prospect' END AS expected
  FROM customers c WHERE c.tenant_id = :tenant AND c.archived_at IS NULL
) classified GROUP BY expected
"""


def _private_copy(url: str) -> tuple[str, Path | None]:
    if not url.startswith("sqlite:///"):
        return url, None
    source = Path(url.removeprefix("sqlite:///"))
    if not source.exists():
        raise SystemExit(f"{source} does not exist (build it with: "
                         f"python -m crm_core --database-url {url} demo --customers 1000000)")
    folder = Path(tempfile.mkdtemp(prefix="bench-lifecycle-", dir=os.environ.get("BENCH_TMP", "/tmp")))
    target = folder / source.name
    for suffix in ("", "-wal"):
        if Path(str(source) + suffix).exists():
            shutil.copyfile(str(source) + suffix, str(target) + suffix)
    return f"sqlite:///{target}", folder


def main(argv: list[str]) -> int:
    """Print the refresh time beside the hand-written SQL classification."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks lifecycle")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--as-of", help="classify as of this ISO date/time (default: now)")
    parser.add_argument("--keep", action="store_true", help="keep the private copy")
    args = parser.parse_args(argv)
    as_of = dt.datetime.fromisoformat(args.as_of) if args.as_of else utcnow()
    started = time.perf_counter()
    url, folder = _private_copy(args.database_url)
    print(f"database: {args.database_url} (working on {'a private copy' if folder else 'it directly'}, "
          f"copied in {time.perf_counter() - started:.1f}s)")
    db = open_database(url)
    try:
        upgrade_to_head(db.engine)
        with db.system_session("benchmark") as session:
            tenants = session.execute(select(Tenant.id, Tenant.slug, Tenant.churn_window_days)).all()
        for tenant_id, slug, window in tenants:
            cutoff = as_of - dt.timedelta(days=window or 180)
            with db.engine.connect() as connection:
                customers = connection.execute(
                    text("SELECT COUNT(*) FROM customers WHERE tenant_id = :tenant"), {"tenant": tenant_id}
                ).scalar_one()
                if not customers:
                    continue
                clock = time.perf_counter()
                raw: dict[str, int] = dict(
                    connection.execute(text(HAND_WRITTEN), {"cutoff": cutoff, "tenant": tenant_id}).all()
                )
                raw_seconds = time.perf_counter() - clock
            timings = []
            for _ in range(2):
                clock = time.perf_counter()
                with db.system_transaction("benchmark refresh") as session:
                    result = refresh_lifecycle(session, tenant_id, as_of=as_of, count_stages=True)
                timings.append((time.perf_counter() - clock, result))
            (first_seconds, first), (second_seconds, second) = timings
            agree = {stage: count for stage, count in second.stage_counts.items() if count} == raw
            print(f"\ntenant {slug}: {customers:,} customers, as of {as_of:%Y-%m-%d %H:%M}")
            print(f"  hand-written SQL classification   {raw_seconds:8.2f} s   {raw}")
            print(f"  refresh (writes {first.transitions:,} changes)    {first_seconds:8.2f} s   "
                  f"ratio {first_seconds / raw_seconds:5.2f}× raw SQL")
            print(f"  refresh again (nothing to change) {second_seconds:8.2f} s   "
                  f"ratio {second_seconds / raw_seconds:5.2f}× raw SQL")
            print(f"  stage counts equal to raw SQL: {'yes' if agree else 'NO'}   {second.stage_counts}")
            print(f"  throughput: {customers / max(first_seconds, 1e-9):,.0f} customers/s")
    finally:
        db.engine.dispose()
        if folder is not None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0
