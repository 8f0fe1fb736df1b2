"""Scoring: AUC above chance on the demo data, the fallback when history is thin, JSON models
that predict what was stored, explanations, the CLI, and a new scorer plugging in."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from crm_core import cli
from crm_core.db import Database
from crm_core.demo import REFERENCE_DATE, generate_demo
from crm_core.models import Customer, Opportunity, PipelineStage, StageKind, Tenant
from crm_core.models.segments import Score, ScoringModel
from crm_core.queries.scores import latest_scores, model_versions
from crm_core.queries.segments import count_segment, field_catalog
from crm_core.rules.segments import validate_spec
from crm_core.scoring import SCORERS, Examples, Scorer, predict, register, runner
from tests.factories import World, build_world, create_random_customer

AS_OF = dt.datetime.combine(REFERENCE_DATE, dt.time())


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Database:
    from crm_core.db import make_engine
    from crm_core.schema import upgrade_to_head

    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('scoring') / 'demo.db'}")
    upgrade_to_head(engine)
    database = Database(engine)
    generate_demo(database, customers=4000, seed=7)
    return database


def demo_tenant(db: Database) -> int:
    with db.system_session("test") as session:
        tenant_id = session.scalar(select(Tenant.id).where(Tenant.slug == "demo"))
    assert tenant_id is not None
    return tenant_id


def test_churn_risk_beats_chance_on_the_demo_data_and_stores_its_auc(demo_db: Database) -> None:
    tenant_id = demo_tenant(demo_db)
    trained = runner.train(demo_db, tenant_id, "churn_risk", as_of=AS_OF)
    assert trained.method == "logistic"
    assert trained.metrics["auc"] > 0.5
    assert trained.metrics["test_examples"] + trained.metrics["train_examples"] == trained.metrics["examples"]
    with demo_db.system_session("test") as session:
        stored = session.get(ScoringModel, trained.model_id)
        assert stored is not None and stored.metrics["auc"] == trained.metrics["auc"]
        assert stored.model["kind"] == "logistic"
        json.dumps(stored.model)  # plain JSON, never a pickle


def test_deal_win_beats_chance_on_the_demo_data_and_stores_its_auc(demo_db: Database) -> None:
    # the demo wins smaller deals and referred customers more often: the scorer must find that
    trained = runner.train(demo_db, demo_tenant(demo_db), "deal_win", as_of=AS_OF)
    assert trained.method == "logistic"
    assert trained.metrics["auc"] > 0.6


def test_deal_win_learns_a_signal_when_the_history_has_one(demo_db: Database) -> None:
    # a signal planted on top of the demo's, in a copy of the history
    tenant_id = demo_tenant(demo_db)
    with demo_db.system_session("test") as session:
        history = SCORERS["deal_win"].history(session, tenant_id, AS_OF)
    assert history.labels is not None and len(history) > 300
    rng = np.random.default_rng(0)
    history.numeric["amount_log"] = history.labels * 1.0 + rng.normal(0, 1, len(history))
    fitted = SCORERS["deal_win"].fit(history)
    assert fitted.method == "logistic"
    assert fitted.metrics["auc"] > 0.65


def test_applied_scores_are_what_the_stored_model_predicts(demo_db: Database) -> None:
    tenant_id = demo_tenant(demo_db)
    runner.train(demo_db, tenant_id, "churn_risk", as_of=AS_OF)
    applied = runner.apply(demo_db, tenant_id, "churn_risk", as_of=AS_OF)
    with demo_db.system_session("test") as session:
        stage_customers = session.scalar(
            text("SELECT COUNT(*) FROM customers WHERE tenant_id = :t AND lifecycle_stage = 'customer'"),
            {"t": tenant_id},
        )
        model = session.scalars(select(ScoringModel).where(ScoringModel.scorer == "churn_risk")
                                .order_by(ScoringModel.version.desc())).first()
        assert model is not None
        examples = SCORERS["churn_risk"].current(session, tenant_id, AS_OF)
        expected = dict(zip(examples.ids.tolist(), np.round(predict(model.model, examples), 4).tolist(), strict=True))
        stored = dict(session.execute(select(Score.entity_id, Score.score).where(Score.scorer == "churn_risk")).all())
    # the buying customers who have not churned are exactly the demo's "customer" stage
    assert applied.scored == stage_customers == len(stored)
    assert stored == pytest.approx(expected)
    some_customer = next(iter(stored))
    factors = runner.explain_record(demo_db, tenant_id, "churn_risk", some_customer, as_of=AS_OF)
    assert 1 <= len(factors) <= 3
    assert abs(factors[0].contribution) >= abs(factors[-1].contribution)


@pytest.fixture
def world(db: Database) -> World:
    return build_world(db)


def open_deal(
    session: Session, customer_id: int, stage_name: str, probability: int | None = None, owner_id: int | None = None
) -> int:
    stage = session.scalars(select(PipelineStage).where(PipelineStage.name == stage_name)).one()
    deal = Opportunity(customer_id=customer_id, pipeline_id=stage.pipeline_id, stage_id=stage.id, name="Deal",
                       amount=Decimal("1000"), probability=probability, owner_id=owner_id)
    session.add(deal)
    session.flush()
    return deal.id


def test_thin_history_falls_back_to_stage_probability_and_says_so(db: Database, world: World) -> None:
    customer_id = create_random_customer(db, world.rep, name="Thin")
    with db.transaction(world.rep) as session:
        stages = {s.name: s for s in session.scalars(select(PipelineStage))}
        open_stages = [s for s in stages.values() if s.kind == StageKind.OPEN.value]
        by_stage = open_deal(session, customer_id, open_stages[1].name, owner_id=world.rep.user_id)
        by_hand = open_deal(session, customer_id, open_stages[0].name, probability=65, owner_id=world.rep.user_id)
        expected_stage = open_stages[1].probability / 100
    tenant_id = world.admin.tenant_id
    trained = runner.train(db, tenant_id, "deal_win")
    assert trained.method == "fallback"
    assert trained.metrics["fallback"] is True and trained.metrics["reason"] == "thin_history"
    assert trained.metrics["auc"] is None
    applied = runner.apply(db, tenant_id, "deal_win")
    assert applied.scored == 2 and applied.method == "fallback"
    with db.session(world.rep) as session:
        scores = latest_scores(session, "deal_win", [by_stage, by_hand])
        versions = model_versions(session, "deal_win")
    assert scores[by_stage].score == pytest.approx(expected_stage)
    assert scores[by_hand].score == pytest.approx(0.65)
    assert versions[0].method == "fallback" and versions[0].metrics["positives"] == 0
    # another tenant sees neither the model nor the scores
    with db.session(world.other_admin) as session:
        assert latest_scores(session, "deal_win", [by_stage]) == {} and model_versions(session, "deal_win") == []


def test_scores_filter_segments_by_the_best_scored_deal_of_a_customer(db: Database, world: World) -> None:
    hot = create_random_customer(db, world.rep, name="Hot deal")
    create_random_customer(db, world.rep, name="Cold deal")
    with db.transaction(world.rep) as session:
        stage = session.scalars(select(PipelineStage).where(PipelineStage.kind == StageKind.OPEN.value)).first()
        assert stage is not None
        open_deal(session, hot, stage.name, probability=90, owner_id=world.rep.user_id)
        cold = session.scalar(select(Customer.id).where(Customer.name == "Cold deal"))
        assert cold is not None
        open_deal(session, cold, stage.name, probability=5, owner_id=world.rep.user_id)
    runner.apply(db, world.admin.tenant_id, "deal_win")
    raw = {"match": "all", "conditions": [{"field": "score.deal_win", "op": "gte", "value": 80}]}
    with db.session(world.manager) as session:
        spec, problems = validate_spec(raw, field_catalog(session))
        assert spec is not None, problems
        assert count_segment(session, spec) == 1


class HasEmailScorer(Scorer):
    """A toy scorer: customers with an email address (shows what plugging one in takes)."""

    name = "has_email_test"
    entity = "customer"
    min_class_examples = 1

    def history(self, session: Session, tenant_id: int, as_of: dt.datetime) -> Examples:
        rows = session.execute(
            select(Customer.id, Customer.email).where(Customer.tenant_id == tenant_id).order_by(Customer.id)
        ).all()
        ids = np.array([row.id for row in rows], dtype=np.int64)
        labels = np.array([1 if row.email else 0 for row in rows])
        noise = np.random.default_rng(1).normal(0, 0.1, len(rows))
        return Examples(ids=ids, numeric={"signal": labels + noise}, labels=labels, prior=labels * 1.0)

    def current(self, session: Session, tenant_id: int, as_of: dt.datetime, ids: list[int] | None = None) -> Examples:
        examples = self.history(session, tenant_id, as_of)
        return Examples(ids=examples.ids, numeric=examples.numeric, prior=examples.prior)


def test_a_new_scorer_plugs_in_by_implementing_the_interface(db: Database, world: World) -> None:
    for index in range(8):
        create_random_customer(db, world.rep, email=f"c{index}@example.com" if index % 2 else "")
    register(HasEmailScorer())
    try:
        trained = runner.train(db, world.admin.tenant_id, "has_email_test")
        applied = runner.apply(db, world.admin.tenant_id, "has_email_test")
        assert trained.method == "logistic" and applied.scored == 8
        raw = {"match": "all", "conditions": [{"field": "score.has_email_test", "op": "gte", "value": 50}]}
        with db.session(world.admin) as session:
            spec, _ = validate_spec(raw, field_catalog(session))
            assert spec is not None
            assert count_segment(session, spec) == 4
    finally:
        SCORERS.pop("has_email_test", None)


def test_the_score_command_trains_and_applies_with_json_output(
    sqlite_db: Database, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    build_world(sqlite_db)
    url = sqlite_db.engine.url.render_as_string(hide_password=False)
    assert cli.main(["--database-url", url, "score", "train", "--json"]) == 0
    trained = json.loads(capsys.readouterr().out)
    assert {r["scorer"] for r in trained["results"]} == {"churn_risk", "deal_win"}
    assert all(r["method"] == "fallback" for r in trained["results"])  # an empty tenant has no history
    assert cli.main(["--database-url", url, "score", "apply", "--scorer", "deal_win", "--json"]) == 0
    applied = json.loads(capsys.readouterr().out)
    assert applied["results"][0]["scored"] == 0
    assert cli.main(["--database-url", url, "score", "apply", "--scorer", "nope"]) == 2
    assert cli.main(["--database-url", url, "segments", "snapshot", "--json"]) == 0
    assert json.loads(capsys.readouterr().out.splitlines()[-1])["counted"] == 0
