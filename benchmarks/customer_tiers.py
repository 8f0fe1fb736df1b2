"""Customer-tier refresh on a demo database, beside the same classification in hand-written SQL.

``python -m benchmarks customer_tiers [--database-url URL] [--orders-per-customer N] [--keep]``

Works on a private copy of an SQLite file (default: the shared 1,000,000-customer
``/work/bench/crm-1m.db``, never written to), or on a PostgreSQL/MariaDB database directly (a
benchmark database: it is written to). Each tenant without tiers gets three (silver ¥10,000 /
12 months, gold ¥100,000 / 12 months, platinum ¥500,000 / 6 months); ``--orders-per-customer`` first adds
that many synthetic orders per customer (one INSERT … SELECT; at most 100) so the scan has something to
sum. Then prints per tenant:

* the hand-written SQL classification (one SELECT … GROUP BY over the tenant's orders, counted per tier);
* the set-based refresh (:func:`crm_core.services.customer_tiers.refresh_customer_tiers`: one DELETE and
  one INSERT … SELECT of the standings that changed), first with no standing yet (every one written), then
  as the next night (a day later: only the changes), each in its own transaction;
* the ratio refresh / raw SQL, and whether the counts per tier agree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import time
from decimal import Decimal

from sqlalchemy import select, text

from benchmarks.lifecycle import _private_copy
from crm_core.db import open_database
from crm_core.models import Tenant, utcnow
from crm_core.models.service_tiers import CustomerTier
from crm_core.queries.reports import shift_months
from crm_core.schema import upgrade_to_head
from crm_core.services.customer_tiers import refresh_customer_tiers, tier_rules

DEFAULT_URL = "sqlite:////work/bench/crm-1m.db"
TIERS = (("silver", "Silver", "银牌", 1, Decimal("10000"), 12), ("gold", "Gold", "金牌", 2, Decimal("100000"), 12),
         ("platinum", "Platinum", "白金", 3, Decimal("500000"), 6))

HAND_WRITTEN = """
SELECT tier, COUNT(*) FROM (
  SELECT CASE WHEN m6 >= 500000 THEN 'platinum' WHEN m12 >= 100000 THEN 'gold' WHEN m12 >= 10000 THEN 'silver' END
         AS tier
  FROM (SELECT customer_id,
               SUM(CASE WHEN ordered_at >= :six THEN total_amount ELSE 0 END) AS m6,
               SUM(CASE WHEN ordered_at >= :twelve THEN total_amount ELSE 0 END) AS m12
        FROM orders WHERE tenant_id = :tenant AND status IN ('confirmed', 'fulfilled') AND archived_at IS NULL
          AND ordered_at >= :twelve AND ordered_at <= :now
        GROUP BY customer_id) totals
) tiers WHERE tier IS NOT NULL GROUP BY tier
"""

_ORDER_COLUMNS = ("INSERT INTO orders (tenant_id, created_at, updated_at, version, customer_id, order_number, status, "
                  "ordered_at, total_amount, currency) ")
SYNTHETIC_ORDERS = {  # per customer: 10 % cancelled, 1 in 10 of the rest draft, amounts up to ¥400,000, 18 months
    "sqlite": "WITH RECURSIVE k(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM k WHERE n < :per_customer) "
              + _ORDER_COLUMNS + """
SELECT c.tenant_id, :now, :now, 1, c.id, 'BT-' || c.id || '-' || k.n,
       CASE WHEN abs(random()) % 10 = 0 THEN 'cancelled' WHEN abs(random()) % 10 = 1 THEN 'draft' ELSE 'fulfilled' END,
       datetime(:now, '-' || (abs(random()) % 540) || ' days'), (abs(random()) % 40000000) / 100.0, 'CNY'
FROM customers c CROSS JOIN k""",
    "postgresql": _ORDER_COLUMNS + """
SELECT c.tenant_id, :now, :now, 1, c.id, 'BT-' || c.id || '-' || k.n,
       CASE WHEN random() < 0.1 THEN 'cancelled' WHEN random() < 0.1 THEN 'draft' ELSE 'fulfilled' END,
       CAST(:now AS timestamp) - floor(random() * 540) * interval '1 day', round((random() * 400000)::numeric, 2), 'CNY'
FROM customers c CROSS JOIN generate_series(1, :per_customer) AS k(n)""",
    "mysql": _ORDER_COLUMNS + """
