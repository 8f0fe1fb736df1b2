"""``python -m benchmarks grid --database-url URL``: the customers grid's speed, per role.

For each case (one filter + a sort, a text search, a keyset "next page", the capped count, the
capped count beside a search, and the contacts search: the global search's contacts group and
the contacts list's capped count) and each of a rep, a manager and an admin, it times the query function the page calls
(``list_customers`` through the scoped ORM session, access criteria included) and then
the very SQL statements that call emitted (the plan probe included), run on the raw DBAPI cursor,
and prints p50/p95 of both and their ratio. Finally it times the Customers page's full script run under AppTest.

The database is only read. Search terms are taken from the data (a real name's middle,
an email's local part, a phone's digits; a contact's given name, email and phone) so every
search has matches. ``--cases TEXT`` measures only the cases whose label contains TEXT.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import event, select, text

from crm_core.access import Actor
from crm_core.db import Database, open_database
from crm_core.models import Contact, Customer, Team, User
from crm_core.queries.contacts import ContactFilters, list_contacts
from crm_core.queries.customers import DEFAULT_COUNT_CAP, CustomerFilters, count_customers, has_cjk, list_customers
from crm_core.queries.search import search_contacts
from crm_core.services import auth

ROLES = ("rep", "manager", "admin")
TARGET_MS = {"page": 50.0, "search": 100.0}


@dataclass
class Case:
    """One grid query: a label, filters, a sort, and whether it is a text search."""

    label: str
    filters: CustomerFilters
    sort: str = "updated_at"
    descending: bool = True
    kind: str = "page"  # page | search | next | count | contacts


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(share * (len(ordered) - 1))))]


class SqlCapture:
    """Remembers the SQL statements an engine runs, to replay them on the raw cursor."""

    def __init__(self, db: Database) -> None:
        self.statements: list[tuple[str, Any]] = []
        event.listen(db.engine, "before_cursor_execute", self._record)

    def _record(self, _conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        self.statements.append((statement, parameters))


def time_it(work: Callable[[], Any], runs: int) -> list[float]:
    work()  # warm the page cache and statement caches
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def largest_tenant(db: Database) -> tuple[int, int]:
    """The tenant with the most customers, and how many it has (the one the benchmarks measure)."""
    with db.system_session("benchmark") as session:
        tenant_id, customers = session.execute(
            text("SELECT tenant_id, COUNT(*) FROM customers GROUP BY tenant_id ORDER BY COUNT(*) DESC LIMIT 1")
        ).one()
    return int(tenant_id), int(customers)


def demo_actors(db: Database, tenant_id: int) -> dict[str, Actor]:
    """A rep, a manager and an admin of the tenant (demo.* users when present)."""
    actors: dict[str, Actor] = {}
    with db.system_session("benchmark") as session:
        for role in ROLES:
            username = session.scalar(
                select(User.username).where(User.tenant_id == tenant_id, User.role == role, User.is_active.is_(True))
                .order_by(User.username.not_like("demo.%"), User.id).limit(1)
            )
            if username:
                actor = auth.load_actor(db, username)
                if actor is not None:
                    actors[role] = actor
    return actors


def sample_terms(db: Database, tenant_id: int) -> dict[str, str]:
    """Search terms that exist in the data."""
    with db.system_session("benchmark") as session:
        row = session.execute(
            select(Customer.name, Customer.email_normalized, Customer.phone_normalized)
            .where(Customer.tenant_id == tenant_id, Customer.email_normalized.is_not(None),
                   Customer.phone_normalized.is_not(None))
            .order_by(Customer.id).offset(777).limit(1)
        ).one()
        industry = session.scalar(select(Customer.industry).where(Customer.tenant_id == tenant_id,
                                                                   Customer.industry.is_not(None)).limit(1))
        region = session.scalar(select(Customer.region).where(Customer.tenant_id == tenant_id,
                                                               Customer.region.is_not(None)).limit(1))
        tag = session.scalar(select(Customer.tags).where(Customer.tenant_id == tenant_id, Customer.tags != "").limit(1))
        team_id = session.scalar(select(Team.id).where(Team.tenant_id == tenant_id).order_by(Team.id).limit(1))
        contact = session.execute(
            select(Contact.name, Contact.email_normalized, Contact.phone_normalized)
            .where(Contact.tenant_id == tenant_id, Contact.email_normalized.is_not(None),
                   Contact.phone_normalized.is_not(None))
            .order_by(Contact.id).offset(777).limit(1)
        ).one_or_none()
    name = row.name
    words = [word for word in name.split() if len(word) >= 4]
    middle = words[-1][:5] if words else name[1:5]
    return {
        "name_word": middle,
        "name_prefix2": name[:2],
        "cjk3": "科技有" if not name.isascii() else "有限公",
        # a real word from inside a Chinese name (found anywhere), or a city absent from English data
        "cjk2": name[2:4] if not name.isascii() and len(name) >= 4 else "北京",
        "cjk1": name[:1] if not name.isascii() else "张",
        "email": row.email_normalized.split("@")[0][:8],
        "phone": row.phone_normalized.lstrip("+")[-7:],
        "industry": industry or "",
        "region": region or "",
        "tag": (tag or ",vip,").strip(",").split(",")[0],
        "team_id": str(team_id or 0),
        # a contact's given name (common among people), email local part (rare), phone digits
        "contact_word": (contact.name.split()[0][:5] if contact and contact.name.isascii() else
                         contact.name[:2] if contact else "王"),
        "contact_email": contact.email_normalized.split("@")[0][:8] if contact else "nobody",
        "contact_phone": contact.phone_normalized.lstrip("+")[-7:] if contact else "1380013",
    }


def build_cases(terms: dict[str, str], owner_id: int) -> list[Case]:
    """The grid cases measured for every role."""
    today = dt.date(2026, 11, 1)
    return [
        Case("no filter · updated_at desc", CustomerFilters()),
        Case("no filter · name asc", CustomerFilters(), "name", False),
        Case("no filter · created_at desc", CustomerFilters(), "created_at"),
        Case("no filter · last_contacted_at desc", CustomerFilters(), "last_contacted_at"),
        Case("owner · updated_at desc", CustomerFilters(owner_id=owner_id)),
        Case("owner · name asc", CustomerFilters(owner_id=owner_id), "name", False),
        Case("team · updated_at desc", CustomerFilters(team_id=int(terms["team_id"]))),
        Case("lifecycle=customer · updated_at desc", CustomerFilters(lifecycle_stage="customer")),
        Case("lifecycle=churned · name asc", CustomerFilters(lifecycle_stage="churned"), "name", False),
        Case(f"industry={terms['industry']} · updated_at desc", CustomerFilters(industry=terms["industry"])),
        Case("industry · created_at desc", CustomerFilters(industry=terms["industry"]), "created_at"),
        Case(f"region={terms['region']} · updated_at desc", CustomerFilters(region=terms["region"])),
        Case(f"tag={terms['tag']} · updated_at desc", CustomerFilters(tag=terms["tag"])),
        Case("created in last 90 days · created_at desc",
             CustomerFilters(created_from=today - dt.timedelta(days=90)), "created_at"),
        Case("contacted in last 30 days · last_contacted_at desc",
             CustomerFilters(last_contacted_from=today - dt.timedelta(days=30)), "last_contacted_at"),
        Case("never contacted · updated_at desc", CustomerFilters(never_contacted=True)),
        Case(f"search name '{terms['name_word']}'", CustomerFilters(search=terms["name_word"]), kind="search"),
        Case(f"search email '{terms['email']}'", CustomerFilters(search=terms["email"]), kind="search"),
        Case(f"search phone '{terms['phone']}'", CustomerFilters(search=terms["phone"]), kind="search"),
        Case(f"search CJK 3 chars '{terms['cjk3']}'", CustomerFilters(search=terms["cjk3"]), kind="search"),
        Case(f"search CJK 2 chars '{terms['cjk2']}' (anywhere)", CustomerFilters(search=terms["cjk2"]), kind="search"),
        Case(f"search CJK 1 char '{terms['cjk1']}' (anywhere)", CustomerFilters(search=terms["cjk1"]), kind="search"),
        Case(f"search 2 chars '{terms['name_prefix2']}' "
             f"({'anywhere' if has_cjk(terms['name_prefix2']) else 'name start'})",
             CustomerFilters(search=terms["name_prefix2"]),
             kind="search"),
        Case("page 2 by keyset · updated_at desc", CustomerFilters(), kind="next"),
        Case(f"capped count (≤{DEFAULT_COUNT_CAP:,})", CustomerFilters(), kind="count"),
        # the "N match" / "1,000+ match" beside a search: a common word, a rare one
        Case(f"capped count · search common '{terms['name_word']}'", CustomerFilters(search=terms["name_word"]),
             kind="count"),
        Case(f"capped count · search rare '{terms['email']}'", CustomerFilters(search=terms["email"]), kind="count"),
        Case(f"capped count · search CJK '{terms['cjk2']}'", CustomerFilters(search=terms["cjk2"]), kind="count"),
        # contacts: the global search's contacts group and the contacts list's capped count
        Case(f"contacts search common '{terms['contact_word']}'", CustomerFilters(search=terms["contact_word"]),
             kind="contacts"),
        Case(f"contacts search rare '{terms['contact_email']}'", CustomerFilters(search=terms["contact_email"]),
             kind="contacts"),
        Case(f"contacts search phone '{terms['contact_phone']}'", CustomerFilters(search=terms["contact_phone"]),
             kind="contacts"),
        Case(f"contacts search CJK '{terms['cjk1']}'", CustomerFilters(search=terms["cjk1"]), kind="contacts"),
        Case(f"contacts list count · '{terms['contact_word']}'", CustomerFilters(search=terms["contact_word"]),
             kind="contacts-count"),
    ]


def run_case(db: Database, actor: Actor, case: Case, runs: int, capture: SqlCapture) -> tuple[list[float], list[float]]:
    """Timings (ms) of the query function and of its SQL replayed on the raw cursor."""
    with db.session(actor) as session:
        cursor_after = None
        if case.kind == "next":
            cursor_after = list_customers(session, filters=case.filters, sort=case.sort, with_total=False).next_cursor

        def work() -> Any:
            if case.kind == "count":
                return count_customers(session, filters=case.filters, cap=DEFAULT_COUNT_CAP)
            if case.kind == "contacts":
                return search_contacts(session, case.filters.search)
            if case.kind == "contacts-count":
                return list_contacts(session, filters=ContactFilters(search=case.filters.search), with_total=True,
                                     count_cap=DEFAULT_COUNT_CAP)
            return list_customers(session, filters=case.filters, sort=case.sort, descending=case.descending,
                                  with_total=False, after=cursor_after, per_page=50)

        orm = time_it(work, runs)
        capture.statements.clear()
        work()  # once more, recording every statement it runs (plan probe included)
        statements = list(capture.statements)
    raw_connection = db.engine.raw_connection()
    try:
        def raw() -> Any:
            cursor = raw_connection.cursor()
            rows = None
            for statement, parameters in statements:
                cursor.execute(statement, parameters)
                rows = cursor.fetchall()
            cursor.close()
            return rows

        raw_timings = time_it(raw, runs)
    finally:
        raw_connection.close()
    return orm, raw_timings


def apptest_page_run(url: str, username: str, password: str, runs: int) -> list[float]:
    """Wall time (ms) of the Customers page's full script run under AppTest, after login."""
    from streamlit.testing.v1 import AppTest

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ["CRM_DATABASE_URL"] = url
    os.environ.setdefault("CRM_COOKIE_KEY", "benchmark-cookie-key-0123456789abcdef")
    os.chdir(root)
    app = AppTest.from_file(os.path.join(root, "app.py"), default_timeout=120)
    app.run()
    next(w for w in app.text_input if w.label == "Username").input(username)
    next(w for w in app.text_input if w.label == "Password").input(password)
    next(b for b in app.button if b.label == "Log in").click()
    app.run()
    app.switch_page("pages/customers.py")
    app.run()
    if app.exception:
        raise RuntimeError(f"the Customers page failed: {app.exception}")
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        app.run()
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def main(argv: list[str] | None = None) -> int:
    """Print the figures; exit 0 (figures are reported, not asserted)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks grid", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("CRM_DATABASE_URL", "sqlite:////work/bench/crm-1m.db"))
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--roles", default=",".join(ROLES))
    parser.add_argument("--cases", default="", help="only the cases whose label contains this text")
    parser.add_argument("--page-runs", type=int, default=5, help="AppTest runs of the Customers page (0: skip)")
    parser.add_argument("--password", default=os.environ.get("CRM_BENCH_PASSWORD", "Kestrel-demo-2026"))
    args = parser.parse_args(argv)

    db = open_database(args.database_url)
    tenant_id, customers = largest_tenant(db)
    actors = demo_actors(db, tenant_id)
    terms = sample_terms(db, tenant_id)
    capture = SqlCapture(db)
    print(f"customers grid on {db.dialect_name}: tenant {tenant_id} with {customers:,} customers; "
          f"{args.runs} runs per case (ms)")
    worst: dict[str, float] = {"page": 0.0, "search": 0.0}
    for role in [r for r in args.roles.split(",") if r in actors]:
        actor = actors[role]
        with db.session(actor) as session:
            visible = count_customers(session, cap=None)
        owner_id = actor.user_id if role == "rep" else min(actor.visible_owner_ids | {actor.user_id})
        if role == "admin":
            with db.system_session("benchmark") as session:
                owner_id = session.scalar(select(User.id).where(User.tenant_id == tenant_id, User.role == "rep")
                                          .order_by(User.id).limit(1)) or actor.user_id
        print(f"\n== {role} ({actor.username}, sees {visible:,} customers)")
        print(f"{'case':<52} {'p50':>7} {'p95':>7} {'raw p50':>8} {'ratio':>6}")
        for case in [case for case in build_cases(terms, owner_id) if args.cases in case.label]:
            orm, raw = run_case(db, actor, case, args.runs, capture)
            p50, p95, raw50 = statistics.median(orm), percentile(orm, 0.95), statistics.median(raw)
            target = TARGET_MS["search" if case.kind in ("search", "contacts") else "page"]
            flag = "" if p50 < target else f"  ✗ over {target:.0f} ms"
            worst["search" if case.kind in ("search", "contacts") else "page"] = max(
                worst["search" if case.kind in ("search", "contacts") else "page"], p50)
            print(f"{case.label[:52]:<52} {p50:7.1f} {p95:7.1f} {raw50:8.1f} {p50 / max(raw50, 0.001):6.2f}{flag}")
    print(f"\nworst p50: grid page {worst['page']:.1f} ms (target < 50), "
          f"search {worst['search']:.1f} ms (target < 100)")
    if args.page_runs > 0 and "manager" in actors:
        timings = apptest_page_run(args.database_url, actors["manager"].username, args.password, args.page_runs)
        print(f"Customers page full script run (AppTest, {actors['manager'].username}): "
              f"p50 {statistics.median(timings):.0f} ms, max {max(timings):.0f} ms (target < 1000)")
        try:
            import resource

            print(f"benchmark process peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
        except ImportError:  # pragma: no cover - not on this platform
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
