"""Train and apply scorers for one tenant: system work, filtered by ``tenant_id`` explicitly.

``train`` stores a new :class:`~crm_core.models.segments.ScoringModel` version with its
metrics (the row is audited with the system reason); ``apply`` replaces the scorer's
rows in ``scores`` with the latest version's predictions in one transaction, so readers
see either the old scores or the new ones, never a mix.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, func, insert, select

from crm_core.db import Database
from crm_core.errors import NotFound
from crm_core.models import utcnow
from crm_core.models.segments import Score, ScoringModel
from crm_core.scoring import SCORERS
from crm_core.scoring.base import Factor, Scorer, explain, predict

INSERT_CHUNK = 5_000


@dataclass(frozen=True)
class TrainResult:
    """One trained version: its id, number, method (logistic/fallback), metrics and time."""

    scorer: str
    model_id: int
    version: int
    method: str
    metrics: dict[str, Any]
    seconds: float


@dataclass(frozen=True)
class ApplyResult:
    """How many records one apply scored, with which version, and how long it took."""

    scorer: str
    scored: int
    version: int
    method: str
    seconds: float


def scorer_named(name: str) -> Scorer:
    """The registered scorer ``name``; raises NotFound for an unknown name."""
    try:
        return SCORERS[name]
    except KeyError:
        raise NotFound(f"no scorer named {name}") from None


def train(db: Database, tenant_id: int, scorer_name: str, *, as_of: dt.datetime | None = None) -> TrainResult:
    """Fit ``scorer_name`` on the tenant's history up to ``as_of`` and store it as a new version."""
    scorer = scorer_named(scorer_name)
    as_of = as_of or utcnow()
    started = time.perf_counter()
    with db.system_transaction(f"score train {scorer_name}", tenant_id=tenant_id) as session:
        fitted = scorer.fit(scorer.history(session, tenant_id, as_of))
        version = 1 + int(
            session.scalar(
                select(func.coalesce(func.max(ScoringModel.version), 0)).where(
                    ScoringModel.tenant_id == tenant_id, ScoringModel.scorer == scorer_name
                )
            )
            or 0
        )
        metrics = {**fitted.metrics, "as_of": as_of.isoformat(timespec="seconds")}
        row = ScoringModel(
            tenant_id=tenant_id, scorer=scorer_name, version=version, trained_at=utcnow(),
            method=fitted.method, metrics=metrics, model=fitted.model,
        )
        session.add(row)
        session.flush()
        return TrainResult(scorer_name, row.id, version, fitted.method, metrics, time.perf_counter() - started)


def _latest(session: Any, tenant_id: int, scorer_name: str) -> ScoringModel | None:
    return session.scalars(
        select(ScoringModel)
        .where(ScoringModel.tenant_id == tenant_id, ScoringModel.scorer == scorer_name)
        .order_by(ScoringModel.version.desc())
        .limit(1)
    ).first()


def apply(db: Database, tenant_id: int, scorer_name: str, *, as_of: dt.datetime | None = None) -> ApplyResult:
    """Score the tenant's current records with the latest version (training one first if none exists)."""
    scorer = scorer_named(scorer_name)
    as_of = as_of or utcnow()
    started = time.perf_counter()
    with db.system_session("score lookup", tenant_id=tenant_id) as session:
        model = _latest(session, tenant_id, scorer_name)
    if model is None:
        train(db, tenant_id, scorer_name, as_of=as_of)
    with db.system_transaction(f"score apply {scorer_name}", tenant_id=tenant_id) as session:
        model = _latest(session, tenant_id, scorer_name)
        assert model is not None
        examples = scorer.current(session, tenant_id, as_of)
        probabilities = predict(model.model, examples)
        session.execute(delete(Score).where(Score.tenant_id == tenant_id, Score.scorer == scorer_name))
        now = utcnow()
        rows = [
            {
                "tenant_id": tenant_id, "scorer": scorer_name, "entity": scorer.entity, "entity_id": int(entity_id),
                "model_id": model.id, "score": round(float(probability), 4), "scored_at": now,
                "created_at": now, "updated_at": now,
            }
            for entity_id, probability in zip(examples.ids.tolist(), probabilities.tolist(), strict=True)
        ]
        for start in range(0, len(rows), INSERT_CHUNK):
            session.execute(insert(Score), rows[start : start + INSERT_CHUNK])
        return ApplyResult(scorer_name, len(rows), model.version, model.method, time.perf_counter() - started)


def explain_record(
    db: Database, tenant_id: int, scorer_name: str, entity_id: int, *, as_of: dt.datetime | None = None, top: int = 3
) -> list[Factor]:
    """The features that pushed one record's score most under the latest version (empty for a fallback)."""
    scorer = scorer_named(scorer_name)
    with db.system_session(f"score explain {scorer_name}", tenant_id=tenant_id) as session:
        model = _latest(session, tenant_id, scorer_name)
        if model is None:
            return []
        examples = scorer.current(session, tenant_id, as_of or utcnow(), ids=[entity_id])
        if len(examples) == 0:
            return []
        return explain(model.model, examples, 0, top=top)
