"""The demo data generator on every database: counts, integrity, derived fields, determinism."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path

import pytest
from sqlalchemy import ColumnElement, String, and_, exists, func, select, text
from sqlalchemy.orm import Session

from crm_core.db import Database, open_database
from crm_core.demo import DEMO_PASSWORD, REFERENCE_DATE, DemoSummary, generate_demo
from crm_core.models import (
    BUSINESS_TABLES,
    Activity,
    Base,
    Contact,
    Customer,
    Opportunity,
    Order,
    PipelineStage,
    Role,
    Team,
    Tenant,
    User,
)
from crm_core.queries.contacts import ContactFilters, count_contacts
from crm_core.schema import upgrade_to_head
from crm_core.services.auth import load_actor, verify_password

# the tables generate_demo fills in bulk, with the summary field that counts them
BULK_TABLES = {
    "customers": "customers",
    "contacts": "contacts",
    "opportunities": "opportunities",
    "opportunity_stage_changes": "opportunity_stage_changes",
    "orders": "orders",
    "order_lines": "order_lines",
    "activities": "activities",
    "tasks": "tasks",
    "cases": "cases",
    "case_ratings": "case_ratings",
    "products": "products",
    "campaigns": "campaigns",
    "campaign_members": "campaign_members",
    "marketing_messages": "marketing_messages",
    "marketing_events": "marketing_events",
    "consent_records": "consent_records",
}
CJK = re.compile(r"[\u4e00-\u9fff]")


def count(session: Session, table_name: str, *criteria: ColumnElement[bool]) -> int:
    table = Base.metadata.tables[table_name]
    return session.scalar(select(func.count()).select_from(table).where(*criteria)) or 0


def test_the_same_seed_gives_identical_rows_and_another_seed_different_ones(tmp_path: Path) -> None:
    def fingerprint(name: str, seed: int) -> dict[str, str]:
        db = open_database(f"sqlite:///{tmp_path / name}")
        upgrade_to_head(db.engine)
        generate_demo(db, customers=800, seed=seed)
        digests = {}
        with db.engine.connect() as connection:
            for table in (
                "customers",
                "contacts",
                "opportunities",
                "orders",
                "order_lines",
                "activities",
                "tasks",
            ):
                rows = connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY id").fetchall()
                digests[table] = hashlib.sha256(repr(rows).encode()).hexdigest()
        db.engine.dispose()
        return digests

    first = fingerprint("a.db", 7)
    assert fingerprint("b.db", 7) == first
    assert fingerprint("c.db", 8)["customers"] != first["customers"]


def test_the_summary_counts_the_rows_written_with_the_documented_ratios(db: Database) -> None:
    summary = generate_demo(db, customers=2000, seed=3)
    assert isinstance(summary, DemoSummary)
    assert summary.as_dict()["customers"] == 2000 and summary.seconds > 0
    with db.system_session("test") as session:
        for table_name, field in BULK_TABLES.items():
            assert count(session, table_name) == getattr(summary, field), table_name
        assert count(session, "users") == summary.users == 4 + 2 + 5  # roles, 2 more managers, 5 extra reps
        assert count(session, "tenants") == summary.tenants == 1
    assert (summary.contacts, summary.opportunities, summary.orders) == (1200, 600, 600)
    assert (summary.activities, summary.tasks, summary.cases) == (2000, 300, 100)
    assert 1.7 <= summary.order_lines / summary.orders <= 2.3
    assert 20 <= summary.products <= 50
    assert summary.campaigns == 5 + 2  # and the two of the marketing story, with 250 members each
    assert summary.campaign_members == 2 * 250 and summary.marketing_events > summary.marketing_messages > 250


def test_every_business_row_has_a_tenant_timestamps_and_version_one(db: Database) -> None:
    generate_demo(db, customers=600, seed=5)
    with db.system_session("test") as session:
        for entity in BUSINESS_TABLES:
            table = Base.metadata.tables[entity.__tablename__]  # type: ignore[attr-defined]
            missing = count(
                session,
                table.name,
                (table.c.tenant_id.is_(None))
                | table.c.created_at.is_(None)
                | (table.c.updated_at < table.c.created_at),
            )
            assert missing == 0, table.name
            if "version" in table.c:
                assert count(session, table.name, table.c.version != 1) == 0, table.name
        owned = (
            select(Customer.id)
            .join(User, User.id == Customer.owner_id)
            .where(User.tenant_id != Customer.tenant_id)
        )
        assert session.execute(owned).first() is None


def test_every_opportunity_sits_in_a_stage_of_its_own_pipeline_consistent_with_its_state(
    db: Database,
) -> None:
    generate_demo(db, customers=2000, seed=11)
    with db.system_session("test") as session:
        foreign_stage = (
            select(func.count())
            .select_from(Opportunity)
            .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
            .where(PipelineStage.pipeline_id != Opportunity.pipeline_id)
        )
        assert session.scalar(foreign_stage) == 0
        by_kind = dict(
            session.execute(
                select(PipelineStage.kind, func.count())
                .join(Opportunity, Opportunity.stage_id == PipelineStage.id)
                .group_by(PipelineStage.kind)
            ).all()
        )
        total = sum(by_kind.values())
        assert 0.20 <= by_kind["won"] / total <= 0.30
        assert 0.11 <= by_kind["lost"] / total <= 0.19
        closed_wrongly = (
            select(func.count())
            .select_from(Opportunity)
            .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
            .where(
                ((PipelineStage.kind == "open") & Opportunity.closed_at.is_not(None))
                | ((PipelineStage.kind != "open") & Opportunity.closed_at.is_(None))
                | ((PipelineStage.kind == "lost") & Opportunity.lost_reason.is_(None))
            )
        )
        assert session.scalar(closed_wrongly) == 0
        lowest, highest = session.execute(select(func.min(Opportunity.amount), func.max(Opportunity.amount))).one()
        assert lowest >= 5000
        assert highest <= 500_000


def test_every_deal_has_the_stage_history_that_leads_to_its_stage(db: Database) -> None:
    """Created in the first open stage, one stage at a time, ending where the deal is now."""
    generate_demo(db, customers=1000, seed=5)
    with db.system_session("test") as session:
        rows = session.execute(text(
            "SELECT h.opportunity_id, h.from_stage_id, h.to_stage_id, h.changed_at, o.stage_id, o.created_at,"
            " o.closed_at, s.kind FROM opportunity_stage_changes h"
            " JOIN opportunities o ON o.id = h.opportunity_id JOIN pipeline_stages s ON s.id = o.stage_id"
            " ORDER BY h.opportunity_id, h.changed_at, h.id"
        )).all()
        stages: dict[int, str] = dict(session.execute(text("SELECT id, kind FROM pipeline_stages")).all())
        deals = session.scalar(text("SELECT COUNT(*) FROM opportunities"))
    paths: dict[int, list[tuple]] = {}
    for row in rows:
        paths.setdefault(row[0], []).append(row)
    assert len(paths) == deals
    lost_from_open = 0
    for path in paths.values():
        first, last = path[0], path[-1]
        assert first[1] is None and stages[first[2]] == "open"
        assert last[2] == last[4]  # the last move lands on the deal's current stage
        assert all(later[1] == earlier[2] for earlier, later in zip(path, path[1:], strict=False))
        assert str(first[3])[:19] == str(first[5])[:19]  # created at the deal's creation
        if last[7] == "lost":
            lost_from_open += stages[last[1]] == "open"
    assert lost_from_open > 0


def test_order_totals_equal_the_sum_of_their_lines(db: Database) -> None:
    generate_demo(db, customers=1500, seed=13)
    with db.system_session("test") as session:
        mismatched = session.scalar(
            text(
                "SELECT COUNT(*) FROM orders o WHERE o.total_amount IS NULL OR ABS(o.total_amount - "
                "(SELECT SUM(l.quantity * l.unit_price) FROM order_lines l WHERE l.order_id = o.id)) > 0.005"
            )
        )
        assert mismatched == 0
        numbers = session.scalars(select(Order.order_number).order_by(Order.id)).all()
        assert numbers[:2] == ["SO-000001", "SO-000002"] and len(set(numbers)) == len(numbers)


def test_lifecycle_stage_follows_the_deals_orders_and_activities(db: Database) -> None:
    generate_demo(db, customers=2000, seed=17)
    reference = dt.datetime.combine(REFERENCE_DATE, dt.time())
    cutoff = reference - dt.timedelta(days=180)
    won = and_(Opportunity.customer_id == Customer.id, PipelineStage.kind == "won")
    sale = and_(Order.customer_id == Customer.id, Order.status != "cancelled")
    query = select(
        Customer.lifecycle_stage,
        exists().where(won, Opportunity.stage_id == PipelineStage.id, Opportunity.closed_at >= cutoff),
        exists().where(sale, Order.ordered_at >= cutoff),
        exists().where(won, Opportunity.stage_id == PipelineStage.id),
        exists().where(sale),
        exists().where(Activity.customer_id == Customer.id, Activity.occurred_at >= cutoff),
        exists().where(
            Opportunity.customer_id == Customer.id,
            Opportunity.stage_id == PipelineStage.id,
            PipelineStage.kind == "open",
        ),
    )
    seen = set()
    with db.system_session("test") as session:
        for (
            stage,
            won_recently,
            ordered_recently,
            ever_won,
            ever_ordered,
            active,
            open_deal,
        ) in session.execute(query):
            bought = ever_won or ever_ordered
            if won_recently or ordered_recently or (bought and active):
                expected = "customer"
            elif bought:
                expected = "churned"
            elif open_deal:
                expected = "intent"
            else:
                expected = "prospect"
            assert stage == expected
            seen.add(stage)
    assert seen == {"prospect", "intent", "customer", "churned"}


def test_there_is_a_demo_user_per_role_with_the_demo_password(db: Database) -> None:
    generate_demo(db, customers=300)
    with db.system_session("test") as session:
        users = {user.username: user for user in session.scalars(select(User))}
        expected_roles = {"demo.admin": Role.ADMIN, "demo.manager": Role.MANAGER, "demo.rep": Role.REP}
        expected_roles["demo.analyst"] = Role.ANALYST
        for username, role in expected_roles.items():
            assert users[username].role == role.value
            assert verify_password(DEMO_PASSWORD, users[username].password_hash)
        teams = session.scalars(select(Team).order_by(Team.id)).all()
        assert len(teams) == 3 and all(team.manager_id is not None for team in teams)
        assert teams[0].manager_id == users["demo.manager"].id
        assert users["demo.rep"].team_id == teams[0].id
        reps_per_team = {team.id: 0 for team in teams}
        for user in users.values():
            if user.role == Role.REP.value:
                reps_per_team[user.team_id] += 1  # type: ignore[index]
        assert min(reps_per_team.values()) >= 1
        owned = count(session, "customers", Base.metadata.tables["customers"].c.owner_id.is_not(None))
        assert 0.8 <= owned / 300 <= 0.97


def test_generating_twice_is_refused_with_a_clear_error(db: Database) -> None:
    generate_demo(db, customers=100)
    with pytest.raises(ValueError, match="already exists"):
        generate_demo(db, customers=100)
    with db.system_session("test") as session:
        assert count(session, "tenants") == 1
        assert count(session, "customers") == 100


def test_several_tenants_get_numbered_slugs_and_usernames_and_keep_their_rows_apart(db: Database) -> None:
    summary = generate_demo(db, customers=300, tenants=2)
    assert summary.customers == 600 and summary.tenants == 2
    with db.system_session("test") as session:
        assert set(session.scalars(select(Tenant.slug))) == {"demo", "demo-2"}
        assert session.scalar(select(User.id).where(User.username == "demo.rep-2")) is not None
        cross = (
            select(func.count())
            .select_from(Opportunity)
            .join(Customer, Customer.id == Opportunity.customer_id)
            .join(PipelineStage, PipelineStage.id == Opportunity.stage_id)
            .join(User, User.id == Opportunity.owner_id)
            .where(
                (Customer.tenant_id != Opportunity.tenant_id)
                | (PipelineStage.tenant_id != Opportunity.tenant_id)
                | (User.tenant_id != Opportunity.tenant_id)
            )
        )
        assert session.scalar(cross) == 0


def test_zh_cn_gives_chinese_names_stages_and_mobile_numbers(db: Database) -> None:
    generate_demo(db, customers=500, locale="zh_CN")
    with db.system_session("test") as session:
        names = session.scalars(select(Customer.name)).all()
        assert all(CJK.search(name) for name in names)
        assert any(name.endswith("有限公司") for name in names)
        assert session.scalar(select(Tenant.name)) == "红隼演示公司"
        assert "赢单" in set(session.scalars(select(PipelineStage.name)))
        assert set(session.scalars(select(User.language))) == {"zh-CN"}
        phones = session.scalars(
            select(Customer.phone_normalized).where(Customer.phone_normalized.is_not(None))
        ).all()
        assert phones and all(re.fullmatch(r"\+861[3-9]\d{9}", phone or "") for phone in phones)
        # credit codes (valid, unique) and region codes that agree with the region text and each other
        from crm_core.rules import regions
        from crm_core.rules.identifiers import credit_code_problem, region_problem

        rows = session.execute(select(Customer.region, Customer.province_code, Customer.city_code,
                                      Customer.credit_code)).all()
        codes = [row.credit_code for row in rows if row.credit_code]
        assert codes and len(set(codes)) == len(codes)
        for region, province, city, code in rows:
            assert province == (regions.read_address(region).province_code or None)
            assert not regions.cascade_problems(province or "", city or "", "")
            assert code is None or credit_code_problem(code) is None
            assert code is None or region_problem(code, province or "", city or "") is None


@pytest.mark.parametrize("locale", ["en_US", "zh_CN"])
def test_every_text_value_fits_its_column(db: Database, locale: str) -> None:
    generate_demo(db, customers=400, locale=locale)
    length = func.char_length if db.dialect_name == "mysql" else func.length
    with db.system_session("test") as session:
        for table_name in BULK_TABLES:
            table = Base.metadata.tables[table_name]
            for column in table.c:
                if isinstance(column.type, String) and column.type.length:
                    longest = session.scalar(select(func.max(length(column))))
                    assert (longest or 0) <= column.type.length, f"{table_name}.{column.name}"


def test_the_id_sequences_continue_after_the_demo_rows(db: Database) -> None:
    generate_demo(db, customers=200)
    with db.system_transaction("test") as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "demo"))
        customer = Customer(tenant_id=tenant_id, name="Added after the demo")
        session.add(customer)
        session.flush()
        assert customer.id == session.scalar(select(func.max(Customer.id)))
        assert customer.id > 200


def test_resolved_cases_over_two_years_carry_realistic_csat_ratings(db: Database) -> None:
    from crm_core.models import Case
    from crm_core.models.service import CaseRating

    summary = generate_demo(db, customers=4000, seed=3)
    with db.system_session("test") as session:
        rows = session.execute(select(Case.status, Case.opened_at, Case.resolved_at, CaseRating.score,
                                      CaseRating.comment, CaseRating.rated_at)
                               .join(CaseRating, CaseRating.case_id == Case.id)).all()
        solved = count(session, "cases", Base.metadata.tables["cases"].c.status.in_(["resolved", "closed"]))
        span = session.execute(select(func.min(Case.opened_at), func.max(Case.opened_at))).one()
    assert len(rows) == summary.case_ratings and 0.3 * solved <= len(rows) <= 0.5 * solved
    assert all(status in ("resolved", "closed") and resolved is not None and resolved <= rated
               for status, _, resolved, _, _, rated in rows)
    good = sum(score == "good" for _, _, _, score, _, _ in rows)
    assert 0.7 * len(rows) <= good < len(rows)  # mostly good, some bad
    comments = [comment for *_, comment, _ in rows if comment]
    assert 0.15 * len(rows) <= len(comments) <= 0.45 * len(rows)
    assert any(CJK.search(comment) for comment in comments) and any(not CJK.search(c) for c in comments)
    assert (span[1] - span[0]).days > 400  # the cases span the two years, not the last one only
    assert min(rated for *_, rated in rows).date() < REFERENCE_DATE - dt.timedelta(days=365)


def test_make_runs_demo_initialisation_works_from_an_empty_database(tmp_path: Path) -> None:
    """What ``make run`` does on a fresh checkout: init, then the demo load inline (with the service desk)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "CRM_DATABASE_URL": f"sqlite:///{tmp_path / 'crm.db'}", "CRM_JOBS_INLINE": "1",
           "CRM_JOBS_PATH": str(tmp_path / "jobs.db"), "CRM_FILES_DIR": str(tmp_path / "files")}
    env.pop("CRM_REDIS_URL", None)
    root = Path(__file__).resolve().parents[2]
    for command in (["init"], ["demo", "--customers", "300", "--if-empty", "--today", "2026-12-05"]):
        done = subprocess.run([sys.executable, "-m", "crm_core", *command], cwd=root, env=env, capture_output=True,
                              text=True, timeout=300, check=False)
        assert done.returncode == 0, done.stderr[-2000:]
        assert "Traceback" not in done.stderr
    db = open_database(f"sqlite:///{tmp_path / 'crm.db'}")
    try:
        with db.system_session("test") as session:
            assert count(session, "customers") == 300
            assert count(session, "case_ratings") > 0
            assert count(session, "sla_calendars") == 1 and count(session, "service_queues") == 3
    finally:
        db.engine.dispose()


