"""Customer tiers tied to orders and SLA policies per tier, on every database: the set-based refresh
agrees with the pure rule, a case keeps the tier it was opened under (with the reason) and follows that
tier's policy, a pin wins until its end; and a policy's reassignment on breach, in frozen time."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.errors import AccessDenied, ValidationFailed
from crm_core.models import Case, Order, utcnow
from crm_core.models.notifications import Notification
from crm_core.models.service import CaseEvent, CaseSla
from crm_core.models.service_tiers import CustomerTierStanding
from crm_core.queries.customer_tiers import list_tiers
from crm_core.queries.reports import shift_months
from crm_core.rules.customer_tiers import qualifying_tier
from crm_core.services import customer_tiers as tiers
from crm_core.services import sla_settings
from crm_core.services.cases import CaseInput, change_case_priority, create_case
from crm_core.services.orders import OrderInput, OrderLineInput, create_order
from crm_core.services.products import ProductInput, create_product
from crm_core.services.sla import explain_case_sla, run_sla_sweep
from tests.factories import World, build_world, create_random_customer, unique

ALWAYS = {str(day): [["00:00", "23:59"]] for day in range(1, 8)}


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def define_tiers(db: Database, world: World) -> dict[str, int]:
    return {
        "silver": tiers.save_tier(db, world.admin, tiers.TierInput(
            code="silver", name_en="Silver", name_zh="银牌", rank=1, min_order_total="10,000", months=12)),
        "gold": tiers.save_tier(db, world.admin, tiers.TierInput(
            code="gold", name_en="Gold", name_zh="金牌", rank=2, min_order_total=Decimal("100000"), months=12)),
        # recent spending only: half a million within six months
        "platinum": tiers.save_tier(db, world.admin, tiers.TierInput(
            code="platinum", name_en="Platinum", name_zh="白金", rank=3, min_order_total="500000", months=6)),
    }


def book(db: Database, world: World, customer_id: int, amount: str, months_ago: int, *,
         status: str = "confirmed") -> None:
    product = create_product(db, world.manager, ProductInput(unique("P-"), "Licence", amount))
    when = shift_months(utcnow(), -months_ago) + dt.timedelta(days=1 if months_ago else -1)
    create_order(db, world.admin, OrderInput(customer_id, [OrderLineInput(product, 1)], ordered_at=when,
                                             status=status))


def test_the_refresh_puts_each_customer_in_the_best_tier_its_orders_reach(db: Database, world: World) -> None:
    ids = define_tiers(db, world)
    customers = {name: create_random_customer(db, world.admin) for name in
                 ("gold", "gold_old_money", "below", "cancelled", "silver", "platinum", "too_old", "no_orders")}
    book(db, world, customers["gold"], "100000", 2)
    book(db, world, customers["gold"], "23456", 11)  # ¥123,456 in the last 12 months
    book(db, world, customers["gold_old_money"], "600000", 8)  # a lot, but not within platinum's 6 months
    book(db, world, customers["below"], "9999.99", 1)
    book(db, world, customers["cancelled"], "200000", 1, status="cancelled")
    book(db, world, customers["cancelled"], "200000", 1, status="draft")
    book(db, world, customers["silver"], "15000", 3, status="fulfilled")
    book(db, world, customers["platinum"], "500000", 5)
    book(db, world, customers["too_old"], "1000000", 13)
    other = create_random_customer(db, world.other_admin)
    tiers.save_tier(db, world.other_admin, tiers.TierInput(code="gold", name_en="Gold", name_zh="金牌", rank=1,
                                                           min_order_total="1", months=12))
    product = create_product(db, world.other_admin, ProductInput(unique("P-"), "Other", "5"))
    create_order(db, world.other_admin, OrderInput(other, [OrderLineInput(product, 1)]))
    tiers.run_tier_refresh(db, world.other_admin.tenant_id)

    result = tiers.run_tier_refresh(db, world.admin.tenant_id)

    assert result.customers == {ids["silver"]: 1, ids["gold"]: 2, ids["platinum"]: 1}
    with db.system_session("test: standings") as session:
        stood = {customer_id: (tier_id, total) for customer_id, tier_id, total in session.execute(
            select(CustomerTierStanding.customer_id, CustomerTierStanding.tier_id, CustomerTierStanding.order_total))}
        # the pure rule over totals summed by hand gives the same tiers
        rules = tiers.tier_rules(session, world.admin.tenant_id)
        now = utcnow()
        for name, customer_id in customers.items():
            totals = {}
            for months in (6, 12):
                amounts = session.scalars(select(Order.total_amount).where(
                    Order.customer_id == customer_id, Order.status.in_(("confirmed", "fulfilled")),
                    Order.ordered_at >= shift_months(now, -months), Order.ordered_at <= now)).all()
                totals[months] = sum(amounts, Decimal("0"))
            expected = qualifying_tier(rules, totals)
            assert stood.get(customer_id, (None,))[0] == (expected.tier_id if expected else None), name
    assert stood[customers["gold"]] == (ids["gold"], Decimal("123456.00"))
    assert stood[customers["platinum"]] == (ids["platinum"], Decimal("500000.00"))
    assert other in stood  # the other tenant's refresh is its own: untouched by this one
    with db.session(world.admin) as session:
        listed = {row.code: (row.by_orders, row.pinned) for row in list_tiers(session)}
    assert listed == {"platinum": (1, 0), "gold": (2, 0), "silver": (1, 0)}

    # half a year later: one customer bought; the others' windows lost orders; only the changes are written
    book(db, world, customers["below"], "100", 0)
    later = now + dt.timedelta(days=190)
    again = tiers.run_tier_refresh(db, world.admin.tenant_id, now=later)
    assert again.customers == {ids["silver"]: 2, ids["gold"]: 2}
    with db.system_session("test: standings again") as session:
        written = {customer_id: (tier_id, total, at) for customer_id, tier_id, total, at in session.execute(
            select(CustomerTierStanding.customer_id, CustomerTierStanding.tier_id, CustomerTierStanding.order_total,
                   CustomerTierStanding.computed_at).where(CustomerTierStanding.tenant_id == world.admin.tenant_id))}
    assert written[customers["below"]][:2] == (ids["silver"], Decimal("10099.99"))
    assert written[customers["gold"]][:2] == (ids["gold"], Decimal("100000.00"))  # the 11-month order aged out
    assert written[customers["platinum"]][:2] == (ids["gold"], Decimal("500000.00"))  # no longer within 6 months
    assert customers["gold_old_money"] not in written
    assert all(abs(written[customers[name]][2] - later) < dt.timedelta(seconds=1)
               for name in ("below", "gold", "platinum"))
    assert written[customers["silver"]][2] < later - dt.timedelta(days=1)  # unchanged: its row stays as written


def policies(db: Database, world: World, gold: int | None = None, *, reassign: bool = False) -> int:
    calendar_id = sla_settings.save_calendar(db, world.admin, name="Support", time_zone="UTC", hours=ALWAYS)
    for priority, minutes in (("urgent", 60), ("high", 240), ("normal", 480)):
        sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
            priority=priority, calendar_id=calendar_id, first_response_minutes=minutes, next_response_minutes=minutes,
            resolution_minutes=minutes * 4, reassign_on_breach=reassign))
    if gold is not None:  # gold's normal cases are answered within half an hour
        sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
            priority="normal", calendar_id=calendar_id, first_response_minutes=30, next_response_minutes=30,
            resolution_minutes=240, tier_id=gold))
    return calendar_id


def clocks(db: Database, world: World, case_id: int) -> tuple[dt.datetime, dt.datetime]:
    with db.system_session("test: clocks") as session:
        case = session.get(Case, case_id)
        state = session.scalar(select(CaseSla).where(CaseSla.case_id == case_id))
        assert case is not None and state is not None and state.first_response_due_at is not None
        return case.opened_at, state.first_response_due_at


def test_a_gold_customers_case_follows_the_gold_policy_and_says_why(db: Database, world: World) -> None:
    ids = define_tiers(db, world)
    calendar_id = policies(db, world, ids["gold"])
    customer_id = create_random_customer(db, world.rep)
    book(db, world, customer_id, "123456", 1)
    tiers.run_tier_refresh(db, world.admin.tenant_id)

    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Gold", priority="normal"))

    opened, due = clocks(db, world, case_id)
    assert dt.timedelta(minutes=29) <= due - opened <= dt.timedelta(minutes=31)  # gold's 30, not the default 480
    with db.session(world.rep) as session:
        explained = explain_case_sla(session, case_id)
    assert explained.tier is not None and explained.tier.tier_id == ids["gold"]
    assert (explained.tier.basis, explained.tier.order_total, explained.tier.threshold, explained.tier.months) == (
        "orders", Decimal("123456.00"), Decimal("100000.00"), 12)
    assert explained.policy_tier_id == ids["gold"]

    # gold has no urgent policy: the default urgent one applies, and the panel says so
    change_case_priority(db, world.rep, case_id, "urgent", expected_version=1)
    opened, due = clocks(db, world, case_id)
    assert dt.timedelta(minutes=59) <= due - opened <= dt.timedelta(minutes=61)
    with db.session(world.rep) as session:
        explained = explain_case_sla(session, case_id)
    assert explained.tier is not None and explained.tier.tier_id == ids["gold"] and explained.policy_tier_id is None

    # the admin changes gold's urgent target: the recompute job follows the tier the case opened under,
    # even after the customer has been pinned to another tier since
    tiers.pin_customer_tier(db, world.admin, customer_id, ids["silver"])
    sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
        priority="urgent", calendar_id=calendar_id, first_response_minutes=15, next_response_minutes=15,
        resolution_minutes=60, tier_id=ids["gold"]))
    assert sla_settings.recompute_open_cases(db, None, tenant_id=world.admin.tenant_id) == 1
    opened, due = clocks(db, world, case_id)
    assert dt.timedelta(minutes=14) <= due - opened <= dt.timedelta(minutes=16)


def test_a_pin_wins_over_the_orders_until_its_end(db: Database, world: World) -> None:
    ids = define_tiers(db, world)
    policies(db, world, ids["gold"])
    customer_id = create_random_customer(db, world.rep)
    until = utcnow().date() + dt.timedelta(days=30)
    tiers.pin_customer_tier(db, world.admin, customer_id, ids["gold"], until)

    pinned_case = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Pinned"))

    with db.session(world.rep) as session:
        explained = explain_case_sla(session, pinned_case)
    assert explained.tier is not None and (explained.tier.tier_id, explained.tier.basis,
                                           explained.tier.pinned_until) == (ids["gold"], "pinned", until)
    opened, due = clocks(db, world, pinned_case)
    assert due - opened <= dt.timedelta(minutes=31)
    with pytest.raises(ValidationFailed) as refused:
        tiers.pin_customer_tier(db, world.admin, customer_id, ids["gold"], utcnow().date() - dt.timedelta(days=1))
    assert refused.value.errors["until"][0] == "tiers.until_past"
    with pytest.raises(AccessDenied):
        tiers.pin_customer_tier(db, world.manager, customer_id, ids["platinum"])
    with pytest.raises(AccessDenied):
        tiers.save_tier(db, world.rep, tiers.TierInput(code="iron", name_en="Iron", name_zh="铁", rank=1,
                                                       min_order_total="1"))
    with pytest.raises(ValidationFailed) as taken:
        tiers.save_tier(db, world.admin, tiers.TierInput(code="gold", name_en="Gold 2", name_zh="金牌二", rank=5,
                                                         min_order_total="1"))
    assert taken.value.errors["code"][0] == "tiers.code_taken"

    tiers.pin_customer_tier(db, world.admin, customer_id, None)  # unpinned: no orders, so the default
    plain_case = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Plain"))
    with db.session(world.rep) as session:
        explained = explain_case_sla(session, plain_case)
    assert explained.tier is not None and (explained.tier.tier_id, explained.tier.basis) == (None, "default")
    opened, due = clocks(db, world, plain_case)
    assert due - opened >= dt.timedelta(minutes=479)
    with db.session(world.rep) as session:  # the first case keeps the tier it was opened under
        assert explain_case_sla(session, pinned_case).tier.tier_id == ids["gold"]  # type: ignore[union-attr]


def test_a_breach_hands_the_case_to_the_queues_next_agent_once(db: Database, world: World) -> None:
    policies(db, world, reassign=True)
    sla_settings.save_queue(db, world.admin, team_id=world.east_team_id, method="round_robin", calendar_id=None)
    customer_id = create_random_customer(db, world.manager)
    case_id = create_case(db, world.manager, CaseInput(customer_id=customer_id, subject="Down", priority="urgent",
                                                       team_id=world.east_team_id))
    with db.system_session("test: case") as session:
        case = session.get(Case, case_id)
        assert case is not None
        first_agent, version = case.assignee_id, case.version
        state = session.scalar(select(CaseSla).where(CaseSla.case_id == case_id))
        assert state is not None and state.first_response_due_at is not None and state.resolution_due_at is not None
        due, resolution_due = state.first_response_due_at, state.resolution_due_at
    east = {world.rep.user_id, world.rep_same_team.user_id, world.manager.user_id}
    assert first_agent in east

    warned = run_sla_sweep(db, world.admin.tenant_id, now=due - dt.timedelta(seconds=1))
    assert warned.warnings == 1 and warned.reassigned == 0  # a warning hands nothing on
    breached = run_sla_sweep(db, world.admin.tenant_id, now=due + dt.timedelta(seconds=1))
    assert (breached.breaches, breached.reassigned) == (1, 1)

    with db.system_session("test: handed on") as session:
        case = session.get(Case, case_id)
        assert case is not None
        new_agent = case.assignee_id
        events = session.execute(select(CaseEvent.from_value, CaseEvent.to_value, CaseEvent.body, CaseEvent.actor_id)
                                 .where(CaseEvent.case_id == case_id, CaseEvent.kind == "assignee")
                                 .order_by(CaseEvent.id)).all()
        told = session.execute(select(Notification.user_id).where(
            Notification.kind == "sla_reassigned", Notification.entity_id == case_id)).scalars().all()
        assert case.version == version + 1  # a form opened before the hand-over is stale
    assert new_agent in east and new_agent != first_agent
    assert tuple(events[-1]) == (str(first_agent), str(new_agent), "sla_breach:first_response", None)
    assert told == [new_agent]

    # the resolution clock breaches too: the case is not handed on a second time
    later = run_sla_sweep(db, world.admin.tenant_id, now=resolution_due + dt.timedelta(seconds=1))
    assert (later.breaches, later.reassigned) == (1, 0)
    with db.system_session("test: stays") as session:
        assert session.get(Case, case_id).assignee_id == new_agent  # type: ignore[union-attr]


def test_a_policy_without_the_option_leaves_the_breached_case_where_it_is(db: Database, world: World) -> None:
    policies(db, world, reassign=False)
    sla_settings.save_queue(db, world.admin, team_id=world.east_team_id, method="least_busy", calendar_id=None)
    customer_id = create_random_customer(db, world.manager)
    case_id = create_case(db, world.manager, CaseInput(customer_id=customer_id, subject="Stay", priority="urgent",
                                                       team_id=world.east_team_id))
    _, due = clocks(db, world, case_id)
    with db.system_session("test: before") as session:
        before = session.get(Case, case_id).assignee_id  # type: ignore[union-attr]
    result = run_sla_sweep(db, world.admin.tenant_id, now=due + dt.timedelta(seconds=1))
    assert (result.breaches, result.reassigned) == (1, 0)
    with db.system_session("test: after") as session:
        assert session.get(Case, case_id).assignee_id == before  # type: ignore[union-attr]


def test_the_refresh_runs_as_a_nightly_job_kind(db: Database, world: World) -> None:
    from crm_core.jobs.context import JobContext, kinds

    kind = kinds()["customer_tier_refresh"]
    assert kind.schedulable and kind.default_schedule == ("40", "1", "*")
    ids = define_tiers(db, world)
    customer_id = create_random_customer(db, world.admin)
    book(db, world, customer_id, "20000", 1)
    result = kind.run(JobContext(db=db, job_id=0, tenant_id=world.admin.tenant_id, actor=None, params={}))
    assert result["customers"] == {str(ids["silver"]): 1}


# --- a changed order moves its customer's tier within seconds, not at night (decision 0052) --------

def standing(db: Database, customer_id: int) -> tuple[int, Decimal, dt.datetime] | None:
    with db.system_session("test: standing") as session:
        row = session.execute(select(CustomerTierStanding.tier_id, CustomerTierStanding.order_total,
                                     CustomerTierStanding.computed_at)
                              .where(CustomerTierStanding.customer_id == customer_id)).first()
        return (row[0], row[1], row[2]) if row is not None else None


def test_the_job_after_an_order_refreshes_that_customer_alone(db: Database, world: World,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from huey import MemoryHuey

    from crm_core.jobs import queue as job_queue
    from crm_core.jobs.runner import execute_job
    from crm_core.models.jobs import Job
    from crm_core.models.service_tiers import CustomerTier

    queue = MemoryHuey("kestrel-test-tiers")
    monkeypatch.setattr(job_queue, "_queue", queue)
    ids = define_tiers(db, world)
    buyer, bystander = create_random_customer(db, world.admin), create_random_customer(db, world.admin)
    book(db, world, buyer, "20000", 1)
    book(db, world, bystander, "20000", 1)
    tiers.run_tier_refresh(db, world.admin.tenant_id)
    with db.system_session("test: refreshed") as session:
        refreshed_at = session.scalar(select(CustomerTier.refreshed_at).where(CustomerTier.id == ids["gold"]))
    book(db, world, buyer, "90000", 0)  # now gold
    book(db, world, bystander, "90000", 0)  # gold too, but nobody asked for it: it waits for the night

    tiers._request_prompt_refresh(db, world.admin.tenant_id, frozenset({buyer}))  # what the order's commit calls
    tiers._request_prompt_refresh(db, world.other_admin.tenant_id, frozenset({1}))  # no tiers there: no job
    with db.system_session("test: jobs") as session:
        jobs = session.execute(select(Job.id, Job.tenant_id, Job.params).where(
            Job.kind == "customer_tier_refresh", Job.tenant_id.in_(
                (world.admin.tenant_id, world.other_admin.tenant_id)))).all()
    assert [(tenant_id, params) for _, tenant_id, params in jobs] == [
        (world.admin.tenant_id, {"customer_ids": [buyer]})]
    assert execute_job(db, jobs[0][0], queue=queue) == "succeeded"

    now_gold = standing(db, buyer)
    assert now_gold is not None and now_gold[:2] == (ids["gold"], Decimal("110000.00"))
    waiting = standing(db, bystander)
    assert waiting is not None and waiting[:2] == (ids["silver"], Decimal("20000.00"))
    with db.system_session("test: tier now") as session:
        assert session.scalar(select(CustomerTier.refreshed_at).where(CustomerTier.id == ids["gold"])) == refreshed_at
        choice = tiers.customer_tier(session, world.admin.tenant_id, buyer, today=utcnow().date())
    assert (choice.tier_id, choice.as_of) == (ids["gold"], now_gold[2])  # as of its own refresh, not last night's
    # a refresh of some customers counts those customers only
    assert tiers.run_tier_refresh(db, world.admin.tenant_id, customer_ids=[buyer, bystander]).customers == {
        ids["gold"]: 2}


def test_every_order_change_asks_for_its_customers_tier_after_the_commit_and_a_rollback_asks_nothing(
        sqlite_db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    from crm_core.services.orders import archive_order, update_order

    monkeypatch.delenv("CRM_JOBS_INLINE", raising=False)
    asked: list[tuple[int, frozenset[int]]] = []
    monkeypatch.setattr(tiers._PROMPT, "_send_ids", lambda _db, tenant_id, ids: asked.append((tenant_id, ids)))
    world = build_world(sqlite_db)
    customer_id = create_random_customer(sqlite_db, world.admin)
    product = create_product(sqlite_db, world.manager, ProductInput(unique("P-"), "Licence", "100"))
    order_id = create_order(sqlite_db, world.admin, OrderInput(customer_id, [OrderLineInput(product, 1)]))
    version = update_order(sqlite_db, world.admin, order_id, OrderInput(customer_id, [OrderLineInput(product, 5)]),
                           expected_version=1)
    archive_order(sqlite_db, world.admin, order_id, expected_version=version)
    with pytest.raises(ValidationFailed):  # refused: rolled back, nothing asked
        create_order(sqlite_db, world.admin, OrderInput(customer_id, []))
    assert asked == [(world.admin.tenant_id, frozenset({customer_id}))] * 3
