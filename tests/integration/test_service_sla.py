"""Cases with SLA clocks on every database: the flow and its history, queue assignment, access,
and the sweep's warning → escalation → breach in frozen time (``now`` passed in)."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import func, select

from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, ValidationFailed
from crm_core.models import Case, utcnow
from crm_core.models.notifications import Notification
from crm_core.models.service import CaseEvent, CaseSla, SlaEscalation
from crm_core.queries.cases import CaseFilters, case_board, list_cases
from crm_core.rules.sla import BusinessCalendar, add_business_time, business_time_between
from crm_core.services import sla_settings
from crm_core.services.cases import (
    CaseInput,
    add_case_reply,
    change_case_priority,
    create_case,
    transition_case,
)
from crm_core.services.sla import explain_case_sla, run_sla_sweep
from tests.factories import World, build_world, create_random_customer

ALWAYS = {str(day): [["00:00", "23:59"]] for day in range(1, 8)}  # the clock runs on wall time (but 1 min a day)
ALWAYS_CALENDAR = BusinessCalendar.from_settings("Support", "UTC", ALWAYS)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def policies(db: Database, world: World, *, hours: dict[str, list[list[str]]] | None = None) -> int:
    calendar_id = sla_settings.save_calendar(db, world.admin, name="Support", time_zone="UTC",
                                             hours=hours or ALWAYS)
    for priority, minutes in (("urgent", 60), ("high", 240), ("normal", 480), ("low", 1440)):
        sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
            priority=priority, calendar_id=calendar_id, first_response_minutes=minutes,
            next_response_minutes=minutes, resolution_minutes=minutes * 4, warn_percent=75,
            manager_after_minutes=30))
    return calendar_id


def state(db: Database, world: World, case_id: int) -> CaseSla:
    with db.session(world.admin) as session:
        row = session.scalar(select(CaseSla).where(CaseSla.case_id == case_id))
        assert row is not None
        session.expunge(row)
        return row


def test_a_case_moves_through_the_flow_and_keeps_its_history(db: Database, world: World) -> None:
    policies(db, world)
    customer_id = create_random_customer(db, world.rep)
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Printer", status="new",
                                                   channel="phone", category="Hardware"))
    version = transition_case(db, world.rep, case_id, "pending", expected_version=1)
    version = transition_case(db, world.rep, case_id, "resolved", expected_version=version)
    with pytest.raises(ValidationFailed) as refused:
        transition_case(db, world.rep, case_id, "pending", expected_version=version)
    assert refused.value.errors["status"][0] == "cases.flow.not_allowed"
    version = transition_case(db, world.rep, case_id, "closed", expected_version=version)
    with pytest.raises(ValidationFailed) as final:
        transition_case(db, world.rep, case_id, "open", expected_version=version)
    assert final.value.errors["status"][0] == "cases.flow.closed_is_final"
    with db.session(world.rep) as session:
        moves = session.execute(select(CaseEvent.from_value, CaseEvent.to_value).where(
            CaseEvent.case_id == case_id, CaseEvent.kind == "status").order_by(CaseEvent.id)).all()
        case = session.get(Case, case_id)
        assert case is not None and (case.channel, case.category) == ("phone", "Hardware")
    assert [tuple(move) for move in moves] == [(None, "new"), ("new", "pending"), ("pending", "resolved"),
                                               ("resolved", "closed")]


def test_a_bad_channel_or_status_is_refused_with_the_input_named(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    with pytest.raises(ValidationFailed) as refused:
        create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="x", channel="fax", status="closed"))
    assert set(refused.value.errors) == {"channel", "status"}


def test_the_queue_assigns_round_robin_and_least_open(db: Database, world: World) -> None:
    sla_settings.save_queue(db, world.admin, team_id=world.east_team_id, method="round_robin", calendar_id=None)
    customer_id = create_random_customer(db, world.manager)

    def open_one() -> int | None:
        case_id = create_case(db, world.manager, CaseInput(customer_id=customer_id, subject="Queue",
                                                           team_id=world.east_team_id))
        with db.session(world.admin) as session:
            return session.get(Case, case_id).assignee_id  # type: ignore[union-attr]

    first, second = sorted([world.rep.user_id, world.rep_same_team.user_id])  # the east team's reps
    assert [open_one() for _ in range(3)] == [first, second, first]  # round-robin in id order
    sla_settings.save_queue(db, world.admin, team_id=world.east_team_id, method="least_busy", calendar_id=None)
    # open cases: first 2, second 1 → second; then 2 each: the tie goes on after the last assigned
    assert [open_one() for _ in range(3)] == [second, first, second]


def test_a_rep_sees_cases_of_their_customers_queue_or_assignment_and_no_other_tenants(
        db: Database, world: World) -> None:
    theirs = create_random_customer(db, world.rep_other_team)
    in_my_queue = create_case(db, world.admin, CaseInput(customer_id=theirs, subject="Queue east",
                                                          team_id=world.east_team_id))
    assigned_to_me = create_case(db, world.admin, CaseInput(customer_id=theirs, subject="Mine",
                                                             assignee_id=world.rep.user_id))
    not_mine = create_case(db, world.admin, CaseInput(customer_id=theirs, subject="West only",
                                                       team_id=world.west_team_id))
    other_tenant = create_case(db, world.other_admin, CaseInput(
        customer_id=create_random_customer(db, world.other_admin), subject="Beta"))
    with db.session(world.rep) as session:
        seen = {row.id for row in list_cases(session, per_page=500).items}
    assert {in_my_queue, assigned_to_me} <= seen and not {not_mine, other_tenant} & seen
    add_case_reply(db, world.rep, in_my_queue, "On it.")
    with pytest.raises(NotFound):
        add_case_reply(db, world.rep, not_mine, "Not mine.")
    with pytest.raises(NotFound):
        explain_case_sla_for(db, world.admin, other_tenant)
    with pytest.raises(AccessDenied):
        transition_case(db, world.analyst, assigned_to_me, "pending", expected_version=1)


def explain_case_sla_for(db: Database, actor: object, case_id: int) -> object:
    with db.session(actor) as session:  # type: ignore[arg-type]
        return explain_case_sla(session, case_id)


def test_warning_then_escalation_then_breach_in_frozen_time(db: Database, world: World) -> None:
    policies(db, world)
    customer_id = create_random_customer(db, world.rep)
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Down", priority="urgent",
                                                   assignee_id=world.rep.user_id, team_id=world.east_team_id))
    opened = state(db, world, case_id)
    assert opened.first_response_due_at is not None and opened.first_response_warn_at is not None
    due, warn = opened.first_response_due_at, opened.first_response_warn_at
    assert business_time_between(warn, due, ALWAYS_CALENDAR) == dt.timedelta(minutes=15)  # 75 % of an hour

    before = run_sla_sweep(db, world.admin.tenant_id, now=warn - dt.timedelta(seconds=1))
    assert (before.warnings, before.breaches) == (0, 0)
    warned = run_sla_sweep(db, world.admin.tenant_id, now=warn + dt.timedelta(seconds=1))
    assert (warned.warnings, warned.breaches, warned.notified) == (1, 0, 1)  # the count, on every driver
    again = run_sla_sweep(db, world.admin.tenant_id, now=warn + dt.timedelta(seconds=2))
    assert (again.warnings, again.breaches, again.notified) == (0, 0, 0)  # idempotent
    from prometheus_client import REGISTRY

    def counted() -> float:
        return REGISTRY.get_sample_value("kestrel_sla_escalations_total", {"level": "breach"}) or 0.0

    breaches_before = counted()
    breached = run_sla_sweep(db, world.admin.tenant_id, now=due + dt.timedelta(seconds=1))
    assert (breached.warnings, breached.breaches, breached.manager_escalations) == (0, 1, 0)
    assert counted() == breaches_before + 1  # what the KestrelSlaBreaches alert watches
    late = run_sla_sweep(db, world.admin.tenant_id, now=due + dt.timedelta(minutes=31))
    assert late.manager_escalations == 1
    with db.session(world.manager) as session:
        levels = session.execute(select(SlaEscalation.metric, SlaEscalation.level, SlaEscalation.recipient_user_id)
                                 .where(SlaEscalation.case_id == case_id)
                                 .order_by(SlaEscalation.metric, SlaEscalation.level)).all()
    first = [tuple(row) for row in levels if row[0] == "first_response"]
    assert first == [("first_response", 1, world.rep.user_id), ("first_response", 2, world.manager.user_id),
                     ("first_response", 3, None)]
    final = state(db, world, case_id)
    assert final.escalation_level == 3 and final.first_response_breached_at is not None
    with db.system_session("test: notifications") as session:
        told = session.execute(select(Notification.user_id, Notification.kind).where(
            Notification.entity == "case", Notification.entity_id == case_id,
            Notification.params["metric"].as_string() == "first_response")
            .order_by(Notification.id)).all()
    assert [tuple(row) for row in told] == [(world.rep.user_id, "sla_warning"), (world.manager.user_id, "sla_breach"),
                                            (world.manager.user_id, "sla_escalated")]
    with db.session(world.rep_other_team) as session:
        assert session.scalars(select(SlaEscalation).where(SlaEscalation.case_id == case_id)).all() == []


def test_a_reply_meets_the_first_response_and_a_pause_holds_resolution(db: Database, world: World) -> None:
    policies(db, world)
    customer_id = create_random_customer(db, world.rep)
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Slow", priority="high"))
    add_case_reply(db, world.rep, case_id, "Looking into it.")
    replied = state(db, world, case_id)
    assert replied.first_response_met_at is not None and replied.first_response_due_at is None
    with db.session(world.rep) as session:
        replied_version = session.get(Case, case_id).version  # type: ignore[union-attr]
    version = transition_case(db, world.rep, case_id, "pending", expected_version=replied_version)
    paused = state(db, world, case_id)
    assert paused.resolution_due_at is None and paused.paused_since is not None
    run = run_sla_sweep(db, world.admin.tenant_id, now=utcnow() + dt.timedelta(days=30))
    assert run.breaches == 0  # a paused clock never breaches
    transition_case(db, world.rep, case_id, "open", expected_version=version)
    running = state(db, world, case_id)
    assert running.resolution_due_at is not None and running.next_response_due_at is not None


def test_a_priority_change_recomputes_from_the_history(db: Database, world: World) -> None:
    policies(db, world)
    customer_id = create_random_customer(db, world.rep)
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Escalate", priority="low"))
    low = state(db, world, case_id)
    change_case_priority(db, world.rep, case_id, "urgent", expected_version=1)
    urgent = state(db, world, case_id)
    with db.session(world.rep) as session:
        opened_at = session.get(Case, case_id).opened_at  # type: ignore[union-attr]
    assert low.resolution_due_at is not None and urgent.resolution_due_at is not None
    expected = add_business_time(opened_at, dt.timedelta(minutes=240), ALWAYS_CALENDAR)
    assert abs(urgent.resolution_due_at - expected) <= dt.timedelta(seconds=1)  # MariaDB keeps whole seconds
    assert urgent.resolution_due_at < low.resolution_due_at
    with db.session(world.rep) as session:
        explanation = explain_case_sla(session, case_id)
    assert explanation.calendar_name == "Support" and explanation.priority == "urgent"
    assert [clock.metric for clock in explanation.clocks] == ["first_response", "next_response", "resolution"]


def test_the_queue_lists_by_sla_due(db: Database, world: World) -> None:
    policies(db, world)
    customer_id = create_random_customer(db, world.rep)
    low = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Low", priority="low"))
    urgent = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Urgent", priority="urgent"))
    with db.session(world.rep) as session:
        page = list_cases(session, filters=CaseFilters(), sort="sla_due", descending=False)
    ids = [row.id for row in page.items]
    assert ids.index(urgent) < ids.index(low)
    assert page.items[ids.index(urgent)].sla_due_at is not None


def test_a_sweep_at_an_instant_with_a_fraction_of_a_second_notifies_on_every_database(
        db: Database, world: World) -> None:
    """The sweep runs at utcnow(), microseconds and all; MariaDB keeps whole seconds of a DATETIME."""
    policies(db, world)
    customer_id = create_random_customer(db, world.rep)
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Down", priority="urgent",
                                                   assignee_id=world.rep.user_id, team_id=world.east_team_id))
    warn = state(db, world, case_id).first_response_warn_at
    assert warn is not None
    result = run_sla_sweep(db, world.admin.tenant_id, now=warn + dt.timedelta(seconds=1, microseconds=654_321))
    assert (result.warnings, result.notified) == (1, 1)
    with db.system_session("test") as session:
        told = session.scalars(select(Notification.user_id).where(Notification.kind == "sla_warning",
                                                                  Notification.entity_id == case_id)).all()
    assert told == [world.rep.user_id]


def test_the_board_groups_the_visible_cases_by_status_with_capped_counts(db: Database, world: World) -> None:
    policies(db, world)
    customer_id = create_random_customer(db, world.rep)
    hidden_customer = create_random_customer(db, world.rep_other_team)
    opened = [create_case(db, world.rep, CaseInput(customer_id=customer_id, subject=f"Open {n}", priority=priority))
              for n, priority in enumerate(("low", "urgent", "normal"))]
    waiting = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Waiting"))
    with db.session(world.rep) as session:
        version = session.get(Case, waiting).version  # type: ignore[union-attr]
    transition_case(db, world.rep, waiting, "pending", expected_version=version)
    create_case(db, world.rep_other_team, CaseInput(customer_id=hidden_customer, subject="Not Rita's"))
    with db.session(world.rep) as session:
        board = {column.status: column for column in case_board(session, per_column=2, count_cap=2)}
        urgent_only = case_board(session, CaseFilters(priority="urgent"))
    assert list(board) == ["new", "open", "pending", "on_hold", "resolved"]
    assert (board["open"].count, board["open"].count_capped) == (2, True)  # three, read up to the cap
    assert [card.id for card in board["open"].cards] == [opened[1], opened[2]]  # soonest due first, two per column
    assert [card.id for card in board["pending"].cards] == [waiting] and board["pending"].count == 1
    assert all(column.count == 0 for status, column in board.items() if status not in ("open", "pending"))
    assert [card.id for column in urgent_only for card in column.cards] == [opened[1]]


def test_the_360_shows_each_case_s_sla_outcome_and_the_customer_s_record(db: Database, world: World) -> None:
    from crm_core.queries.customer_profile import customer_cases, customer_sla_record
    from crm_core.services.csat import csat_token, rate_case

    policies(db, world)  # urgent: 60 minutes to first response
    customer_id = create_random_customer(db, world.rep)
    answered = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Answered", priority="urgent"))
    add_case_reply(db, world.rep, answered, "On it.")
    create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Forgotten", priority="urgent"))
    with db.session(world.rep) as session:
        case = session.get(Case, answered)
        assert case is not None
        version = case.version
    transition_case(db, world.rep, answered, "resolved", expected_version=version)
    with db.session(world.rep) as session:
        case = session.get(Case, answered)
        assert case is not None
        token = csat_token(case, key="test-csat-key")
    rate_case(db, token, "good", key="test-csat-key")
    later = utcnow() + dt.timedelta(hours=2)  # the forgotten case's first response is now overdue
    with db.session(world.rep) as session:
        rows = {row.subject: row for row in customer_cases(session, customer_id, now=later)}
        record = customer_sla_record(session, customer_id, now=later)
    with db.session(world.rep_other_team) as session:
        hidden = customer_sla_record(session, customer_id, now=later)
    answered_row = rows["Answered"]
    assert (answered_row.first_response, answered_row.resolution, answered_row.csat) == ("met", "met", "good")
    assert (rows["Forgotten"].first_response, rows["Forgotten"].resolution, rows["Forgotten"].csat) == (
        "missed", "running", None)
    assert record == type(record)(cases=2, first_response_met=1, first_response_measured=2, resolution_met=1,
                                  resolution_measured=1, csat_good=1, csat_rated=1)
    assert hidden.cases == 0  # another team's rep counts none of them


def test_a_case_names_one_of_its_customer_s_orders_and_a_product(db: Database, world: World) -> None:
    """Issue 13: a case is linked to customer, contact, order/product; the order must be the customer's."""
    from crm_core.queries.cases import case_about, get_case
    from crm_core.services.cases import update_case
    from crm_core.services.orders import OrderInput, OrderLineInput, create_order
    from crm_core.services.products import ProductInput, archive_product, create_product

    product = create_product(db, world.admin, ProductInput(sku="SCN-1", name="扫码枪 Scanner", unit_price="99"))
    retired = create_product(db, world.admin, ProductInput(sku="OLD-1", name="Old model", unit_price="1"))
    archive_product(db, world.admin, retired, expected_version=1)
    customer_id = create_random_customer(db, world.rep)
    order = create_order(db, world.rep, OrderInput(customer_id=customer_id, lines=[OrderLineInput(product)]))
    other_order = create_order(db, world.rep, OrderInput(customer_id=create_random_customer(db, world.rep),
                                                         lines=[OrderLineInput(product)]))
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Scanner does not pair",
                                                   order_id=order, product_id=product))
    with db.session(world.rep) as session:
        row = get_case(session, case_id)
        assert row is not None and (row.order_id, row.product_id) == (order, product)
        order_number, product_name = case_about(session, row)
    assert order_number and product_name == "扫码枪 Scanner"
    with pytest.raises(ValidationFailed) as refused:
        create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Wrong order", order_id=other_order,
                                             product_id=retired))
    assert refused.value.errors == {"order_id": ("cases.order_not_of_customer", {}),
                                    "product_id": ("validation.choice", {})}
    with db.session(world.rep) as session:
        assert session.scalar(select(func.count()).select_from(Case).where(Case.subject == "Wrong order")) == 0
    # an edit that keeps the references does not check them again; clearing them is allowed
    with db.session(world.rep) as session:
        version = session.get(Case, case_id).version  # type: ignore[union-attr]
    update_case(db, world.rep, case_id, CaseInput(customer_id=customer_id, subject="Scanner does not pair (USB)",
                                                  order_id=order, product_id=None), expected_version=version)
    with db.session(world.rep) as session:
        row = get_case(session, case_id)
        assert row is not None and (row.subject, row.order_id, row.product_id) == (
            "Scanner does not pair (USB)", order, None)