def test_demo_contacts_are_found_by_the_contacts_search(db: Database) -> None:
    """The bulk load indexes contacts once after the insert (SQLite: the FTS insert trigger is deferred)."""
    generate_demo(db, customers=300, locale="zh_CN")
    with db.system_session("test") as session:
        first = session.execute(select(Contact.name, Contact.email_normalized)
                                .where(Contact.email_normalized.is_not(None)).order_by(Contact.id).limit(1)).one()
        word = first.name[1:3]  # a given name: one or two characters inside the name
        expected = count(session, "contacts", Contact.name.contains(word), Contact.archived_at.is_(None))
        if db.dialect_name == "sqlite":
            session.execute(text("INSERT INTO contacts_fts(contacts_fts, rank) VALUES ('integrity-check', 1)"))
            assert session.scalar(text("SELECT count(*) FROM contacts_fts_docsize")) == count(session, "contacts")
            trigger = "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name = 'contacts_fts_after_insert'"
            assert session.scalar(text(trigger)) == 1
    actor = load_actor(db, "demo.admin")
    assert actor is not None
    with db.session(actor) as session:
        assert count_contacts(session, filters=ContactFilters(search=word)) == expected > 0
        assert count_contacts(session, filters=ContactFilters(search=first.email_normalized)) >= 1


