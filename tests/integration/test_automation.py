"""Stage automation on every database: defaults, idempotent runs, attribution, invalid rules refused."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.errors import AccessDenied, ValidationFailed
from crm_core.models import (
    AuditEvent,
    Campaign,
    Customer,
    Task,
    utcnow,
)
from crm_core.models.automation import AutomationFiring, AutomationRule
from crm_core.models.segments import CampaignMember
from crm_core.services.automation import (
    AssignmentRuleInput,
    AutomationRuleInput,
    run_automation,
    save_assignment_rule,
    save_automation_rule,
)
from crm_core.services.lifecycle import override_lifecycle_stage, refresh_lifecycle
from tests.factories import World, add_open_deal, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def run(db: Database, world: World, now: dt.datetime | None = None) -> int:
    [result] = run_automation(db, tenant_ids=[world.admin.tenant_id], now=now)
    return result.fired


def count(db: Database, world: World, model: type, *where: object) -> int:
    with db.session(world.admin) as session:
        return int(session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


def make_intent(db: Database, world: World, customer_id: int) -> None:
    add_open_deal(db, world.rep, customer_id)
    with db.system_transaction("test") as session:
        refresh_lifecycle(session, world.admin.tenant_id, [customer_id])


def test_the_first_run_seeds_sensible_defaults_for_the_tenant(db: Database, world: World) -> None:
    run(db, world)
    with db.session(world.admin) as session:
        rules = {
            (rule.stage, rule.trigger, rule.threshold, rule.action) for rule in session.scalars(select(AutomationRule))
        }
    assert ("intent", "no_activity", 7, "create_task") in rules
    assert ("churned", "entered_stage", None, "create_task") in rules


def test_a_quiet_intent_customer_gets_one_task_for_its_owner_and_a_second_run_creates_nothing(
    db: Database, world: World
) -> None:
    customer_id = create_random_customer(db, world.rep)
    make_intent(db, world, customer_id)
    later = utcnow() + dt.timedelta(days=8)
    assert run(db, world, later) == 1
    tasks = count(db, world, Task, Task.customer_id == customer_id)
    assert tasks == 2  # the first follow-up and the automation's
    with db.session(world.admin) as session:
        task = session.scalars(select(Task).where(Task.customer_id == customer_id).order_by(Task.id.desc())).first()
        assert task is not None and task.assignee_id == world.rep.user_id and task.title.startswith("Re-engage")
        audit = session.scalars(
            select(AuditEvent).where(AuditEvent.entity == "task", AuditEvent.entity_id == task.id)
        ).one()
        assert "automation rule #" in audit.changes["_source"][1]
    assert run(db, world, later) == 0
    assert run(db, world, later + dt.timedelta(days=1)) == 0
    assert count(db, world, Task, Task.customer_id == customer_id) == 2


def test_a_quiet_customer_that_was_contacted_fires_again_after_a_new_quiet_spell(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    make_intent(db, world, customer_id)
    assert run(db, world, utcnow() + dt.timedelta(days=8)) == 1
    with db.transaction(world.rep) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None
        customer.last_contacted_at = utcnow() + dt.timedelta(days=9)
    assert run(db, world, utcnow() + dt.timedelta(days=12)) == 0
    assert run(db, world, utcnow() + dt.timedelta(days=17)) == 1


def test_entering_churned_fires_the_win_back_task_once(db: Database, world: World) -> None:
    run(db, world)  # seeds the rules now, so later transitions count
    customer_id = create_random_customer(db, world.rep, lifecycle_stage="customer")
    override_lifecycle_stage(db, world.admin, customer_id, stage="churned", reason="Told us they moved to a rival")
    assert run(db, world) == 1
    assert run(db, world) == 0
    with db.session(world.admin) as session:
        titles = [task.title for task in session.scalars(select(Task).where(Task.customer_id == customer_id))]
    assert any(title.startswith("Win back") for title in titles)


def test_add_tag_and_enroll_actions_do_not_repeat(db: Database, world: World) -> None:
    with db.transaction(world.admin) as session:
        campaign = Campaign(name="Spring revival")
        session.add(campaign)
        session.flush()
        campaign_id = campaign.id
    save_automation_rule(
        db,
        world.admin,
        AutomationRuleInput(
            name="Tag quiet prospects",
            stage="prospect",
            trigger="no_activity",
            threshold=1,
            action="add_tag",
            tag="sleepy",
        ),
    )
    save_automation_rule(
        db,
        world.admin,
        AutomationRuleInput(
            name="Enrol quiet prospects",
            stage="prospect",
            trigger="no_activity",
            threshold=1,
            action="enroll_campaign",
            campaign_id=campaign_id,
        ),
    )
    customer_id = create_random_customer(db, world.rep, tags="vip")
    later = utcnow() + dt.timedelta(days=2)
    assert run(db, world, later) == 2
    assert run(db, world, later) == 0
    with db.session(world.admin) as session:
        customer = session.get(Customer, customer_id)
        assert customer is not None and customer.tag_list == ["vip", "sleepy"]
    assert count(db, world, CampaignMember, CampaignMember.customer_id == customer_id) == 1
    assert count(db, world, AutomationFiring, AutomationFiring.customer_id == customer_id) == 2


def test_a_rule_with_invalid_conditions_is_refused_at_save_time(db: Database, world: World) -> None:
    with pytest.raises(ValidationFailed) as refused:
        save_automation_rule(
            db,
            world.admin,
            AutomationRuleInput(
                name="", stage="lost", trigger="no_activity", threshold=0, action="create_task", task_title="Call {who}"
            ),
        )
    assert set(refused.value.errors) == {"name", "stage", "threshold", "task_title"}
    with pytest.raises(ValidationFailed) as refused:
        save_assignment_rule(
            db,
            world.admin,
            AssignmentRuleInput(
                name="Bad",
                conditions=[
                    {"field": "salary", "op": "equals", "value": "1"},
                    {"field": "kind", "op": "equals", "value": "alien"},
                ],
            ),
        )
    assert set(refused.value.errors) == {"condition_1", "condition_2"}
    assert count(db, world, AutomationRule) == 0


def test_only_an_admin_edits_rules(db: Database, world: World) -> None:
    with pytest.raises(AccessDenied):
        save_automation_rule(
            db,
            world.manager,
            AutomationRuleInput(
                name="Mine", stage="intent", trigger="entered_stage", action="create_task", task_title="Hi {name}"
            ),
        )


def test_a_deal_idle_past_the_threshold_fires_once_per_idle_spell(db: Database, world: World) -> None:
    save_automation_rule(
        db,
        world.admin,
        AutomationRuleInput(
            name="Idle deal",
            stage="intent",
            trigger="deal_idle",
            threshold=14,
            action="create_task",
            task_title="Nudge the deal with {name}",
            assign_to="team",
        ),
    )
    customer_id = create_random_customer(db, world.rep)
    make_intent(db, world, customer_id)
    assert run(db, world, utcnow() + dt.timedelta(days=10)) == 0
    assert run(db, world, utcnow() + dt.timedelta(days=15)) == 1
    assert run(db, world, utcnow() + dt.timedelta(days=40)) == 0  # same idle spell
    with db.session(world.admin) as session:
        task = session.scalars(select(Task).where(Task.title.startswith("Nudge"))).one()
    assert task.assignee_id == world.manager.user_id  # "team": the manager of the customer's team


def test_churn_risk_above_the_threshold_reads_the_churn_scorers_latest_scores(db: Database, world: World) -> None:
    from crm_core.models.segments import Score, ScoringModel

    save_automation_rule(
        db,
        world.admin,
        AutomationRuleInput(
            name="Risky", stage="prospect", trigger="churn_risk", threshold=60, action="add_tag", tag="at-risk"
        ),
    )
    risky = create_random_customer(db, world.rep)
    safe = create_random_customer(db, world.rep)
    tenant_id = world.admin.tenant_id
    with db.system_transaction("test: a scoring run") as session:
        model = ScoringModel(tenant_id=tenant_id, scorer="churn_risk", version=1, method="logistic")
        session.add(model)
        session.flush()
        session.add_all(
            [
                Score(
                    tenant_id=tenant_id,
                    scorer="churn_risk",
                    entity="customer",
                    entity_id=risky,
                    model_id=model.id,
                    score=0.61,
                ),
                Score(
                    tenant_id=tenant_id,
                    scorer="churn_risk",
                    entity="customer",
                    entity_id=safe,
                    model_id=model.id,
                    score=0.59,
                ),
            ]
        )
    assert run(db, world) == 1
    assert run(db, world) == 0
    with db.session(world.admin) as session:
        tags = {customer.id: customer.tag_list for customer in session.scalars(select(Customer))}
    assert tags[risky] == ["at-risk"] and tags[safe] == []
