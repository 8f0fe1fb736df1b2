"""The ``Scorer`` interface and the shared training engine (logistic regression).

A scorer says *what* to learn; this module says *how*:

- :meth:`Scorer.history` returns labelled past examples of the tenant (features known at
  the time, label = what happened afterwards);
- :meth:`Scorer.current` returns the records to score now, each with a ``prior`` (the
  fallback probability: a deal's stage probability, a recency heuristic for churn);
- :func:`fit` trains a class-balanced logistic regression on 75 % of the history and
  measures its AUC on the held-out 25 %; when either class has fewer than
  ``min_class_examples`` examples it returns a *fallback* model that scores with the prior
  and says why in its metrics;
- :func:`predict` and :func:`explain` use the stored model.

Models are plain JSON (feature names, scaling, category vocabularies, coefficients) so a
stored model is data, never code: nothing is unpickled.

Adding a scorer: subclass :class:`Scorer`, set ``name`` (also the ``score.<name>`` segment
field), ``entity`` ("customer" or "opportunity"), implement ``history`` and ``current``,
add catalog keys ``scoring.scorer.<name>`` and ``scoring.feature.<feature>`` in both
languages, and register it in :data:`crm_core.scoring.SCORERS`.
"""

from __future__ import annotations

import datetime as dt
import math
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from sqlalchemy.orm import Session

MODEL_FORMAT = 1
TOP_CATEGORIES = 12
MIN_CATEGORY_COUNT = 20
OTHER = "__other__"


@dataclass
class Examples:
    """Records as feature columns: numeric (float) and categorical (str), optional labels and priors."""

    ids: np.ndarray
    numeric: dict[str, np.ndarray] = field(default_factory=dict)
    categorical: dict[str, np.ndarray] = field(default_factory=dict)
    labels: np.ndarray | None = None
    prior: np.ndarray | None = None

    def __len__(self) -> int:
        return int(self.ids.shape[0])

    def subset(self, rows: np.ndarray) -> Examples:
        """The examples at positions ``rows``."""
        return Examples(
            ids=self.ids[rows],
            numeric={name: values[rows] for name, values in self.numeric.items()},
            categorical={name: values[rows] for name, values in self.categorical.items()},
            labels=None if self.labels is None else self.labels[rows],
            prior=None if self.prior is None else self.prior[rows],
        )


@dataclass(frozen=True)
class Factor:
    """One feature's push on a score: positive raises it, negative lowers it (log-odds)."""

    feature: str
    value: Any
    contribution: float


@dataclass(frozen=True)
class FittedModel:
    """A trained model (JSON), how it was made (``logistic`` or ``fallback``) and its metrics."""

    method: str
    model: dict[str, Any]
    metrics: dict[str, Any]


class Scorer(ABC):
    """What one score means: which history it learns from and which records it scores."""

    name: ClassVar[str]
    entity: ClassVar[str]  # "customer" or "opportunity"
    min_class_examples: ClassVar[int] = 30

    @abstractmethod
    def history(self, session: Session, tenant_id: int, as_of: dt.datetime) -> Examples:
        """Labelled past examples of the tenant (label 1 = the event this scorer predicts)."""

    @abstractmethod
    def current(
        self, session: Session, tenant_id: int, as_of: dt.datetime, ids: list[int] | None = None
    ) -> Examples:
        """The records to score now (or only ``ids``), with features and a fallback ``prior``."""

    def fit(self, history: Examples, *, seed: int = 0) -> FittedModel:
        """Train on ``history`` (see :func:`fit`)."""
        return fit(history, min_class_examples=self.min_class_examples, seed=seed)


# --- encoding ---------------------------------------------------------------------------


def _vocabulary(values: np.ndarray) -> list[str]:
    present, counts = np.unique(values.astype(str), return_counts=True)
    ranked = sorted(zip(counts.tolist(), present.tolist(), strict=True), key=lambda item: (-item[0], item[1]))
    return [value for count, value in ranked[:TOP_CATEGORIES] if count >= MIN_CATEGORY_COUNT]


def _design(examples: Examples, spec: dict[str, Any]) -> np.ndarray:
    """The standardised numeric columns followed by one-hot categories, as the model expects."""
    columns: list[np.ndarray] = []
    for name, mean, scale in zip(spec["numeric"], spec["means"], spec["scales"], strict=True):
        values = examples.numeric[name].astype(float)
        values = np.where(np.isnan(values), mean, values)
        columns.append((values - mean) / scale)
    for name, vocabulary in spec["categories"].items():
        values = examples.categorical[name].astype(str)
        for category in vocabulary:
            columns.append((values == category).astype(float))
    if not columns:
        return np.zeros((len(examples), 0))
    return np.column_stack(columns)


def _encoding(examples: Examples) -> dict[str, Any]:
    numeric = sorted(examples.numeric)
    means, scales = [], []
    for name in numeric:
        values = examples.numeric[name].astype(float)
        mean = float(np.nanmean(values)) if np.isfinite(values).any() else 0.0
        scale = float(np.nanstd(values)) if np.isfinite(values).any() else 1.0
        means.append(mean)
        scales.append(scale if scale > 1e-9 else 1.0)
    categories = {name: _vocabulary(examples.categorical[name]) for name in sorted(examples.categorical)}
    return {"numeric": numeric, "means": means, "scales": scales, "categories": categories}