def test_a_demo_load_on_postgresql_leaves_its_tables_vacuumed_so_indexes_answer_alone(
        tmp_path_factory: pytest.TempPathFactory) -> None:
    """After the load, VACUUM (ANALYZE): the pages are marked all-visible, so the dashboard's covering indexes
    answer counts without reading the table (an index-only scan with no heap fetch)."""
    from crm_core.jobs.kinds import load_demo
    from tests.conftest import live_database

    with live_database("postgresql", tmp_path_factory, "demo-vacuum") as db:
        load_demo(db, {"customers": 400})
        with db.engine.connect() as connection:
            pages: dict[str, float] = dict(connection.exec_driver_sql(
                "SELECT relname, relallvisible::float / greatest(relpages, 1) FROM pg_class"
                " WHERE relname IN ('customers', 'opportunities', 'orders')").all())
            connection.exec_driver_sql("SET enable_seqscan = off; SET enable_bitmapscan = off")
            plan = "\n".join(row[0] for row in connection.exec_driver_sql(
                "EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM customers"
                " WHERE tenant_id = (SELECT min(id) FROM tenants) AND created_at >= now() - interval '90 days'"))
    assert all(share == 1.0 for share in pages.values()), pages
    assert "Index Only Scan" in plan and "Heap Fetches: 0" in plan, plan


