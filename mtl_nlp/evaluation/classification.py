"""Scores for one-label-per-example predictions (scikit-learn's metrics)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import accuracy_score, classification_report, f1_score


def score_labels(gold: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Accuracy, micro/macro/weighted F1 and per-class precision, recall, F1 and support."""
    indices = list(range(len(labels)))
    report = classification_report(
        gold, predicted, labels=indices, target_names=labels, output_dict=True, zero_division=0
    )
    return {
        "accuracy": float(accuracy_score(gold, predicted)),
        "f1_macro": float(f1_score(gold, predicted, labels=indices, average="macro", zero_division=0)),
        "f1_micro": float(f1_score(gold, predicted, labels=indices, average="micro", zero_division=0)),
        "f1_weighted": float(f1_score(gold, predicted, labels=indices, average="weighted", zero_division=0)),
        "per_class": {label: {k: float(v) for k, v in report[label].items()} for label in labels},
    }


def label_report(gold: np.ndarray, predicted: np.ndarray, labels: list[str], title: str) -> str:
    """A readable per-class table under a one-line title."""
    table = classification_report(
        gold, predicted, labels=list(range(len(labels))), target_names=labels, digits=4, zero_division=0
    )
    return f"{title}\n{len(gold)} examples; accuracy {accuracy_score(gold, predicted):.4f}\n\n{table}"
