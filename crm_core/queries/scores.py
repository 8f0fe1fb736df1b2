"""Read side for scores: the latest score of records by a named scorer.

Scores are written by ``python -m crm_core score apply`` (see :mod:`crm_core.scoring`);
one row per (tenant, scorer, record) holds the latest value in 0…1.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from crm_core.models.segments import Score, ScoringModel


@dataclass(frozen=True)
class ScoreValue:
    """One record's latest score, with the model version and method that produced it."""

    entity_id: int
    score: float
    scored_at: dt.datetime
    model_version: int
    method: str

    @property
    def percent(self) -> int:
        """The score as a whole percentage, for display and thresholds."""
        return round(self.score * 100)


def latest_scores(session: Session, scorer_name: str, entity_ids: Iterable[int]) -> dict[int, ScoreValue]:
    """``{entity_id: ScoreValue}`` for those of ``entity_ids`` that ``scorer_name`` has scored."""
    wanted = sorted({int(entity_id) for entity_id in entity_ids})
    found: dict[int, ScoreValue] = {}
    for start in range(0, len(wanted), 500):  # stay under every database's bind-parameter limit
        chunk = wanted[start : start + 500]
        rows = session.execute(
            select(Score.entity_id, Score.score, Score.scored_at, ScoringModel.version, ScoringModel.method)
            .join(ScoringModel, ScoringModel.id == Score.model_id)
            .where(Score.scorer == scorer_name, Score.entity_id.in_(chunk))
        )
        for row in rows:
            found[row.entity_id] = ScoreValue(row.entity_id, float(row.score), row.scored_at, row.version, row.method)
    return found


def latest_model(session: Session, scorer_name: str) -> ScoringModel | None:
    """The newest trained version of ``scorer_name`` for the session's tenant."""
    return session.scalars(
        select(ScoringModel).where(ScoringModel.scorer == scorer_name).order_by(ScoringModel.version.desc()).limit(1)
    ).first()


@dataclass(frozen=True)
class ModelVersionRow:
    """One trained version of a scorer: when, how (logistic or fallback) and its metrics."""

    version: int
    trained_at: dt.datetime
    method: str
    metrics: dict[str, object]


def model_versions(session: Session, scorer_name: str, *, limit: int = 10) -> list[ModelVersionRow]:
    """The newest trained versions of ``scorer_name`` for the session's tenant, newest first."""
    rows = session.execute(
        select(ScoringModel.version, ScoringModel.trained_at, ScoringModel.method, ScoringModel.metrics)
        .where(ScoringModel.scorer == scorer_name)
        .order_by(ScoringModel.version.desc())
        .limit(limit)
    )
    return [ModelVersionRow(row.version, row.trained_at, row.method, dict(row.metrics or {})) for row in rows]
