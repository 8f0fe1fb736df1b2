"""查重 on create at 1M customers: the duplicate check a new customer goes through, beside raw SQL.

``python -m benchmarks duplicates [--database-url URL] [--samples N]``

Reads only (the shared ``/work/bench/crm-1m.db`` by default, at schema 0018 or later: run
``python -m crm_core --database-url URL init`` first). For N existing names respelt (legal form
dropped, upper-cased) and N new names, it times ``services.customers.find_duplicate`` as a rep
(key, email and phone lookups, the owner's name) and the same lookup as one hand-written SELECT.
Then, with every key at once (credit code, email, phone as typed, name; the tenant's duplicate
rules read as on every check), the same for N existing customers that have a credit code (a zh
demo gives three companies in ten one) against N new ones.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from sqlalchemy import func, select, text
from stdnum.cn import uscc

from crm_core.db import open_database
from crm_core.models import Customer, Role, User
from crm_core.rules.contact_details import company_key, normalise_email, normalise_phone
from crm_core.services.auth import load_actor
from crm_core.services.customers import find_duplicate

DEFAULT_URL = "sqlite:////work/bench/crm-1m.db"
RAW = ("SELECT id, owner_id FROM customers WHERE tenant_id = :tenant AND archived_at IS NULL "
       "AND name_key = :key LIMIT 20")
RAW_ALL_KEYS = " UNION ALL ".join(
    f"SELECT id, owner_id FROM customers WHERE tenant_id = :tenant AND {column} = :{name} AND archived_at IS NULL"
    for column, name in (("credit_code", "code"), ("email_normalized", "email"), ("phone_normalized", "phone"),
                         ("name_key", "key"))
)


def _ms(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, int(len(ordered) * 0.95) - 1)]
    return f"p50 {statistics.median(ordered) * 1000:6.2f} ms  p95 {p95 * 1000:6.2f} ms"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks duplicates")
    parser.add_argument("--database-url", default=DEFAULT_URL)
    parser.add_argument("--samples", type=int, default=200)
    args = parser.parse_args(argv)
    db = open_database(args.database_url)
    try:
        with db.system_session("benchmark: names") as session:
            tenant_id = session.scalar(select(Customer.tenant_id).group_by(Customer.tenant_id)
                                       .order_by(func.count().desc()).limit(1))
            username = session.scalar(select(User.username).where(
                User.tenant_id == tenant_id, User.role == Role.REP.value, User.is_active.is_(True)).limit(1))
            step = max(1, int(session.scalar(select(func.max(Customer.id))) or 1) // args.samples)
            existing = [name for name in session.scalars(select(Customer.name).where(
                Customer.tenant_id == tenant_id, Customer.id % step == 0).limit(args.samples))]
        actor = load_actor(db, str(username))
        assert actor is not None
        respelt = [name.upper().replace("股份有限公司", "").replace("有限公司", "").replace(" Ltd", "")
                   .replace(" LLC", "") for name in existing]
        fresh = [f"Kestrel Probe {index} 科技有限公司" for index in range(len(existing))]
        print(f"database: {args.database_url}; tenant {tenant_id}; as {username}; {len(existing)} names each")
        for label, names, expect in (("existing, respelt", respelt, True), ("new", fresh, False)):
            core, raw, found = [], [], 0
            for name in names:
                started = time.perf_counter()
                duplicate = find_duplicate(db, actor, name=name, email="", phone="")
                core.append(time.perf_counter() - started)
                found += duplicate is not None
                with db.engine.connect() as connection:
                    started = time.perf_counter()
                    connection.execute(text(RAW), {"tenant": tenant_id, "key": company_key(name)}).all()
                    raw.append(time.perf_counter() - started)
            ratio = statistics.median(core) / max(statistics.median(raw), 1e-9)
            print(f"  {label:<18} find_duplicate {_ms(core)}   raw SQL {_ms(raw)}   ratio {ratio:5.1f}×   "
                  f"found {found}/{len(names)} (expected {'all' if expect else 'none'})")
        _all_keys(db, actor, int(tenant_id or 0), args.samples)
    finally:
        db.engine.dispose()
    return 0


def _all_keys(db: Any, actor: Any, tenant_id: int, samples: int) -> None:
    """find_duplicate with the four keys (the rules read as on every check) beside one raw SELECT."""
    with db.system_session("benchmark: identities") as session:
        rows = session.execute(select(Customer.name, Customer.credit_code, Customer.email, Customer.phone).where(
            Customer.tenant_id == tenant_id, Customer.credit_code.is_not(None)).limit(samples)).all()
    if not rows:
        print("  all keys: no customer has a credit code (load a zh_CN demo at schema 0020 or later)")
        return
    fresh = [(f"Kestrel Probe {index} 贸易有限公司", f"91110108{index:09d}"[:17], f"probe{index}@kestrel.example",
              f"139{index:08d}") for index in range(len(rows))]
    fresh = [(name, code + str(uscc.calc_check_digit(code)), email, phone) for name, code, email, phone in fresh]
    for label, cases, expect in (("existing, all keys", [tuple(row) for row in rows], True),
                                 ("new, all keys", fresh, False)):
        core, raw, found = [], [], 0
        for name, code, email, phone in cases:
            started = time.perf_counter()
            duplicate = find_duplicate(db, actor, name=name, email=email or "", phone=phone or "",
                                       credit_code=code or "")
            core.append(time.perf_counter() - started)
            found += duplicate is not None
            with db.engine.connect() as connection:
                started = time.perf_counter()
                connection.execute(text(RAW_ALL_KEYS), {
                    "tenant": tenant_id, "code": code, "email": normalise_email(email),
                    "phone": normalise_phone(phone), "key": company_key(name)}).all()
                raw.append(time.perf_counter() - started)
        ratio = statistics.median(core) / max(statistics.median(raw), 1e-9)
        print(f"  {label:<18} find_duplicate {_ms(core)}   raw SQL {_ms(raw)}   ratio {ratio:5.1f}×   "
              f"found {found}/{len(cases)} (expected {'all' if expect else 'none'})")