def test_the_sweep_runs_as_a_scheduled_job_kind(db: Database, world: World) -> None:
    from crm_core.jobs.context import JobContext, kinds

    kind = kinds()["sla_sweep"]
    assert kind.schedulable and kind.default_schedule == ("*", "*", "*")
    policies(db, world)
    customer_id = create_random_customer(db, world.rep)
    create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Job", priority="urgent"))
    later = (utcnow() + dt.timedelta(minutes=210)).isoformat()  # first response (60) breached, resolution (240) warned
    result = kind.run(JobContext(db=db, job_id=0, tenant_id=world.admin.tenant_id, actor=None,
                                 params={"as_of": later}))
    assert (result["warnings"], result["breaches"]) == (2, 1)  # the next-response clock is not running


def test_the_demo_service_desk_has_cases_in_every_sla_state(db: Database) -> None:
    from crm_core.demo import generate_demo
    from crm_core.models.service import SlaCalendarDay
    from crm_core.service_demo import CASES_PER_TENANT, add_service_desk

    generate_demo(db, customers=300, seed=7)
    now = utcnow()
    assert add_service_desk(db, zh=False, seed=7, now=now) == CASES_PER_TENANT
    assert add_service_desk(db, zh=False, seed=7, now=now) == 0  # once per tenant
    with db.system_session("test: demo desk") as session:
        states = session.scalars(select(CaseSla)).all()
        statuses = set(session.scalars(select(Case.status).where(Case.id.in_([s.case_id for s in states]))))
        workdays = session.scalar(select(func.count()).select_from(SlaCalendarDay).where(
            SlaCalendarDay.kind == "workday"))
        events = session.scalar(select(func.count()).select_from(CaseEvent))
    assert len(states) == CASES_PER_TENANT and workdays == 6 and (events or 0) >= 3 * CASES_PER_TENANT
    assert any(s.paused_since is not None for s in states)
    assert any(s.resolution_breached_at is not None or s.first_response_breached_at is not None for s in states)
    assert any(s.next_due_at is not None and s.next_due_at > now for s in states)
    assert {"new", "open", "resolved"} <= statuses


