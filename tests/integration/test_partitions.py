"""Monthly partitions of activities and audit_events (PostgreSQL, decision 0055): the migration that converts the
tables keeps every row, id and key; the ``partitions_ahead`` job creates the coming months, idempotently, and
moves rows out of the DEFAULT partition; rows of any month are read back through the app's own queries. On
SQLite and MariaDB the job does nothing."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from huey import Huey, MemoryHuey
from sqlalchemy import Connection, Engine, MetaData, insert, inspect, select, text

from crm_core.db import Database, make_engine
from crm_core.demo import generate_demo
from crm_core.models import Activity, AuditEvent
from crm_core.partitions import add_months, month_start, partition_name
from crm_core.queries.customer_profile import customer_timeline
from crm_core.schema import migrate
from crm_core.services.activities import ActivityInput, log_activity
from tests.conftest import database_url, private_database
from tests.factories import World, build_world, create_random_customer
from tests.integration.test_jobs_kinds import run
from tests.integration.test_migration_chain import _row

AS_OF = dt.datetime(2031, 5, 17, 3, 0)  # the job's "today": months no test database has yet


@pytest.fixture
def queue() -> Huey:
    return MemoryHuey("kestrel-test-partitions")


def partitions(connection: Connection, table: str) -> dict[str, str]:
    """``{partition: its bounds}`` of ``table``."""
    rows = connection.execute(text(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = CAST(:table AS regclass)"), {"table": table})
    return {name: bounds for name, bounds in rows}


def holder(connection: Connection, table: str, row_id: int) -> str:
    """The partition that holds row ``row_id`` of ``table``."""
    return str(connection.execute(text(f"SELECT tableoid::regclass::text FROM {table} WHERE id = :id"),
                                  {"id": row_id}).scalar_one())


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_the_job_creates_the_coming_months_and_rows_of_any_month_are_read_back(db: Database, queue: Huey) -> None:
    world: World = build_world(db)
    job = run(db, world.admin, queue, "partitions_ahead", {"as_of": AS_OF.isoformat()})
    assert job.status == "succeeded", job.error_key
    months = [add_months(month_start(AS_OF), step) for step in range(4)]
    assert job.result == {"database": "postgresql", "moved_rows": 0,
                          "created": [partition_name(table, month) for table in ("activities", "audit_events")
                                      for month in months]}
    with db.system_session("test: partitions") as session:
        bounds = partitions(session.connection(), "activities")
    assert bounds["activities_p203105"] == "FOR VALUES FROM ('2031-05-01 00:00:00') TO ('2031-06-01 00:00:00')"
    assert bounds["activities_default"] == "DEFAULT"
    again = run(db, world.admin, queue, "partitions_ahead", {"as_of": AS_OF.isoformat()})
    assert again.result == {"database": "postgresql", "created": [], "moved_rows": 0}  # idempotent

    customer = create_random_customer(db, world.rep, name="分区客户")
    # a user logs nothing in the future (the form refuses it): those come from elsewhere, e.g. a file's history
    ids = {"past": log_activity(db, world.rep, ActivityInput(customer, "call", "past",
                                                             occurred_at=dt.datetime(1999, 12, 31, 23, 59)))}
    with db.system_transaction("test: planned touches") as session:
        for label, moment in (("inside", dt.datetime(2031, 7, 9, 10, 30)), ("beyond", dt.datetime(2033, 2, 1, 8))):
            activity = Activity(tenant_id=world.rep.tenant_id, customer_id=customer, type="meeting", summary=label,
                                author_id=world.rep.user_id, occurred_at=moment)
            session.add(activity)
            session.flush()
            ids[label] = activity.id
    with db.system_session("test: where the rows are") as session:
        connection = session.connection()
        assert holder(connection, "activities", ids["inside"]) == "activities_p203107"
        # beyond the horizon and before every month: the DEFAULT partition, not an error
        assert holder(connection, "activities", ids["beyond"]) == "activities_default"
        assert holder(connection, "activities", ids["past"]) == "activities_default"
        # every write is audited: the events of those activities are in the audit trail's partitions
        audit_ids = session.scalars(select(AuditEvent.id).where(
            AuditEvent.entity == "activity", AuditEvent.entity_id.in_(ids.values()))).all()
        assert len(audit_ids) == 3
    with db.session(world.rep) as session:
        timeline = customer_timeline(session, customer, limit=10)
    assert [(entry.kind, entry.id) for entry in timeline.entries if entry.kind == "activity"] == [
        ("activity", ids["beyond"]), ("activity", ids["inside"]), ("activity", ids["past"])]

    # the past month's row leaves DEFAULT for a partition of its own; the far future's waits for its horizon
    moved = run(db, world.admin, queue, "partitions_ahead", {"as_of": AS_OF.isoformat()})
    assert moved.result == {"database": "postgresql", "created": ["activities_p199912"], "moved_rows": 1}
    later = run(db, world.admin, queue, "partitions_ahead", {"as_of": "2033-01-20T00:00:00", "months_ahead": 1})
    assert "activities_p203302" in later.result["created"] and later.result["moved_rows"] == 1
    with db.system_session("test: rows moved") as session:
        connection = session.connection()
        assert holder(connection, "activities", ids["past"]) == "activities_p199912"
        assert holder(connection, "activities", ids["beyond"]) == "activities_p203302"
        assert connection.execute(text("SELECT count(*) FROM activities_default")).scalar_one() == 0
    with db.session(world.rep) as session:
        again_read = customer_timeline(session, customer, limit=10)
        summaries = session.scalars(select(Activity.summary).where(Activity.customer_id == customer)
                                    .order_by(Activity.occurred_at)).all()
    assert [(entry.kind, entry.id) for entry in again_read.entries] == [
        (entry.kind, entry.id) for entry in timeline.entries]
    assert summaries == ["past", "inside", "beyond"]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_the_job_refuses_a_bad_horizon(db: Database, queue: Huey) -> None:
    world = build_world(db)
    job = run(db, world.admin, queue, "partitions_ahead", {"months_ahead": 99})
    assert job.status == "failed" and job.error_key == "error.validation_failed", job.error_key
    assert "months_ahead" in str(job.error_params)


@pytest.mark.parametrize("engine", ["sqlite", "mysql"], indirect=True)
def test_the_job_does_nothing_without_partitions(db: Database, queue: Huey) -> None:
    world = build_world(db)
    job = run(db, world.admin, queue, "partitions_ahead", {})
    assert job.status == "succeeded"
    assert job.result == {"database": db.dialect_name, "created": [], "moved_rows": 0}


@pytest.fixture
def postgresql_at_0042(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Engine]:
    url = database_url("postgresql", tmp_path_factory.mktemp("partitions"))
    with private_database(url) as private_url:
        engine = make_engine(private_url)
        migrate(engine, "upgrade", "0042")
        yield engine
        engine.dispose()


def test_the_migration_moves_existing_rows_into_their_months_and_back(postgresql_at_0042: Engine) -> None:
    engine = postgresql_at_0042
    tables = MetaData()
    tables.reflect(engine, only=["tenants", "customers", "activities", "audit_events"])
    tenants, customers, activities, audit_events = (
        tables.tables[name] for name in ("tenants", "customers", "activities", "audit_events"))
    with engine.begin() as connection:
        connection.execute(insert(tenants).values(_row(tenants, id=1, name="T", slug="t")))
        connection.execute(insert(customers).values(_row(customers, id=1, tenant_id=1, name="C", custom_fields="{}")))
        for day, summary in ((dt.datetime(2025, 3, 4), "March"), (dt.datetime(2024, 1, 31, 23, 59), "January")):
            connection.execute(insert(activities).values(_row(
                activities, tenant_id=1, customer_id=1, summary=summary, occurred_at=day)))
            connection.execute(insert(audit_events).values(_row(
                audit_events, tenant_id=1, action="create", entity="activity", changes="{}", occurred_at=day)))
    migrate(engine, "upgrade", "0043")
    with engine.begin() as connection:
        assert {"activities_p202403", "activities_p202501"}.isdisjoint(partitions(connection, "activities"))
        assert {"activities_p202401", "activities_p202503", "activities_default"} <= set(
            partitions(connection, "activities"))
        assert holder(connection, "activities", 2) == "activities_p202401"
        assert holder(connection, "audit_events", 1) == "audit_events_p202503"
        # the id sequence goes on where it stopped
        new_id = connection.execute(text(
            "INSERT INTO activities (tenant_id, customer_id, type, summary, occurred_at, created_at, updated_at)"
            " VALUES (1, 1, 'note', 'after', now(), now(), now()) RETURNING id")).scalar_one()
        assert new_id == 3
    inspector = inspect(engine)
    assert inspector.get_pk_constraint("activities")["constrained_columns"] == ["tenant_id", "id", "occurred_at"]
    assert {key["referred_table"] for key in inspector.get_foreign_keys("activities")} == {
        "tenants", "customers", "contacts", "opportunities", "users"}
    assert {index["name"] for index in inspector.get_indexes("audit_events")} >= {
        "ix_audit_events_tenant_id_occurred_at", "ix_audit_events_tenant_id_entity_entity_id_occurred_at"}

    migrate(engine, "downgrade", "0042")
    with engine.connect() as connection:
        assert connection.execute(text(
            "SELECT relkind FROM pg_class WHERE relname = 'activities'")).scalar_one() == "r"
        assert connection.execute(text("SELECT summary FROM activities ORDER BY id")).scalars().all() == [
            "March", "January", "after"]
    assert inspect(engine).get_pk_constraint("activities")["constrained_columns"] == ["id"]


@pytest.mark.parametrize("engine", ["postgresql"], indirect=True)
def test_the_demo_loads_its_history_into_months_not_the_default_partition(db: Database) -> None:
    summary = generate_demo(db, customers=300, profile="scale")
    assert (summary.activities, summary.audit_events) == (900, 150)
    with db.system_session("test: the demo's months") as session:
        connection = session.connection()
        for table in ("activities", "audit_events"):
            assert connection.execute(text(f"SELECT count(*) FROM {table}_default")).scalar_one() == 0
            oldest = connection.execute(text(f"SELECT min(occurred_at) FROM {table}")).scalar_one()
            assert partition_name(table, month_start(oldest)) in partitions(connection, table)
        # the load's ids and the app's next one do not collide (the key no longer refuses a duplicate id)
        ids = connection.execute(text("SELECT count(*), count(DISTINCT id) FROM audit_events")).one()
    assert ids[0] == ids[1] > 150  # the generated trail beside the events of the setup rows and the load
