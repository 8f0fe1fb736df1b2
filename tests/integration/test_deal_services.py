"""Deal use cases on every database: create, edit with optimistic locking, stage moves, archive."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.errors import AccessDenied, NotFound, StageTransitionRefused, StaleRecord, ValidationFailed
from crm_core.models import AuditEvent, Opportunity, PipelineStage
from crm_core.models.pipeline import OpportunityStageChange
from crm_core.services.deals import (
    OpportunityInput,
    archive_opportunity,
    create_opportunity,
    move_stage,
    undo_stage_move,
    update_opportunity,
)
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def stages_by_name(db: Database, world: World) -> dict[str, PipelineStage]:
    with db.session(world.admin) as session:
        return {stage.name: stage for stage in session.scalars(select(PipelineStage))}


def load(db: Database, world: World, deal_id: int) -> Opportunity:
    with db.session(world.admin) as session:
        deal = session.get(Opportunity, deal_id)
        assert deal is not None
        return deal


def new_deal(db: Database, world: World, **fields: object) -> int:
    customer_id = create_random_customer(db, world.rep)
    values: dict[str, object] = {"customer_id": customer_id, "name": "Pilot licence", "amount": "12000"}
    values.update(fields)
    return create_opportunity(db, world.rep, OpportunityInput(**values))  # type: ignore[arg-type]


def test_a_new_deal_starts_in_the_first_open_stage_of_the_default_pipeline(db: Database, world: World) -> None:
    deal = load(db, world, new_deal(db, world))
    stages = stages_by_name(db, world)
    assert deal.stage_id == stages["Lead"].id
    assert deal.owner_id == world.rep.user_id
    assert deal.amount == Decimal("12000.00")
    assert deal.currency == "CNY"
    with db.session(world.admin) as session:
        history = session.scalars(
            select(OpportunityStageChange).where(OpportunityStageChange.opportunity_id == deal.id)
        ).all()
    assert [(h.from_stage_id, h.to_stage_id) for h in history] == [(None, stages["Lead"].id)]


def test_a_deal_form_with_bad_values_is_refused_field_by_field(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep)
    with pytest.raises(ValidationFailed) as refused:
        create_opportunity(
            db, world.rep,
            OpportunityInput(customer_id=customer_id, name=" ", amount="-5", probability=140,
                             expected_close_date=dt.date.today() - dt.timedelta(days=3)),
        )
    assert set(refused.value.errors) == {"name", "amount", "probability", "expected_close_date"}
    # the field rules' keys (crm_core.rules.fields), as an import of the same values reports them
    assert refused.value.errors["name"][0] == "imports.rule.required"
    amount_bounds = {"field": "amount", "min": 0, "max": 999999999999.99}  # Numeric(14, 2)
    assert refused.value.errors["amount"] == ("imports.rule.range", amount_bounds)
    assert refused.value.errors["probability"] == ("imports.rule.range", {"field": "probability", "min": 0, "max": 100})


def test_a_rep_cannot_create_a_deal_on_a_colleagues_customer(db: Database, world: World) -> None:
    far_customer = create_random_customer(db, world.rep_other_team)
    with pytest.raises(NotFound):
        create_opportunity(db, world.rep, OpportunityInput(customer_id=far_customer, name="x", amount="1"))


def test_moving_to_lost_needs_a_reason_and_sets_closed_at(db: Database, world: World) -> None:
    deal_id = new_deal(db, world)
    stages = stages_by_name(db, world)
    with pytest.raises(ValidationFailed) as refused:
        move_stage(db, world.rep, deal_id, stages["Lost"].id, expected_version=1)
    assert refused.value.errors["lost_reason"][0] == "deal.lost_reason_required"
    version = move_stage(db, world.rep, deal_id, stages["Lost"].id, expected_version=1, lost_reason="价格太高")
    deal = load(db, world, deal_id)
    assert (deal.stage_id, deal.lost_reason, deal.version) == (stages["Lost"].id, "价格太高", version)
    assert deal.closed_at is not None


def test_winning_keeps_an_optional_reason_checked_like_any_text_and_reopening_clears_it(
        db: Database, world: World) -> None:
    deal_id = new_deal(db, world)
    stages = stages_by_name(db, world)
    for bad, key in (("x" * 501, "deal.won_reason_too_long"), ("=HYPERLINK(\"http://x\")", None)):
        with pytest.raises(ValidationFailed) as refused:
            move_stage(db, world.rep, deal_id, stages["Won"].id, expected_version=1, won_reason=bad)
        assert "won_reason" in refused.value.errors
        if key:
            assert refused.value.errors["won_reason"][0] == key
    assert load(db, world, deal_id).version == 1  # nothing written
    version = move_stage(db, world.rep, deal_id, stages["Won"].id, expected_version=1, won_reason="  试点成功 ")
    assert load(db, world, deal_id).won_reason == "试点成功"
    reopened = move_stage(db, world.rep, deal_id, stages["Proposal"].id, expected_version=version)
    deal = load(db, world, deal_id)
    assert (deal.won_reason, deal.closed_at, deal.version) == (None, None, reopened)
    move_stage(db, world.rep, deal_id, stages["Won"].id, expected_version=reopened)  # without a reason: fine
    assert load(db, world, deal_id).won_reason is None


def test_a_lost_deal_cannot_jump_to_won_but_can_be_reopened(db: Database, world: World) -> None:
    deal_id = new_deal(db, world)
    stages = stages_by_name(db, world)
    version = move_stage(db, world.rep, deal_id, stages["Lost"].id, expected_version=1, lost_reason="budget")
    with pytest.raises(StageTransitionRefused):
        move_stage(db, world.rep, deal_id, stages["Won"].id, expected_version=version)
    version = move_stage(db, world.rep, deal_id, stages["Proposal"].id, expected_version=version)
    deal = load(db, world, deal_id)
    assert (deal.stage_id, deal.closed_at, deal.lost_reason) == (stages["Proposal"].id, None, None)


def test_winning_on_a_past_day_records_that_day(db: Database, world: World) -> None:
    deal_id = new_deal(db, world)
    stages = stages_by_name(db, world)
    today = dt.date.today()
    move_stage(db, world.rep, deal_id, stages["Won"].id, expected_version=1, closed_on=today)
    assert load(db, world, deal_id).closed_at.date() == today  # type: ignore[union-attr]
    other = new_deal(db, world)
    with pytest.raises(ValidationFailed) as refused:
        move_stage(db, world.rep, other, stages["Won"].id, expected_version=1, closed_on=today + dt.timedelta(days=2))
    assert refused.value.errors["closed_at"][0] == "deal.closed_in_future"


def test_saving_an_edit_of_an_old_version_raises_stale_record_naming_who_changed_it(db: Database, world: World) -> None:
    deal_id = new_deal(db, world)
    deal = load(db, world, deal_id)
    form = OpportunityInput(customer_id=deal.customer_id, name="Pilot licence v2", amount="15000")
    update_opportunity(db, world.manager, deal_id, form, expected_version=1)
    mine = OpportunityInput(customer_id=deal.customer_id, name="My edit", amount="1")
    with pytest.raises(StaleRecord) as stale:
        update_opportunity(db, world.rep, deal_id, mine, expected_version=1)
    assert stale.value.changed_by == "Mia Manager"
    assert load(db, world, deal_id).name == "Pilot licence v2"


def test_an_edit_writes_the_field_diff_to_the_audit_trail(db: Database, world: World) -> None:
    deal_id = new_deal(db, world)
    deal = load(db, world, deal_id)
    stages = stages_by_name(db, world)
    form = OpportunityInput(customer_id=deal.customer_id, name="Pilot licence", amount="20000",
                            stage_id=stages["Proposal"].id)
    update_opportunity(db, world.rep, deal_id, form, expected_version=1)
    with db.session(world.admin) as session:
        event = session.scalars(
            select(AuditEvent).where(AuditEvent.entity == "opportunity", AuditEvent.entity_id == deal_id,
                                     AuditEvent.action == "update")
        ).one()
    assert event.changes["amount"] == ["12000.00", "20000.00"]
    assert event.changes["stage_id"] == [stages["Lead"].id, stages["Proposal"].id]


def test_an_analyst_cannot_move_a_deal_and_a_far_rep_cannot_see_it(db: Database, world: World) -> None:
    deal_id = new_deal(db, world)
    stages = stages_by_name(db, world)
    with pytest.raises(AccessDenied):
        move_stage(db, world.analyst, deal_id, stages["Won"].id, expected_version=1)
    with pytest.raises(NotFound):
        move_stage(db, world.rep_other_team, deal_id, stages["Won"].id, expected_version=1)
    assert load(db, world, deal_id).stage_id == stages["Lead"].id


def test_an_archived_deal_can_no_longer_be_moved(db: Database, world: World) -> None:
    deal_id = new_deal(db, world)
    stages = stages_by_name(db, world)
    archive_opportunity(db, world.rep, deal_id, expected_version=1)
    with pytest.raises(NotFound):
        move_stage(db, world.rep, deal_id, stages["Won"].id, expected_version=2)


def history_of(db: Database, world: World, deal_id: int) -> list[tuple[int | None, int, int | None]]:
    with db.session(world.admin) as session:
        rows = session.scalars(
            select(OpportunityStageChange).where(OpportunityStageChange.opportunity_id == deal_id)
            .order_by(OpportunityStageChange.id)
        ).all()
        return [(row.from_stage_id, row.to_stage_id, row.changed_by_id) for row in rows]


def test_undoing_a_move_puts_the_deal_back_and_records_the_way_back(db: Database, world: World) -> None:
    deal_id = new_deal(db, world)
    stages = stages_by_name(db, world)
    version = move_stage(db, world.rep, deal_id, stages["Proposal"].id, expected_version=1)
    version = undo_stage_move(db, world.rep, deal_id, expected_version=version)
    deal = load(db, world, deal_id)
    assert (deal.stage_id, deal.version) == (stages["Lead"].id, version)
    rep = world.rep.user_id
    assert history_of(db, world, deal_id) == [
        (None, stages["Lead"].id, rep), (stages["Lead"].id, stages["Proposal"].id, rep),
        (stages["Proposal"].id, stages["Lead"].id, rep),
    ]
    with db.session(world.admin) as session:
        audited = session.scalars(
            select(AuditEvent).where(AuditEvent.entity == "opportunity", AuditEvent.entity_id == deal_id,
                                     AuditEvent.action == "update").order_by(AuditEvent.id)
        ).all()
    assert [event.changes["stage_id"] for event in audited] == [
        [stages["Lead"].id, stages["Proposal"].id], [stages["Proposal"].id, stages["Lead"].id],
    ]


def test_undoing_a_win_reopens_and_undoing_a_reopen_of_a_lost_deal_needs_its_reason(
    db: Database, world: World
) -> None:
    deal_id = new_deal(db, world)
    stages = stages_by_name(db, world)
    version = move_stage(db, world.rep, deal_id, stages["Won"].id, expected_version=1)
    version = undo_stage_move(db, world.rep, deal_id, expected_version=version)
    deal = load(db, world, deal_id)
    assert (deal.stage_id, deal.closed_at) == (stages["Lead"].id, None)
    version = move_stage(db, world.rep, deal_id, stages["Lost"].id, expected_version=version, lost_reason="价格太高")
    version = move_stage(db, world.rep, deal_id, stages["Proposal"].id, expected_version=version)
    with pytest.raises(ValidationFailed) as refused:
        undo_stage_move(db, world.rep, deal_id, expected_version=version)
    assert refused.value.errors["lost_reason"][0] == "deal.lost_reason_required"
    undo_stage_move(db, world.rep, deal_id, expected_version=version, lost_reason="价格太高")
    deal = load(db, world, deal_id)
    assert (deal.stage_id, deal.lost_reason) == (stages["Lost"].id, "价格太高")


def test_undo_refuses_once_someone_else_changed_the_deal_and_says_who(db: Database, world: World) -> None:
    deal_id = new_deal(db, world)
    stages = stages_by_name(db, world)
    version = move_stage(db, world.rep, deal_id, stages["Proposal"].id, expected_version=1)
    move_stage(db, world.manager, deal_id, stages["Negotiation"].id, expected_version=version)
    with pytest.raises(StaleRecord) as stale:
        undo_stage_move(db, world.rep, deal_id, expected_version=version)
    assert stale.value.changed_by == "Mia Manager"
    assert load(db, world, deal_id).stage_id == stages["Negotiation"].id


def test_undo_only_takes_back_the_actors_own_latest_move(db: Database, world: World) -> None:
    deal_id = new_deal(db, world)
    stages = stages_by_name(db, world)
    version = move_stage(db, world.manager, deal_id, stages["Proposal"].id, expected_version=1)
    with pytest.raises(ValidationFailed) as refused:
        undo_stage_move(db, world.rep, deal_id, expected_version=version)
    assert refused.value.errors == {"undo": ("board.undo_nothing", {})}
    fresh = new_deal(db, world)  # only created: nothing to take back
    with pytest.raises(ValidationFailed):
        undo_stage_move(db, world.rep, fresh, expected_version=1)
    with pytest.raises(NotFound):
        undo_stage_move(db, world.rep_other_team, deal_id, expected_version=version)