def _column_names(spec: dict[str, Any]) -> list[tuple[str, str | None]]:
    names: list[tuple[str, str | None]] = [(name, None) for name in spec["numeric"]]
    for name, vocabulary in spec["categories"].items():
        names.extend((name, category) for category in vocabulary)
    return names


# --- training, prediction, explanation ---------------------------------------------------------


def fit(history: Examples, *, min_class_examples: int = 30, seed: int = 0) -> FittedModel:
    """Logistic regression with a held-out AUC, or a fallback model when the history is too thin."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]

    started = time.perf_counter()
    labels = np.zeros(0, dtype=int) if history.labels is None else history.labels.astype(int)
    positives = int(labels.sum())
    negatives = int(labels.shape[0] - positives)
    metrics: dict[str, Any] = {
        "examples": int(labels.shape[0]),
        "positives": positives,
        "negatives": negatives,
        "base_rate": round(positives / labels.shape[0], 4) if labels.shape[0] else None,
        "min_class_examples": min_class_examples,
    }
    if min(positives, negatives) < min_class_examples:
        metrics.update(
            fallback=True,
            reason="thin_history",
            auc=None,
            train_seconds=round(time.perf_counter() - started, 3),
        )
        return FittedModel("fallback", {"format": MODEL_FORMAT, "kind": "fallback"}, metrics)
    positions = np.arange(labels.shape[0])
    train_rows, test_rows = train_test_split(positions, test_size=0.25, random_state=seed, stratify=labels)
    train, test = history.subset(np.sort(train_rows)), history.subset(np.sort(test_rows))
    spec = _encoding(train)
    classifier = LogisticRegression(C=1.0, max_iter=500, class_weight="balanced")
    classifier.fit(_design(train, spec), train.labels)
    model = {
        "format": MODEL_FORMAT,
        "kind": "logistic",
        **spec,
        "coefficients": [float(value) for value in classifier.coef_[0]],
        "intercept": float(classifier.intercept_[0]),
    }
    probabilities = _logistic(model, test)
    assert test.labels is not None
    metrics.update(
        fallback=False,
        reason=None,
        auc=round(float(roc_auc_score(test.labels, probabilities)), 4),
        train_examples=len(train),
        test_examples=len(test),
        train_seconds=round(time.perf_counter() - started, 3),
        top_factors=[
            {"feature": name, "category": category, "weight": round(weight, 4)}
            for (name, category), weight in sorted(
                zip(_column_names(spec), model["coefficients"], strict=True), key=lambda item: -abs(item[1])
            )[:5]
        ],
    )
    return FittedModel("logistic", model, metrics)


def _logistic(model: dict[str, Any], examples: Examples) -> np.ndarray:
    design = _design(examples, model)
    logits = design @ np.asarray(model["coefficients"], dtype=float) + float(model["intercept"])
    return 1.0 / (1.0 + np.exp(-logits))


def predict(model: dict[str, Any], examples: Examples) -> np.ndarray:
    """Probabilities in 0…1 for ``examples``: the logistic model, or the prior for a fallback model."""
    if model.get("format") != MODEL_FORMAT:
        raise ValueError("unknown model format")
    if model.get("kind") == "logistic":
        return _logistic(model, examples)
    if examples.prior is None:
        raise ValueError("a fallback model needs priors")
    return np.clip(examples.prior.astype(float), 0.0, 1.0)


def explain(model: dict[str, Any], examples: Examples, row: int, *, top: int = 3) -> list[Factor]:
    """The ``top`` features that moved record ``row``'s score most, largest push first."""
    if model.get("kind") != "logistic":
        return []
    factors: list[Factor] = []
    coefficients = iter(model["coefficients"])
    for name, mean, scale in zip(model["numeric"], model["means"], model["scales"], strict=True):
        value = float(examples.numeric[name][row])
        standardised = 0.0 if math.isnan(value) else (value - mean) / scale
        factors.append(Factor(name, _shown(name, value), standardised * next(coefficients)))
    for name, vocabulary in model["categories"].items():
        category_value = str(examples.categorical[name][row])
        push = 0.0
        for category in vocabulary:
            weight = next(coefficients)
            if category == category_value:
                push = weight
        factors.append(Factor(name, category_value if category_value in vocabulary else OTHER, push))
    factors.sort(key=lambda factor: -abs(factor.contribution))
    return [Factor(f.feature, f.value, round(f.contribution, 4)) for f in factors[:top] if f.contribution != 0]


def _shown(name: str, value: float) -> float | int | None:
    """A feature value as a person reads it: ``*_log`` features back on their own scale, whole numbers as ints."""
    if math.isnan(value):
        return None
    if name.endswith("_log"):
        value = math.expm1(value)
    rounded = round(value, 2)
    return int(rounded) if rounded == int(rounded) else rounded


def days_between(later: dt.datetime | np.ndarray | Any, earlier: Any) -> np.ndarray:
    """Whole days from ``earlier`` to ``later`` (NaN where either is missing)."""
    later_values = np.asarray(later, dtype="datetime64[s]")
    earlier_values = np.asarray(earlier, dtype="datetime64[s]")
    delta = np.floor((later_values - earlier_values).astype("timedelta64[s]").astype(float) / 86_400.0)
    return np.where(np.isnat(later_values) | np.isnat(earlier_values), np.nan, delta)
