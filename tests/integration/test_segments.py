"""Segments on every database: RFM against hand-computed quintiles, builder conditions against
hand-written SQL, sharing and deletion rules, bulk actions all-or-nothing, lifecycle flow."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, SegmentNameTaken, SegmentTooLarge, ValidationFailed
from crm_core.models import AuditEvent, Campaign, Customer, FieldDefinition, Order, Task
from crm_core.models.automation import LifecycleTransition
from crm_core.models.segments import CampaignMember, Score, ScoringModel, SegmentSnapshot
from crm_core.queries.segments import (
    count_segment,
    iter_segment_members,
    lifecycle_distribution,
    lifecycle_flow,
    list_saved_segments,
    rfm_scores,
    rfm_summary,
    segment_size_history,
)
from crm_core.rules.segments import FieldCatalog, validate_spec
from crm_core.services import segments as segment_services
from crm_core.services.segments import (
    BulkTaskInput,
    SegmentInput,
    create_segment_tasks,
    delete_segment,
    enroll_segment_in_campaign,
    record_snapshot,
    save_segment,
)
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def add_orders(db: Database, world: World, customer_id: int, orders: list[tuple[str, str, str]]) -> None:
    """Orders as (date, amount, status)."""
    with db.transaction(world.admin) as session:
        for date, amount, status in orders:
            number = f"SO-{customer_id}-{date}-{amount}"
            session.add(Order(customer_id=customer_id, order_number=number, status=status,
                              ordered_at=dt.datetime.fromisoformat(date), total_amount=Decimal(amount),
                              owner_id=world.rep.user_id))


RFM_FIXTURE = {
    "A": [("2026-01-10", "100", "fulfilled")],
    "B": [("2026-03-01", "200", "fulfilled"), ("2026-06-01", "300", "confirmed")],
    "C": [("2026-02-01", "50", "fulfilled"), ("2026-04-01", "50", "fulfilled"), ("2026-10-01", "100", "fulfilled")],
    "D": [("2026-09-15", "1000", "fulfilled")],
    "E": [("2025-09-01", "100", "fulfilled"), ("2025-10-01", "100", "fulfilled"), ("2025-11-01", "100", "fulfilled"),
          ("2025-12-01", "100", "fulfilled")],
    "F": [("2026-10-20", "50", "confirmed")],
    "G": [("2026-05-01", "700", "fulfilled"), ("2026-07-01", "800", "fulfilled")],
    "H": [("2026-10-30", "5000", "cancelled")],  # a cancelled order does not count
    "I": [],
}
# Worked by hand (7 buyers; NTILE(5) puts 2,2,1,1,1 rows in quintiles 1..5):
#   R by last order: E A | B G | D | C | F      F by count, amount: F A | D B | G | C | E
#   M by amount:     F A | C E | B | D | G
RFM_EXPECTED = {
    "A": (1, 1, 1, "lost"),
    "B": (2, 2, 3, "hibernating"),
    "C": (4, 4, 2, "potential_loyalist"),
    "D": (3, 2, 4, "need_attention"),
    "E": (1, 5, 2, "at_risk"),
    "F": (5, 1, 1, "new_customer"),
    "G": (2, 3, 5, "at_risk"),
}


@pytest.fixture
def rfm_world(db: Database, world: World) -> dict[str, int]:
    ids = {}
    for name, orders in RFM_FIXTURE.items():
        ids[name] = create_random_customer(db, world.rep, name=f"RFM {name}")
        add_orders(db, world, ids[name], orders)
    create_random_customer(db, world.other_admin, name="Other tenant buyer")
    return ids


def test_rfm_quintiles_and_segments_match_the_hand_computed_table(
    db: Database, world: World, rfm_world: dict[str, int]
) -> None:
    with db.session(world.analyst) as session:
        scores = rfm_scores(session)
    by_name = {name: scores[customer_id] for name, customer_id in rfm_world.items() if customer_id in scores}
    assert set(by_name) == set(RFM_EXPECTED)  # H (cancelled only) and I (no order) are not buyers
    assert {name: (s.r, s.f, s.m, s.segment) for name, s in by_name.items()} == RFM_EXPECTED
    assert by_name["B"].order_count == 2 and by_name["B"].monetary == Decimal("500.00")
    assert by_name["E"].last_order_at == dt.datetime(2025, 12, 1)


def test_rfm_summary_counts_customers_and_revenue_per_segment(
    db: Database, world: World, rfm_world: dict[str, int]
) -> None:
    with db.session(world.analyst) as session:
        summary = {row.segment: row for row in rfm_summary(session)}
    assert len(summary) == 11
    assert summary["at_risk"].customers == 2
    assert summary["at_risk"].monetary == Decimal("1900.00")  # E 400 + G 1500
    assert summary["at_risk"].average_orders == pytest.approx(3.0)
    assert summary["champions"].customers == 0 and summary["champions"].newest_order_at is None
    assert sum(row.customers for row in summary.values()) == 7


def test_a_segment_on_rfm_lists_exactly_those_customers(db: Database, world: World, rfm_world: dict[str, int]) -> None:
    spec, _ = validate_spec(
        {"match": "all", "conditions": [{"field": "rfm_segment", "op": "in", "value": ["at_risk", "lost"]}]},
        FieldCatalog(),
    )
    assert spec is not None
    with db.session(world.analyst) as session:
        names = sorted(member.name for member in iter_segment_members(session, spec, chunk=2))
    assert names == ["RFM A", "RFM E", "RFM G"]


@pytest.fixture
def builder_world(db: Database, world: World) -> World:
    with db.transaction(world.admin) as session:
        session.add_all([
            FieldDefinition(entity="customer", name="budget", label_en="Budget", label_zh="预算", field_type="number"),
            FieldDefinition(entity="customer", name="tier", label_en="Tier", label_zh="等级", field_type="choice",
                            choices=["gold", "silver"]),
            FieldDefinition(entity="customer", name="vip", label_en="VIP", label_zh="贵宾", field_type="bool"),
            FieldDefinition(entity="customer", name="renewal", label_en="Renewal", label_zh="续约", field_type="date"),
        ])
    rows: list[tuple[str, Any, dict[str, Any]]] = [
        ("北京甲公司", world.rep, {"lifecycle_stage": "customer", "tags": "vip,east", "region": "华北",
                              "custom_fields": {"budget": "2500.5", "tier": "gold", "vip": True,
                                                "renewal": "2026-12-15"}}),
        ("上海乙公司", world.rep, {"lifecycle_stage": "intent", "tags": "east", "region": "华东",
                              "custom_fields": {"budget": "900", "tier": "silver", "vip": False}}),
        ("Gamma Ltd", world.rep_other_team, {"lifecycle_stage": "customer", "tags": "vip", "industry": "Retail",
                                              "custom_fields": {"budget": "12000", "renewal": "2027-03-01"}}),
        ("Delta LLC", world.rep_other_team, {"lifecycle_stage": "prospect", "industry": "retail"}),
        ("Unowned lead", world.admin, {"owner_id": None, "lifecycle_stage": "prospect"}),
    ]
    for name, actor, fields in rows:
        create_random_customer(db, actor, name=name, **fields)
    create_random_customer(db, world.other_admin, name="Other tenant", lifecycle_stage="customer", tags="vip")
    with db.system_transaction("test contacts") as session:
        session.execute(
            text("UPDATE customers SET last_contacted_at = :when WHERE name = :name"),
            [
                {"when": dt.datetime(2026, 11, 20), "name": "北京甲公司"},
                {"when": dt.datetime(2026, 6, 1), "name": "Gamma Ltd"},
            ],
        )
        model = ScoringModel(tenant_id=world.admin.tenant_id, scorer="churn_risk", version=1, method="logistic",
                             metrics={}, model={})
        session.add(model)
        session.flush()
        for name, value in (("北京甲公司", 0.82), ("Gamma Ltd", 0.35)):
            customer_id = session.scalar(select(Customer.id).where(Customer.name == name))
            session.add(Score(tenant_id=world.admin.tenant_id, scorer="churn_risk", entity="customer",
                              entity_id=customer_id, model_id=model.id, score=value))
    return world


TODAY = dt.date(2026, 11, 24)


@pytest.mark.parametrize(
    ("conditions", "match", "sql"),
    [
        ([("lifecycle_stage", "in", ["customer", "intent"])], "all", "lifecycle_stage IN ('customer', 'intent')"),
        ([("tags", "has", "vip"), ("lifecycle_stage", "equals", "customer")], "all",
         "tags LIKE '%,vip,%' AND lifecycle_stage = 'customer'"),
        ([("tags", "has", "vip"), ("lifecycle_stage", "equals", "intent")], "any",
         "tags LIKE '%,vip,%' OR lifecycle_stage = 'intent'"),
        ([("industry", "equals", "RETAIL")], "all", "LOWER(industry) = 'retail'"),
        ([("region", "is_empty", None)], "all", "region IS NULL OR region = ''"),
        ([("name", "contains", "公司")], "all", "name LIKE '%公司%'"),
        ([("owner", "is_empty", None)], "all", "owner_id IS NULL"),
        ([("last_contacted_at", "more_than_days_ago", 30)], "all",
         "last_contacted_at IS NULL OR last_contacted_at < '2026-10-25'"),
        ([("last_contacted_at", "within_last_days", 30)], "all", "last_contacted_at >= '2026-10-25'"),
        ([("custom.budget", "gt", "1000")], "all", "name IN ('北京甲公司', 'Gamma Ltd')"),
        ([("custom.budget", "between", ["500", "3000"])], "all", "name IN ('北京甲公司', '上海乙公司')"),
        ([("custom.tier", "equals", "silver")], "all", "name = '上海乙公司'"),
        ([("custom.vip", "is_true", None)], "all", "name = '北京甲公司'"),
        ([("custom.vip", "is_false", None)], "all", "name <> '北京甲公司'"),
        ([("custom.renewal", "before", "2027-01-01")], "all", "name = '北京甲公司'"),
        ([("custom.tier", "is_empty", None)], "all", "name NOT IN ('北京甲公司', '上海乙公司')"),
        ([("score.churn_risk", "gte", 80)], "all", "name = '北京甲公司'"),
        ([("score.churn_risk", "is_empty", None)], "all", "name NOT IN ('北京甲公司', 'Gamma Ltd')"),
    ],
)
def test_a_builder_condition_counts_what_hand_written_sql_counts(
    db: Database, builder_world: World, conditions: list[tuple[str, str, Any]], match: str, sql: str
) -> None:
    world = builder_world
    raw = {"match": match, "conditions": [{"field": f, "op": o, "value": v} for f, o, v in conditions]}
    with db.session(world.analyst) as session:
        from crm_core.queries.segments import field_catalog

        spec, problems = validate_spec(raw, field_catalog(session))
        assert problems == []
        assert spec is not None
        counted = count_segment(session, spec, today=TODAY)
    with db.system_session("hand-written SQL") as session:
        expected = session.scalar(
            text(f"SELECT COUNT(*) FROM customers WHERE tenant_id = :tenant AND archived_at IS NULL AND ({sql})"),
            {"tenant": world.admin.tenant_id},
        )
    assert counted == expected
    assert counted > 0


def test_the_team_condition_follows_the_owners_team_and_unowned_team_leads(db: Database, builder_world: World) -> None:
    world = builder_world
    raw = {"match": "all", "conditions": [{"field": "team", "op": "in", "value": [world.west_team_id]}]}
    with db.session(world.analyst) as session:
        spec, _ = validate_spec(raw, FieldCatalog())
        assert spec is not None
        names = sorted(member.name for member in iter_segment_members(session, spec))
    assert names == ["Delta LLC", "Gamma Ltd"]


def test_a_rep_counts_only_the_members_they_may_see(db: Database, builder_world: World) -> None:
    world = builder_world
    spec, _ = validate_spec(
        {"match": "all", "conditions": [{"field": "tags", "op": "has", "value": "vip"}]}, FieldCatalog()
    )
    assert spec is not None
    with db.session(world.rep) as session:
        assert count_segment(session, spec) == 1
    with db.session(world.admin) as session:
        assert count_segment(session, spec) == 2


def test_saving_records_the_size_and_sharing_decides_who_sees_the_segment(db: Database, world: World) -> None:
    create_random_customer(db, world.rep, name="East one", lifecycle_stage="intent")
    conditions = {"match": "all", "conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "intent"}]}
    segment_id = save_segment(db, world.manager, SegmentInput(name="East intent", conditions=conditions))

    def visible_to(actor: Any) -> set[str]:
        with db.session(actor) as session:
            return {row.name for row in list_saved_segments(session)}

    assert visible_to(world.manager) == {"East intent"}
    assert visible_to(world.rep) == set() and visible_to(world.analyst) == set()
    assert visible_to(world.admin) == {"East intent"}
    with db.session(world.manager) as session:
        version = list_saved_segments(session)[0].version
    save_segment(db, world.manager, SegmentInput(name="East intent", conditions=conditions, sharing="team",
                                                  team_id=world.east_team_id), segment_id=segment_id,
                 expected_version=version)
    assert visible_to(world.rep) == {"East intent"} and visible_to(world.rep_other_team) == set()
    with db.session(world.manager) as session:
        history = segment_size_history(session, segment_id)
    assert [point.member_count for point in history] == [1, 1] and {p.source for p in history} == {"save"}
    with db.session(world.rep) as session:
        assert segment_size_history(session, segment_id) != []
    with db.session(world.rep_other_team) as session:
        assert segment_size_history(session, segment_id) == []


def test_a_segment_name_is_unique_in_the_tenant_and_bad_conditions_are_refused(db: Database, world: World) -> None:
    good = {"match": "all", "conditions": [{"field": "lifecycle_stage", "op": "equals", "value": "intent"}]}
    save_segment(db, world.analyst, SegmentInput(name="Hot", conditions=good))
    with pytest.raises(SegmentNameTaken):
        save_segment(db, world.manager, SegmentInput(name="Hot", conditions=good))  # private to the analyst
    save_segment(db, world.other_admin, SegmentInput(name="Hot", conditions=good))  # another tenant may
    bad = {"match": "all", "conditions": [good["conditions"][0], {"field": "salary", "op": "gt", "value": 1}]}
    with pytest.raises(ValidationFailed) as refused:
        save_segment(db, world.analyst, SegmentInput(name="Bad", conditions=bad, sharing="galaxy"))
    assert refused.value.errors["conditions.2"][0] == "segments.error.unknown_field"
    assert refused.value.errors["sharing"][0] == "validation.choice"
    with pytest.raises(ValidationFailed) as no_team:
        save_segment(db, world.analyst, SegmentInput(name="Team", conditions=good, sharing="team"))
    assert no_team.value.errors["team_id"][0] == "segments.error.team_required"


def test_only_the_owner_or_an_admin_deletes_a_segment(db: Database, world: World) -> None:
    conditions = {"match": "all", "conditions": [{"field": "owner", "op": "is_empty"}]}
    segment_id = save_segment(db, world.analyst, SegmentInput(name="Unowned", conditions=conditions, sharing="tenant"))
    record_snapshot(db, world.manager, segment_id)
    with pytest.raises(AccessDenied):
        delete_segment(db, world.manager, segment_id)
    delete_segment(db, world.admin, segment_id)
    with db.system_session("check") as session:
        assert session.scalar(select(func.count()).select_from(SegmentSnapshot)) == 0
    with pytest.raises(NotFound):
        delete_segment(db, world.analyst, segment_id)


def test_bulk_tasks_go_to_each_owner_and_are_audited(db: Database, world: World) -> None:
    mine = create_random_customer(db, world.rep, name="Bulk one", tags="renewal")
    mate = create_random_customer(db, world.rep_same_team, name="Bulk two", tags="renewal")
    conditions = {"match": "all", "conditions": [{"field": "tags", "op": "has", "value": "renewal"}]}
    created = create_segment_tasks(
        db, world.manager, conditions, BulkTaskInput(title="Renewal call with {name}", due_on=dt.date(2026, 12, 1))
    )
    assert created == 2
    with db.system_session("check") as session:
        created_tasks = session.scalars(select(Task).where(Task.customer_id.in_([mine, mate])))
        tasks = {task.customer_id: task for task in created_tasks}
        audited = session.scalar(
            select(func.count()).select_from(AuditEvent).where(
                AuditEvent.entity == "task", AuditEvent.action == "create", AuditEvent.actor_id == world.manager.user_id
            )
        )
    assert tasks[mine].assignee_id == world.rep.user_id and tasks[mate].assignee_id == world.rep_same_team.user_id
    assert tasks[mine].title == "Renewal call with Bulk one"
    assert tasks[mine].due_at == dt.datetime(2026, 12, 1, 9, 0)
    assert audited == 2


def test_a_bulk_action_over_the_limit_creates_nothing(
    db: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    for index in range(3):
        create_random_customer(db, world.rep, name=f"Many {index}", tags="many")
    monkeypatch.setattr(segment_services, "MAX_BULK", 2)
    conditions = {"match": "all", "conditions": [{"field": "tags", "op": "has", "value": "many"}]}
    with pytest.raises(SegmentTooLarge) as refused:
        create_segment_tasks(db, world.admin, conditions, BulkTaskInput(title="Call"))
    assert refused.value.params == {"count": 3, "max": 2}
    with db.system_session("check") as session:
        assert session.scalar(select(func.count()).select_from(Task).where(Task.title == "Call")) == 0
    with pytest.raises(AccessDenied):
        create_segment_tasks(db, world.analyst, conditions, BulkTaskInput(title="Call"))


def test_campaign_enrolment_is_idempotent_and_for_managers(db: Database, world: World) -> None:
    create_random_customer(db, world.rep, name="Camp one", tags="camp")
    create_random_customer(db, world.rep, name="Camp two", tags="camp")
    with db.transaction(world.admin) as session:
        campaign = Campaign(name="Winter promo", status="running")
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    conditions = {"match": "all", "conditions": [{"field": "tags", "op": "has", "value": "camp"}]}
    first = enroll_segment_in_campaign(db, world.manager, conditions, campaign_id)
    again = enroll_segment_in_campaign(db, world.manager, conditions, campaign_id)
    assert (first.enrolled, first.already) == (2, 0)
    assert (again.enrolled, again.already) == (0, 2)
    with db.system_session("check") as session:
        assert session.scalar(select(func.count()).select_from(CampaignMember)) == 2
    with pytest.raises(AccessDenied):
        enroll_segment_in_campaign(db, world.rep, conditions, campaign_id)


def test_lifecycle_distribution_and_flow_count_what_sql_counts(db: Database, world: World) -> None:
    first = create_random_customer(db, world.rep, lifecycle_stage="customer")
    second = create_random_customer(db, world.rep, lifecycle_stage="churned")
    create_random_customer(db, world.rep, lifecycle_stage="intent")
    with db.system_transaction("test transitions") as session:
        for customer_id, old, new, when in [
            (first, None, "prospect", "2026-09-01"), (first, "prospect", "intent", "2026-10-01"),
            (first, "intent", "customer", "2026-10-15"), (second, "customer", "churned", "2026-10-20"),
            (second, "prospect", "intent", "2026-08-01"),
        ]:
            session.add(LifecycleTransition(tenant_id=world.admin.tenant_id, customer_id=customer_id, from_stage=old,
                                            to_stage=new, occurred_at=dt.datetime.fromisoformat(when)))
    with db.session(world.analyst) as session:
        distribution = {item.stage: item.count for item in lifecycle_distribution(session)}
        flow = lifecycle_flow(session, start=dt.date(2026, 9, 1), end=dt.date(2026, 10, 31))
    with db.system_session("hand-written SQL") as session:
        expected: dict[str, int] = dict(session.execute(text(
            "SELECT lifecycle_stage, COUNT(*) FROM customers WHERE tenant_id = :t AND archived_at IS NULL "
            "GROUP BY lifecycle_stage"), {"t": world.admin.tenant_id}).all())
    assert {stage: count for stage, count in distribution.items() if count} == expected
    assert distribution["prospect"] == 0
    assert {(link.from_stage, link.to_stage): link.count for link in flow} == {
        (None, "prospect"): 1, ("prospect", "intent"): 1, ("intent", "customer"): 1, ("customer", "churned"): 1,
    }


def test_the_snapshot_run_counts_each_segment_in_its_owners_scope_and_skips_broken_ones(
    db: Database, world: World
) -> None:
    from crm_core.models.segments import Segment
    from crm_core.services.segments import snapshot_all_segments

    create_random_customer(db, world.rep, name="Mine", tags="snap")
    create_random_customer(db, world.rep_other_team, name="Far away", tags="snap")
    conditions = {"match": "all", "conditions": [{"field": "tags", "op": "has", "value": "snap"}]}
    by_manager = save_segment(db, world.manager, SegmentInput(name="Snap (manager)", conditions=conditions))
    by_admin = save_segment(db, world.admin, SegmentInput(name="Snap (admin)", conditions=conditions))
    with db.system_transaction("a segment whose custom field was deleted since") as session:
        session.add(Segment(tenant_id=world.admin.tenant_id, name="Broken", owner_id=world.analyst.user_id,
                            conditions={"match": "all", "conditions": [
                                {"field": "custom.gone", "op": "equals", "value": "x"}]}))
    run = snapshot_all_segments(db, tenant_id=world.admin.tenant_id)
    assert (run.counted, run.skipped) == (2, 1)
    assert run.sizes == {by_manager: 1, by_admin: 2}
    with db.session(world.admin) as session:
        sources = [point.source for point in segment_size_history(session, by_admin)]
    assert sources == ["save", "cli"]