def test_a_policy_change_recomputes_the_open_cases_from_their_history(db: Database, world: World) -> None:
    calendar_id = policies(db, world)
    customer_id = create_random_customer(db, world.rep)
    case_id = create_case(db, world.rep, CaseInput(customer_id=customer_id, subject="Policy", priority="normal"))
    before = state(db, world, case_id)
    sla_settings.save_policy(db, world.admin, sla_settings.PolicyInput(
        priority="normal", calendar_id=calendar_id, first_response_minutes=30, next_response_minutes=30,
        resolution_minutes=120))
    assert sla_settings.recompute_open_cases(db, None, tenant_id=world.admin.tenant_id) == 1
    after = state(db, world, case_id)
    assert before.first_response_due_at is not None and after.first_response_due_at is not None
    # 480 → 30 minutes from the same start (the always-open calendar skips one minute at midnight)
    moved = before.first_response_due_at - after.first_response_due_at
    assert dt.timedelta(minutes=449) <= moved <= dt.timedelta(minutes=451)


def test_a_sweep_telling_one_person_of_many_cases_at_once_writes_one_notice_with_their_number(
        db: Database, world: World) -> None:
    """Decision 0037: more escalations of one level for one recipient than ``digest_after`` in one sweep make one
    notice (its number, opening the queue); each case keeps its escalation (the SLA panel, the level)."""
    from crm_core.i18n import t
    from crm_core.notifications.robots import robot_text
    from crm_core.queries.notifications import list_notifications
    from crm_core.rules.notifications import message_key
    from crm_ui.notifications import target

    policies(db, world)
    customer_id = create_random_customer(db, world.rep)
    cases = [create_case(db, world.rep, CaseInput(customer_id=customer_id, subject=f"Down {n}", priority="urgent",
                                                  assignee_id=world.rep.user_id, team_id=world.east_team_id))
             for n in range(2)]
    warns = [state(db, world, case_id).first_response_warn_at for case_id in cases]
    assert all(warns)
    now = max(warn for warn in warns if warn is not None) + dt.timedelta(seconds=1)
    burst = run_sla_sweep(db, world.admin.tenant_id, now=now, digest_after=1)
    assert (burst.warnings, burst.notified) == (2, 1)
    assert run_sla_sweep(db, world.admin.tenant_id, now=now + dt.timedelta(seconds=1), digest_after=1).notified == 0
    with db.session(world.rep) as session:
        told = list_notifications(session, unread_only=False, limit=10).items
        escalated = session.scalars(select(SlaEscalation.case_id).where(SlaEscalation.level == 1)).all()
        panel = explain_case_sla(session, cases[0], now=now)
    assert sorted(escalated) == sorted(cases) and panel.warned["first_response"] is not None
    sla = [row for row in told if row.kind == "sla_warning"]
    assert [(row.entity, row.entity_id, row.params) for row in sla] == [("case_queue", None, {"count": 2})]
    assert t(message_key("sla_warning", sla[0].params), "en", **sla[0].params).startswith("SLA warning on 2 of my")
    assert "2 个工单" in robot_text("sla_warning", sla[0].params, "Rita", "zh-CN")
    assert target(sla[0]) == ("pages/service_queue.py", {})
