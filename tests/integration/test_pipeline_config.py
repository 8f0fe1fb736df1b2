"""Admins configure pipelines and stages; all-or-nothing, and never under deals' feet."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from crm_core.db import Database
from crm_core.errors import AccessDenied, PipelineInUse, ValidationFailed
from crm_core.models import Pipeline, PipelineStage
from crm_core.queries.deals import get_pipeline, list_pipelines
from crm_core.services.deals import OpportunityInput, create_opportunity
from crm_core.services.pipelines import (
    StageInput,
    create_pipeline,
    delete_pipeline,
    rename_pipeline,
    save_stages,
    set_default_pipeline,
)
from tests.factories import World, build_world, create_random_customer


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def test_an_admin_creates_a_pipeline_with_the_default_stages_and_makes_it_default(db: Database, world: World) -> None:
    pipeline_id = create_pipeline(db, world.admin, name="Renewals 续约")
    set_default_pipeline(db, world.admin, pipeline_id)
    with db.session(world.admin) as session:
        pipelines = list_pipelines(session)
    assert [(p.name, p.is_default) for p in pipelines] == [("Renewals 续约", True), ("Default pipeline", False)]
    assert [s.name for s in pipelines[0].stages] == ["Lead", "Qualified", "Proposal", "Negotiation", "Won", "Lost"]


def test_a_manager_cannot_configure_pipelines(db: Database, world: World) -> None:
    with pytest.raises(AccessDenied):
        create_pipeline(db, world.manager, name="Mine")


def test_a_pipeline_name_must_be_unique(db: Database, world: World) -> None:
    with pytest.raises(ValidationFailed) as refused:
        create_pipeline(db, world.admin, name="Default pipeline")
    assert refused.value.errors["name"][0] == "pipeline.name_taken"
    other = create_pipeline(db, world.admin, name="Other")
    with pytest.raises(ValidationFailed):
        rename_pipeline(db, world.admin, other, name=" Default pipeline ")


def test_stages_are_renamed_reordered_added_and_removed_in_one_save(db: Database, world: World) -> None:
    with db.session(world.admin) as session:
        pipeline = get_pipeline(session)
    assert pipeline is not None
    lead, qualified, proposal, negotiation, won, lost = pipeline.stages
    save_stages(db, world.admin, pipeline.id, [
        StageInput("Discovery", 15, "open", lead.id),
        StageInput("Demo", 40, "open"),
        StageInput("Negotiation", 80, "open", negotiation.id),
        StageInput("Won", 30, "won", won.id),  # won always weighs 100 %
        StageInput("Lost", 0, "lost", lost.id),
    ])
    with db.session(world.admin) as session:
        stages = get_pipeline(session, pipeline.id).stages  # type: ignore[union-attr]
    assert [(s.name, s.probability, s.kind, s.position) for s in stages] == [
        ("Discovery", 15, "open", 0), ("Demo", 40, "open", 1), ("Negotiation", 80, "open", 2),
        ("Won", 100, "won", 3), ("Lost", 0, "lost", 4),
    ]
    assert stages[0].id == lead.id


@pytest.mark.parametrize(
    "stages, key",
    [
        ([StageInput("A", 10, "open"), StageInput("W", 100, "won")], "pipeline.needs_lost_stage"),
        ([StageInput("W", 100, "won"), StageInput("L", 0, "lost")], "pipeline.needs_open_stage"),
        ([StageInput("A", 10, "open"), StageInput("a", 20, "open"), StageInput("W", 100, "won"),
          StageInput("L", 0, "lost")], "pipeline.stage_name_repeated"),
        ([StageInput("A", 140, "open"), StageInput("W", 100, "won"), StageInput("L", 0, "lost")],
         "deal.probability_range"),
    ],
)
def test_a_stage_list_that_cannot_work_is_refused(
    db: Database, world: World, stages: list[StageInput], key: str
) -> None:
    with pytest.raises(ValidationFailed) as refused:
        create_pipeline(db, world.admin, name="Broken", stages=stages)
    assert key in {found for found, _ in refused.value.errors.values()}


def test_a_stage_holding_deals_cannot_be_removed_and_nothing_is_saved(db: Database, world: World) -> None:
    customer = create_random_customer(db, world.rep)
    create_opportunity(db, world.rep, OpportunityInput(customer_id=customer, name="Deal", amount="10"))
    with db.session(world.admin) as session:
        pipeline = get_pipeline(session)
    assert pipeline is not None
    keep = [StageInput(s.name + "!", s.probability, s.kind, s.id) for s in pipeline.stages[1:]]
    with pytest.raises(PipelineInUse):
        save_stages(db, world.admin, pipeline.id, keep)
    with db.session(world.admin) as session:
        names = session.scalars(select(PipelineStage.name).where(PipelineStage.pipeline_id == pipeline.id)).all()
    assert "Lead" in names and "Qualified!" not in names
    with pytest.raises(ValidationFailed):
        delete_pipeline(db, world.admin, pipeline.id)  # the default pipeline


def test_an_empty_pipeline_can_be_deleted(db: Database, world: World) -> None:
    pipeline_id = create_pipeline(db, world.admin, name="Temporary")
    delete_pipeline(db, world.admin, pipeline_id)
    with db.session(world.admin) as session:
        assert session.get(Pipeline, pipeline_id) is None