SELECT c.tenant_id, :now, :now, 1, c.id, CONCAT('BT-', c.id, '-', k.seq),
       CASE WHEN RAND() < 0.1 THEN 'cancelled' WHEN RAND() < 0.1 THEN 'draft' ELSE 'fulfilled' END,
       :now - INTERVAL FLOOR(RAND() * 540) DAY, ROUND(RAND() * 400000, 2), 'CNY'
FROM customers c CROSS JOIN (SELECT seq FROM seq_1_to_100) k WHERE k.seq <= :per_customer""",
}
ANALYZE = {"sqlite": "ANALYZE", "postgresql": "ANALYZE orders", "mysql": "ANALYZE TABLE orders"}


def main(argv: list[str]) -> int:
    """Print the refresh time beside the hand-written SQL classification."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks customer_tiers")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--orders-per-customer", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep the private copy")
    args = parser.parse_args(argv)
    now = utcnow()
    url, folder = _private_copy(args.database_url)
    db = open_database(url)
    try:
        upgrade_to_head(db.engine)
        if args.orders_per_customer:
            clock = time.perf_counter()
            dialect = db.engine.dialect.name
            with db.engine.begin() as connection:
                connection.execute(text(SYNTHETIC_ORDERS[dialect]), {"per_customer": args.orders_per_customer,
                                                                      "now": now})
            with db.engine.begin() as connection:
                connection.execute(text(ANALYZE[dialect]))
            print(f"added {args.orders_per_customer} synthetic orders per customer "
                  f"in {time.perf_counter() - clock:.1f}s")
        with db.system_transaction("benchmark tiers") as session:
            tenants = session.execute(select(Tenant.id, Tenant.slug)).all()
            for tenant_id, _ in tenants:
                if not tier_rules(session, tenant_id):
                    session.add_all(CustomerTier(tenant_id=tenant_id, code=code, name_en=en, name_zh=zh, rank=rank,
                                                 min_order_total=threshold, months=months)
                                    for code, en, zh, rank, threshold, months in TIERS)
        for tenant_id, slug in tenants:
            with db.engine.connect() as connection:
                customers = connection.execute(text("SELECT COUNT(*) FROM customers WHERE tenant_id = :tenant"),
                                               {"tenant": tenant_id}).scalar_one()
                orders = connection.execute(text("SELECT COUNT(*) FROM orders WHERE tenant_id = :tenant"),
                                            {"tenant": tenant_id}).scalar_one()
                if not customers:
                    continue
                clock = time.perf_counter()
                raw: dict[str, int] = dict(connection.execute(text(HAND_WRITTEN), {
                    "tenant": tenant_id, "now": now, "six": shift_months(now, -6),
                    "twelve": shift_months(now, -12)}).all())
                raw_seconds = time.perf_counter() - clock
            with db.engine.begin() as connection:  # the first refresh ever: every standing to write
                connection.execute(text("DELETE FROM customer_tier_standings WHERE tenant_id = :tenant"),
                                   {"tenant": tenant_id})
            timings = []
            for label, as_of in (("first refresh (writes every standing)", now),
                                 ("the next night (writes the changes)", now + dt.timedelta(days=1))):
                clock = time.perf_counter()
                with db.system_transaction("benchmark tier refresh") as session:
                    result = refresh_customer_tiers(session, tenant_id, now=as_of)
                    codes = {rule.tier_id: rule.code for rule in tier_rules(session, tenant_id)}
                timings.append((label, time.perf_counter() - clock, result))
            result = timings[0][2]
            counted = {codes[tier_id]: count for tier_id, count in result.customers.items()}
            print(f"\ntenant {slug}: {customers:,} customers, {orders:,} orders")
            print(f"  {'hand-written SQL classification':40} {raw_seconds:8.2f} s   {raw}")
            for label, seconds, _ in timings:
                print(f"  {label:40} {seconds:8.2f} s   ratio {seconds / raw_seconds:5.2f}× raw SQL")
            print(f"  counts per tier equal to raw SQL: {'yes' if counted == raw else 'NO'}   {counted}")
            print(f"  throughput: {customers / max(timings[0][1], 1e-9):,.0f} customers/s (first refresh)")
    finally:
        db.engine.dispose()
        if folder is not None and not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    return 0