def test_a_large_load_rebuilds_every_index_and_foreign_key_it_set_aside(db: Database,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """The path of a large load (indexes built after the rows, on PostgreSQL the foreign keys too), on a small
    one: every index and key is back with its definition, including a partial index whose condition holds '%'
    (migration 0045; a 10M load failed on it at the end)."""
    from crm_core import demo

    def catalog() -> set[str]:
        with db.system_session("test: catalog") as session:
            connection = session.connection()
            if connection.dialect.name == "postgresql":
                return set(connection.exec_driver_sql(
                    "SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema()"  # the months the load
                    " AND tablename !~ '_p[0-9]{6}$' UNION ALL"  # adds (decision 0055) bring their own copies
                    " SELECT conname || ' ' || pg_get_constraintdef(oid) FROM pg_constraint"
                    " WHERE contype = 'f' AND conparentid = 0"
                ).scalars())
            if connection.dialect.name == "sqlite":
                return set(connection.exec_driver_sql(
                    "SELECT sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL").scalars())
            return set(connection.exec_driver_sql(
                "SELECT CONCAT(table_name, ' ', index_name) FROM information_schema.statistics"
                " WHERE table_schema = DATABASE()").scalars())

    before = catalog()
    monkeypatch.setattr(demo, "DEFER_INDEXES_FROM", 1)
    generate_demo(db, customers=120)
    assert catalog() == before


def test_a_count_that_fails_after_the_load_does_not_report_the_saved_rows_as_lost(
        tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The load commits its rows, then counts the rollups once. A count that fails then leaves the load done (a
    retry would load it all again): the figures are read live until the scheduled count, and the log says so."""
    from crm_core.jobs.kinds import load_demo
    from crm_core.services import sales_rollup
    from tests.conftest import live_database

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the count broke")

    monkeypatch.setattr(sales_rollup, "run_sales_rollup", broken)
    with live_database("sqlite", tmp_path_factory, "demo-uncounted") as db:
        result = load_demo(db, {"customers": 300, "today": "2026-12-05"})
        assert result["status"] == "ok" and result["customers"] == 300 and result["uncounted_tenants"]
        assert "the first count of tenant" in caplog.text
        with db.system_session("test") as session:
            assert count(session, "customers") == 300
