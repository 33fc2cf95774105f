"""Loss weighting: how the per-task losses of a step become the loss that is back-propagated.

Every method multiplies each task's loss by the recipe's static ``loss_weight`` and then applies its own rule:

- ``static``: ``Σ w_t L_t``.
- ``uncertainty`` (Kendall et al. 2018): ``Σ w_t (½ e^(−s_t) L_t + ½ s_t)`` with learned log-variances ``s_t``.
- ``dwa`` (Dynamic Weight Average, Liu et al. 2019): ``Σ w_t λ_t L_t`` with
  ``λ_t = K·softmax_t(r_t / T)``, ``r_t = L̄_t(k−1) / L̄_t(k−2)`` the ratio of the task's mean losses over the
  two previous windows (uniform until two windows are complete).

These work when a step trains one task (the other tasks' terms are absent), unlike scalarisers that need every
task's loss at every step. Gradient-combination methods (UPGrad, PCGrad, IMTL-G, …) act on per-task gradients
instead and live in :mod:`mtl_nlp.training.gradients`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch
from torch import nn

from ..config import WeightingConfig


class LossWeighting(nn.Module):
    """Static weighting, and the base of the adaptive methods; its state is saved in checkpoints."""

    def __init__(self, tasks: list[str], static_weights: Mapping[str, float]) -> None:
        super().__init__()
        self.tasks = list(tasks)
        self.register_buffer("static", torch.tensor([static_weights[task] for task in self.tasks]))

    def index(self, task: str) -> int:
        return self.tasks.index(task)

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        """The loss to back-propagate for this step's per-task losses."""
        return sum(self.static[self.index(task)] * loss for task, loss in losses.items())

    def weights(self) -> dict[str, float]:
        """Each task's current effective multiplier of its loss, for the logs."""
        return dict(zip(self.tasks, self.static.tolist()))

    def end_window(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Close an averaging window (DWA); ``reduce`` averages a tensor over data-parallel ranks."""


class UncertaintyWeighting(LossWeighting):
    """Kendall et al. (2018): a learned log-variance per task; ``½ e^(−s) L + ½ s`` balances the task scales."""

    def __init__(self, tasks: list[str], static_weights: Mapping[str, float]) -> None:
        super().__init__(tasks, static_weights)
        self.log_variances = nn.Parameter(torch.zeros(len(self.tasks)))

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for task, loss in losses.items():
            i = self.index(task)
            s = self.log_variances[i]
            total = total + self.static[i] * (0.5 * torch.exp(-s) * loss + 0.5 * s)
        return total

    def weights(self) -> dict[str, float]:
        effective = 0.5 * self.static * torch.exp(-self.log_variances.detach())
        return dict(zip(self.tasks, effective.tolist()))


class DynamicWeightAverage(LossWeighting):
    """Liu et al. (2019): tasks whose loss fell slowly over the last window get more weight in the next."""

    def __init__(self, tasks: list[str], static_weights: Mapping[str, float], temperature: float) -> None:
        super().__init__(tasks, static_weights)
        self.temperature = temperature
        count = len(self.tasks)
        self.register_buffer("loss_sums", torch.zeros(count, dtype=torch.float64))
        self.register_buffer("loss_counts", torch.zeros(count, dtype=torch.float64))
        # Mean losses of the two previous windows (row 0 older); NaN until a window has completed.
        self.register_buffer("previous_means", torch.full((2, count), float("nan"), dtype=torch.float64))
        self.register_buffer("lambdas", torch.ones(count, dtype=torch.float64))

    def forward(self, losses: Mapping[str, torch.Tensor]) -> torch.Tensor:
        total = 0.0
        for task, loss in losses.items():
            i = self.index(task)
            self.loss_sums[i] += loss.detach().double()
            self.loss_counts[i] += 1
            total = total + self.static[i] * self.lambdas[i].to(loss.dtype) * loss
        return total

    def weights(self) -> dict[str, float]:
        return dict(zip(self.tasks, (self.static * self.lambdas).tolist()))

    def end_window(self, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        sums, counts = reduce(self.loss_sums), reduce(self.loss_counts)
        # A task not drawn in this window keeps its previous mean.
        means = torch.where(counts > 0, sums / counts.clamp(min=1), self.previous_means[1])
        self.previous_means.copy_(torch.stack([self.previous_means[1], means]))
        self.loss_sums.zero_()
        self.loss_counts.zero_()
        rates = self.previous_means[1] / self.previous_means[0]
        if torch.isfinite(rates).all():
            self.lambdas.copy_(len(self.tasks) * torch.softmax(rates / self.temperature, dim=0))


def build_weighting(config: WeightingConfig, static_weights: Mapping[str, float]) -> LossWeighting:
    """The loss weighting the recipe asks for."""
    tasks = list(static_weights)
    if config.method == "uncertainty":
        return UncertaintyWeighting(tasks, static_weights)
    if config.method == "dwa":
        return DynamicWeightAverage(tasks, static_weights, config.dwa_temperature)
    return LossWeighting(tasks, static_weights)
