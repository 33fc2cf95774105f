"""Loss weighting: the weights each method's formula gives on hand-computed examples."""

from __future__ import annotations

import math

import pytest
import torch

from mtl_nlp.config import WeightingConfig
from mtl_nlp.training.weighting import DynamicWeightAverage, UncertaintyWeighting, build_weighting

STATIC = {"ner": 2.0, "sentiment": 0.5}


def mean_reduce(tensor):
    return tensor


def test_static_weighting_is_the_weighted_sum():
    weighting = build_weighting(WeightingConfig(), STATIC)
    loss = weighting({"ner": torch.tensor(3.0), "sentiment": torch.tensor(4.0)})
    assert float(loss) == pytest.approx(2.0 * 3.0 + 0.5 * 4.0)
    assert weighting.weights() == {"ner": 2.0, "sentiment": 0.5}


def test_uncertainty_weighting_follows_kendall_and_learns_the_log_variances():
    weighting = build_weighting(WeightingConfig(method="uncertainty"), STATIC)
    assert isinstance(weighting, UncertaintyWeighting)
    with torch.no_grad():
        weighting.log_variances.copy_(torch.tensor([math.log(4.0), 0.0]))
    # ner: 2 · (½ · e^(−ln 4) · 3 + ½ · ln 4); a step trains one task, so only its term is present.
    loss = weighting({"ner": torch.tensor(3.0)})
    assert float(loss.detach()) == pytest.approx(2.0 * (0.5 * 3.0 / 4.0 + 0.5 * math.log(4.0)))
    loss.backward()
    # d/ds [½ e^(−s) L + ½ s] · w = w · (½ − ½ e^(−s) L) = 2 · (0.5 − 0.375)
    assert weighting.log_variances.grad.tolist() == pytest.approx([0.25, 0.0])
    assert weighting.weights() == pytest.approx({"ner": 2.0 * 0.5 / 4.0, "sentiment": 0.5 * 0.5})


def test_dwa_weights_follow_the_loss_ratios_of_the_two_previous_windows():
    weighting = build_weighting(WeightingConfig(method="dwa", dwa_temperature=2.0), {"ner": 1.0, "sentiment": 1.0})
    assert isinstance(weighting, DynamicWeightAverage)
    windows = [{"ner": [4.0, 2.0], "sentiment": [1.0]}, {"ner": [1.0], "sentiment": [0.9, 0.9]}]
    for window in windows:
        # Uniform until two windows have completed.
        assert weighting.weights() == {"ner": 1.0, "sentiment": 1.0}
        for task, losses in window.items():
            for value in losses:
                weighting({task: torch.tensor(value)})
        weighting.end_window(mean_reduce)
    # Window means: ner 3.0 → 1.0 (ratio 1/3), sentiment 1.0 → 0.9 (ratio 0.9); λ = 2·softmax(ratio / 2).
    ratios = torch.tensor([1 / 3, 0.9], dtype=torch.float64)
    expected = 2 * torch.softmax(ratios / 2.0, dim=0)
    assert list(weighting.weights().values()) == pytest.approx(expected.tolist())
    assert weighting.weights()["sentiment"] > weighting.weights()["ner"]
    loss = weighting({"ner": torch.tensor(5.0)})
    assert float(loss) == pytest.approx(float(expected[0]) * 5.0)


def test_dwa_state_round_trips():
    first = build_weighting(WeightingConfig(method="dwa"), STATIC)
    for value in (2.0, 1.0, 0.5):
        first({"ner": torch.tensor(value), "sentiment": torch.tensor(value * 2)})
        first.end_window(mean_reduce)
    second = build_weighting(WeightingConfig(method="dwa"), STATIC)
    second.load_state_dict(first.state_dict())
    assert second.weights() == first.weights()
