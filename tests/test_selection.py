"""Best-checkpoint selection and early stopping on scripted evaluations."""

from __future__ import annotations

import pytest

from mtl_nlp.tasks import TaskEvaluation
from mtl_nlp.training.selection import ModelSelection, aggregate_score


def evaluation(task, headline, value):
    return TaskEvaluation(task, "validation", {headline: value}, headline, lambda: ("", ""), ".txt")


def test_aggregate_is_the_weighted_mean_of_headline_metrics():
    evaluations = [evaluation("ner", "f1", 0.8), evaluation("sst", "accuracy", 0.5)]
    assert aggregate_score(evaluations, {"ner": 1.0, "sst": 1.0}) == pytest.approx(0.65)
    assert aggregate_score(evaluations, {"ner": 3.0, "sst": 1.0}) == pytest.approx(0.725)


def test_best_step_follows_a_scripted_sequence_and_ties_keep_the_earlier_step():
    selection = ModelSelection()
    improved = [selection.update(step, score) for step, score in [(10, 0.5), (20, 0.7), (30, 0.6), (40, 0.7)]]
    assert improved == [True, True, False, False]
    assert (selection.best_step, selection.best_score) == (20, 0.7)
    assert not selection.should_stop


def test_early_stopping_after_patience_evaluations_without_improvement():
    selection = ModelSelection(patience=2)
    stops = []
    for step, score in [(1, 0.5), (2, 0.4), (3, 0.6), (4, 0.6), (5, 0.55), (6, 0.9)]:
        selection.update(step, score)
        stops.append(selection.should_stop)
    assert stops == [False, False, False, False, True, False]


def test_selection_state_round_trips():
    selection = ModelSelection(patience=3)
    selection.update(5, 0.4)
    selection.update(6, 0.3)
    restored = ModelSelection()
    restored.load_state_dict(selection.state_dict())
    assert restored == selection
