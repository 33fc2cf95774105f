"""Scores for per-example predictions: single-label, multi-label (scikit-learn) and regression (SciPy)."""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy.stats import pearsonr, spearmanr
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


def score_multi_label(gold: np.ndarray, predicted: np.ndarray, labels: list[str]) -> dict[str, Any]:
    """Micro/macro F1, subset accuracy and per-label precision, recall, F1 for multi-hot label matrices."""
    report = classification_report(gold, predicted, target_names=labels, output_dict=True, zero_division=0)
    return {
        "f1_micro": float(f1_score(gold, predicted, average="micro", zero_division=0)),
        "f1_macro": float(f1_score(gold, predicted, average="macro", zero_division=0)),
        "subset_accuracy": float(accuracy_score(gold, predicted)),
        "per_class": {label: {k: float(v) for k, v in report[label].items()} for label in labels},
    }


def multi_label_report(gold: np.ndarray, predicted: np.ndarray, labels: list[str], title: str) -> str:
    """A readable per-label table for multi-label predictions."""
    table = classification_report(gold, predicted, target_names=labels, digits=4, zero_division=0)
    return f"{title}\n{len(gold)} examples; subset accuracy {accuracy_score(gold, predicted):.4f}\n\n{table}"


def score_regression(gold: np.ndarray, predicted: np.ndarray) -> dict[str, float]:
    """Mean squared error, Pearson and Spearman correlation."""
    return {
        "mse": float(np.mean((gold - predicted) ** 2)),
        "pearson": float(pearsonr(gold, predicted).statistic),
        "spearman": float(spearmanr(gold, predicted).statistic),
    }


def regression_report(gold: np.ndarray, predicted: np.ndarray, title: str) -> str:
    """The regression scores as a few readable lines."""
    scores = score_regression(gold, predicted)
    lines = [f"{name:>10}  {value:.4f}" for name, value in scores.items()]
    return f"{title}\n{len(gold)} examples\n\n" + "\n".join(lines) + "\n"
