"""The customer pool (公海) on every database, with frozen time: the nightly return and its reminders, claims
within the caps and the cooldown, assignment beyond the caps, release, and the rule that a rep takes a pooled
customer only by claiming it."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select, update

from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, PoolRefused, ValidationFailed
from crm_core.models import AuditEvent, Customer, PipelineStage, Task
from crm_core.models.pool import PoolEvent
from crm_core.queries.pool import pool_history, pool_standing
from crm_core.services.customers import CustomerInput, update_customer
from crm_core.services.pool import (
    PoolRuleForm,
    assign_from_pool,
    claim_customers,
    release_to_pool,
    return_to_pool,
    save_pool_rule,
)
from tests.factories import World, add_open_deal, build_world, create_random_customer

NOW = dt.datetime(2026, 6, 15, 12, 0)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def set_clock(db: Database, customer_id: int, *, silent_days: int, owned_days: int | None = None) -> None:
    """The customer was last contacted ``silent_days`` before NOW, and owned since ``owned_days`` (default: as long)."""
    owned = owned_days if owned_days is not None else silent_days
    with db.system_transaction("test: clock") as session:
        session.execute(update(Customer).where(Customer.id == customer_id).values(
            last_contacted_at=NOW - dt.timedelta(days=silent_days), owner_since=NOW - dt.timedelta(days=owned),
            created_at=NOW - dt.timedelta(days=max(owned, silent_days) + 1)))


def owner_of(db: Database, customer_id: int) -> tuple[int | None, int | None]:
    with db.system_session("test: owner") as session:
        row = session.execute(select(Customer.owner_id, Customer.team_id).where(Customer.id == customer_id)).one()
        return row[0], row[1]


def east_rule(db: Database, world: World, **terms: object) -> int:
    values: dict[str, object] = {"team_id": world.east_team_id, "idle_days": 30, "reminder_days": 3,
                                 "daily_claim_cap": 10, "cooldown_days": 30}
    values.update(terms)
    return save_pool_rule(db, world.admin, PoolRuleForm(**values))  # type: ignore[arg-type]


def pooled_customer(db: Database, world: World, *, silent_days: int = 40) -> int:
    """A customer of the rep that the nightly run returns to the east pool."""
    customer_id = create_random_customer(db, world.rep)
    set_clock(db, customer_id, silent_days=silent_days)
    return customer_id


def test_a_silent_customer_returns_to_its_owners_team_pool_and_the_return_is_audited(
    db: Database, world: World,
) -> None:
    east_rule(db, world)
    silent = pooled_customer(db, world)
    recent = create_random_customer(db, world.rep)
    set_clock(db, recent, silent_days=10)
    just_claimed = create_random_customer(db, world.rep)  # contacted long ago, but its owner got it 5 days ago
    set_clock(db, just_claimed, silent_days=90, owned_days=5)
    other_team = create_random_customer(db, world.rep_other_team)  # west: no rule, no default
    set_clock(db, other_team, silent_days=400)

    result = return_to_pool(db, world.admin.tenant_id, now=NOW)

    assert (result.returned, result.by_reason) == (1, {"idle": 1})
    assert owner_of(db, silent) == (None, world.east_team_id)  # a rep's own customer lands in the rep's team pool
    assert owner_of(db, recent)[0] == world.rep.user_id
    assert owner_of(db, just_claimed)[0] == world.rep.user_id
    assert owner_of(db, other_team)[0] == world.rep_other_team.user_id
    with db.system_session("test") as session:
        audit = session.execute(select(AuditEvent.action, AuditEvent.changes).where(
            AuditEvent.entity == "customer", AuditEvent.entity_id == silent).order_by(AuditEvent.id.desc())).first()
    assert audit is not None and audit[0] == "update" and audit[1]["owner_id"] == [world.rep.user_id, None]
    # the rep's team mate now sees it in the pool; the previous owner's history shows why
    with db.session(world.rep_same_team) as session:
        history = pool_history(session, silent)
    assert [(row.kind, row.reason, row.previous_owner_name) for row in history] == [("returned", "idle", "Rita Rep")]
    assert return_to_pool(db, world.admin.tenant_id, now=NOW).returned == 0  # nothing twice


def test_an_open_deal_in_a_protected_stage_keeps_the_customer_and_no_deal_days_return_the_dealless(
    db: Database, world: World,
) -> None:
    with db.session(world.admin) as session:
        first_open = session.scalars(select(PipelineStage.id).where(PipelineStage.kind == "open")
                                     .order_by(PipelineStage.position)).first()
    assert first_open is not None
    east_rule(db, world, protected_stage_ids=[first_open], no_deal_days=60)
    protected = create_random_customer(db, world.rep)
    add_open_deal(db, world.rep, protected)
    set_clock(db, protected, silent_days=100)
    busy_but_dealless = create_random_customer(db, world.rep)  # contacted yesterday, owned 90 days, no deal
    set_clock(db, busy_but_dealless, silent_days=1, owned_days=90)

    result = return_to_pool(db, world.admin.tenant_id, now=NOW)

    assert result.by_reason == {"no_deal": 1}
    assert owner_of(db, protected)[0] == world.rep.user_id
    assert owner_of(db, busy_but_dealless)[0] is None


def test_the_owner_is_reminded_once_before_the_return_in_their_language(db: Database, world: World) -> None:
    east_rule(db, world)
    soon = pooled_customer(db, world, silent_days=28)  # returns in 2 days: inside the 3-day reminder window
    later = pooled_customer(db, world, silent_days=20)

    first = return_to_pool(db, world.admin.tenant_id, now=NOW)
    again = return_to_pool(db, world.admin.tenant_id, now=NOW + dt.timedelta(hours=1))

    assert (first.returned, first.reminded, again.reminded) == (0, 1, 0)
    with db.session(world.rep) as session:
        tasks = session.execute(select(Task.title, Task.assignee_id, Task.customer_id).where(
            Task.customer_id.in_([soon, later]), Task.title.like("%pool%"))).all()
    assert len(tasks) == 1 and tasks[0].assignee_id == world.rep.user_id and tasks[0].customer_id == soon
    assert "2026-06-18" in tasks[0].title


def test_claims_keep_to_the_daily_cap_the_held_cap_and_the_cooldown(db: Database, world: World) -> None:
    east_rule(db, world, daily_claim_cap=2, held_cap=50)
    pooled = [pooled_customer(db, world) for _ in range(4)]
    return_to_pool(db, world.admin.tenant_id, now=NOW)
    mate = world.rep_same_team

    with pytest.raises(PoolRefused) as too_many:
        claim_customers(db, mate, pooled[:3], now=NOW)
    assert too_many.value.message_key == "pool.error.daily_cap" and too_many.value.params["left"] == 2
    assert all(owner_of(db, customer_id)[0] is None for customer_id in pooled)  # all or nothing

    assert claim_customers(db, mate, pooled[:2], now=NOW) == 2
    assert owner_of(db, pooled[0])[0] == mate.user_id
    with pytest.raises(PoolRefused) as capped:
        claim_customers(db, mate, [pooled[2]], now=NOW + dt.timedelta(hours=1))
    assert capped.value.message_key == "pool.error.daily_cap"
    assert claim_customers(db, mate, [pooled[2]], now=NOW + dt.timedelta(days=1)) == 1  # a new day

    with pytest.raises(PoolRefused) as cooling:  # the previous owner waits out the cooldown
        claim_customers(db, world.rep, [pooled[3]], now=NOW + dt.timedelta(days=1))
    assert cooling.value.message_key == "pool.error.cooldown" and cooling.value.params["until"] == "2026-07-15"
    assert claim_customers(db, world.rep, [pooled[3]], now=NOW + dt.timedelta(days=31)) == 1

    with db.session(mate) as session:
        standing = pool_standing(session, mate, now=NOW + dt.timedelta(days=1))
    assert (standing.claimed_today, standing.terms is not None and standing.terms.daily_claim_cap) == (1, 2)


def test_the_held_cap_counts_every_customer_the_rep_owns(db: Database, world: World) -> None:
    east_rule(db, world, held_cap=3)
    pooled = pooled_customer(db, world)
    return_to_pool(db, world.admin.tenant_id, now=NOW)
    for _ in range(3):
        create_random_customer(db, world.rep_same_team)
    with pytest.raises(PoolRefused) as held:
        claim_customers(db, world.rep_same_team, [pooled], now=NOW)
    assert (held.value.message_key, held.value.params["left"]) == ("pool.error.held_cap", 0)
    # a manager assigns beyond the caps
    assert assign_from_pool(db, world.manager, [pooled], world.rep_same_team.user_id, now=NOW) == 1
    assert owner_of(db, pooled)[0] == world.rep_same_team.user_id
    with db.system_session("test") as session:
        kinds = session.scalars(select(PoolEvent.kind).where(PoolEvent.customer_id == pooled)
                                .order_by(PoolEvent.id)).all()
    assert kinds == ["returned", "assigned"]


def test_a_rep_takes_a_pooled_customer_only_by_claiming_it(db: Database, world: World) -> None:
    east_rule(db, world, daily_claim_cap=0)
    pooled = pooled_customer(db, world)
    return_to_pool(db, world.admin.tenant_id, now=NOW)
    with db.session(world.rep_same_team) as session:
        customer = session.get(Customer, pooled)
        assert customer is not None
        name, version = customer.name, customer.version
    with pytest.raises(PoolRefused) as direct:  # the edit form's owner field is no way round the caps
        update_customer(db, world.rep_same_team, pooled, CustomerInput(name=name, owner_id=world.rep_same_team.user_id),
                        expected_version=version)
    assert direct.value.message_key == "pool.error.claim_required"
    with pytest.raises(PoolRefused):
        claim_customers(db, world.rep_same_team, [pooled], now=NOW)  # a cap of 0: nobody claims


def test_a_rep_of_another_team_cannot_claim_what_they_cannot_see(db: Database, world: World) -> None:
    east_rule(db, world)
    pooled = pooled_customer(db, world)
    return_to_pool(db, world.admin.tenant_id, now=NOW)
    with pytest.raises(NotFound):
        claim_customers(db, world.rep_other_team, [pooled], now=NOW)
    with pytest.raises(AccessDenied):
        claim_customers(db, world.analyst, [pooled], now=NOW)


def test_an_owner_gives_a_customer_back_and_the_cooldown_starts(db: Database, world: World) -> None:
    east_rule(db, world)
    customer_id = create_random_customer(db, world.rep)
    with db.session(world.rep) as session:
        version = session.scalar(select(Customer.version).where(Customer.id == customer_id))
    assert version is not None
    with pytest.raises(NotFound):  # not theirs: a team mate does not even see it
        release_to_pool(db, world.rep_same_team, customer_id, expected_version=version)
    release_to_pool(db, world.rep, customer_id, expected_version=version, note="Not our segment", now=NOW)
    assert owner_of(db, customer_id) == (None, world.east_team_id)
    with pytest.raises(PoolRefused) as cooling:
        claim_customers(db, world.rep, [customer_id], now=NOW + dt.timedelta(days=2))
    assert cooling.value.message_key == "pool.error.cooldown"
    assert claim_customers(db, world.rep_same_team, [customer_id], now=NOW + dt.timedelta(days=2)) == 1


def test_pool_rules_are_checked_and_kept_to_one_per_team(db: Database, world: World) -> None:
    with pytest.raises(ValidationFailed) as bad:
        save_pool_rule(db, world.admin, PoolRuleForm(team_id=world.east_team_id, idle_days=10, reminder_days=10,
                                                     daily_claim_cap=-1))
    assert set(bad.value.errors) == {"reminder_days", "daily_claim_cap"}
    east_rule(db, world)
    with pytest.raises(ValidationFailed) as twice:
        east_rule(db, world)
    assert twice.value.errors["team_id"][0] == "pool.rule.duplicate_team"
    with pytest.raises(AccessDenied):
        save_pool_rule(db, world.manager, PoolRuleForm(team_id=None))
    with db.system_session("test") as session:
        assert session.scalar(select(func.count()).select_from(PoolEvent)) == 0
