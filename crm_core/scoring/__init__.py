"""Scoring, the AI interface: scorers learn from a tenant's own history and score its records.

:data:`SCORERS` is the registry; each entry implements :class:`~crm_core.scoring.base.Scorer`
(see that module for how to add one). :mod:`crm_core.scoring.runner` trains a version
(stored in ``scoring_models`` with its held-out metrics) and applies it (``scores``);
``python -m crm_core score train|apply`` runs them; :func:`crm_core.queries.scores.latest_scores`
reads the results.
"""

from __future__ import annotations

from crm_core.scoring.base import (
    Examples,
    Factor,
    FittedModel,
    Scorer,
    explain,
    fit,
    predict,
)
from crm_core.scoring.churn import ChurnRiskScorer
from crm_core.scoring.deal_win import DealWinScorer

SCORERS: dict[str, Scorer] = {}


def register(scorer: Scorer) -> Scorer:
    """Make ``scorer`` available to the CLI, the segment builder and the grids."""
    SCORERS[scorer.name] = scorer
    return scorer


register(DealWinScorer())
register(ChurnRiskScorer())

__all__ = ["SCORERS", "Examples", "Factor", "FittedModel", "Scorer", "explain", "fit", "predict", "register"]
